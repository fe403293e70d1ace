"""Health of the tasks that are not behind the ALB: ECS's container health check, locally.

The entry service's tasks are judged by the ALB's target health (HAProxy's checks). The
business services are not targets of any load balancer; ECS judges them by a container health
check, which here probes each task's health path with the service's `HealthCheck` — the same
interval, timeout and thresholds as a target group, so one vocabulary (`TargetHealth`) covers
both and the runner treats them alike.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from stack.local.alb.targets import TargetHealth
from stack.model.compute import HealthCheck

PROBE_WORKERS = 8


class TaskChecks(Protocol):
    """What the runner asks of container health checks."""

    def watch(self, task_id: str, url: str, check: HealthCheck) -> None: ...

    def forget(self, task_id: str) -> None: ...

    def health(self, task_id: str) -> TargetHealth: ...


@dataclass
class Checked:
    """One task's check: consecutive results turned into a health, by the thresholds."""

    url: str
    check: HealthCheck
    state: TargetHealth = TargetHealth.INITIAL
    successes: int = 0
    failures: int = 0
    due: float = field(default=0.0)

    def record(self, ok: bool) -> TargetHealth:
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.check.healthy_threshold:
                self.state = TargetHealth.HEALTHY
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= self.check.unhealthy_threshold:
                self.state = TargetHealth.UNHEALTHY
        return self.state


def probe(url: str, timeout_s: float) -> bool:
    try:
        return httpx.get(url, timeout=timeout_s, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


class ContainerChecks:
    """Probes every watched task on its own interval, in a background thread."""

    def __init__(self) -> None:
        self._checked: dict[str, Checked] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=PROBE_WORKERS,
                                        thread_name_prefix="container-check")

    def watch(self, task_id: str, url: str, check: HealthCheck) -> None:
        with self._lock:
            self._checked[task_id] = Checked(url, check)

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._checked.pop(task_id, None)

    def health(self, task_id: str) -> TargetHealth:
        with self._lock:
            checked = self._checked.get(task_id)
            return checked.state if checked is not None else TargetHealth.UNUSED

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="container-checks", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            with self._lock:
                due = [(task_id, c) for task_id, c in self._checked.items() if c.due <= now]
                for _, checked in due:
                    checked.due = now + checked.check.interval_s
            results = self._pool.map(lambda item: probe(item[1].url, item[1].check.timeout_s),
                                     due)
            for (task_id, checked), ok in zip(due, results, strict=True):
                with self._lock:
                    if self._checked.get(task_id) is checked:
                        checked.record(ok)
