"""The Jenkinsfile, the GitHub Actions workflow and the Dockerfile, tested by reading them.

They cannot run here (no Jenkins, no GitHub, no Docker engine), so every command they call is
checked to exist: each `come2us …` with every option it passes (through its ``--help``), each
`make` target, the build argument the Dockerfile takes, and the order of the stages (§6: lint →
unit → features → images → deploy the new colour → switch → retire the old one).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stack.cli import app

ROOT = Path(__file__).resolve().parents[2]
JENKINSFILE = ROOT / "Jenkinsfile"
WORKFLOW = ROOT / ".github" / "workflows" / "promote.yml"
STAGES = ["lint", "unit", "features", "images", "deploy", "switch", "retire"]


def jenkins_scripts() -> list[str]:
    text = JENKINSFILE.read_text()
    scripts = re.findall(r"sh\s+'''(.*?)'''", text, flags=re.DOTALL)
    scripts += re.findall(r"sh\s+'([^'\n]*)'", text)
    return scripts


def workflow() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def workflow_scripts() -> list[str]:
    jobs = workflow()["jobs"]
    assert isinstance(jobs, dict)
    return [str(step["run"]) for job in jobs.values() for step in job["steps"] if "run" in step]


def commands(scripts: list[str]) -> list[list[str]]:
    """Every `make` and `come2us` invocation, as argv, in order of appearance."""
    found: list[list[str]] = []
    for script in scripts:
        for segment in re.split(r"\||&&|;|\n", script):
            try:
                words = shlex.split(segment.strip())
            except ValueError:
                continue
            if words and (words[0] == "make" or words[0].endswith("come2us")):
                found.append(words)
    return found


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, flags=re.MULTILINE))


@pytest.mark.parametrize("source", ["Jenkinsfile", "workflow"])
def test_every_command_a_pipeline_calls_exists_with_the_options_it_passes(source: str) -> None:
    scripts = jenkins_scripts() if source == "Jenkinsfile" else workflow_scripts()
    found = commands(scripts)
    called = {argv[1] for argv in found if argv[0].endswith("come2us")}
    assert {"images", "deploy", "switch", "retire"} <= called, called
    runner = CliRunner()
    for argv in found:
        if argv[0] == "make":
            assert argv[1] in make_targets(), f"{source}: make {argv[1]} is not a target"
            continue
        path = [w for w in argv[1:] if not w.startswith("-") and not w.startswith("$")]
        options = [w for w in argv[1:] if w.startswith("-")]
        # Subcommand words come first; the rest are option values.
        subcommand = path[:2] if path[:2] in (["deploy", "history"],
                                              ["deploy", "bootstrap"]) else path[:1]
        result = runner.invoke(app, [*subcommand, "--help"])
        assert result.exit_code == 0, f"{source}: come2us {' '.join(subcommand)}: {result.output}"
        for option in options:
            assert option in result.output, f"{source}: come2us {subcommand} has no {option}"


def stage_of(text: str) -> str | None:
    lowered = text.lower()
    for stage in STAGES:
        if stage in lowered or (stage == "images" and "push" in lowered):
            return stage
    return None


def test_the_jenkins_stages_run_in_the_seeds_order() -> None:
    names = re.findall(r"stage\('([^']+)'\)", JENKINSFILE.read_text())
    assert [stage_of(name) for name in names] == STAGES, names


def test_the_workflow_runs_the_same_stages_in_order() -> None:
    jobs = workflow()["jobs"]
    assert isinstance(jobs, dict)
    assert list(jobs) == ["checks", "images", "promote"]
    assert jobs["images"]["needs"] == "checks" and jobs["promote"]["needs"] == "images"
    names = [str(step.get("name", "")) for job in jobs.values() for step in job["steps"]]
    stages = [stage for name in names if (stage := stage_of(name)) is not None]
    assert [s for i, s in enumerate(stages) if s not in stages[:i]] == STAGES, names


def test_the_deploy_stage_stops_once_the_new_colour_is_healthy() -> None:
    for found in (commands(jenkins_scripts()), commands(workflow_scripts())):
        deploys = [argv for argv in found
                   if "deploy" in argv and not {"history", "bootstrap"} & set(argv)]
        assert len(deploys) == 1
        assert deploys[0][deploys[0].index("--until") + 1] == "healthy"
        assert deploys[0][deploys[0].index("--target") + 1] == "aws"


def test_one_dockerfile_builds_any_service_from_its_module() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG SERVICE$", text, flags=re.MULTILINE)
    assert 'python -m \\"$COME2US_SERVICE_MODULE\\"' in text
    assert re.search(r"^USER \d+$", text, flags=re.MULTILINE), "the image must not run as root"
    for script in (*jenkins_scripts(), *workflow_scripts()):
        if "docker build" in script:
            assert '--build-arg SERVICE="$module"' in script
