"""Test-session wiring: one local cloud for the whole session, always taken down at the end.

By default the session starts its own cloud in a scratch workspace and removes it afterwards.
With COME2US_REUSE=1 it uses the cloud `come2us up` started (default workspace) and leaves it
running. Under CI (CI=true) a skipped test fails the run: a skip must never pass for green.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.local.session import CloudSession
from stack.local.workspace import Workspace

pytest_plugins = ["steps.local_cloud", "steps.compliance"]


@pytest.fixture(scope="session")
def cloud() -> Iterator[CloudSession]:
    if os.environ.get("COME2US_REUSE") == "1":
        session = CloudSession(Workspace.default())
        session.attach()
        yield session
        session.close()
        return
    if CloudSession(Workspace.default()).client.is_running():
        pytest.exit("a local cloud started by `come2us up` is running and holds the addresses "
                    "the tests need: run `come2us down`, or reuse it with COME2US_REUSE=1", 2)
    home = Path(tempfile.mkdtemp(prefix="come2us-test-"))
    session = CloudSession(Workspace(home))
    try:
        session.start()
        yield session
    finally:
        session.close()
        shutil.rmtree(home, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() not in ("1", "true"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; a skip is not a pass.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
