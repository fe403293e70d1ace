"""Least access between the parts of the platform (seed §3 "SG 기반 최소 접근"), as rules.

Every permitted flow is one `Allow` from a source to a target on one port, with the reason.
The AWS target renders each rule as an ingress rule on the target's security group and an
egress rule on the source's, so nothing is open that no rule names. Only the ALB's group may
take traffic from a network range (the internet); every other group is reached from a group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network

INTERNET = IPv4Network("0.0.0.0/0")


class Group(StrEnum):
    """The security groups of an environment."""

    ALB = "alb"
    TASKS = "tasks"
    DATABASE = "database"
    REDIS = "redis"
    KAFKA = "kafka"
    CI = "ci"
    BASTION = "bastion"


Peer = Group | IPv4Network


@dataclass(frozen=True)
class Allow:
    """``source`` may open TCP connections to ``target`` on ``port``, because ``why``."""

    source: Peer
    target: Peer
    port: int
    why: str

    def __post_init__(self) -> None:
        if isinstance(self.source, IPv4Network) and isinstance(self.target, IPv4Network):
            raise ValueError(f"rule {self.why!r} names no security group")


@dataclass(frozen=True)
class SecurityPolicy:
    rules: tuple[Allow, ...]

    def __post_init__(self) -> None:
        exposed = {rule.target for rule in self.rules if isinstance(rule.source, IPv4Network)}
        if exposed - {Group.ALB}:
            names = ", ".join(sorted(str(g) for g in exposed - {Group.ALB}))
            raise ValueError(f"only the ALB may take traffic from a network range, not {names}")

    def ingress(self, group: Group) -> tuple[Allow, ...]:
        return tuple(rule for rule in self.rules if rule.target == group)

    def egress(self, group: Group) -> tuple[Allow, ...]:
        return tuple(rule for rule in self.rules if rule.source == group)


def between(source: Peer, target: Peer, ports: Iterable[int], why: str) -> tuple[Allow, ...]:
    """One rule per port, in port order."""
    return tuple(Allow(source, target, port, why) for port in sorted(set(ports)))
