"""Talking to the control plane, and starting one when none runs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from stack.local.processes import alive
from stack.local.workspace import PROJECT_ROOT, Workspace
from stack.waiting import DeadlineExceeded, wait_for

SPAWN_TIMEOUT_S = 20.0


class ControlPlaneError(RuntimeError):
    """The control plane is absent, refused a request, or could not be started."""


class ControlPlaneClient:
    def __init__(self, workspace: Workspace, timeout: float = 60.0) -> None:
        self.workspace = workspace
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(workspace.control_socket)),
            base_url="http://controlplane",
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_running(self) -> bool:
        if not self.workspace.control_socket.exists():
            return False
        try:
            self._http.get("/v1/status", timeout=30.0).raise_for_status()
        except httpx.HTTPError:
            return False
        return True

    def _call(self, method: str, path: str, timeout: float | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.workspace.control_socket.exists():
            raise ControlPlaneError(
                f"the local cloud is not running (no control plane socket at "
                f"{self.workspace.control_socket}); start it with `come2us up`"
            )
        try:
            response = self._http.request(method, path, timeout=timeout or self._http.timeout,
                                          json=body)
        except httpx.HTTPError as err:
            raise ControlPlaneError(f"the control plane did not answer {path}: {err}") from err
        answer: dict[str, Any] = response.json()
        if response.status_code >= 400:
            raise ControlPlaneError(answer.get("message", response.text))
        return answer

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def up(self) -> dict[str, Any]:
        return self._call("POST", "/v1/up")

    def down(self) -> dict[str, Any]:
        return self._call("POST", "/v1/down", timeout=300.0)

    def component(self, name: str, action: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/components/{name}/{action}", timeout=300.0)

    # -- tasks and colours (stack.local.tasks.plane) --------------------------------------

    def task(self, task_id: str, action: str) -> dict[str, Any]:
        """``stop`` (drained, then SIGTERM) or ``kill`` (SIGKILL: a crashed container)."""
        return self._call("POST", f"/v1/tasks/{task_id}/{action}")

    def deployment(self) -> dict[str, Any]:
        """``{"active": colour, "colours": {colour: release label}}``."""
        return self._call("GET", "/v1/deployment")

    def deploy_colour(self, colour: str, version: str, directory: str | None = None,
                      faults: tuple[str, ...] = ()) -> dict[str, Any]:
        return self._call("POST", f"/v1/colours/{colour}", body={
            "version": version, "directory": directory, "faults": list(faults)})

    def retire_colour(self, colour: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/colours/{colour}", timeout=300.0)

    def colour_health(self, colour: str, wait_s: float = 0.0) -> dict[str, Any]:
        """``{"healthy", "detail", "failed_tasks"}``; with ``wait_s``, once healthy and
        routable, once the deploy's circuit breaker opens, or after ``wait_s``."""
        return self._call("GET", f"/v1/colours/{colour}/health?wait={wait_s:g}",
                          timeout=wait_s + 30.0)

    def switch(self, colour: str) -> dict[str, Any]:
        return self._call("POST", "/v1/listener", body={"colour": colour})

    def scale(self, service: str, colour: str, count: int) -> dict[str, Any]:
        return self._call("PUT", f"/v1/services/{service}/{colour}", body={"count": count})

    def replace(self, service: str, colour: str | None = None) -> dict[str, Any]:
        """Replace a service's tasks; returns once they are healthy and routable again."""
        return self._call("POST", f"/v1/services/{service}/replace", timeout=300.0,
                          body={"colour": colour})

    def wait_started(self, timeout: float,
                     on_report: Callable[[dict[str, Any]], None] | None = None
                     ) -> dict[str, Any]:
        """Poll the status until the control plane has finished starting; return the last one."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.status()
            if on_report is not None:
                on_report(report)
            if not report["starting"]:
                return report
            if time.monotonic() > deadline:
                waiting = [r["name"] for r in report["components"] if r["state"] == "starting"]
                raise ControlPlaneError(f"still starting after {timeout:g} s: {waiting}")
            time.sleep(0.2)

    def pid(self) -> int | None:
        try:
            pid = int(self.workspace.control_pidfile.read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None


def spawn(workspace: Workspace, backend: str = "process") -> subprocess.Popen[bytes]:
    """Start a control plane for ``workspace`` in its own session and wait until it answers.

    The caller may drop the returned handle (`come2us up` does: the control plane outlives
    it) or keep it to reap the process at the end (the test session does).
    """
    workspace.ensure()
    log = (workspace.logs / "controlplane.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "stack.local.controlplane", "--home", str(workspace.home),
         "--backend", backend],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        cwd=PROJECT_ROOT, start_new_session=True,
    )
    log.close()
    client = ControlPlaneClient(workspace)

    def answering() -> tuple[bool | None, str]:
        code = process.poll()
        if code is not None:
            tail = (workspace.logs / "controlplane.log").read_text(errors="replace")
            raise ControlPlaneError(
                f"the control plane exited with code {code} while starting:\n"
                + "\n".join(tail.splitlines()[-15:])
            )
        return (True if client.is_running() else None), "socket not answering yet"

    try:
        wait_for(answering, timeout=SPAWN_TIMEOUT_S, what="control plane answering", interval=0.1)
    except DeadlineExceeded as err:
        process.terminate()
        raise ControlPlaneError(str(err)) from err
    finally:
        client.close()
    return process
