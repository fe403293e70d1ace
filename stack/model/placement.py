"""Where things run: the region, its Availability Zones, and the addresses each one owns.

An AZ is made real on one machine by giving it a loopback /24 of its own: every process of the
AZ binds to an address in that range, so "AZ-a is down" means "nothing answers on 127.0.1.x".
Things AWS runs outside any one AZ (the API endpoint, the failover arbiter of a managed Redis)
are placed in the regional range, so they survive the loss of either AZ as they do on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True)
class Zone:
    """One placement scope: an Availability Zone, or the region itself."""

    name: str
    label: str
    loopback: IPv4Network
    is_region: bool = False

    def address(self, host: int) -> IPv4Address:
        """The loopback address of host number ``host`` inside this zone's range."""
        if not 1 < host < self.loopback.num_addresses - 1:
            # .1 is skipped on purpose: Debian maps 127.0.1.1 to the machine's hostname.
            raise ValueError(f"host number {host} is outside 2..254 for {self.label}")
        return self.loopback.network_address + host


@dataclass(frozen=True)
class Node:
    """One server process: a name, the zone it lives in, and the address it answers on."""

    name: str
    zone: Zone
    host: IPv4Address
    port: int
    role: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Region:
    name: str
    zones: tuple[Zone, ...]
    regional: Zone

    def zone(self, label: str) -> Zone:
        every = (*self.zones, self.regional)
        for zone in every:
            if zone.label == label:
                return zone
        raise KeyError(f"no zone labelled {label!r}; known: {[z.label for z in every]}")


def seoul() -> Region:
    """The seed's region: two AZs (AZ-a for blue, AZ-b for green) in ap-northeast-2."""
    return Region(
        name="ap-northeast-2",
        zones=(
            Zone("ap-northeast-2a", "AZ-a", IPv4Network("127.0.1.0/24")),
            Zone("ap-northeast-2b", "AZ-b", IPv4Network("127.0.2.0/24")),
        ),
        regional=Zone("ap-northeast-2", "region", IPv4Network("127.0.3.0/24"), is_region=True),
    )
