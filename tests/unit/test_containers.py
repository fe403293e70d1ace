"""The container backend, without Docker: a fake `docker` on PATH records every command it gets.

The fake is a small Python program written into the test's folder. It appends its argv (and the
compose variables it saw in its environment) to a JSON-lines file and answers from a rules file
the test writes: the first rule whose words appear in order in the argv gives stdout, stderr and
the exit code. The tests then assert the exact commands the runner issued.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stack.come2us import come2us
from stack.local.component import Component, ComponentError, Health, ProcessSpec
from stack.local.containers import (
    COMPOSE_FILE,
    DATA_VARIABLE,
    ENGINE_TIMEOUT_S,
    LOCALSTACK_SERVICE,
    PURGE_MOUNT,
    PURGE_SERVICE,
    SECRET_VARIABLES,
    ContainerBackend,
    ContainerRunner,
    DockerCommandError,
    DockerUnavailable,
    docker_engine_status,
    find_compose,
)
from stack.local.workspace import Workspace
from stack.model import Node, Timeouts

FAKE_PROGRAM = """\
#!{python}
import json, os, sys, time

WATCHED = {watched!r}
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    seen = {{key: os.environ.get(key) for key in WATCHED}}
    log.write(json.dumps({{"argv": [name, *args], "env": seen}}) + "\\n")

def contains_in_order(words, argv):
    rest = iter(argv)
    return all(any(word == arg for arg in rest) for word in words)

with open(os.environ["FAKE_DOCKER_RULES"]) as rules_file:
    rules = json.load(rules_file)
for rule in rules:
    if rule["tool"] == name and contains_in_order(rule["match"], args):
        sys.stdout.write(rule["stdout"])
        sys.stderr.write(rule["stderr"])
        sys.stdout.flush()
        if rule["hang"]:
            time.sleep(600)
        sys.exit(rule["rc"])
