"""The local ALB as its users see it: target groups, targets, their health, the listener.

This is the contract between the ALB (`stack.local.alb.component.AlbComponent`, HAProxy driven
over its runtime API) and whoever places tasks behind it (the task runner, blue/green). It uses
ELBv2's vocabulary so a reader who knows ALB knows what each call does:

- `register` is RegisterTargets: the target is added at once, health-checked, and gets traffic
  only once it has passed the healthy threshold (`TargetHealth.INITIAL` until then);
- `deregister` is DeregisterTargets: no new requests from now on, requests in flight finish,
  and the target is gone after the deregistration delay — the call itself does not wait;
- `health` is DescribeTargetHealth for one target group;
- `switch` and `set_weights` modify the listener's forward action: one target group, or
  weighted target groups; either takes effect for the next request, atomically.

`FakeLoadBalancer` keeps the same contract in memory, for unit tests of its users.

Example::

    alb.register(Target(alb.group_of("gateway", Colour.GREEN), "gateway-green-1",
                        "127.0.2.101", 8080))
    wait until alb.health("tg-gateway-green")["gateway-green-1"] is TargetHealth.HEALTHY
    alb.switch(Colour.GREEN)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from stack.model.edge import Colour
from stack.model.load_balancer import target_group_name

# HAProxy names a server with these characters only; a target id becomes a server name.
TARGET_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_WEIGHT = 999  # ELBv2: a target group's weight in a forward action is 0..999


class TargetHealth(StrEnum):
    """ELBv2's target health states (DescribeTargetHealth's ``State``)."""

    INITIAL = "initial"  # registered, health checks not yet passed `healthy_threshold` times
    HEALTHY = "healthy"  # receives requests
    UNHEALTHY = "unhealthy"  # failed its checks; receives no requests
    DRAINING = "draining"  # deregistered: in-flight requests finish, no new ones
    UNUSED = "unused"  # registered but taken out of service (maintenance)


@dataclass(frozen=True)
class Target:
    """One registered target: a task's address in one target group, under a stable id."""

    group: str
    target_id: str
    host: str
    port: int

    def __post_init__(self) -> None:
        if not TARGET_ID.fullmatch(self.target_id):
            raise ValueError(f"target id {self.target_id!r}: use 1-64 of A-Z a-z 0-9 _ . : -")
        if not 0 < self.port < 65536:
            raise ValueError(f"target {self.target_id}: port {self.port} is not a TCP port")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class LoadBalancer(Protocol):
    """What the task runner and blue/green need from a load balancer."""

    def register(self, target: Target) -> None:
        """Add the target with health checks on; INITIAL until the healthy threshold passes.

        Registering a target that is already registered (same id, same address) is a no-op,
        so a caller can re-register everything after an ALB restart.
        """

    def deregister(self, target: Target) -> None:
        """Drain now (no new requests, in-flight ones finish); remove after the delay.

        Returns at once; the target shows as DRAINING until it is removed.
        """

    def health(self, group: str) -> dict[str, TargetHealth]:
        """target_id -> health, for every target of ``group`` (draining ones included)."""

    def active_colour(self) -> Colour:
        """The colour the listener forwards to (with weights, the heavier one)."""

    def switch(self, colour: Colour) -> None:
        """Forward every new request to ``colour``: atomic, no reload, no dropped connection."""

    def set_weights(self, weights: Mapping[Colour, int]) -> None:
        """Weighted forward between the colours' target groups (ELBv2 weights, 0..999)."""

    def group_of(self, service: str, colour: Colour) -> str:
        """The target group of ``service``'s ``colour`` tasks (only the entry service has one)."""

    def registered(self) -> list[Target]:
        """Every target registered and not deregistered, as remembered across ALB restarts."""


