"""Where a new task runs: its colour's AZ, and a free host of that AZ's task pool.

Hosts are handed out round-robin through the pool rather than lowest-first, so a stopped
task's address is not given to the next task at once: the ALB may still list the old target
while it drains, and logs and events stay unambiguous about which task an address was.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

from stack.model.edge import BlueGreen, Colour
from stack.model.placement import Region
from stack.model.tasks import LocalTasks

# Whether host:port can be bound now (nothing else, a stray process included, listens there).
SocketFree = Callable[[IPv4Address, int], bool]


class PoolExhausted(RuntimeError):
    """Every host of an AZ's task pool is taken."""


class Placement:
    def __init__(self, region: Region, tasks: LocalTasks, blue_green: BlueGreen,
                 socket_free: SocketFree) -> None:
        self.region = region
        self.tasks = tasks
        self.blue_green = blue_green
        self.socket_free = socket_free
        self._taken: dict[str, set[int]] = {pool.zone_label: set() for pool in tasks.pools}
        self._next: dict[str, int] = {pool.zone_label: 0 for pool in tasks.pools}

    def zone_of(self, colour: Colour) -> str:
        """§7-1: blue runs in AZ-a, green in AZ-b (the model's `BlueGreen`)."""
        return self.blue_green.zone_of(colour)

    def allocate(self, colour: Colour, port: int) -> tuple[str, IPv4Address]:
        """(zone label, address) for a new task of ``colour`` listening on ``port``."""
        label = self.zone_of(colour)
        zone = self.region.zone(label)
        hosts = self.tasks.pool(label).hosts
        taken = self._taken[label]
        start = self._next[label]
        for step in range(len(hosts)):
            index = (start + step) % len(hosts)
            host = hosts[index]
            address = zone.address(host)
            if host in taken or not self.socket_free(address, port):
                continue
            taken.add(host)
            self._next[label] = (index + 1) % len(hosts)
            return label, address
        raise PoolExhausted(f"no free host left in the task pool of {label} "
                            f"({hosts.start}..{hosts.stop - 1})")

    def release(self, zone_label: str, address: IPv4Address) -> None:
        zone = self.region.zone(zone_label)
        self._taken[zone_label].discard(int(address) - int(zone.loopback.network_address))
