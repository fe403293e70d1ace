"""`come2us deploy|switch|retire|images`: refusals and help, without a cloud."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stack.cli import app
from stack.cli_deploy import EXIT_REFUSED


@pytest.mark.parametrize("argv", [
    ["deploy", "--help"], ["deploy", "bootstrap", "--help"], ["deploy", "history", "--help"],
    ["deploy", "status", "--help"],
    ["deploy", "restore", "--help"], ["deploy", "reset", "--help"], ["switch", "--help"],
    ["retire", "--help"], ["images", "--help"],
])
def test_every_promotion_command_has_help(argv: list[str]) -> None:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output


def test_deploy_needs_a_target_and_a_known_environment() -> None:
    runner = CliRunner()
    no_target = runner.invoke(app, ["deploy", "--env", "dev"])
    assert no_target.exit_code == EXIT_REFUSED and "--target is required" in no_target.output
    unknown = runner.invoke(app, ["deploy", "--target", "emulator", "--env", "qa"])
    assert unknown.exit_code == EXIT_REFUSED and "known: dev, stage, prod" in unknown.output


def test_the_emulator_must_be_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COME2US_LOOPBACK_BLOCK", "251")  # nothing listens there
    from stack.come2us import come2us_on_block

    assert come2us_on_block(251).aws.url == "http://127.251.3.10:4566"
    result = CliRunner().invoke(app, ["deploy", "--target", "emulator", "--env", "dev"])
    assert result.exit_code == EXIT_REFUSED
    assert "does not answer at http://127.251.3.10:4566" in result.output
    assert "come2us up" in result.output


def test_reset_is_for_the_emulator_only() -> None:
    result = CliRunner().invoke(app, ["deploy", "reset", "--target", "aws"])
    assert result.exit_code == EXIT_REFUSED and "emulator only" in result.output


def test_images_lists_each_services_module_and_repository() -> None:
    result = CliRunner().invoke(app, ["images", "--env", "stage", "--plain"])
    assert result.exit_code == 0
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert ["gateway", "services.gateway", "come2us-stage/gateway"] in lines
    assert len(lines) == 8
