"""The task runner: ECS's service scheduler for the local runtime.

For each (service, colour) it is told a desired count and release; `reconcile`, called every
`LocalTasks.reconcile_interval_s`, moves what runs towards that:

- a missing task is started in the colour's AZ (§7-1: blue in AZ-a, green in AZ-b) on a free
  address of the AZ's task pool, after the service's cold-start delay; the entry service's
  tasks are registered as targets of the colour's target group on the ALB, the others are
  watched by a container health check (`health`); every task registers with discovery
  itself, with its colour, zone and release as metadata;
- health failures during the health check's grace period are ignored; after it, a task whose
  target (or container check) is UNHEALTHY — the model's unhealthy threshold reached — is
  replaced, as ECS does;
- a task that dies is replaced; the replacement is counted per (service, colour) and logged
  as an event;
- a task that must go (scaled in, an old release, a retired colour) is drained first —
  deregistered from the ALB for the deregistration delay, or OUT_OF_SERVICE in discovery for
  `discovery_drain_s` — then sent SIGTERM, then SIGKILL after the stop timeout;
- a retired colour's business services stop only once its entry tasks have stopped, so a
  request the old colour's gateway still finishes never meets a stopped service.

Nothing here blocks: every wait is a deadline checked by the next `reconcile`, so the logic runs
on a fake clock in the unit tests. The runner knows its collaborators by small protocols
(`Launcher`, `LoadBalancer`, `TaskChecks`, `Registry`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stack.local.alb.targets import LoadBalancer, Target, TargetHealth
from stack.local.tasks.health import TaskChecks
from stack.local.tasks.launch import Launcher
from stack.local.tasks.placement import Placement, PoolExhausted
from stack.local.tasks.registry import Registry
from stack.local.tasks.task import WANTED, Release, Task, TaskState
from stack.model import Platform
from stack.model.edge import Colour

KEEP_STOPPED = 50  # stopped tasks kept for `status`, as ECS lists recently stopped tasks

OnEvent = Callable[[str, str], None]  # (subject, message)


@dataclass(frozen=True)
class Desired:
    count: int
    release: Release


@dataclass(frozen=True)
class ColourHealth:
    """Whether a colour could take the traffic now, and if not, what is missing."""

    healthy: bool
    detail: str
    failed_tasks: int  # tasks replaced for failing health checks since the colour's deploy


class TaskRunner:
    def __init__(self, model: Platform, *, launcher: Launcher, balancer: LoadBalancer,
                 checks: TaskChecks, registry: Registry, placement: Placement,
                 deregistration_delay_s: float, on_event: OnEvent,
                 clock: Callable[[], float] = time.time) -> None:
        self.model = model
        self.facts = model.compute.tasks
        self.entry = model.cloud.edge.entry_service
        self.launcher = launcher
        self.balancer = balancer
        self.checks = checks
        self.registry = registry
        self.placement = placement
        self.deregistration_delay_s = deregistration_delay_s
        self.on_event = on_event
        self.clock = clock
        self._desired: dict[tuple[str, Colour], Desired] = {}
        self._tasks: dict[str, Task] = {}
        self._stopped: deque[Task] = deque(maxlen=KEEP_STOPPED)
        self._sequence: Counter[tuple[str, Colour]] = Counter()
        self.replacements: Counter[tuple[str, Colour]] = Counter()
        self._health_failures: Counter[Colour] = Counter()
        self._lock = threading.RLock()

    # -- desired state --------------------------------------------------------------------

    def deploy(self, colour: Colour, release: Release,
               counts: Mapping[str, int] | None = None) -> None:
        """Every colour-routed service of ``colour`` at ``release``; counts as given, else as
        the colour has them, else as the other colour has them, else the model's min tasks."""
        with self._lock:
            for service in self.facts.colour_routed:
                count = (counts or {}).get(service)
                if count is None:
                    known = (self._desired.get((service, colour))
                             or self._desired.get((service, colour.other)))
                    count = known.count if known is not None else \
                        self.model.compute.service(service).scaling.min_tasks
                self._desired[(service, colour)] = Desired(count, release)
            self._health_failures[colour] = 0
        self.on_event(f"{colour}", f"deploy release {release.label} "
                                    f"({', '.join(self.facts.colour_routed)})")

    def scale(self, service: str, colour: Colour, count: int) -> None:
        with self._lock:
            current = self._desired.get((service, colour))
            if current is None:
                raise KeyError(f"{service} of {colour} is not deployed")
            if count < 0:
                raise ValueError(f"a task count is never negative: {count}")
            self._desired[(service, colour)] = Desired(count, current.release)
        self.on_event(f"{service}-{colour}", f"desired count {current.count} -> {count}")

    def retire(self, colour: Colour) -> None:
        """No task of ``colour`` is wanted any more; they drain and stop (entry first)."""
        with self._lock:
            for key in [k for k in self._desired if k[1] is colour]:
                del self._desired[key]
        self.on_event(f"{colour}", "retire: every task drains and stops")

    def replace(self, service: str, colour: Colour, reason: str) -> list[str]:
        """Stop every task of (service, colour); the scheduler starts new ones at once."""
        with self._lock:
            now = self.clock()
            victims = [t for t in self._tasks.values()
                       if t.service == service and t.colour is colour and t.state in WANTED]
            for task in victims:
                self._stop(task, now, reason)
            return [t.task_id for t in victims]

    def stop_task(self, task_id: str, reason: str = "stopped on request") -> None:
        with self._lock:
            self._stop(self._task(task_id), self.clock(), reason)

    def kill_task(self, task_id: str) -> None:
        """SIGKILL a task's processes: the local form of a crashed container or host."""
        with self._lock:
            task = self._task(task_id)
            if task.process is not None:
                task.process.signal(signal.SIGKILL)
        self.on_event(task_id, "killed on request (simulated crash)")

    def _task(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise KeyError(f"no live task {task_id!r}; live: {sorted(self._tasks)}")
        return task

    # -- the scheduler --------------------------------------------------------------------

    def reconcile(self) -> None:
        with self._lock:
            now = self.clock()
            target_health = self._target_health()
            for task in list(self._tasks.values()):
                self._advance(task, now, target_health)
            self._converge(now)
            for task in [t for t in self._tasks.values() if not t.live]:
                del self._tasks[task.task_id]
                self._stopped.append(task)

    def _target_health(self) -> dict[str, TargetHealth]:
        """The ALB's view of every target, one call per target group in use."""
        groups = {self.balancer.group_of(t.service, t.colour)
                  for t in self._tasks.values() if t.behind_alb and t.registered}
        health: dict[str, TargetHealth] = {}
        for group in groups:
            try:
                health.update(self.balancer.health(group))
            except Exception as err:  # the ALB restarting: unknown health replaces nothing
                self.on_event("alb", f"target health of {group} unavailable: {err}")
        return health

    def _health_of(self, task: Task, target_health: Mapping[str, TargetHealth]) -> TargetHealth:
        if task.behind_alb:
            return target_health.get(task.task_id, TargetHealth.INITIAL)
        return self.checks.health(task.task_id)

    def _advance(self, task: Task, now: float, target_health: Mapping[str, TargetHealth]) -> None:
        if task.state is TaskState.PROVISIONING:
            if now >= task.created_at + self.facts.cold_start_s(task.service):
                self._launch(task, now)
            return
        code = task.process.poll() if task.process is not None else None
        if code is not None:
            self._exited(task, code, now)
            return
        if task.state in (TaskState.PENDING, TaskState.RUNNING):
            if not task.registered:
                self._register(task)
            self._judge(task, now, self._health_of(task, target_health))
        elif task.state is TaskState.DRAINING:
            if task.drain_until is not None and now >= task.drain_until:
                self._terminate(task, now)
        elif task.state is TaskState.STOPPING and not task.killed \
                and task.kill_at is not None and now >= task.kill_at:
            assert task.process is not None
            task.process.signal(signal.SIGKILL)
            task.killed = True
            self.on_event(task.task_id, f"still running {self.facts.stop_timeout_s:g} s "
                                        f"after SIGTERM: killed")

    def _judge(self, task: Task, now: float, health: TargetHealth) -> None:
        """Health → state: healthy makes it RUNNING; unhealthy after the grace period, or
        unhealthy once it was healthy, replaces it."""
        previous, task.health = task.health, str(health)
        spec = self.model.compute.service(task.service)
        kind = "target" if task.behind_alb else "container check"
        if health is TargetHealth.HEALTHY:
            if task.state is TaskState.PENDING:
                task.state, task.healthy_since = TaskState.RUNNING, now
                self._raise_priority(task)
                self.on_event(task.task_id, f"healthy ({kind}), "
                                            f"{now - (task.launched_at or now):.1f} s after start")
            return
        if health is not TargetHealth.UNHEALTHY:
            return
        if task.state is TaskState.RUNNING:
            if previous != str(health):
                self.on_event(task.task_id, f"{kind} unhealthy "
                                            f"({spec.health.unhealthy_threshold} failed checks)")
            self._replace_unhealthy(task, now, f"{kind} unhealthy")
        elif now >= (task.launched_at or now) + spec.health.grace_period_s:
            self._replace_unhealthy(
                task, now, f"{kind} unhealthy after the {spec.health.grace_period_s:g} s grace "
                           f"period")

    def _raise_priority(self, task: Task) -> None:
        """A task started nicer (`LocalTasks.starting_niceness`); healthy, it serves at the
        same priority as everything else."""
        if task.process is None or not self.facts.starting_niceness:
            return
        refused = task.process.raise_priority()
        if refused:
            self.on_event(task.task_id, f"stays at niceness {self.facts.starting_niceness}: "
                                        f"{refused}")

    def _replace_unhealthy(self, task: Task, now: float, why: str) -> None:
        self._health_failures[task.colour] += 1
        self._stop(task, now, why, replaced=True)

    def _converge(self, now: float) -> None:
        for (service, colour), want in self._desired.items():
            live = [t for t in self._tasks.values()
                    if t.service == service and t.colour is colour and t.state in WANTED]
            current = [t for t in live if t.release == want.release]
            stale = [t for t in live if t.release != want.release]
            for _ in range(want.count - len(current)):
                self._start(service, colour, want.release, now)
            surplus = len(current) - want.count
            if surplus > 0:  # the least useful first: not yet healthy, then the newest
                ranked = sorted(current, key=lambda t: (t.state is TaskState.RUNNING,
                                                        -t.created_at))
                for task in ranked[:surplus]:
                    self._stop(task, now, f"scaled in to {want.count}")
            running = sum(1 for t in current if t.state is TaskState.RUNNING)
            if stale and running >= want.count:  # a rolling update: new ones healthy first
                for task in stale:
                    self._stop(task, now, f"replaced by release {want.release.label}")
        for task in list(self._tasks.values()):
            if task.state not in WANTED or (task.service, task.colour) in self._desired:
                continue
            if task.service != self.entry and any(
                    t.service == self.entry and t.colour is task.colour and t.live
                    for t in self._tasks.values()):
                continue  # the colour's gateways may still be finishing requests
            self._stop(task, now, f"{task.colour} retired")

    # -- one task's life ------------------------------------------------------------------

    def _start(self, service: str, colour: Colour, release: Release, now: float) -> None:
        spec = self.model.compute.service(service)
        try:
            zone, host = self.placement.allocate(colour, spec.port)
        except PoolExhausted as err:
            self.on_event(f"{service}-{colour}", f"cannot start a task: {err}")
            return
        self._sequence[(service, colour)] += 1
        task_id = f"{service}-{colour}-{self._sequence[(service, colour)]}"
        task = Task(task_id, service, colour, zone, host, spec.port, release, now,
                    behind_alb=service == self.entry)
        self._tasks[task_id] = task
        delay = self.facts.cold_start_s(service)
        if delay:
            self.on_event(task_id, f"provisioning at {task.address} (cold start {delay:g} s)")
        else:
            self._launch(task, now)

    def _launch(self, task: Task, now: float) -> None:
        try:
            task.process = self.launcher.launch(task)
        except Exception as err:  # the next reconcile starts another task elsewhere
            self._finish(task, now, f"could not start: {err}")
            self.on_event(task.task_id, f"could not start: {err}")
            return
        task.state, task.launched_at = TaskState.PENDING, now
        self.on_event(task.task_id, f"started {task.service} release {task.release.label} at "
                                    f"{task.address} in {task.zone} (pid {task.process.pid})")
        self._register(task)

    def _register(self, task: Task) -> None:
        spec = self.model.compute.service(task.service)
        try:
            if task.behind_alb:
                self.balancer.register(self._target(task))
            else:
                self.checks.watch(task.task_id,
                                  f"http://{task.address}{spec.health.path}", spec.health)
        except Exception as err:  # retried at the next reconcile
            self.on_event(task.task_id, f"registration failed, retrying: {err}")
            return
        task.registered = True

    def _target(self, task: Task) -> Target:
        return Target(self.balancer.group_of(task.service, task.colour), task.task_id,
                      str(task.host), task.port)

    def _deregister(self, task: Task) -> None:
        if not task.registered:
            return
        task.registered = False
        if task.behind_alb:
            try:
                self.balancer.deregister(self._target(task))
            except Exception as err:  # the ALB is down: nothing routes there anyway
                self.on_event(task.task_id, f"deregistration failed: {err}")
        else:
            self.checks.forget(task.task_id)

    def _stop(self, task: Task, now: float, reason: str, replaced: bool = False) -> None:
        """Drain, then SIGTERM, then SIGKILL (deadlines checked by `_advance`)."""
        if task.state not in WANTED:
            return
        if replaced:
            self._count_replacement(task, reason)
        task.reason = reason
        if task.state is TaskState.PROVISIONING:
            self._finish(task, now, reason)
            self.on_event(task.task_id, f"stopped before it started: {reason}")
            return
        was_healthy = task.healthy_since is not None
        if task.behind_alb:
            drain = self.deregistration_delay_s
        else:
            drain = self.facts.discovery_drain_s
            if was_healthy:
                self.registry.take_out(task.service, task.instance_id)
        self._deregister(task)
        if not was_healthy:
            drain = 0.0  # it never took traffic: nothing to drain
        task.state, task.drain_until = TaskState.DRAINING, now + drain
        self.on_event(task.task_id, f"stopping ({reason}): draining for {drain:g} s"
                      if drain else f"stopping ({reason})")
        if drain == 0.0:
            self._terminate(task, now)

    def _terminate(self, task: Task, now: float) -> None:
        task.state, task.kill_at = TaskState.STOPPING, now + self.facts.stop_timeout_s
        if task.process is not None:
            task.process.signal(signal.SIGTERM)

    def _exited(self, task: Task, code: int, now: float) -> None:
        unexpected = task.state in (TaskState.PENDING, TaskState.RUNNING)
        self._deregister(task)
        self._finish(task, now, task.reason or f"exited with code {code}", code)
        if unexpected:
            self._count_replacement(task, f"exited with code {code}")
        else:
            self.on_event(task.task_id, f"stopped (exit code {code})")

    def _count_replacement(self, task: Task, why: str) -> None:
        key = (task.service, task.colour)
        self.replacements[key] += 1
        self.on_event(task.task_id, f"{why}: replaced (replacement {self.replacements[key]} of "
                                    f"{task.service} {task.colour})")

    def _finish(self, task: Task, now: float, reason: str, code: int | None = None) -> None:
        task.state, task.stopped_at, task.exit_code = TaskState.STOPPED, now, code
        task.reason = task.reason or reason
        self.placement.release(task.zone, task.host)

    # -- stopping everything (down) -------------------------------------------------------

    def shutdown(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Stop every task now (the local cloud goes down): SIGTERM, then SIGKILL after the
        stop timeout. No draining: the ALB goes down with them."""
        with self._lock:
            self._desired.clear()
            live = [t for t in self._tasks.values() if t.process is not None and t.live]
            for task in live:
                assert task.process is not None
                task.process.signal(signal.SIGTERM)
            deadline = self.clock() + self.facts.stop_timeout_s
            while any(t.process.poll() is None for t in live if t.process is not None) \
                    and self.clock() < deadline:
                sleep(0.1)
            for task in live:
                assert task.process is not None
                if task.process.poll() is None:
                    task.process.signal(signal.SIGKILL)
            now = self.clock()
            for task in list(self._tasks.values()):
                self._deregister(task)
                self._finish(task, now, "the local cloud went down", task.exit_code)
                self._stopped.append(task)
            self._tasks.clear()

    # -- what runs ------------------------------------------------------------------------

    def tasks(self, include_stopped: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            live = [t.view() for t in self._tasks.values()]
            stopped = [t.view() for t in self._stopped] if include_stopped else []
        return live + stopped

    def desired(self) -> list[dict[str, Any]]:
        """One row per (service, colour): desired, running and healthy counts, replacements."""
        with self._lock:
            rows = []
            for (service, colour), want in sorted(self._desired.items()):
                mine = [t for t in self._tasks.values()
                        if t.service == service and t.colour is colour and t.state in WANTED]
                rows.append({
                    "service": service, "colour": str(colour), "desired": want.count,
                    "release": want.release.label,
                    "running": sum(1 for t in mine if t.release == want.release),
                    "healthy": sum(1 for t in mine if t.release == want.release
                                   and t.state is TaskState.RUNNING),
                    "replaced": self.replacements[(service, colour)],
                })
            return rows

    def colours(self) -> dict[Colour, Release]:
        """The colours that are deployed, with their release (the entry service's)."""
        with self._lock:
            return {colour: want.release for (service, colour), want in self._desired.items()
                    if service == self.entry}

    def colour_tasks(self, colour: Colour) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks.values() if t.colour is colour and t.live]

    def colour_health(self, colour: Colour) -> ColourHealth:
        """③'s question: every task of ``colour`` RUNNING at its desired release, every
        target of its group HEALTHY on the ALB, every task listed UP by discovery."""
        with self._lock:
            wants = {s: d for (s, c), d in self._desired.items() if c is colour}
            running = {s: [t for t in self._tasks.values() if t.service == s and t.colour is colour
                           and t.state is TaskState.RUNNING and t.release == d.release]
                       for s, d in wants.items()}
            failures = self._health_failures[colour]
        if not wants:
            return ColourHealth(False, f"{colour} is not deployed", failures)
        problems = [f"{s} {len(running[s])}/{d.count} running" for s, d in wants.items()
                    if len(running[s]) < d.count]
        group = self.balancer.group_of(self.entry, colour)
        try:
            targets = self.balancer.health(group)
        except Exception as err:
            return ColourHealth(False, f"the ALB does not answer: {err}", failures)
        unhealthy = {tid: str(h) for tid, h in targets.items()
                     if h not in (TargetHealth.HEALTHY, TargetHealth.DRAINING)}
        if unhealthy:
            problems.append(f"{group}: {unhealthy}")
        for service, tasks in running.items():
            listings = self.registry.statuses(service)
            if not listings:
                problems.append("no discovery server answers")
                break
            for task in tasks:
                missing = [server for server, found in listings.items()
                           if found.get(task.instance_id) != "UP"]
                if missing:
                    problems.append(f"{task.task_id} not UP in {', '.join(missing)}")
        if problems:
            return ColourHealth(False, "; ".join(problems), failures)
        total = sum(len(t) for t in running.values())
        return ColourHealth(True, f"{total} tasks running, {len(targets)} target(s) of {group} "
                                  f"healthy, all registered UP in discovery", failures)
