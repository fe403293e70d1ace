"""``python -m services.gateway --host H --port P [--config-url URL] [--discovery-url URL ...]``

Settings come from the config server (application ``gateway``, ``--profile``), or from a YAML
file (``--settings-file``) for tests and benchmarks. With ``--kafka-bootstrap`` the gateway
listens on the refresh bus and applies new routes and limits without a restart. Instances come
from discovery (``--discovery-url``, repeatable; the gateway registers itself there too) or
from ``--instance APP=HOST:PORT`` (repeatable) without discovery. What the runtime knows better
than the configuration overrides it: the session Redis (revocations and the shared rate limits:
``--sentinels h:p,h:p --session-master session`` or ``--redis-url redis://…``), the token
public key (``--jwt-public-key FILE [--jwt-issuer ISS]``) and the blue/green ``--colour``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import uvloop

from services.common.bus import BusListener
from services.common.eureka import DiscoveryClient, Registration
from services.common.logs import configure_logging
from services.common.settings import RefreshableSettings, load_or_exit
from services.common.task import faults, task_metadata
from services.common.tokens import ISSUER_DEFAULT
from services.gateway import native, session_redis
from services.gateway.gateway import Gateway
from services.gateway.instances import Instance, InstanceSource, StaticInstances
from services.gateway.settings import GatewaySettings, JwtSettings, RedisSettings, SettingsError
from services.gateway.sources import (
    APPLICATION,
    EurekaInstances,
    GatewayConfigTree,
    settings_from_file,
    thread_safe,
)

log = logging.getLogger("services.gateway")

# The testing hook of a release that must never be switched to: its gateways report themselves
# DOWN on /actuator/health, so the ALB never finds them healthy (features/blue_green.feature).
HEALTH_FAULT = "gateway-health"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.gateway",
                                     description="COME2US API gateway")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config-url", help="config server base URL")
    source.add_argument("--settings-file", type=Path, help="static YAML settings instead")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--label", default=None, help="config repository branch/tag/commit")
    parser.add_argument("--discovery-url", action="append", default=[],
                        help="Eureka base URL (…/eureka); repeat for each discovery server")
    parser.add_argument("--instance", action="append", default=[], metavar="APP=HOST:PORT",
                        help="a static instance, when running without discovery")
    parser.add_argument("--kafka-bootstrap", help="refresh bus (Kafka) bootstrap servers")
    parser.add_argument("--colour", default=task_metadata().get("colour"),
                        help="blue/green: route only to instances of this colour (default: the "
                             "task's colour, $COME2US_COLOUR)")
    parser.add_argument("--sentinels", help="session Redis Sentinels, host:port,host:port")
    parser.add_argument("--session-master", default=None, help="Sentinel master name")
    parser.add_argument("--redis-url", help="session Redis URL (instead of Sentinel)")
    parser.add_argument("--jwt-public-key", type=Path,
                        help="PEM file of the user service's token-signing public key")
    parser.add_argument("--jwt-issuer", help="expected token issuer (with --jwt-public-key)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def task_headers(colour: str | None) -> bytes:
    """Which colour and release answered, on every response (blue/green evidence, §7-1): the
    task's metadata, computed once so the forwarding path only appends the bytes."""
    release = task_metadata().get("release")
    lines = [f"x-come2us-colour: {colour}\r\n" if colour else "",
             f"x-come2us-release: {release}\r\n" if release else ""]
    return "".join(lines).encode("latin-1")


def _static_instances(entries: list[str]) -> StaticInstances:
    apps: dict[str, list[Instance]] = defaultdict(list)
    for entry in entries:
        app, _, address = entry.partition("=")
        host, _, port = address.rpartition(":")
        if not app or not host or not port.isdigit():
            raise SystemExit(f"--instance {entry!r}: expected APP=HOST:PORT")
        apps[app].append(Instance(f"{host}:{port}", host, int(port)))
    return StaticInstances(apps)


def _overrides(settings: GatewaySettings, args: argparse.Namespace) -> GatewaySettings:
    """Command-line values win over configuration: the runtime knows addresses and colour."""
    changes: dict[str, Any] = {}
    if args.jwt_public_key is not None:
        base = settings.jwt or JwtSettings(issuer=ISSUER_DEFAULT, public_key_pem="")
        changes["jwt"] = dataclasses.replace(
            base, public_key_pem=args.jwt_public_key.read_text(),
            issuer=args.jwt_issuer or base.issuer)
    if args.colour:
        changes["colour"] = args.colour
    if args.sentinels or args.redis_url:
        items = [item.strip() for item in (args.sentinels or "").split(",") if item.strip()]
        sentinels = tuple((host, int(port))
                          for host, _, port in (item.rpartition(":") for item in items))
        changes["redis"] = RedisSettings(
            sentinels=sentinels, url=args.redis_url,
            master=args.session_master or settings.redis.master,
            socket_timeout_s=settings.redis.socket_timeout_s)
    return dataclasses.replace(settings, **changes) if changes else settings


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    refreshable: RefreshableSettings[GatewayConfigTree] | None = None
    if args.settings_file is not None:
        settings = _overrides(settings_from_file(args.settings_file), args)
    else:
        refreshable = load_or_exit(lambda: RefreshableSettings.load(
            GatewayConfigTree, APPLICATION, args.profile, args.config_url, label=args.label),
            program="gateway")
        try:
            settings = _overrides(refreshable.value.settings(), args)
        except SettingsError as error:
            raise SystemExit(f"gateway: cannot start: {error}") from None

    discovery: DiscoveryClient | None = None
    instances: InstanceSource
    if args.discovery_url:
        colour = settings.colour
        discovery = DiscoveryClient(
            args.discovery_url,
            Registration(app=APPLICATION, instance_id=f"{APPLICATION}:{args.host}:{args.port}",
                         host=args.host, port=args.port,
                         metadata={**task_metadata(), **({"colour": colour} if colour else {})},
                         health_check_url=f"http://{args.host}:{args.port}/actuator/health"),
            refresh_interval_s=min(1.0, settings.discovery_refresh_s))
        await discovery.start()
        instances = EurekaInstances(discovery)
    else:
        instances = _static_instances(args.instance)

    redis = probe = None
    if settings.redis.configured:
        redis, probe = session_redis.connect(settings.redis)
    gateway = Gateway(settings, instances, redis=redis, master_probe=probe,
                      task_headers=task_headers(settings.colour),
                      fail_health=HEALTH_FAULT in faults())

    bus: BusListener | None = None
    if refreshable is not None:
        apply = thread_safe(loop, gateway.apply_settings)

        def on_change(_old: GatewayConfigTree, new: GatewayConfigTree) -> None:
            try:
                apply(_overrides(new.settings(), args))
            except SettingsError as error:
                log.error("gateway: refreshed settings refused: %s", error)

        refreshable.on_change(on_change)
        if args.kafka_bootstrap:
            bus = BusListener(args.kafka_bootstrap, APPLICATION, f"{args.host}:{args.port}",
                              [refreshable])
            await bus.start()

    await gateway.start(args.host, args.port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("gateway: stopping")
    if bus is not None:
        await bus.stop()
    if discovery is not None:
        with contextlib.suppress(Exception):
            await discovery.stop()
    await gateway.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("gateway", args.log_level)
    log.info("gateway: forwarding path: %s", native.status)
    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
