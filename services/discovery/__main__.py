"""``python -m services.discovery --host H --port P [--peer URL ...]``: run one discovery server.

Binds only to the given (loopback) address, as every local-cloud server does, so an AZ outage
that stops the addresses of a zone stops this server too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from services.common.logs import configure_logging
from services.discovery.app import create_app
from services.discovery.registry import RegistrySettings
from services.discovery.settings import DiscoverySettings


def parse_args(argv: Sequence[str] | None = None) -> DiscoverySettings:
    defaults = DiscoverySettings()
    lease = defaults.registry
    parser = argparse.ArgumentParser(
        prog="python -m services.discovery",
        description="Eureka-compatible discovery server (REST API under /eureka).")
    parser.add_argument("--host", default=defaults.host,
                        help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help="port to bind (default %(default)s)")
    parser.add_argument("--peer", action="append", default=[], metavar="URL",
                        help="another discovery server, e.g. http://127.0.2.51:8761/eureka "
                             "(repeatable; this server's own URL is ignored)")
    parser.add_argument("--lease-duration-s", type=int, default=lease.lease_duration_s,
                        help="lease for instances that do not ask for one (default %(default)s)")
    parser.add_argument("--renewal-interval-s", type=int, default=lease.renewal_interval_s,
                        help="heartbeat interval instances are expected to keep "
                             "(default %(default)s)")
    parser.add_argument("--eviction-interval-s", type=float, default=defaults.eviction_interval_s,
                        help="how often expired leases are evicted (default %(default)s)")
    preservation = parser.add_mutually_exclusive_group()
    preservation.add_argument("--self-preservation", dest="self_preservation",
                              action="store_true", default=lease.self_preservation,
                              help="stop evicting when renewals drop below 85%% of expected")
    preservation.add_argument("--no-self-preservation", dest="self_preservation",
                              action="store_false", help="always evict expired leases (default)")
    parser.add_argument("--log-level", default=defaults.log_level,
                        help="DEBUG, INFO, WARNING or ERROR (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        return DiscoverySettings(
            host=args.host,
            port=args.port,
            peers=tuple(args.peer),
            registry=RegistrySettings(
                lease_duration_s=args.lease_duration_s,
                renewal_interval_s=args.renewal_interval_s,
                self_preservation=args.self_preservation,
            ),
            eviction_interval_s=args.eviction_interval_s,
            log_level=args.log_level.upper(),
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        # Our JSON logging is configured above; uvicorn must not install its own handlers.
        log_config=None,
        # One line per heartbeat would drown the log; registry events are logged instead.
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
