"""`come2us synth`: render an environment's template, write it, and lint it.

The template must stay within CloudFormation's limits: 500 resources, and 1 MB for a template
deployed from S3 (the size CloudFormation accepts inline is 51,200 bytes, so deploys upload it
to the deploy-records bucket first). Past those limits the stack would have to be split into
nested stacks; until then it is one template, which is simpler to review and to deploy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stack.aws import bootstrap
from stack.aws.lint import CheckovReport, Finding, cfn_lint, checkov
from stack.aws.metadata import suppressions
from stack.aws.rollout import Rollout
from stack.aws.template import render, to_json
from stack.model import Platform
from stack.model.environment import Environment

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPOSITORY / "build" / "cloudformation"
MAX_RESOURCES = 500
MAX_TEMPLATE_BYTES = 1_000_000  # from S3
MAX_INLINE_BYTES = 51_200  # TemplateBody


@dataclass(frozen=True)
class Synthesis:
    environment: str
    path: Path
    size: int
    resources: int
    cfn_lint: tuple[Finding, ...]
    checkov: CheckovReport | None  # None: not run (--no-checkov)
    suppressions: tuple[tuple[str, str, str, str], ...]

    @property
    def problems(self) -> list[str]:
        found = [str(finding) for finding in self.cfn_lint]
        if self.checkov is not None:
            found += [str(finding) for finding in self.checkov.failed]
        if self.resources > MAX_RESOURCES:
            found.append(f"{self.resources} resources: CloudFormation allows {MAX_RESOURCES}")
        if self.size > MAX_TEMPLATE_BYTES:
            found.append(f"{self.size} bytes: CloudFormation allows {MAX_TEMPLATE_BYTES}")
        return found


def template_path(out: Path, environment: Environment) -> Path:
    return out / f"{environment.name}.json"


def bootstrap_path(out: Path, environment: Environment) -> Path:
    return out / f"{bootstrap.stack_name(environment).removeprefix('come2us-')}.json"


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` unless the file already holds it: unchanged output keeps its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def write(platform: Platform, environment: Environment, rollout: Rollout, out: Path) -> Path:
    """Render and write the template; the file changes only when the output does."""
    return _write_text(template_path(out, environment),
                       to_json(render(platform, environment, rollout)))


def write_bootstrap(platform: Platform, environment: Environment, out: Path) -> Path:
    return _write_text(bootstrap_path(out, environment),
                       to_json(bootstrap.render(platform, environment)))


def synthesize(platform: Platform, environment: Environment, rollout: Rollout, out: Path,
               run_checkov: bool = True) -> Synthesis:
    return lint(platform, environment, write(platform, environment, rollout, out), run_checkov)


def synthesize_bootstrap(platform: Platform, environment: Environment, out: Path,
                         run_checkov: bool = True) -> Synthesis:
    return lint(platform, environment, write_bootstrap(platform, environment, out), run_checkov)


def lint(platform: Platform, environment: Environment, path: Path,
         run_checkov: bool = True) -> Synthesis:
    rendered = json.loads(path.read_text())
    return Synthesis(
        environment=environment.name,
        path=path,
        size=path.stat().st_size,
        resources=len(rendered["Resources"]),
        cfn_lint=tuple(cfn_lint(path, platform.region.name)),
        checkov=checkov(path) if run_checkov else None,
        suppressions=tuple(suppressions(rendered)),
    )
