"""Starting a task's process: the service's command line, its wiring, and what ECS injects.

A task runs ``python -m services.<name>`` from its release's tree (the checkout, or another
directory given with the release), bound to the task's own address, with the same wiring as
every program of the platform (`ServiceWiring`) plus the task metadata ECS would give it:
colour, zone and release (`services.common.task`), and the release's testing hooks.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Protocol

from services.common.task import FAULTS_ENV, TASK_METADATA_ENV
from stack.local.processes import ProcessRecords
from stack.local.services import ServiceWiring, service_command
from stack.local.tasks.task import Task, TaskProcess
from stack.local.workspace import Workspace
from stack.model import Node
from stack.model.compute import Instance


class Launcher(Protocol):
    def launch(self, task: Task) -> TaskProcess:
        """Start ``task``'s process; raises when it cannot be started."""
        ...


class PopenTask:
    """A task's process, a child of the control plane in a session of its own (so a signal
    reaches every process of the task), recorded so a successor can stop it if we die."""

    def __init__(self, popen: subprocess.Popen[bytes], name: str,
                 records: ProcessRecords) -> None:
        self.popen = popen
        self.name = name
        self.records = records
        self._ended = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        code = self.popen.poll()
        if code is not None and not self._ended:
            self._ended = True
            self.records.remove(self.name)
        return code

    def signal(self, signum: int) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def raise_priority(self) -> str | None:
        if self.popen.poll() is not None:
            return None
        try:
            os.setpriority(os.PRIO_PGRP, self.popen.pid, os.getpriority(os.PRIO_PROCESS, 0))
        except ProcessLookupError:
            return None
        except PermissionError:
            return "raising a process's priority needs CAP_SYS_NICE (root)"
        return None


class ServiceLauncher:
    """Launches tasks as local processes, their output in ``logs/<task id>.log``."""

    def __init__(self, wiring: ServiceWiring, workspace: Workspace,
                 records: ProcessRecords) -> None:
        self.wiring = wiring
        self.workspace = workspace
        self.records = records

    def command(self, task: Task) -> tuple[list[str], dict[str, str]]:
        model = self.wiring.model
        spec = model.compute.service(task.service)
        zone = model.region.zone(task.zone)
        instance = Instance(spec, Node(task.task_id, zone, task.host, task.port, spec.name))
        argv, env = service_command(instance, self.wiring)
        release = task.release
        env.update({
            TASK_METADATA_ENV["colour"]: str(task.colour),
            TASK_METADATA_ENV["zone"]: task.zone,
            TASK_METADATA_ENV["release"]: release.label,
            FAULTS_ENV: ",".join(release.faults),
            # The release's tree comes before the installed project on the import path.
            "PYTHONPATH": str(release.directory),
        })
        return argv, env

    def launch(self, task: Task) -> TaskProcess:
        argv, env = self.command(task)
        niceness = self.wiring.model.compute.tasks.starting_niceness
        if niceness:  # nice(1) execs the service: the pid stays the task's
            argv = ["nice", "-n", str(niceness), *argv]
        log_file = self.workspace.logs / f"{task.task_id}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            popen = subprocess.Popen(
                argv, cwd=task.release.directory, env={**os.environ, **env},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.records.add(task.task_id, popen.pid)
        return PopenTask(popen, task.task_id, self.records)

