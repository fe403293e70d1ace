"""One task: a process of one service of one colour, at one release, on its own address.

The life of a task follows ECS's: PROVISIONING (the cold start before the process exists),
PENDING (the process runs, not yet healthy: the grace period counts from here), RUNNING
(healthy), then, when it is asked to stop, DRAINING (deregistered; requests in flight finish),
STOPPING (SIGTERM sent, SIGKILL after the stop timeout) and STOPPED. A task never goes back:
a task that must run again is a new task, with a new id and address.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Protocol

from stack.model.edge import Colour


class TaskState(StrEnum):
    PROVISIONING = "provisioning"
    PENDING = "pending"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPING = "stopping"
    STOPPED = "stopped"


# The states in which a task counts towards its service's desired count.
WANTED = (TaskState.PROVISIONING, TaskState.PENDING, TaskState.RUNNING)


@dataclass(frozen=True)
class Release:
    """What a colour runs: a label (``--version``) and the tree whose code the tasks run.

    ``faults`` are testing hooks carried by the release into its tasks' environment
    (``COME2US_FAULTS``), e.g. ``gateway-health``: the gateway then fails its own health check,
    which is how a feature makes a release that must never be switched to.
    """

    label: str
    directory: Path
    faults: tuple[str, ...] = ()
    recorded_at: float = 0.0

    def view(self) -> dict[str, Any]:
        return {"label": self.label, "directory": str(self.directory),
                "faults": list(self.faults), "recorded_at": self.recorded_at}


class TaskProcess(Protocol):
    """The running process of a task, as the runner sees it."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None."""
        ...

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process of the task (its process group)."""
        ...

    def raise_priority(self) -> str | None:
        """Give every process of the task normal CPU priority (it started nicer); None when
        done, else why not (raising priority needs CAP_SYS_NICE)."""
        ...


@dataclass
class Task:
    task_id: str
    service: str
    colour: Colour
    zone: str
    host: IPv4Address
    port: int
    release: Release
    created_at: float
    behind_alb: bool
    state: TaskState = TaskState.PROVISIONING
    process: TaskProcess | None = None
    launched_at: float | None = None
    healthy_since: float | None = None
    health: str = "initial"  # the last health the ALB or the container check reported
    registered: bool = False  # a target of the ALB, or watched by a container check
    drain_until: float | None = None
    kill_at: float | None = None
    killed: bool = False
    stopped_at: float | None = None
    exit_code: int | None = None
    reason: str = ""  # why it stopped, or is stopping

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def instance_id(self) -> str:
        """The id the task registers under in discovery (``app:host:port``)."""
        return f"{self.service}:{self.host}:{self.port}"

    @property
    def live(self) -> bool:
        return self.state is not TaskState.STOPPED

    def view(self) -> dict[str, Any]:
        """The task as `come2us status` shows it (JSON)."""
        return {
            "id": self.task_id, "service": self.service, "colour": str(self.colour),
            "zone": self.zone, "address": self.address, "release": self.release.label,
            "state": str(self.state), "health": self.health,
            "pid": self.process.pid if self.process is not None else None,
            "created_at": self.created_at, "started_at": self.launched_at,
            "healthy_since": self.healthy_since, "stopped_at": self.stopped_at,
            "exit_code": self.exit_code, "reason": self.reason,
        }
