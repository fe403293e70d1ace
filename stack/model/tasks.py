"""How the local runtime runs the colour-routed services as tasks (ECS locally, seed §7).

On AWS each colour's services are ECS services whose tasks get an address from their
subnet; locally the task runner (`stack.local.tasks`) plays ECS: it keeps the desired number
of tasks of each (service, colour) running as processes in the colour's AZ, each on an
address of that AZ's task pool. What it needs to know beyond the services themselves
(`ServiceSpec`: port, health check, min tasks) is written here once; `stack.come2us` fills it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskPool:
    """The host numbers of one AZ's range that tasks take their addresses from.

    The local stand-in for a private subnet's free addresses: every task gets a host of its
    own, so a task's address says which task it is, as an awsvpc ENI does.
    """

    zone_label: str
    hosts: range

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError(f"the task pool of {self.zone_label} is empty")


@dataclass(frozen=True)
class ColdStart:
    """Extra seconds before a task's process starts: Fargate's image pull and provisioning,
    which §7-3 asks about. Zero (no entry) unless a study sets it."""

    service: str
    delay_s: float


@dataclass(frozen=True)
class LocalTasks:
    """The task runner's facts: what runs as coloured tasks, where, and its clocks."""

    # The services each colour runs a whole copy of (§7-1: a version's services all run in
    # one AZ): the ALB's entry service and the business services. Discovery and config stay
    # shared instances; the payment provider is outside the platform.
    colour_routed: tuple[str, ...]
    pools: tuple[TaskPool, ...]
    cold_starts: tuple[ColdStart, ...] = ()
    # A task starts this much nicer than the rest (nice(1) steps) and is raised to normal
    # priority once healthy: on AWS a new colour starts on other hosts, here its processes'
    # start-up (imports, models, migrations) would take the serving colour's two cores.
    starting_niceness: int = 10
    # ECS's stopTimeout (AWS default 30 s): SIGTERM, then SIGKILL after this long.
    stop_timeout_s: float = 10.0
    # A task not behind the ALB is taken out of discovery (OUT_OF_SERVICE) this long before it
    # is stopped: callers drop it at their next registry fetch.
    discovery_drain_s: float = 3.0
    reconcile_interval_s: float = 0.25
    # How long a deploy's step ③ waits for a new colour to be healthy. Longer than the health
    # check's grace period: a whole colour (six processes) starts at once on a 2-core machine.
    healthy_timeout_s: float = 90.0
    # ECS's deployment circuit breaker: a deploy's step ③ gives up as soon as this many of the
    # new colour's tasks were replaced for failing their health checks after the grace period.
    circuit_breaker_failures: int = 2

    def pool(self, zone_label: str) -> TaskPool:
        for pool in self.pools:
            if pool.zone_label == zone_label:
                return pool
        raise KeyError(f"no task pool in {zone_label!r}; known: "
                       f"{[p.zone_label for p in self.pools]}")

    def cold_start_s(self, service: str) -> float:
        return next((c.delay_s for c in self.cold_starts if c.service == service), 0.0)
