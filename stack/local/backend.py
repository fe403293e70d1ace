"""How components are run: as supervised local processes (default) or as containers.

A backend hands each component a `Runner`. The process runner keeps the server as a child of the
control plane (started through mirakuru, in its own session so a kill reaches every process of
the node); the container runner lives in `stack.local.containers`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from abc import ABC, abstractmethod
from typing import IO, TYPE_CHECKING, Any

from mirakuru import SimpleExecutor
from mirakuru.exceptions import ProcessFinishedWithError

if TYPE_CHECKING:
    from stack.local.component import Component


class Runner(ABC):
    """Starts, stops and watches the processes of one component."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self, timeout: float) -> None: ...

    @abstractmethod
    def kill(self) -> None: ...

    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    def exit_code(self) -> int | None:
        """The exit code when the component ended without being asked to; else None."""

    @property
    @abstractmethod
    def pid(self) -> int | None: ...


class Backend(ABC):
    runs_local_processes: bool

    @abstractmethod
    def runner_for(self, component: Component) -> Runner: ...


class ProcessRunner(Runner):
    def __init__(self, component: Component) -> None:
        self.component = component
        self._executor: SimpleExecutor | None = None
        self._log: IO[str] | None = None

    def start(self) -> None:
        spec = self.component.process()
        self.component.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.component.log_file.open("a")
        popen: dict[str, Any] = {}
        if spec.user and os.geteuid() == 0:
            account = pwd.getpwnam(spec.user)
            popen.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        self._executor = SimpleExecutor(
            list(spec.argv),
            cwd=str(spec.cwd) if spec.cwd else None,
            envvars=dict(spec.env),
            stdin=None,
            stdout=self._log,
            stderr=self._log,
            stop_signal=spec.stop_signal,
            timeout=self.component.timeouts.stop_s,
            popen_kwargs=popen,
        )
        self._executor.start()

    def stop(self, timeout: float) -> None:
        executor = self._executor
        if executor is None:
            return
        # A non-zero code on a requested stop is for the log to explain, not an error.
        with contextlib.suppress(ProcessFinishedWithError):
            executor.stop()
        self._forget()

    def kill(self) -> None:
        if self._executor is not None and self._executor.process is not None:
            # killpg reaches every process of the node (PostgreSQL backends, JVM threads).
            self._executor.kill()
        self._forget()

    def _forget(self) -> None:
        self._executor = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def running(self) -> bool:
        return self._executor is not None and self._executor.running()

    def exit_code(self) -> int | None:
        executor = self._executor
        if executor is None or executor.process is None:
            return None
        return executor.process.poll()

    @property
    def pid(self) -> int | None:
        executor = self._executor
        if executor is None or executor.process is None:
            return None
        return int(executor.process.pid)


class ProcessBackend(Backend):
    runs_local_processes = True

    def runner_for(self, component: Component) -> Runner:
        return ProcessRunner(component)
