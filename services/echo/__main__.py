"""``python -m services.echo --host H --port P [--discovery-url URL ...] [--meta k=v ...]``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

import uvicorn

from services.common.eureka import DiscoveryClient, Registration
from services.common.logs import configure_logging
from services.common.task import task_metadata
from services.echo.app import EchoSettings, create_app


def parse_args(argv: Sequence[str] | None = None) -> EchoSettings:
    parser = argparse.ArgumentParser(prog="python -m services.echo", description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", default="echo-service", help="name in discovery")
    parser.add_argument("--discovery-url", action="append", default=[])
    parser.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                        help="discovery metadata, e.g. zone=AZ-a or colour=blue")
    parser.add_argument("--lease-duration-s", type=int, default=5)
    parser.add_argument("--renewal-interval-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    metadata = task_metadata()  # what the runtime says (colour, zone), then --meta on top
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--meta {item!r}: expected KEY=VALUE")
        metadata[key] = value
    return EchoSettings(app=args.app, instance_id=f"{args.app}:{args.host}:{args.port}",
                        host=args.host, port=args.port,
                        discovery_urls=tuple(args.discovery_url), metadata=metadata,
                        lease_duration_s=args.lease_duration_s,
                        renewal_interval_s=args.renewal_interval_s)


async def serve(settings: EchoSettings) -> None:
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, loop="uvloop",
        http="httptools", log_config=None, access_log=False, server_header=False))
    if not settings.discovery_urls:
        await server.serve()
        return
    registration = Registration(
        app=settings.app, instance_id=settings.instance_id, host=settings.host,
        port=settings.port, metadata=settings.metadata,
        lease_duration_s=settings.lease_duration_s,
        renewal_interval_s=settings.renewal_interval_s,
        health_check_url=f"http://{settings.host}:{settings.port}/actuator/health")
    async with DiscoveryClient(settings.discovery_urls, registration):
        await server.serve()


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    configure_logging(settings.app)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
