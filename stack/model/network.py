"""The VPC of an AWS environment (seed §3): two AZs, a public and a private subnet in each.

Public subnets hold what must face the internet (the ALB, the NAT gateways, the bastion);
private subnets hold everything else (ECS tasks, RDS, Redis, MSK, Jenkins). The subnet plan
cuts any VPC range the same way, so an environment only chooses its range and its NAT count.
The local runtime has no VPC: its zones are loopback ranges (`stack.model.placement`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network

from stack.model.placement import Zone


class Tier(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True)
class Subnet:
    tier: Tier
    zone: Zone
    cidr: IPv4Network

    @property
    def name(self) -> str:
        """``public-a``, ``private-b``: the tier and the AZ's letter."""
        return f"{self.tier}-{self.zone.label.removeprefix('AZ-').lower()}"


@dataclass(frozen=True)
class SubnetPlan:
    """How a VPC range is cut: small public subnets, large private ones (Fargate takes an
    address per task, and a blue/green deploy doubles the tasks for a while)."""

    public_prefix: int
    private_prefix: int

    def subnets(self, vpc: IPv4Network, zones: tuple[Zone, ...]) -> tuple[Subnet, ...]:
        """Public subnet i is the i-th public-sized block of the VPC; private subnet i is the
        (i+1)-th private-sized block, so the first private-sized block keeps the public ones."""
        public = list(vpc.subnets(new_prefix=self.public_prefix))
        private = list(vpc.subnets(new_prefix=self.private_prefix))
        if len(private) <= len(zones):
            raise ValueError(f"{vpc} is too small for {len(zones)} private /{self.private_prefix}")
        return (
            *(Subnet(Tier.PUBLIC, zone, public[i]) for i, zone in enumerate(zones)),
            *(Subnet(Tier.PRIVATE, zone, private[i + 1]) for i, zone in enumerate(zones)),
        )


@dataclass(frozen=True)
class Bastion:
    """The seed's bastion, in a public subnet. It has no inbound rule at all: operators reach
    it through SSM Session Manager, and from it the Jenkins host over SSH."""

    zone_label: str
    ssh_port: int


@dataclass(frozen=True)
class Network:
    plan: SubnetPlan
    bastion: Bastion

    def subnets(self, vpc: IPv4Network, zones: tuple[Zone, ...]) -> tuple[Subnet, ...]:
        return self.plan.subnets(vpc, zones)


@dataclass(frozen=True)
class VpcLayout:
    """One environment's VPC: the plan applied to its range, with its number of NAT gateways."""

    cidr: IPv4Network
    subnets: tuple[Subnet, ...]
    nat_gateways: int

    def __post_init__(self) -> None:
        zones = self.zones
        if not 1 <= self.nat_gateways <= len(zones):
            raise ValueError(f"{self.nat_gateways} NAT gateways for {len(zones)} AZs: "
                             f"use 1 (cost, §10) up to one per AZ (availability)")
        for subnet in self.subnets:
            if not subnet.cidr.subnet_of(self.cidr):
                raise ValueError(f"subnet {subnet.name} {subnet.cidr} is outside {self.cidr}")
        for i, one in enumerate(self.subnets):
            for other in self.subnets[i + 1:]:
                if one.cidr.overlaps(other.cidr):
                    raise ValueError(f"subnets {one.name} and {other.name} overlap")

    @property
    def zones(self) -> tuple[Zone, ...]:
        return tuple(dict.fromkeys(subnet.zone for subnet in self.subnets))

    def tier(self, tier: Tier) -> tuple[Subnet, ...]:
        return tuple(subnet for subnet in self.subnets if subnet.tier is tier)

    def subnet(self, tier: Tier, zone_label: str) -> Subnet:
        for subnet in self.tier(tier):
            if subnet.zone.label == zone_label:
                return subnet
        raise KeyError(f"no {tier} subnet in {zone_label}")

    @property
    def nat_zones(self) -> tuple[Zone, ...]:
        """The AZs that hold a NAT gateway: the first ``nat_gateways`` AZs."""
        return self.zones[: self.nat_gateways]

    def nat_zone_for(self, zone: Zone) -> Zone:
        """The NAT gateway a private subnet routes through: its own AZ's when there is one
        (an AZ outage then cuts only that AZ), else the first AZ's (one NAT, §10)."""
        return zone if zone in self.nat_zones else self.nat_zones[0]
