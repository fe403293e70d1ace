"""Where things run: the region, its Availability Zones, and the addresses each one owns.

An AZ is made real on one machine by giving it a loopback /24 of its own: every process of the
AZ binds to an address in that range, so "AZ-a is down" means "nothing answers on 127.0.1.x".
Things AWS runs outside any one AZ (the API endpoint, the failover arbiter of a managed Redis)
are placed in the regional range, so they survive the loss of either AZ as they do on AWS.
"""

from __future__ import annotations

import os
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


BLOCK_ENV = "COME2US_LOOPBACK_BLOCK"


def loopback_block() -> int:
    """Which 127.N.0.0/16 block the local cloud uses: 0 unless COME2US_LOOPBACK_BLOCK says.

    A second block lets a second local cloud (a test session, another checkout) run beside the
    first with the same ports: AZ-a is then 127.N.1.x, AZ-b 127.N.2.x, the region 127.N.3.x.
    """
    raw = os.environ.get(BLOCK_ENV, "0")
    if not raw.isdigit() or not 0 <= int(raw) <= 254:
        raise ValueError(f"{BLOCK_ENV}={raw!r}: expected a number from 0 to 254")
    return int(raw)


def seoul(block: int | None = None) -> Region:
    """The seed's region: two AZs (AZ-a for blue, AZ-b for green) in ap-northeast-2."""
    n = loopback_block() if block is None else block
    return Region(
        name="ap-northeast-2",
        zones=(
            Zone("ap-northeast-2a", "AZ-a", IPv4Network(f"127.{n}.1.0/24")),
            Zone("ap-northeast-2b", "AZ-b", IPv4Network(f"127.{n}.2.0/24")),
        ),
        regional=Zone("ap-northeast-2", "region", IPv4Network(f"127.{n}.3.0/24"),
                      is_region=True),
    )