sys.exit(0)
"""

ENGINE_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?\n"
)


@dataclass
class FakeDocker:
    """The fake's folder, its rules and what it recorded."""

    bin_dir: Path
    log: Path
    rules_file: Path
    rules: list[dict[str, Any]] = field(default_factory=list)

    def install(self, name: str) -> None:
        program = self.bin_dir / name
        program.write_text(FAKE_PROGRAM.format(python=sys.executable,
                                               watched=[DATA_VARIABLE, *SECRET_VARIABLES]))
        program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def answer(self, *match: str, tool: str = "docker", stdout: str = "", stderr: str = "",
               rc: int = 0, hang: bool = False) -> None:
        """Add a rule; rules added later take precedence, so a test can change an answer."""
        self.rules.insert(0, {"tool": tool, "match": list(match), "stdout": stdout,
                              "stderr": stderr, "rc": rc, "hang": hang})
        self.rules_file.write_text(json.dumps(self.rules))

    def calls(self) -> list[list[str]]:
        return [entry["argv"] for entry in self._entries()]

    def environments(self) -> list[dict[str, str | None]]:
        return [entry["env"] for entry in self._entries()]

    def _entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def forget_calls(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """A fake `docker` alone on PATH, with a working engine and Compose plugin by default."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = FakeDocker(bin_dir, tmp_path / "calls.jsonl", tmp_path / "rules.json")
    fake.install("docker")
    fake.rules_file.write_text("[]")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_DOCKER_RULES", str(fake.rules_file))
    fake.answer("info", stdout="27.3.1\n")
    fake.answer("compose", "version", stdout="2.29.7\n")
    return fake


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "home")


class Dummy(Component):
    """A component with nothing of its own: the runner is what is under test."""

    kind = "dummy"

    def process(self) -> ProcessSpec:
        return ProcessSpec(("true",))

    def probe(self) -> Health:
        return Health(True, "dummy")


def component_for(node: Node, timeouts: Timeouts, workspace: Workspace,
                  backend: ContainerBackend) -> Dummy:
    return Dummy(node, timeouts, workspace, backend)


@pytest.fixture
def writer(workspace: Workspace) -> Iterator[tuple[Dummy, ContainerBackend]]:
    cluster = come2us().data.postgres
    backend = ContainerBackend(workspace)
    yield component_for(cluster.writer, cluster.timeouts, workspace, backend), backend


def compose_prefix(backend: ContainerBackend, *tool: str) -> list[str]:
    return [*(tool or ("docker", "compose")), "-f", str(COMPOSE_FILE),
            "--env-file", str(backend.env_file)]


def runner_of(component: Component) -> ContainerRunner:
    runner = component.runner
    assert isinstance(runner, ContainerRunner)
    return runner


def state_json(status: str, *, running: bool, exit_code: int = 0, pid: int = 0,
               finished_at: str = "0001-01-01T00:00:00Z") -> str:
    return json.dumps({"Status": status, "Running": running, "ExitCode": exit_code,
                       "Pid": pid, "FinishedAt": finished_at}) + "\n"


# -- is there an engine? ------------------------------------------------------------------------


def test_engine_status_reports_the_server_version(fake: FakeDocker) -> None:
    status = docker_engine_status()
    assert status.available
    assert status.server_version == "27.3.1"
    assert fake.calls() == [["docker", "info", "--format", "{{.ServerVersion}}"]]


def test_engine_status_says_what_the_cli_answered_when_no_engine_runs(fake: FakeDocker) -> None:
    fake.answer("info", stdout="\n", stderr=ENGINE_DOWN, rc=1)
    status = docker_engine_status()
    assert not status.available
    assert status.server_version is None
    assert "Cannot connect to the Docker daemon" in status.detail
    assert "exit code 1" in status.detail
    assert status.command == ("docker", "info", "--format", "{{.ServerVersion}}")


def test_engine_status_without_the_docker_cli(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    status = docker_engine_status()
    assert not status.available
    assert "not installed" in status.detail


def test_engine_status_gives_up_on_an_engine_that_never_answers(fake: FakeDocker) -> None:
    fake.answer("info", hang=True)
    started = time.monotonic()
    status = docker_engine_status(timeout=0.5)
    elapsed = time.monotonic() - started
    assert not status.available
    assert "no answer within 0.5 s" in status.detail
    assert elapsed < 5, f"the probe took {elapsed:.1f} s"


def test_engine_status_on_this_machine_answers_quickly() -> None:
    """The real `docker` on PATH, whatever this machine has: an answer, never a hang or a raise.

    On the project's machines the CLI is installed but no engine runs, so this says unavailable;
    with an engine it says available. Either way `require` agrees with it.
    """
    started = time.monotonic()
    status = docker_engine_status()
    elapsed = time.monotonic() - started
    assert elapsed < ENGINE_TIMEOUT_S + 1, f"took {elapsed:.1f} s"
    assert status.detail
    if not status.available:
        with pytest.raises(DockerUnavailable, match="without --docker"):
            ContainerBackend(Workspace(Path("/nonexistent-come2us-home"))).require()


# -- require: a clear refusal ----------------------------------------------------------------------


def test_require_names_what_was_tried_and_what_it_said(fake: FakeDocker,
                                                       workspace: Workspace) -> None:
    fake.answer("info", stderr=ENGINE_DOWN, rc=1)
    with pytest.raises(DockerUnavailable) as raised:
        ContainerBackend(workspace).require()
    message = str(raised.value)
    assert "docker info --format {{.ServerVersion}}" in message
    assert "Cannot connect to the Docker daemon" in message
    assert "run without --docker to use local processes" in message


def test_require_without_any_compose_v2(fake: FakeDocker, workspace: Workspace) -> None:
    fake.answer("compose", "version", stderr="docker: 'compose' is not a docker command.\n", rc=1)
    with pytest.raises(DockerUnavailable) as raised:
        ContainerBackend(workspace).require()
    message = str(raised.value)
    assert "docker compose version --short" in message
    assert "'compose' is not a docker command" in message
    assert "docker-compose" in message and "not installed" in message
    assert "without --docker" in message


def test_standalone_docker_compose_is_used_when_the_plugin_is_missing(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend]) -> None:
    fake.answer("compose", "version", stderr="docker: 'compose' is not a docker command.\n", rc=1)
    fake.install("docker-compose")
    fake.answer("version", tool="docker-compose", stdout="v2.29.7\n")
    component, backend = writer
    assert find_compose().argv == ("docker-compose",)
    fake.forget_calls()
    runner_of(component).start()
    assert fake.calls()[-1] == [*compose_prefix(backend, "docker-compose"),
                                "up", "-d", "--no-deps", "rds-writer"]


def test_compose_v1_is_refused(fake: FakeDocker) -> None:
    fake.answer("compose", "version", rc=1, stderr="unknown command\n")
    fake.install("docker-compose")
    fake.answer("version", tool="docker-compose", stdout="1.29.2\n")
    with pytest.raises(DockerUnavailable, match=r"Compose 1\.29\.2; version 2 or newer is needed"):
        find_compose()


# -- the runner's commands -----------------------------------------------------------------------


def test_start_runs_the_nodes_service_with_the_workspace_env_file(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend],
        workspace: Workspace) -> None:
    component, backend = writer
    runner_of(component).start()
    assert fake.calls() == [
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        ["docker", "compose", "version", "--short"],
        [*compose_prefix(backend), "up", "-d", "--no-deps", "rds-writer"],
    ]
    env_file = backend.env_file
    assert env_file == workspace.home / "docker" / "compose.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = env_file.read_text()
    assert f"{DATA_VARIABLE}='{(workspace.home / 'docker').resolve()}'" in text
    for variable, secret in SECRET_VARIABLES.items():
        assert f"{variable}='{workspace.secret(secret)}'" in text


def test_the_env_file_wins_over_variables_in_the_callers_environment(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (DATA_VARIABLE, *SECRET_VARIABLES):
        monkeypatch.setenv(variable, "from-the-shell")
    component, _ = writer
    runner_of(component).start()
    assert fake.environments()[-1] == dict.fromkeys((DATA_VARIABLE, *SECRET_VARIABLES))


def test_stop_gives_the_models_grace_period_and_kill_sends_sigkill(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend]) -> None:
    component, backend = writer
    runner_of(component).start()  # not Component.start: its port check would see this machine
    fake.forget_calls()
    component.stop()
    grace = str(int(come2us().data.postgres.timeouts.stop_s))
    assert fake.calls() == [[*compose_prefix(backend), "stop", "-t", grace, "rds-writer"]]
    fake.forget_calls()
    component.kill()
    assert fake.calls() == [[*compose_prefix(backend), "kill", "-s", "SIGKILL", "rds-writer"]]


def test_a_failed_start_quotes_the_command_and_its_error(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend]) -> None:
    fake.answer("compose", "up", rc=1,
                stderr="Error response from daemon: pull access denied for postgres\n")
    component, _ = writer
    with pytest.raises(DockerCommandError) as raised:
        runner_of(component).start()
    assert isinstance(raised.value, ComponentError)
    message = str(raised.value)
    assert "up -d --no-deps rds-writer" in message
    assert "exit code 1" in message
    assert "pull access denied" in message


def test_running_pid_and_exit_code_come_from_compose_ps_and_inspect(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend]) -> None:
    component, backend = writer
    runner = runner_of(component)
    fake.answer("compose", "ps",
                stdout=json.dumps({"ID": "c0ffee", "Service": "rds-writer", "State": "running"})
                + "\n")
    fake.answer("inspect", stdout=state_json("running", running=True, pid=4242))
    runner.start()
    fake.forget_calls()

    assert runner.running()
    assert runner.pid == 4242
    assert runner.exit_code() is None
    assert fake.calls()[:2] == [
        [*compose_prefix(backend), "ps", "--all", "--format", "json", "rds-writer"],
        ["docker", "inspect", "--type", "container", "--format", "{{json .State}}", "c0ffee"],
    ]
    # The container id is remembered: later questions go straight to `docker inspect`.
    assert all(call[:2] == ["docker", "inspect"] for call in fake.calls()[2:])

    # It dies without being asked to: the exit code is reported and its log kept.
    fake.answer("inspect", stdout=state_json("exited", running=False, exit_code=1,
                                             finished_at="2026-01-01T00:00:01Z"))
    fake.answer("compose", "logs", stdout="FATAL:  could not bind IPv4 address\n")
    assert not runner.running()
    assert runner.pid is None
    assert runner.exit_code() == 1
    assert "could not bind IPv4 address" in component.log_tail()
    assert "exited with code 1" in component.log_file.read_text()


def test_a_requested_stop_is_not_reported_as_an_exit(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend]) -> None:
    component, _ = writer
    runner = runner_of(component)
    fake.answer("compose", "ps", stdout=json.dumps({"ID": "c0ffee", "Service": "rds-writer"}))
    fake.answer("inspect", stdout=state_json("running", running=True, pid=4242))
    runner.start()
    runner.stop(15)
    fake.answer("inspect", stdout=state_json("exited", running=False, exit_code=0))
    assert runner.exit_code() is None
    assert component.health().ok is False


def test_compose_ps_in_the_older_json_array_format(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend]) -> None:
    component, _ = writer
    fake.answer("compose", "ps", stdout=json.dumps(
        [{"ID": "0ther", "Service": "rds-standby"}, {"ID": "c0ffee", "Service": "rds-writer"}]))
    fake.answer("inspect", "c0ffee", stdout=state_json("running", running=True, pid=7))
    assert runner_of(component).pid == 7


def test_no_container_means_not_running(fake: FakeDocker,
                                        writer: tuple[Dummy, ContainerBackend]) -> None:
    component, _ = writer
    runner = runner_of(component)
    assert not runner.running()
    assert runner.pid is None
    assert runner.exit_code() is None


def test_no_engine_means_not_running_rather_than_an_error(
        fake: FakeDocker, writer: tuple[Dummy, ContainerBackend]) -> None:
    fake.answer("info", stderr=ENGINE_DOWN, rc=1)
    component, _ = writer
    assert not runner_of(component).running()
    assert component.health().ok is False
    with pytest.raises(DockerUnavailable, match="without --docker"):
        runner_of(component).start()


def test_localstack_can_play_the_aws_endpoint(fake: FakeDocker, workspace: Workspace) -> None:
    aws = come2us().aws
    backend = ContainerBackend(workspace, service_overrides={aws.node.name: LOCALSTACK_SERVICE})
    component = component_for(aws.node, aws.timeouts, workspace, backend)
    runner_of(component).start()
    assert fake.calls()[-1] == [*compose_prefix(backend), "--profile", "localstack",
                                "up", "-d", "--no-deps", LOCALSTACK_SERVICE]


def test_a_node_without_a_service_is_refused(workspace: Workspace) -> None:
    node = come2us().data.cache_redis.node
    backend = ContainerBackend(workspace, service_overrides={node.name: "no-such-service"})
    with pytest.raises(ComponentError, match="has no service 'no-such-service'"):
        component_for(node, come2us().data.cache_redis.timeouts, workspace, backend)


def test_every_model_node_has_a_runner(workspace: Workspace) -> None:
    backend = ContainerBackend(workspace)
    for node in come2us().backing_nodes():
        assert backend.service_for(node.name) == node.name


def test_without_a_workspace_the_first_components_is_used(fake: FakeDocker,
                                                         workspace: Workspace) -> None:
    cluster = come2us().data.postgres
    backend = ContainerBackend()
    with pytest.raises(ComponentError, match="no workspace yet"):
        backend.down()
    component_for(cluster.writer, cluster.timeouts, workspace, backend)
    assert backend.workspace == workspace
    backend.down()
    assert backend.env_file == workspace.home / "docker" / "compose.env"
    assert backend.env_file.exists()


def test_a_component_of_another_workspace_is_refused(tmp_path: Path,
                                                    workspace: Workspace) -> None:
    cluster = come2us().data.postgres
    backend = ContainerBackend(Workspace(tmp_path / "other"))
    with pytest.raises(ComponentError, match="belongs to workspace"):
        component_for(cluster.writer, cluster.timeouts, workspace, backend)


# -- down and purge --------------------------------------------------------------------------


def test_down_removes_the_projects_containers_including_localstack(
        fake: FakeDocker, workspace: Workspace) -> None:
    backend = ContainerBackend(workspace)
    backend.down()
    assert fake.calls()[-1] == [*compose_prefix(backend), "--profile", "localstack",
                                "down", "--remove-orphans"]


def test_purge_deletes_container_owned_files_from_inside_a_container(
        fake: FakeDocker, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ContainerBackend(workspace)
    (backend.data_dir / "rds-writer").mkdir(parents=True)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    backend.purge()
    assert fake.calls()[-1] == [
        *compose_prefix(backend), "run", "--rm", "--no-deps", "--entrypoint", "find",
        "--volume", f"{backend.data_dir.resolve()}:{PURGE_MOUNT}",
        PURGE_SERVICE, PURGE_MOUNT, "-mindepth", "1", "-delete",
    ]
    assert not backend.data_dir.exists()


def test_purge_as_root_needs_no_container(fake: FakeDocker, workspace: Workspace,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ContainerBackend(workspace)
    (backend.data_dir / "rds-writer").mkdir(parents=True)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    backend.purge()
    assert fake.calls() == []
    assert not backend.data_dir.exists()
