"""Test-session wiring: one local cloud for the whole session, always taken down at the end.

By default the session starts its own cloud in a scratch workspace, serving a scratch copy of
config-repo/ (features commit to it), and removes both afterwards. With COME2US_REUSE=1 it uses
the cloud `come2us up` started (default workspace) and leaves it running. COME2US_LOOPBACK_BLOCK
moves the session's cloud to other addresses, so it can run beside one a developer started.
Under CI (CI=true) a skipped test fails the run: a skip must never pass for green.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.come2us import come2us
from stack.local.config_repo import ConfigRepository
from stack.local.services import CONFIG_LABEL_ENV, CONFIG_REPO_ENV
from stack.local.session import CloudSession
from stack.local.workspace import PROJECT_ROOT, Workspace

pytest_plugins = [
    "steps.common",
    "steps.local_cloud",
    "steps.compliance",
    "steps.discovery",
    "steps.configuration",
    "steps.gateway",
    "steps.session",
    "steps.catalogue",
    "steps.cart",
    "steps.seed",
    "steps.ai",
    "steps.promotion",
    "steps.ordering",
    "steps.journey",
    "steps.blue_green",
    "steps.expand_contract",
]


@pytest.fixture(scope="session")
def cloud() -> Iterator[CloudSession]:
    if os.environ.get("COME2US_REUSE") == "1":
        session = CloudSession(Workspace.default())
        session.attach()
        yield session
        session.close()
        return
    clash = _addresses_of_running_default_cloud() & {n.address for n in come2us().nodes()}
    if clash:
        pytest.exit(f"a local cloud started by `come2us up` holds addresses the tests need "
                    f"({', '.join(sorted(clash)[:3])}, …): run `come2us down`, reuse it with "
                    f"COME2US_REUSE=1, or move the tests with COME2US_LOOPBACK_BLOCK=N", 2)
    home = Path(tempfile.mkdtemp(prefix="come2us-test-"))
    repository = ConfigRepository.scratch_copy(PROJECT_ROOT / "config-repo", home / "config")
    session = CloudSession(Workspace(home))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CONFIG_REPO_ENV, str(repository.path))  # the control plane inherits it
        env.setenv(CONFIG_LABEL_ENV, "main")
        try:
            session.start()
            yield session
        finally:
            session.close()
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def config_repository(cloud: CloudSession) -> ConfigRepository:
    """The repository the session's config server serves; features may commit to it."""
    served = os.environ.get(CONFIG_REPO_ENV)
    if not served or Path(served).resolve() == PROJECT_ROOT:
        pytest.fail("this feature commits to the configuration repository, and the running "
                    "cloud serves the project's own: run it in a session-owned cloud (without "
                    "COME2US_REUSE), or start yours with COME2US_CONFIG_REPO=<a scratch repo>")
    return ConfigRepository(Path(served))


def _addresses_of_running_default_cloud() -> set[str]:
    client = CloudSession(Workspace.default()).client
    if not client.is_running():
        return set()
    return {row["address"] for row in client.status()["components"]}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() not in ("1", "true"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; a skip is not a pass.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
