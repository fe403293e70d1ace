"""Fakes for the task runner's collaborators: processes, launcher, checks, registry, clock."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path

from stack.come2us import come2us
from stack.local.alb.targets import FakeLoadBalancer, TargetHealth
from stack.local.tasks.placement import Placement
from stack.local.tasks.runner import TaskRunner
from stack.local.tasks.task import Release, Task
from stack.model import Platform
from stack.model.compute import HealthCheck
from stack.model.tasks import ColdStart

DEREGISTRATION_DELAY_S = 5.0


@dataclass
class FakeProcess:
    pid: int
    code: int | None = None
    exits_on_term: bool = True
    signals: list[int] = field(default_factory=list)
    raised: bool = False  # raise_priority was called
    refuse_priority: str | None = None

    def poll(self) -> int | None:
        return self.code

    def raise_priority(self) -> str | None:
        self.raised = True
        return self.refuse_priority

    def signal(self, signum: int) -> None:
        self.signals.append(signum)
        if signum == signal.SIGKILL:
            self.code = -9
        elif signum == signal.SIGTERM and self.exits_on_term:
            self.code = 0


@dataclass
class FakeLauncher:
    launched: list[Task] = field(default_factory=list)
    processes: dict[str, FakeProcess] = field(default_factory=dict)
    exits_on_term: bool = True
    fail: bool = False

    def launch(self, task: Task) -> FakeProcess:
        if self.fail:
            raise OSError("no such interpreter")
        process = FakeProcess(1000 + len(self.launched), exits_on_term=self.exits_on_term)
        self.launched.append(task)
        self.processes[task.task_id] = process
        return process


@dataclass
class FakeChecks:
    states: dict[str, TargetHealth] = field(default_factory=dict)
    watched: set[str] = field(default_factory=set)

    def watch(self, task_id: str, url: str, check: HealthCheck) -> None:
        self.watched.add(task_id)
        self.states.setdefault(task_id, TargetHealth.INITIAL)

    def forget(self, task_id: str) -> None:
        self.watched.discard(task_id)

    def health(self, task_id: str) -> TargetHealth:
        return self.states.get(task_id, TargetHealth.UNUSED) if task_id in self.watched \
            else TargetHealth.UNUSED


@dataclass
class FakeRegistry:
    """Every live task is listed UP unless ``hidden``; `take_out` calls are recorded."""

    up: set[str] = field(default_factory=set)
    taken_out: list[str] = field(default_factory=list)

    def take_out(self, app: str, instance_id: str) -> None:
        self.taken_out.append(instance_id)
        self.up.discard(instance_id)

    def statuses(self, app: str) -> dict[str, dict[str, str]]:
        return {"discovery-a": {i: "UP" for i in self.up if i.startswith(app + ":")}}


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    """A runner wired to fakes, and the fakes, for one test."""

    model: Platform
    runner: TaskRunner
    launcher: FakeLauncher
    balancer: FakeLoadBalancer
    checks: FakeChecks
    registry: FakeRegistry
    clock: Clock
    events: list[tuple[str, str]]
    taken: set[tuple[IPv4Address, int]]

    def release(self, label: str = "v1") -> Release:
        return Release(label, Path("/tree") / label)

    def process(self, task_id: str) -> FakeProcess:
        return self.launcher.processes[task_id]

    def live(self, service: str | None = None) -> list[dict[str, object]]:
        return [t for t in self.runner.tasks(include_stopped=False)
                if service is None or t["service"] == service]

    def make_healthy(self) -> None:
        """What the ALB and the container checks conclude once every task answers."""
        for task in self.runner.tasks(include_stopped=False):
            if task["state"] not in ("pending", "running"):
                continue
            task_id = str(task["id"])
            if task["service"] == "gateway":
                group = f"tg-gateway-{task['colour']}"
                if task_id in self.balancer.health(group):
                    self.balancer.set_health(group, task_id, TargetHealth.HEALTHY)
            else:
                self.checks.states[task_id] = TargetHealth.HEALTHY
            self.registry.up.add(f"{task['service']}:{task['address']}")
        self.runner.reconcile()

    def messages(self) -> list[str]:
        return [f"{subject}: {message}" for subject, message in self.events]


def rig(cold_start: dict[str, float] | None = None, launcher: FakeLauncher | None = None) -> Rig:
    model = come2us()
    if cold_start:
        tasks = replace(model.compute.tasks, cold_starts=tuple(
            ColdStart(service, delay) for service, delay in cold_start.items()))
        model = replace(model, compute=replace(model.compute, tasks=tasks))
    clock = Clock()
    launcher = launcher or FakeLauncher()
    balancer = FakeLoadBalancer()
    checks = FakeChecks()
    registry = FakeRegistry()
    events: list[tuple[str, str]] = []
    taken: set[tuple[IPv4Address, int]] = set()
    placement = Placement(model.region, model.compute.tasks, model.cloud.edge.blue_green,
                          lambda host, port: (host, port) not in taken)
    runner = TaskRunner(model, launcher=launcher, balancer=balancer, checks=checks,
                        registry=registry, placement=placement,
                        deregistration_delay_s=DEREGISTRATION_DELAY_S,
                        on_event=lambda subject, message: events.append((subject, message)),
                        clock=clock)
    return Rig(model, runner, launcher, balancer, checks, registry, clock, events, taken)
