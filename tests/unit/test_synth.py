"""`come2us synth` for every environment: written, cfn-lint clean, checkov clean or justified.

cfn-lint runs in-process (about 2.5 s a template). checkov runs from tools/checkov/.venv in
about 6 s, so one run on the largest template (prod, both colours) is part of the unit tests;
without that virtualenv (`make setup` installs it) the checkov test is skipped, which fails a
CI run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stack.aws.lint import CHECKOV, checkov
from stack.aws.rollout import Rollout
from stack.aws.synth import write, write_bootstrap
from stack.cli import app
from stack.come2us import ENVIRONMENTS, come2us, environment
from stack.model.edge import Colour


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_synth_writes_a_cfn_lint_clean_template(name: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--env", name, "--no-checkov",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = tmp_path / f"{name}.json"
    assert json.loads(written.read_text())["Metadata"]["Come2us"]["Environment"] == name
    assert "cfn-lint: 0 finding(s)" in result.output
    assert re.search(r"\d+ resources, [\d,]+ bytes", result.output)


def test_synth_refuses_an_unknown_environment_and_a_bad_release(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["synth", "--env", "qa", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "known: dev, stage, prod" in unknown.output
    bad = runner.invoke(app, ["synth", "--env", "dev", "--release", "purple=v1",
                              "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "COLOUR=TAG" in bad.output


def test_synth_is_byte_stable_on_disk(tmp_path: Path) -> None:
    rollout = Rollout.only(Colour.GREEN)
    path = write(come2us(), environment("stage"), rollout, tmp_path)
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    assert write(come2us(), environment("stage"), rollout, tmp_path) == path
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp  # not rewritten


@pytest.mark.skipif(not CHECKOV.exists(), reason="tools/checkov/.venv missing: run make setup")
def test_checkov_passes_with_every_suppression_justified(tmp_path: Path) -> None:
    path = write(come2us(), environment("prod"), Rollout.both(Colour.BLUE), tmp_path)
    bootstrap = write_bootstrap(come2us(), environment("prod"), tmp_path)
    reports = [checkov(path), checkov(bootstrap)]
    for report in reports:
        assert report.failed == (), [str(f) for f in report.failed]
        assert report.skipped and all(len(f.message) > 30 for f in report.skipped)
    assert sum(report.passed for report in reports) > 300
