"""Round-robin over an application's instances, skipping ones that just refused us.

Discovery evicts a dead instance only after its lease expires (seconds). An instance that
refuses a TCP connection is certainly not serving, so the gateway ejects it *locally* for
``eject_s`` seconds: the balancer skips it and the request is retried on the next instance, so
users see no error while discovery catches up. After the ejection the instance is tried again —
if it is back it serves, if it still refuses it is ejected again (one wasted connect, no error).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from services.gateway.instances import Instance, InstanceCatalog


class Balancer:
    """Picks instances for applications; one per gateway, shared by all routes."""

    __slots__ = ("_counters", "_ejected", "catalog", "clock", "eject_s")

    def __init__(self, catalog: InstanceCatalog, eject_s: float,
                 clock: Callable[[], float]) -> None:
        self.catalog = catalog
        self.eject_s = eject_s
        self.clock = clock
        self._counters: dict[str, int] = {}
        self._ejected: dict[tuple[str, int], float] = {}

    def pick(self, app: str, exclude: Collection[Instance] = ()) -> Instance | None:
        """The next instance of ``app`` in turn that is neither ejected nor in ``exclude``."""
        instances = self.catalog.get(app)
        count = len(instances)
        if not count:
            return None
        start = self._counters.get(app, 0)
        ejected = self._ejected
        for step in range(count):
            instance = instances[(start + step) % count]
            if instance in exclude:
                continue
            if ejected and instance.address in ejected:
                if ejected[instance.address] > self.clock():
                    continue
                del ejected[instance.address]
            self._counters[app] = (start + step + 1) % count
            return instance
        return None

    def eject(self, instance: Instance) -> None:
        """Skip ``instance`` (by address: one process behind several ids) for ``eject_s``."""
        self._ejected[instance.address] = self.clock() + self.eject_s

    def ejected(self) -> list[str]:
        """``host:port`` of every instance skipped right now (for the health endpoint)."""
        now = self.clock()
        return sorted(f"{host}:{port}" for (host, port), until in self._ejected.items()
                      if until > now)

    def is_ejected(self, instance: Instance) -> bool:
        until = self._ejected.get(instance.address)
        return until is not None and until > self.clock()
