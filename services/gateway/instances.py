"""Where the instances of an application come from, behind one small interface.

The gateway never asks discovery on the request path: :class:`InstanceCatalog` refreshes a
snapshot per application every ``discovery-refresh`` seconds from an :class:`InstanceSource`
(the Eureka client in production, :class:`StaticInstances` in tests) and the balancer reads that
snapshot. An instance that dies is therefore still chosen until the next refresh after discovery
evicts it — unless it refuses a connection, which ejects it locally at once (``balancer``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Instance:
    """One UP instance of an application, as discovery reports it."""

    instance_id: str
    host: str
    port: int
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def colour(self) -> str | None:
        return self.metadata.get("colour")


class InstanceSource(Protocol):
    """Anything that can list the UP instances of an application (names are upper-case)."""

    async def instances(self, app: str) -> Sequence[Instance]: ...


class StaticInstances:
    """A fixed instance list per application: for tests and for running without discovery."""

    def __init__(self, apps: Mapping[str, Sequence[Instance]] | None = None) -> None:
        self._apps = {name.upper(): tuple(items) for name, items in (apps or {}).items()}

    def set(self, app: str, instances: Sequence[Instance]) -> None:
        self._apps[app.upper()] = tuple(instances)

    async def instances(self, app: str) -> Sequence[Instance]:
        return self._apps.get(app.upper(), ())


class InstanceCatalog:
    """The snapshot the balancer reads: instances per application, filtered by colour.

    When the gateway has a colour (blue/green), only instances whose metadata ``colour`` equals
    it are kept; instances without a colour are then left out too, so a half-labelled fleet
    cannot leak traffic across colours.
    """

    def __init__(self, source: InstanceSource, colour: str | None = None) -> None:
        self.source = source
        self.colour = colour
        self.snapshot: dict[str, tuple[Instance, ...]] = {}
        self.version = 0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def get(self, app: str) -> tuple[Instance, ...]:
        return self.snapshot.get(app, ())

    def _keep(self, instances: Iterable[Instance]) -> tuple[Instance, ...]:
        if self.colour is None:
            return tuple(instances)
        return tuple(i for i in instances if i.colour == self.colour)

    async def refresh(self, apps: Iterable[str]) -> None:
        """Fetch every app's instances; an app whose fetch fails keeps its last snapshot."""
        names = sorted(set(apps))
        results = await asyncio.gather(*(self.source.instances(app) for app in names),
                                       return_exceptions=True)
        snapshot = dict(self.snapshot)
        for app, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("discovery: fetching %s failed (%s); keeping %d known instances",
                            app, result, len(snapshot.get(app, ())))
                continue
            snapshot[app] = self._keep(result)
        for gone in set(snapshot) - set(names):
            del snapshot[gone]
        if snapshot != self.snapshot:
            self.snapshot = snapshot
            self.version += 1
            for listener in self._listeners:
                listener()

    async def run(self, apps: Callable[[], Iterable[str]],
                  interval: Callable[[], float]) -> None:
        """Refresh forever; ``apps`` and ``interval`` are read each time (settings refresh)."""
        while True:
            try:
                await self.refresh(apps())
            except Exception:  # never let discovery trouble stop the refresher
                log.exception("discovery refresh failed")
            await asyncio.sleep(interval())

