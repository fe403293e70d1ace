"""The runner's side of discovery: taking a task out before it stops, and asking who is UP.

A task behind the ALB is drained by deregistering its target. The business services' tasks
are reached through discovery instead, so they are drained there: the runner sets the task's
status to OUT_OF_SERVICE (Eureka's status override) on every discovery server, the gateways
drop it at their next registry fetch, and only then is the process asked to stop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

import httpx

from stack.local.clients import registered_instances
from stack.model import Node

TIMEOUT_S = 0.5
OUT_OF_SERVICE = "OUT_OF_SERVICE"


class Registry(Protocol):
    def take_out(self, app: str, instance_id: str) -> None:
        """Stop routing to ``instance_id`` (best effort: a server that is down is skipped)."""
        ...

    def statuses(self, app: str) -> dict[str, dict[str, str]]:
        """Per answering discovery server: instance id -> status of ``app``."""
        ...


class EurekaRegistry:
    def __init__(self, servers: Sequence[Node]) -> None:
        self.servers = tuple(servers)

    def take_out(self, app: str, instance_id: str) -> None:
        for server in self.servers:
            with contextlib.suppress(httpx.HTTPError):
                httpx.put(f"http://{server.address}/eureka/apps/{app.upper()}/{instance_id}"
                          f"/status", params={"value": OUT_OF_SERVICE}, timeout=TIMEOUT_S,
                          trust_env=False)

    def statuses(self, app: str) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for server in self.servers:
            with contextlib.suppress(httpx.HTTPError):
                found[server.name] = registered_instances(server, app)
        return found
