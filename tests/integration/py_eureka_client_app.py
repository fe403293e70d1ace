"""A Python service registered through the real ``py-eureka-client`` package, run as a process.

The compatibility test starts this next to our discovery servers: it registers, heartbeats and
pulls the registry with py-eureka-client (which reads Eureka's XML), and reports on stdout, one
JSON object per line, when it sees the application it was asked to look for. It runs until it
is killed — py-eureka-client's heartbeat thread cannot be stopped, so a process is the clean
way to end it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import py_eureka_client.eureka_client as eureka_client


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", required=True, help="comma-separated Eureka URLs")
    parser.add_argument("--app", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lease-duration-s", type=int, required=True)
    parser.add_argument("--look-for", required=True, help="an application to find")
    args = parser.parse_args()

    client = eureka_client.EurekaClient(
        eureka_server=args.servers,
        app_name=args.app,
        instance_id=f"{args.app}:{args.host}:{args.port}",
        instance_host=args.host,
        instance_ip=args.host,
        instance_port=args.port,
        renewal_interval_in_secs=1,
        duration_in_secs=args.lease_duration_s,
        metadata={"colour": "green", "zone": "AZ-b"},
    )
    await client.start()
    report(event="started")
    seen: list[dict[str, object]] = []
    while True:
        application = client.applications.get_application(args.look_for)
        found = sorted(
            ({"instance_id": i.instanceId, "host": i.hostName, "port": i.port.port,
              "status": i.status, "metadata": i.metadata} for i in application.up_instances),
            key=lambda instance: str(instance["instance_id"]))
        if found != seen:
            seen = found
            report(event="seen", app=args.look_for.upper(), instances=found)
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
