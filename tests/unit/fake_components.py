"""Components that run nothing, for the unit tests of the supervisor and its API.

A `FakeComponent` is a real `Component` (the lifecycle under test is the production one) whose
runner starts no process and whose probe answers what the test says. Every start, stop, kill and
first ready answer is written to a `Journal`, so a test asserts the order things happened in
instead of sleeping and hoping. Nodes live in 127.0.9.0/24, a range the model does not use, so
`Component.start`'s port check never meets a running local cloud.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

from stack.come2us import come2us
from stack.local.backend import Backend, Runner
from stack.local.cloud import LocalCloud
from stack.local.component import Component, Health, ProcessSpec
from stack.local.workspace import Workspace
from stack.model import Node, Timeouts, Zone

TEST_ZONE = Zone("test-zone", "AZ-t", IPv4Network("127.0.9.0/24"))
FAKE_PORT = 7009
FAKE_TIMEOUTS = Timeouts(ready_s=5.0, stop_s=1.0)


@dataclass
class Journal:
    """What happened to the fakes, in order: ("start" | "stop" | "kill" | "ready", name)."""

    entries: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, what: str, name: str) -> None:
        with self._lock:
            self.entries.append((what, name))

    def names(self, what: str) -> list[str]:
        with self._lock:
            return [name for kind, name in self.entries if kind == what]

    def position(self, what: str, name: str) -> int:
        with self._lock:
            return self.entries.index((what, name))


class FakeRunner(Runner):
    """A runner whose 'process' is two flags; `exit` plays a server ending on its own."""

    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal
        self.on_start: Callable[[], None] | None = None
        self._running = False
        self._exit_code: int | None = None

    def start(self) -> None:
        self.journal.write("start", self.name)
        if self.on_start is not None:
            self.on_start()
        self._running, self._exit_code = True, None

    def stop(self, timeout: float) -> None:
        self.journal.write("stop", self.name)
        self._running, self._exit_code = False, None

    def kill(self) -> None:
        self.journal.write("kill", self.name)
        self._running, self._exit_code = False, None

    def running(self) -> bool:
        return self._running

    def exit_code(self) -> int | None:
        return self._exit_code

    @property
    def pid(self) -> int | None:
        return None

    def exit(self, code: int) -> None:
        """The server ended without being asked to."""
        self._running, self._exit_code = False, code


class FakeBackend(Backend):
    runs_local_processes = False

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def runner_for(self, component: Component) -> Runner:
        return FakeRunner(component.name, self.journal)


class FakeComponent(Component):
    """A node whose probe fails `probes_before_ready` times, then answers `answer`."""

    kind = "fake"

    def __init__(self, name: str, host: int, workspace: Workspace, backend: FakeBackend,
                 depends_on: tuple[str, ...] = ()) -> None:
        node = Node(name, TEST_ZONE, TEST_ZONE.address(host), FAKE_PORT, "fake-role")
        super().__init__(node, FAKE_TIMEOUTS, workspace, backend)
        self.journal = backend.journal
        self._depends_on = depends_on
        self.probes_before_ready = 0
        self.answer = Health(True, "answering")
        self._answered = False

    @property
    def depends_on(self) -> tuple[str, ...]:
        return self._depends_on

    @property
    def fake(self) -> FakeRunner:
        assert isinstance(self.runner, FakeRunner)
        return self.runner

    def process(self) -> ProcessSpec:
        return ProcessSpec(("true",))

    def probe(self) -> Health:
        if self.probes_before_ready > 0:
            self.probes_before_ready -= 1
            return Health(False, "not answering yet")
        if self.answer.ok and not self._answered:
            self._answered = True
            self.journal.write("ready", self.name)
        return self.answer


@dataclass
class FakeCloud:
    """A LocalCloud over fakes, with handles on the fakes and the journal."""

    cloud: LocalCloud
    journal: Journal
    parts: dict[str, FakeComponent]
    workspace: Workspace


def build_fake_cloud(home: Path, spec: Iterable[tuple[str, tuple[str, ...]]]) -> FakeCloud:
    """A LocalCloud of fakes in workspace ``home``, from (name, depends_on) pairs."""
    workspace = Workspace(home)
    workspace.ensure()
    journal = Journal()
    backend = FakeBackend(journal)
    parts = {
        name: FakeComponent(name, 11 + index, workspace, backend, depends)
        for index, (name, depends) in enumerate(spec)
    }
    cloud = LocalCloud(come2us(), workspace, backend, components=parts.values())
    return FakeCloud(cloud, journal, parts, workspace)
