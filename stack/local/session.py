"""A local cloud owned by one caller — the test session or a benchmark — from up to down.

`come2us up` leaves its control plane running for the user; a test session instead keeps the
control plane as its own child, so it can reap it and is sure to take everything down.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from stack.local.controlplane import ControlPlaneClient, ControlPlaneError, spawn
from stack.local.processes import alive
from stack.local.workspace import Workspace
from stack.waiting import wait_for

UP_TIMEOUT_S = 240.0
EXIT_TIMEOUT_S = 60.0


class NotReady(ControlPlaneError):
    """Some components did not become ready; the message lists them with what they said."""


def require_ready(report: dict[str, Any]) -> dict[str, Any]:
    """The report, if every component is ready and the serving colour's tasks are healthy."""
    broken = [row for row in report["components"] if row["state"] != "ready"]
    lines = [f"{row['name']} ({row['state']}): {row['detail']}" for row in broken]
    platform = report.get("platform")
    if platform is not None and not platform["ready"]:
        lines.append(f"tasks: {platform['detail']}")
    if lines:
        raise NotReady("the local cloud is not ready:\n" + "\n".join(lines))
    return report


class CloudSession:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.client = ControlPlaneClient(workspace)
        self._process: subprocess.Popen[bytes] | None = None
        self.owned = False
        self.last_up_seconds: float | None = None
        self.last_down_seconds: float | None = None

    def start(self, timeout: float = UP_TIMEOUT_S) -> dict[str, Any]:
        """Start a control plane of our own, bring every component up, fail unless all ready."""
        if self.client.is_running():
            raise ControlPlaneError(
                f"a local cloud already runs for {self.workspace.home}; stop it with "
                f"`come2us down`, or reuse it (COME2US_REUSE=1)"
            )
        began = time.monotonic()
        self.owned = True
        self._process = spawn(self.workspace)
        self.client.up()
        report = require_ready(self.client.wait_started(timeout))
        self.last_up_seconds = time.monotonic() - began
        return report

    def attach(self) -> dict[str, Any]:
        """Use a cloud that `come2us up` started; it is left running at the end."""
        if not self.client.is_running():
            raise ControlPlaneError(
                f"COME2US_REUSE=1 asks to reuse a running local cloud, but none runs for "
                f"{self.workspace.home}; start one with `come2us up`"
            )
        return require_ready(self.client.wait_started(UP_TIMEOUT_S))

    def restart(self, timeout: float = UP_TIMEOUT_S) -> dict[str, Any]:
        """Down and up again, keeping the data directories; a reused cloud stays the user's."""
        owned = self.owned
        if owned:
            self.stop()
        else:
            pid = self.client.pid()
            self.client.down()
            if pid is not None:
                wait_for(lambda: (True if not alive(pid) else None, f"pid {pid} alive"),
                         timeout=EXIT_TIMEOUT_S, what="control plane exit")
        try:
            return self.start(timeout)
        finally:
            self.owned = owned

    def stop(self) -> None:
        """Take everything down and reap the control plane; safe to call twice."""
        if not self.owned:
            return
        began = time.monotonic()
        try:
            if self.client.is_running():
                self.client.down()
        finally:
            if self._process is not None:
                try:
                    self._process.wait(timeout=EXIT_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                self._process = None
        self.last_down_seconds = time.monotonic() - began

    def close(self) -> None:
        self.stop()
        self.client.close()
