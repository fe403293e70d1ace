"""Running the local cloud's nodes as containers, for people who have a Docker engine.

The default runtime runs every node as a local process and needs no Docker. When an engine is
there and asked for (``come2us up --docker``), each component is instead run as the service of
the same name in ``docker-compose.localstack.yml``: the components, their probes and their
order stay exactly the same, only the `Runner` differs. The containers use the host's network
and bind the same loopback addresses and ports as the local processes, so every URL, probe
and test is unchanged.

Nothing here talks to the engine's API directly: every action is one `docker` / `docker
compose` command, the same a person would type, so a failure message can quote the command and
what it answered, and the tests can check the exact commands with a fake ``docker`` on PATH.

Example::

    backend = ContainerBackend()
    backend.require()    # DockerUnavailable, naming what was tried, when no engine answers
    cloud = LocalCloud(come2us(), Workspace.default(), backend)   # the usual components
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stack.local.backend import Backend, Runner
from stack.local.component import ComponentError
from stack.local.postgres import ADMIN_SECRET, REPLICATION_SECRET
from stack.local.workspace import PROJECT_ROOT, Workspace

if TYPE_CHECKING:
    from stack.local.component import Component

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.localstack.yml"
# The compose service that plays the AWS endpoint with LocalStack instead of moto (its profile).
LOCALSTACK_SERVICE = "localstack"
LOCALSTACK_PROFILE = "localstack"
# A service without data of its own whose image has GNU find: `purge` deletes the containers'
# files from inside it, since they belong to the containers' users, not to the person.
PURGE_SERVICE = "cache-redis"
PURGE_MOUNT = "/come2us-docker"

# `docker info` answers in well under a second when an engine is there; an unreachable remote
# DOCKER_HOST can hang for minutes, so the probe gives up early.
ENGINE_TIMEOUT_S = 5.0
# ps, inspect, version, kill: quick questions to a live engine.
QUERY_TIMEOUT_S = 30.0
# `up` may pull an image first (a few hundred MB on a slow line).
START_TIMEOUT_S = 900.0
# Added to a stop's grace period: the engine's own bookkeeping after the signal.
STOP_MARGIN_S = 30.0
LOG_CAPTURE_LINES = 1000

# The variables of the compose file that come2us fills in (see the file's header). They are
# written to one env file per workspace and removed from the inherited environment, so the
# file is the single source a person can reuse: `docker compose --env-file <it> ps`.
DATA_VARIABLE = "COME2US_DOCKER_DATA"
SECRET_VARIABLES: Mapping[str, str] = {
    "COME2US_POSTGRES_PASSWORD": ADMIN_SECRET,
    "COME2US_REPLICATION_PASSWORD": REPLICATION_SECRET,
}


class DockerUnavailable(ComponentError):
    """No usable Docker engine or Compose; the message says what was tried and what it said."""


class DockerCommandError(ComponentError):
    """A docker command failed; the message quotes the command and its error output."""

    def __init__(self, argv: Sequence[str], detail: str, returncode: int | None = None) -> None:
        code = "" if returncode is None else f" (exit code {returncode})"
        super().__init__(f"`{_show(argv)}` failed{code}: {detail}")
        self.argv = tuple(argv)
        self.returncode = returncode
        self.detail = detail


# -- is there an engine? ---------------------------------------------------------------------


@dataclass(frozen=True)
class EngineStatus:
    """Whether a Docker engine answered, what was asked, and what came back."""

    available: bool
    command: tuple[str, ...]
    detail: str
    server_version: str | None = None

    def __str__(self) -> str:
        if self.available:
            return f"Docker engine {self.server_version} answered `{_show(self.command)}`"
        return f"`{_show(self.command)}` found no Docker engine: {self.detail}"


def docker_engine_status(docker: str = "docker", timeout: float = ENGINE_TIMEOUT_S) -> EngineStatus:
    """Ask the engine for its version; never hangs longer than ``timeout``, never raises.

    The docker CLI is often installed without an engine (as on this project's CI machines), so
    a CLI on PATH proves nothing: only an answer from the engine counts.
    """
    command = (docker, "info", "--format", "{{.ServerVersion}}")
    if shutil.which(docker) is None:
        return EngineStatus(False, command, f"`{docker}` is not installed (not on PATH)")
    try:
        done = _run(command, timeout=timeout)
    except subprocess.TimeoutExpired:
        return EngineStatus(False, command, f"no answer within {timeout:g} s")
    except OSError as err:
        return EngineStatus(False, command, f"could not run it: {err}")
    version = done.stdout.strip()
    if done.returncode != 0 or not version:
        said = _first_lines(done.stderr) or _first_lines(done.stdout) or "no output"
        return EngineStatus(False, command, f"exit code {done.returncode}: {said}")
    return EngineStatus(True, command, f"server version {version}", server_version=version)


@dataclass(frozen=True)
class ComposeTool:
    """How Compose v2 is invoked here: the docker CLI plugin, or the standalone binary."""

    argv: tuple[str, ...]
    version: str


def find_compose(docker: str = "docker", timeout: float = QUERY_TIMEOUT_S) -> ComposeTool:
    """Compose v2 as ``docker compose`` or, failing that, a standalone ``docker-compose``.

    Compose v1 (the Python ``docker-compose``, end of life since 2023) is refused: it lacks
    ``ps --format json`` and differs in details the compose file relies on.
    """
    tried: list[str] = []
    for argv in ((docker, "compose"), ("docker-compose",)):
        command = (*argv, "version", "--short")
        if shutil.which(argv[0]) is None:
            tried.append(f"`{_show(command)}`: `{argv[0]}` is not installed")
            continue
        try:
            done = _run(command, timeout=timeout)
        except (subprocess.TimeoutExpired, OSError) as err:
            tried.append(f"`{_show(command)}`: {err}")
            continue
        version = done.stdout.strip().removeprefix("v")
        if done.returncode != 0 or not version:
            said = _first_lines(done.stderr) or _first_lines(done.stdout) or "no output"
            tried.append(f"`{_show(command)}`: exit code {done.returncode}: {said}")
        elif not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 2:
            tried.append(f"`{_show(command)}`: Compose {version}; version 2 or newer is needed")
        else:
            return ComposeTool(argv, version)
    raise DockerUnavailable(
        "The Docker engine answers, but no Compose v2 was found:\n  "
        + "\n  ".join(tried)
        + "\nInstall the Compose plugin (e.g. `apt-get install docker-compose-plugin`), "
        "or run without --docker to use local processes."
    )


# -- the backend -------------------------------------------------------------------------------


class ContainerBackend(Backend):
    """Runs each component as the compose service named after its node.

    The workspace (where the env file and the data folders live) may be given, or is taken
    from the first component the backend runs; like the process backend, it then needs no
    arguments. ``service_overrides`` maps a node name to another service that plays it, e.g.
    ``{"aws-endpoint": LOCALSTACK_SERVICE}`` to use LocalStack as the AWS endpoint.
    """

    # Data directories are the compose file's bind mounts, prepared by the containers
    # themselves; the components' `prepare()` (initdb, formatting) is for local processes only.
    runs_local_processes = False

    def __init__(
        self,
        workspace: Workspace | None = None,
        *,
        compose_file: Path = COMPOSE_FILE,
        docker: str = "docker",
        service_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self._workspace = workspace
        self.compose_file = compose_file
        self.docker = docker
        self.service_overrides = dict(service_overrides or {})
        self._compose: ComposeTool | None = None
        self._services: frozenset[str] | None = None

    # -- where things are ---------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            raise ComponentError(
                "the container backend has no workspace yet: pass one to ContainerBackend() "
                "or build the components first"
            )
        return self._workspace

    @property
    def data_dir(self) -> Path:
        """Root of the containers' bind-mounted data folders (``$COME2US_DOCKER_DATA``)."""
        return self.workspace.home / "docker"

    @property
    def env_file(self) -> Path:
        return self.data_dir / "compose.env"

    def services(self) -> frozenset[str]:
        """The service names the compose file defines (read once, without an engine)."""
        if self._services is None:
            try:
                document = yaml.safe_load(self.compose_file.read_text())
            except (OSError, yaml.YAMLError) as err:
                raise ComponentError(f"cannot read {self.compose_file}: {err}") from err
            self._services = frozenset((document or {}).get("services") or {})
        return self._services

    def service_for(self, node_name: str) -> str:
        service = self.service_overrides.get(node_name, node_name)
        if service not in self.services():
            raise ComponentError(
                f"{self.compose_file.name} has no service {service!r} to run node {node_name!r}; "
                f"it defines: {', '.join(sorted(self.services()))}"
            )
        return service

    @property
    def profiles(self) -> tuple[str, ...]:
        """Profiles to activate: LocalStack's, when it plays a node."""
        uses_localstack = LOCALSTACK_SERVICE in self.service_overrides.values()
        return (LOCALSTACK_PROFILE,) if uses_localstack else ()

    # -- Backend ------------------------------------------------------------------------------

    def runner_for(self, component: Component) -> Runner:
        if self._workspace is None:
            self._workspace = component.workspace
        elif component.workspace.home != self._workspace.home:
            raise ComponentError(
                f"{component.name} belongs to workspace {component.workspace.home}, but the "
                f"container backend was made for {self.workspace.home}"
            )
        return ContainerRunner(self, component)

    def require(self) -> ComposeTool:
        """The Compose command to use; DockerUnavailable unless an engine and Compose answer."""
        if self._compose is None:
            status = docker_engine_status(self.docker)
            if not status.available:
                raise DockerUnavailable(
                    "--docker needs a Docker engine, and none answered.\n"
                    f"  tried: {_show(status.command)}\n"
                    f"  it said: {status.detail}\n"
                    "Start the engine (or point DOCKER_HOST at one), or run without --docker "
                    "to use local processes."
                )
            self._compose = find_compose(self.docker)
        return self._compose

    # -- commands -----------------------------------------------------------------------------

    def compose_argv(self, *args: str) -> tuple[str, ...]:
        """A full compose command line for this project (the tool is found by `require`)."""
        profiles = [flag for profile in self.profiles for flag in ("--profile", profile)]
        return (*self.require().argv, "-f", str(self.compose_file),
                "--env-file", str(self.env_file), *profiles, *args)

    def compose(self, *args: str, timeout: float = QUERY_TIMEOUT_S) -> str:
        """Run a compose command and return its output; DockerCommandError when it fails."""
        if not self.env_file.exists():
            self.write_env_file()  # Compose refuses a missing --env-file, even for `ps`
        return self._check(self.compose_argv(*args), timeout)

    def docker_command(self, *args: str, timeout: float = QUERY_TIMEOUT_S) -> str:
        return self._check((self.docker, *args), timeout)

    def _check(self, argv: tuple[str, ...], timeout: float) -> str:
        try:
            done = _run(argv, timeout=timeout, env=self._environment())
        except subprocess.TimeoutExpired as err:
            raise DockerCommandError(argv, f"no answer within {timeout:g} s") from err
        except OSError as err:
            raise DockerCommandError(argv, str(err)) from err
        if done.returncode != 0:
            detail = _first_lines(done.stderr, 8) or _first_lines(done.stdout, 8) or "no output"
            raise DockerCommandError(argv, detail, done.returncode)
        return done.stdout

    def _environment(self) -> dict[str, str]:
        """The caller's environment without the variables the env file owns."""
        owned = {DATA_VARIABLE, *SECRET_VARIABLES}
        return {key: value for key, value in os.environ.items() if key not in owned}

    def write_env_file(self) -> Path:
        """Write the compose variables of this workspace (data folder, passwords), owner-only.

        The passwords are the workspace's own secrets, the same the components log in with,
        so the control plane's probes authenticate against the containers as against the
        local processes.
        """
        values = {DATA_VARIABLE: str(self.data_dir.resolve())}
        values.update({variable: self.workspace.secret(name)
                       for variable, name in SECRET_VARIABLES.items()})
        for variable, value in values.items():
            if "'" in value or "\n" in value:
                raise ComponentError(f"{variable} cannot hold quotes or line breaks: {value!r}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{variable}='{value}'\n" for variable, value in values.items())
        scratch = self.env_file.with_suffix(".tmp")
        scratch.unlink(missing_ok=True)
        # Created owner-only from the start: the file holds passwords.
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(f"# Written by come2us for {self.compose_file.name}.\n{text}")
        scratch.replace(self.env_file)
        return self.env_file

    def down(self) -> None:
        """Remove every container of the project (data folders stay)."""
        # LocalStack's profile too, so that its container is removed whichever endpoint ran.
        extra = () if LOCALSTACK_PROFILE in self.profiles else ("--profile", LOCALSTACK_PROFILE)
        self.compose(*extra, "down", "--remove-orphans", timeout=QUERY_TIMEOUT_S * 4)

    def purge(self) -> None:
        """Delete the containers' data folders, including files owned by the containers' users.

        As root a plain recursive delete works; anyone else cannot delete files that belong to
        the postgres or redis users of the images, so they are deleted from inside a throwaway
        container first. Stop the nodes before purging.
        """
        if not self.data_dir.exists():
            return
        if os.geteuid() != 0:
            self.write_env_file()
            self.compose(
                "run", "--rm", "--no-deps", "--entrypoint", "find",
                "--volume", f"{self.data_dir.resolve()}:{PURGE_MOUNT}",
                PURGE_SERVICE, PURGE_MOUNT, "-mindepth", "1", "-delete",
                timeout=START_TIMEOUT_S,
            )
        shutil.rmtree(self.data_dir)


# -- one component as one container ------------------------------------------------------------


@dataclass(frozen=True)
class ContainerState:
    """The part of `docker inspect`'s State the runner needs."""

    status: str
    running: bool
    exit_code: int
    pid: int
    finished_at: str

    @classmethod
    def parse(cls, text: str) -> ContainerState:
        state: dict[str, Any] = json.loads(text)
        return cls(
            status=str(state.get("Status", "")),
            running=bool(state.get("Running", False)),
            exit_code=int(state.get("ExitCode", 0)),
            pid=int(state.get("Pid", 0)),
            finished_at=str(state.get("FinishedAt", "")),
        )


class ContainerRunner(Runner):
    """Starts, stops and watches one compose service; the container is found by asking Compose.

    The runner remembers whether it expects the container to run (it started it, or saw it
    running) and whether it was asked to stop it, so that `exit_code` reports a crash but not
    a requested stop or kill, as the process runner does. Another thread polling the state
    while a stop is under way cannot turn that stop into a reported crash.
    """

    def __init__(self, backend: ContainerBackend, component: Component) -> None:
        self.backend = backend
        self.component = component
        self.service = backend.service_for(component.name)
        self._container_id: str | None = None
        self._expect_running = False
        self._asked_to_stop = False
        self._captured_exit: str | None = None

    def start(self) -> None:
        self.backend.require()
        self.backend.write_env_file()
        self._asked_to_stop = False
        self.backend.compose("up", "-d", "--no-deps", self.service, timeout=START_TIMEOUT_S)
        self._container_id = None  # `up` may have recreated it
        self._expect_running = True

    def stop(self, timeout: float) -> None:
        self._asked_to_stop = True
        grace = max(1, math.ceil(timeout))
        self.backend.compose("stop", "-t", str(grace), self.service,
                             timeout=grace + STOP_MARGIN_S)

    def kill(self) -> None:
        """SIGKILL the container's main process; the kernel then kills every process in it."""
        self._asked_to_stop = True
        try:
            self.backend.compose("kill", "-s", "SIGKILL", self.service)
        except DockerCommandError:
            if self.running():
                raise  # otherwise it was not running: nothing to kill

    def running(self) -> bool:
        state = self._state()
        return state is not None and state.running

    def exit_code(self) -> int | None:
        if self._asked_to_stop or not self._expect_running:
            return None
        state = self._state()
        if state is None or state.running or state.status not in ("exited", "dead"):
            return None
        self._capture_log(state)
        return state.exit_code

    @property
    def pid(self) -> int | None:
        state = self._state()
        return state.pid if state is not None and state.pid > 0 else None

    # -- asking the engine ----------------------------------------------------------------------

    def _state(self) -> ContainerState | None:
        """The container's state, or None when the service has no container or no engine answers."""
        for _ in range(2):  # a cached id may be stale (the container was recreated or removed)
            container = self._container_id or self._find_container()
            if container is None:
                return None
            try:
                text = self.backend.docker_command(
                    "inspect", "--type", "container", "--format", "{{json .State}}", container)
            except ComponentError:  # the command failed, or no engine answers any more
                if self._container_id is None:
                    return None
                self._container_id = None
                continue
            self._container_id = container
            state = ContainerState.parse(text)
            if state.running:
                self._expect_running = True  # adopted: an exit from now on is a crash
            return state
        return None

    def _find_container(self) -> str | None:
        try:
            text = self.backend.compose("ps", "--all", "--format", "json", self.service)
        except ComponentError:  # the command failed, or no engine answers (DockerUnavailable)
            return None
        for entry in _compose_ps_entries(text):
            if entry.get("Service", self.service) == self.service and entry.get("ID"):
                return str(entry["ID"])
        return None

    def _capture_log(self, state: ContainerState) -> None:
        """Copy the ended container's log into the node's log file, once per exit.

        Component error messages quote the tail of the node's log file; for a container the
        log lives in the engine, so it is copied when the container is found to have ended.
        """
        if self._captured_exit == state.finished_at:
            return
        self._captured_exit = state.finished_at
        try:
            text = self.backend.compose("logs", "--no-color", "--tail", str(LOG_CAPTURE_LINES),
                                        self.service)
        except DockerCommandError as err:
            text = f"(the container's log could not be read: {err})\n"
        log_file = self.component.log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(
            f"# docker compose logs {self.service}: exited with code {state.exit_code} "
            f"at {state.finished_at}\n{text}"
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the container's log, straight from the engine."""
        try:
            text = self.backend.compose("logs", "--no-color", "--tail", str(lines), self.service)
        except DockerCommandError as err:
            return f"(no log: {err})"
        return text.rstrip("\n")


# -- small helpers ---------------------------------------------------------------------------


def _run(argv: Sequence[str], *, timeout: float,
         env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with captured output and a deadline; stdin closed so it never waits on us."""
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL, env=None if env is None else dict(env),
    )


def _compose_ps_entries(text: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json` output: one JSON array (Compose < 2.21) or JSON lines."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        entries = json.loads(text)
        return [entry for entry in entries if isinstance(entry, dict)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _first_lines(text: str, count: int = 3) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[:count] if line.strip())


def _show(argv: Sequence[str]) -> str:
    """A command line as a person would type it (arguments with spaces quoted)."""
    return " ".join(f"'{arg}'" if (" " in arg or not arg) else arg for arg in argv)