def normalised_weights(weights: Mapping[Colour, int]) -> dict[Colour, int]:
    """Both colours' weights, checked as ELBv2 checks a forward action's target groups."""
    unknown = [key for key in weights if not isinstance(key, Colour)]
    if unknown:
        raise ValueError(f"weights for {unknown}: only {[c.value for c in Colour]} exist")
    full = {colour: int(weights.get(colour, 0)) for colour in Colour}
    bad = {c.value: w for c, w in full.items() if not 0 <= w <= MAX_WEIGHT}
    if bad:
        raise ValueError(f"weights {bad}: each must be between 0 and {MAX_WEIGHT}")
    if not any(full.values()):
        raise ValueError("weights are all 0: at least one target group must receive traffic")
    return full


def heavier(weights: Mapping[Colour, int], current: Colour) -> Colour:
    """The colour that gets most of the traffic; on a tie, the current one stays active."""
    other = current.other
    return other if weights[other] > weights[current] else current


@dataclass
class FakeLoadBalancer:
    """`LoadBalancer` in memory, for unit tests of the task runner and blue/green.

    Health does not change by itself: a test says what HAProxy would have concluded with
    `set_health`, and ends a drain with `finish_draining` (the deregistration delay passing).
    Every listener change is appended to `changes`, so a test can assert the order of events.
    """

    entry_service: str = "gateway"
    active: Colour = Colour.BLUE
    weights: dict[Colour, int] = field(
        default_factory=lambda: {Colour.BLUE: 100, Colour.GREEN: 0})
    targets: dict[str, dict[str, tuple[Target, TargetHealth]]] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    def group_of(self, service: str, colour: Colour) -> str:
        if service != self.entry_service:
            raise KeyError(f"no target group for {service!r}: the ALB forwards only to "
                           f"{self.entry_service!r}")
        return target_group_name(service, colour)

    def _group(self, group: str) -> dict[str, tuple[Target, TargetHealth]]:
        known = {self.group_of(self.entry_service, colour) for colour in Colour}
        if group not in known:
            raise KeyError(f"no target group {group!r}; known: {sorted(known)}")
        return self.targets.setdefault(group, {})

    def register(self, target: Target) -> None:
        group = self._group(target.group)
        existing = group.get(target.target_id)
        if existing is not None and existing[0] != target:
            raise ValueError(f"{target.target_id} is registered at {existing[0].address}, "
                             f"not {target.address}")
        if existing is None or existing[1] is TargetHealth.DRAINING:
            group[target.target_id] = (target, TargetHealth.INITIAL)
            self.changes.append(f"register {target.group}/{target.target_id}")

    def deregister(self, target: Target) -> None:
        group = self._group(target.group)
        if target.target_id in group:
            group[target.target_id] = (group[target.target_id][0], TargetHealth.DRAINING)
            self.changes.append(f"deregister {target.group}/{target.target_id}")

    def finish_draining(self) -> None:
        """The deregistration delay has passed: draining targets are gone."""
        for group in self.targets.values():
            for target_id in [t for t, (_, h) in group.items() if h is TargetHealth.DRAINING]:
                del group[target_id]

    def set_health(self, group: str, target_id: str, health: TargetHealth) -> None:
        targets = self._group(group)
        targets[target_id] = (targets[target_id][0], health)

    def health(self, group: str) -> dict[str, TargetHealth]:
        return {target_id: health for target_id, (_, health) in self._group(group).items()}

    def active_colour(self) -> Colour:
        return self.active

    def switch(self, colour: Colour) -> None:
        self.active = colour
        self.weights = {colour: 100, colour.other: 0}
        self.changes.append(f"switch {colour.value}")

    def set_weights(self, weights: Mapping[Colour, int]) -> None:
        self.weights = normalised_weights(weights)
        self.active = heavier(self.weights, self.active)
        self.changes.append("weights " + " ".join(
            f"{colour.value}={weight}" for colour, weight in self.weights.items()))

    def registered(self) -> list[Target]:
        return [target for group in self.targets.values()
                for target, health in group.values() if health is not TargetHealth.DRAINING]
