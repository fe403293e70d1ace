"""The programs of the platform (seed §2, §4, §7-2): what each runs, its size, its scaling.

A `ServiceSpec` is one ECS service: the program, its container port, its task size, its health
check and its min/max tasks. Where its tasks run locally is placement (`Instance`), kept apart
so the same spec renders to an ECS service on AWS and to local processes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stack.model.placement import Node
from stack.model.tasks import LocalTasks


class ScalingMode(StrEnum):
    """The seed's "Scaling 방식" column (§7-2)."""

    FIXED_MINIMUM = "fixed minimum"  # 고정 최소 유지: always up, the core of the platform
    AUTO = "auto"  # 자동 확장
    LIMITED = "limited"  # 제한적 확장: bounded by an external API
    MANUAL = "manual"  # 수동 확장


@dataclass(frozen=True)
class Scaling:
    min_tasks: int
    max_tasks: int
    mode: ScalingMode
    target_cpu_percent: float | None = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.min_tasks <= self.max_tasks:
            raise ValueError(f"min {self.min_tasks} / max {self.max_tasks} tasks is not a range")


@dataclass(frozen=True)
class HealthCheck:
    """The target group's health check; local values are the AWS ones scaled down."""

    path: str
    interval_s: float
    timeout_s: float
    healthy_threshold: int
    unhealthy_threshold: int
    grace_period_s: float


@dataclass(frozen=True)
class ServiceSpec:
    """One program of the platform, as an ECS service."""

    name: str  # also its application name in discovery
    module: str  # python -m <module>
    port: int  # container port
    cpu: int  # ECS CPU units (1024 = one vCPU)
    memory_mib: int
    health: HealthCheck
    scaling: Scaling
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instance:
    """One long-lived local process of a service, placed on a node of an AZ (the shared core;
    the colour-routed services run as tasks instead, see `LocalTasks`)."""

    service: ServiceSpec
    node: Node


@dataclass(frozen=True)
class DiscoveryTiming:
    """Eureka's clocks, scaled down for local use (Eureka's defaults: 30 s, 90 s, 60 s, 30 s).

    An instance that stops heartbeating is gone from the registry within
    ``lease_s + eviction_interval_s``; callers see it gone ``registry_fetch_s`` later at most.
    """

    renewal_interval_s: int = 1
    lease_s: int = 5
    eviction_interval_s: float = 1.0
    registry_fetch_s: float = 1.0

    @property
    def eviction_bound_s(self) -> float:
        return self.lease_s + self.eviction_interval_s


@dataclass(frozen=True)
class Compute:
    services: tuple[ServiceSpec, ...]
    instances: tuple[Instance, ...]
    tasks: LocalTasks
    discovery: DiscoveryTiming = DiscoveryTiming()

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(f"no service named {name!r}; known: {[s.name for s in self.services]}")

    def instances_of(self, name: str) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.service.name == name)
