"""Adapters from the platform's shared clients to the gateway's two small interfaces.

The engine only knows :class:`~services.gateway.instances.InstanceSource` and a stream of
:class:`~services.gateway.settings.GatewaySettings`; this module connects them to the Eureka
client (``services.common.eureka``), the config server (``services.common.settings``) and a
static YAML file (tests, benchmarks, running without the core).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from services.common.eureka import DiscoveryClient
from services.gateway.instances import Instance
from services.gateway.settings import GatewaySettings, from_config

APPLICATION = "gateway"


class EurekaInstances:
    """The Eureka client's local registry copy as an InstanceSource (no network per call)."""

    def __init__(self, discovery: DiscoveryClient) -> None:
        self.discovery = discovery

    async def instances(self, app: str) -> Sequence[Instance]:
        return [Instance(found.instance_id, found.host, found.port, dict(found.metadata))
                for found in self.discovery.instances(app)]


class GatewayConfigTree(BaseModel):
    """The gateway's part of the configuration, kept as a tree for :func:`from_config`.

    The config server's relaxed binder fills this model; the gateway parses the two subtrees
    itself because route definitions are lists of Spring shortcut strings and maps that a
    pydantic model would only restate.
    """

    model_config = ConfigDict(extra="ignore")

    spring: dict[str, Any] = {}
    gateway: dict[str, Any] = {}

    def settings(self) -> GatewaySettings:
        return from_config({"spring": self.spring, "gateway": self.gateway})


def settings_from_file(path: Path) -> GatewaySettings:
    """Settings from a YAML file with the same shape as the config repository's gateway.yml."""
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return from_config(tree)


def thread_safe(loop: asyncio.AbstractEventLoop,
                apply: Callable[[GatewaySettings], Any]) -> Callable[[GatewaySettings], None]:
    """``apply`` run on the gateway's loop: the bus refreshes settings from a worker thread."""
    def call(settings: GatewaySettings) -> None:
        loop.call_soon_threadsafe(apply, settings)
    return call
