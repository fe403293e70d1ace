"""cfn-lint and checkov on a written template: the two gates `come2us synth` passes.

cfn-lint runs in-process (it is a dependency). checkov runs from its own virtualenv,
tools/checkov/.venv, because it pins boto3 and packaging to versions that conflict with this
project's (tools/checkov/requirements.txt; `make setup` installs it). Both tools honour the
suppressions in the template's metadata, each of which carries its reason
(`stack.aws.metadata`).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cfnlint.api import ManualArgs, lint_file

REPOSITORY = Path(__file__).resolve().parents[2]
CHECKOV = REPOSITORY / "tools" / "checkov" / ".venv" / "bin" / "checkov"


@dataclass(frozen=True)
class Finding:
    tool: str
    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.tool} {self.check} {self.where}: {self.message}"


def cfn_lint(path: Path, region: str) -> list[Finding]:
    matches = lint_file(path, ManualArgs(regions=[region]))
    return [Finding("cfn-lint", match.rule.id, f"{path.name}:{match.linenumber}",
                    match.message) for match in matches]


class CheckovUnavailable(RuntimeError):
    """checkov's virtualenv is missing; the message says how to install it."""


@dataclass(frozen=True)
class CheckovReport:
    passed: int
    failed: tuple[Finding, ...]
    skipped: tuple[Finding, ...]  # suppressions checkov honoured, with their reasons


def checkov(path: Path, executable: Path = CHECKOV, timeout_s: float = 300.0) -> CheckovReport:
    if not executable.exists():
        raise CheckovUnavailable(f"{executable} is missing: run `make setup` (it installs "
                                 f"checkov from tools/checkov/requirements.txt), or pass "
                                 f"--no-checkov to skip it knowingly")
    # --skip-download: no call to the vendor's platform; the checks ship with checkov.
    argv = [str(executable), "--file", str(path), "--framework", "cloudformation",
            "--skip-download", "--output", "json", "--compact"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout)
    results = report.get("results", {})

    def findings(key: str, message_key: str) -> tuple[Finding, ...]:
        return tuple(
            Finding("checkov", check["check_id"], check["resource"],
                    str(check.get(message_key) or check.get("check_name", "")))
            for check in results.get(key, []))

    return CheckovReport(passed=int(report.get("summary", {}).get("passed", 0)),
                         failed=findings("failed_checks", "check_name"),
                         skipped=findings("skipped_checks", "suppress_comment"))
