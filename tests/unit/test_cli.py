"""The `come2us` command without a running cloud: each refusal says what is wrong and what to do.

COME2US_HOME points at an empty folder, so no command can reach (or disturb) a real local cloud.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from stack.cli import EXIT_NOT_RUNNING, app
from stack.come2us import come2us
from stack.local.endpoints import endpoints
from stack.local.postgres import ADMIN_SECRET
from stack.local.workspace import HOME_ENV, Workspace


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run(home: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env={HOME_ENV: str(home), **env})


def said(text: str) -> str:
    """The output as one line: rich wraps long messages."""
    return re.sub(r"\s+", " ", text)


def test_status_without_a_cloud_exits_3_and_says_to_run_up(home: Path) -> None:
    result = run(home, "status")

    assert result.exit_code == EXIT_NOT_RUNNING == 3
    message = said(result.stderr)
    assert f"the local cloud is not running for {home}" in message
    assert "start it with `come2us up`" in message


def test_logs_of_an_unknown_component_exits_2_naming_the_known_ones(home: Path) -> None:
    result = run(home, "logs", "nosuch")

    assert result.exit_code == 2
    message = said(result.stderr)
    assert "no component or task named 'nosuch'" in message
    for node in come2us().nodes():
        assert node.name in message


def test_logs_of_a_component_never_started_exits_2_naming_the_file(home: Path) -> None:
    result = run(home, "logs", "cache-redis")

    assert result.exit_code == 2
    message = said(result.stderr)
    assert f"{home / 'logs' / 'cache-redis.log'} does not exist yet" in message
    assert "cache-redis has not been started" in message


def test_env_exports_every_endpoint_with_the_workspace_password(home: Path) -> None:
    result = run(home, "env")

    assert result.exit_code == 0, result.output
    exported = {}
    for line in result.stdout.splitlines():
        export, assignment = shlex.split(line)
        assert export == "export"
        variable, value = assignment.split("=", 1)
        exported[variable] = value
    workspace = Workspace(home)
    expected = {e.variable: e.value for e in endpoints(come2us(), workspace, reveal=True)}
    assert exported == expected
    password = workspace.secret(ADMIN_SECRET)
    assert f":{password}@" in exported["COME2US_DATABASE_URL"]
    assert f":{password}@" in exported["COME2US_DATABASE_READER_URL"]
    assert (home / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_env_keeps_the_password_across_calls(home: Path) -> None:
    first, second = run(home, "env"), run(home, "env")

    assert first.stdout == second.stdout


def test_up_with_docker_but_no_engine_exits_2_and_says_to_run_without_it(
        home: Path, tmp_path: Path) -> None:
    # Point the docker CLI at a socket nobody serves, so no engine answers on any machine.
    result = run(home, "up", "--docker", DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")

    assert result.exit_code == 2
    message = said(result.stderr)
    assert "--docker was asked for, but" in message
    assert "found no Docker engine" in message
    assert "run `come2us up` without --docker" in message
    assert not (home / "run").exists(), "no control plane was started"
