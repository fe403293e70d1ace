"""The one lifecycle every local server shares: start, wait ready, health, stop.

A component is a node of the stack model made runnable. What differs between PostgreSQL, Redis,
Kafka and the AWS emulator — how to initialise a data directory, which command line to run,
how to tell that the server answers — is written in its subclass; how it is run (a local
process, or a container when a Docker engine exists) is the job of a `Runner` chosen by the
backend, so the supervisor treats every component alike.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stack.local.ports import ensure_free
from stack.model import Node, Timeouts
from stack.waiting import DeadlineExceeded, wait_for

if TYPE_CHECKING:
    from stack.local.backend import Backend, Runner
    from stack.local.workspace import Workspace


class ComponentError(RuntimeError):
    """A component could not be started or did not become ready; the message says why."""


@dataclass(frozen=True)
class Health:
    """What a protocol-level probe saw: whether the server answers, and in which role."""

    ok: bool
    detail: str
    role: str | None = None


@dataclass(frozen=True)
class ProcessSpec:
    """How to run a component as a local process."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    # OS user to run as when we are root (PostgreSQL refuses to run as root).
    user: str | None = None
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM


class Component(ABC):
    """A node of the model with a lifecycle; subclasses say how to run and probe it."""

    kind: str = "server"

    def __init__(self, node: Node, timeouts: Timeouts, workspace: Workspace,
                 backend: Backend) -> None:
        self.node = node
        self.timeouts = timeouts
        self.workspace = workspace
        self.backend = backend
        self.runner: Runner = backend.runner_for(self)

    # -- what a subclass provides -------------------------------------------------------

    @abstractmethod
    def process(self) -> ProcessSpec:
        """The command line that runs this node as a local process."""

    @abstractmethod
    def probe(self) -> Health:
        """Ask the server itself whether it answers, with a short timeout."""

    def prepare(self) -> None:  # noqa: B027 - optional hook, most servers need nothing
        """Create or verify the data directory before a local process starts."""

    def after_ready(self) -> None:  # noqa: B027 - optional hook
        """Work that needs the server up, e.g. creating buckets or turning on sync commit."""

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Names of the nodes that must be ready before this one starts."""
        return ()

    # -- the lifecycle --------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def data_dir(self) -> Path:
        return self.workspace.data_dir(self.node)

    @property
    def log_file(self) -> Path:
        return self.workspace.log_file(self.node)

    def start(self) -> None:
        if self.runner.running():
            return
        ensure_free(self.node.host, self.node.port, self.name)
        if self.backend.runs_local_processes:
            self.prepare()
        self.runner.start()

    def wait_ready(self, timeout: float | None = None) -> Health:
        limit = self.timeouts.ready_s if timeout is None else timeout

        def attempt() -> tuple[Health | None, str]:
            code = self.runner.exit_code()
            if code is not None:
                raise ComponentError(
                    f"{self.name} exited with code {code} while starting. "
                    f"Last lines of {self.log_file}:\n{self.log_tail()}"
                )
            health = self.probe()
            return (health if health.ok else None), health.detail

        try:
            health = wait_for(attempt, timeout=limit, what=f"{self.name} ready", interval=0.1)
        except DeadlineExceeded as err:
            raise ComponentError(
                f"{err}. Last lines of {self.log_file}:\n{self.log_tail()}") from err
        self.after_ready()
        return health

    def health(self) -> Health:
        code = self.runner.exit_code()
        if code is not None:
            return Health(False, f"exited with code {code}")
        if not self.runner.running():
            return Health(False, "not running")
        return self.probe()

    def stop(self) -> None:
        self.runner.stop(self.timeouts.stop_s)

    def kill(self) -> None:
        """Kill every process of the node at once, as a host crash would."""
        self.runner.kill()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
