"""Steps of features/customer_journey.feature: run the README's walkthrough script as written."""

from __future__ import annotations

import os
import subprocess

from pytest_bdd import then, when

from stack.local.workspace import PROJECT_ROOT
from steps.common import Scene

WALKTHROUGH = PROJECT_ROOT / "tools" / "walkthrough.sh"
TIMEOUT_S = 120


@when("the README's walkthrough runs against the local cloud's gateway")
def run_walkthrough(scene: Scene) -> None:
    scene.values["run"] = subprocess.run(
        ["bash", str(WALKTHROUGH)], env={**os.environ, "GATEWAY": scene.model.load_balancer.url},
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


@then("it finishes without an error and the order ends REFUNDED")
def walkthrough_succeeded(scene: Scene) -> None:
    run: subprocess.CompletedProcess[str] = scene.values["run"]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert run.stdout.rstrip().endswith("REFUNDED"), run.stdout
