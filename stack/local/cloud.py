"""The local cloud: every component of the model, started in dependency order and watched.

`LocalCloud` is what the control plane owns. It starts each component as soon as the ones it
depends on are ready (independent ones in parallel), records what it started so a successor can
clean up after a control plane that died, notices components that exit on their own, and
answers "what runs where, and is it healthy" from live probes rather than from memory.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from stack.local.alb.component import alb_components
from stack.local.backend import Backend
from stack.local.component import Component, Health
from stack.local.emulator import emulator_components
from stack.local.kafka import kafka_components
from stack.local.postgres import postgres_components
from stack.local.processes import ProcessRecords
from stack.local.redis import redis_components
from stack.local.services import service_components
from stack.local.workspace import Workspace
from stack.model import Platform


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    CRASHED = "crashed"
    FAILED = "failed"
    STOPPING = "stopping"


@dataclass(frozen=True)
class StatusRow:
    """One line of `come2us status`: what runs where, in which role, and how it is."""

    name: str
    kind: str
    zone: str
    address: str
    role: str
    state: State
    pid: int | None
    detail: str


@dataclass(frozen=True)
class Event:
    at: float
    component: str
    message: str


def build_components(model: Platform, workspace: Workspace, backend: Backend) -> list[Component]:
    """Every component of the model, in the order a person reads the status table."""
    factories: Iterable[Callable[[Platform, Workspace, Backend], list[Component]]] = (
        emulator_components,
        postgres_components,
        redis_components,
        kafka_components,
        alb_components,
        service_components,
    )
    return [c for factory in factories for c in factory(model, workspace, backend)]


class LocalCloud:
    def __init__(self, model: Platform, workspace: Workspace, backend: Backend,
                 components: Iterable[Component] | None = None) -> None:
        """The model's components, or ``components`` instead (how unit tests supervise fakes)."""
        self.model = model
        self.workspace = workspace
        if components is None:
            components = build_components(model, workspace, backend)
        self.components = {c.name: c for c in components}
        self._states = {name: State.STOPPED for name in self.components}
        self._details = {name: "" for name in self.components}
        self._events: deque[Event] = deque(maxlen=200)
        self._lock = threading.RLock()
        self._records = ProcessRecords(workspace.processes_file)
        self._starting = threading.Lock()

    # -- events and state -----------------------------------------------------------------

    def _set(self, name: str, state: State, detail: str = "", event: str | None = None) -> None:
        with self._lock:
            self._states[name] = state
            self._details[name] = detail
            if event:
                self._record_event(name, event)

    def record_event(self, subject: str, message: str) -> None:
        """An event from beside the components: a task, the listener, the task runner."""
        with self._lock:
            self._record_event(subject, message)

    def _record_event(self, component: str, message: str) -> None:
        event = Event(time.time(), component, message)
        self._events.append(event)
        with (self.workspace.logs / "events.jsonl").open("a") as log:
            log.write(json.dumps(asdict(event)) + "\n")

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def state(self, name: str) -> State:
        with self._lock:
            return self._states[name]

    # -- lifecycle ------------------------------------------------------------------------

    def clean_orphans(self) -> None:
        """Stop processes a previous control plane started and left behind when it died."""
        for name, pid in self._records.stop_survivors(self._stop_signals()):
            self._record_event(name, f"stopped pid {pid} left behind by a control plane that died")

    def _stop_signals(self) -> dict[str, int]:
        signals = {}
        for name, component in self.components.items():
            try:
                signals[name] = component.process().stop_signal
            except Exception:  # noqa: S112 - an unbuildable spec still gets the default signal
                continue
        return signals

    def up(self) -> bool:
        """Start every component that is not ready; True when all are ready at the end."""
        with self._starting:
            ready = {name: threading.Event() for name in self.components}
            for name in self.components:
                if self.state(name) is State.READY and self.components[name].runner.running():
                    ready[name].set()
            pending = [c for c in self.components.values() if not ready[c.name].is_set()]
            for component in pending:
                # A failure left by an earlier `up` must not fail this one's dependents before
                # the component has been tried again.
                if self.state(component.name) is State.FAILED:
                    self._set(component.name, State.STARTING, "retrying")
            with ThreadPoolExecutor(max_workers=max(1, len(pending))) as pool:
                for component in pending:
                    pool.submit(self._bring_up, component, ready)
            return all(event.is_set() for event in ready.values())

    def _bring_up(self, component: Component, ready: dict[str, threading.Event]) -> None:
        name = component.name
        for dependency in component.depends_on:
            budget = self.components[dependency].timeouts.ready_s + component.timeouts.ready_s
            if not self._wait_dependency(dependency, ready[dependency], budget):
                self._set(name, State.FAILED, f"not started: {dependency} is not ready")
                return
        previous = self.state(name)
        self._set(name, State.STARTING, "starting",
                  event="restarting after a crash" if previous is State.CRASHED else None)
        try:
            if component.runner.exit_code() is not None:
                component.stop()  # forget the dead process before starting a new one
            component.start()
            if component.runner.pid is not None:
                self._records.add(name, component.runner.pid)
            health = component.wait_ready()
        except Exception as err:  # every failure is reported as the component's state
            self._set(name, State.FAILED, str(err), event=f"failed to start: {err}")
            return
        self._set(name, State.READY, health.detail)
        ready[name].set()

    def _wait_dependency(self, name: str, event: threading.Event, budget: float) -> bool:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            if event.wait(0.1):
                return True
            if self.state(name) is State.FAILED:
                return False
        return False

    def down(self) -> None:
        """Stop every component, dependents first."""
        for component in reversed(self._start_order()):
            self.stop_component(component.name)

    def _start_order(self) -> list[Component]:
        ordered: list[Component] = []
        placed: set[str] = set()
        remaining = list(self.components.values())
        while remaining:
            wave = [c for c in remaining if set(c.depends_on) <= placed]
            if not wave:
                raise ValueError(f"dependency cycle among {[c.name for c in remaining]}")
            ordered += wave
            placed |= {c.name for c in wave}
            remaining = [c for c in remaining if c.name not in placed]
        return ordered

    def stop_component(self, name: str) -> None:
        component = self.components[name]
        if self.state(name) is not State.STOPPED:
            self._set(name, State.STOPPING, "stopping")
        component.stop()
        self._records.remove(name)
        self._set(name, State.STOPPED, "")

    def kill_component(self, name: str) -> None:
        """SIGKILL every process of a component: the local form of a host crash."""
        self.components[name].kill()
        self._records.remove(name)
        self._set(name, State.CRASHED, "killed", event="killed on request (simulated crash)")

    def watch_once(self) -> None:
        """Notice components that exited on their own since the last look."""
        for name, component in self.components.items():
            code = component.runner.exit_code()
            if code is not None and self.state(name) in (State.READY, State.UNHEALTHY):
                self._records.remove(name)
                self._set(name, State.CRASHED, f"exited with code {code}",
                          event=f"crashed: exited with code {code}")

    # -- reporting ------------------------------------------------------------------------

    def status(self) -> list[StatusRow]:
        """Rows for every component, with health probed now (in parallel, each bounded)."""
        self.watch_once()
        names = list(self.components)
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            healths = dict(zip(names, pool.map(self._live_health, names), strict=True))
        return [self._row(name, healths[name]) for name in names]

    def _live_health(self, name: str) -> Health | None:
        if self.state(name) in (State.READY, State.UNHEALTHY):
            return self.components[name].health()
        return None

    def _row(self, name: str, health: Health | None) -> StatusRow:
        component = self.components[name]
        node = component.node
        with self._lock:
            state, detail = self._states[name], self._details[name]
        if health is not None:
            state = State.READY if health.ok else State.UNHEALTHY
            detail = health.detail
            if state is not self._states[name]:
                self._set(name, state, detail,
                          event=f"{'healthy again' if health.ok else 'unhealthy'}: {detail}")
        return StatusRow(
            name=name,
            kind=component.kind,
            zone=node.zone.label,
            address=node.address,
            role=(health.role if health and health.role else node.role),
            state=state,
            pid=component.runner.pid,
            detail=detail,
        )

    def log_path(self, name: str) -> Path:
        return self.components[name].log_file
