"""The control plane's HTTP API, served on a Unix socket inside the workspace.

A socket file rather than a TCP port: nothing to collide with, reachable only by users who can
read the workspace, and its path says which local cloud it belongs to.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stack.come2us import come2us
from stack.local.backend import Backend, ProcessBackend
from stack.local.cloud import LocalCloud
from stack.local.processes import alive
from stack.local.workspace import Workspace

WATCH_INTERVAL_S = 0.5
ACTIONS = ("start", "stop", "kill", "restart")


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "error": error, "message": message}, status_code=status)


class ControlPlane:
    """The cloud, the thread that brings it up, and the watcher that notices crashes."""

    def __init__(self, cloud: LocalCloud, backend_name: str) -> None:
        self.cloud = cloud
        self.backend_name = backend_name
        self.server: uvicorn.Server | None = None
        self._up_thread: threading.Thread | None = None
        self._stop_watching = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="watcher", daemon=True)

    @property
    def starting(self) -> bool:
        return self._up_thread is not None and self._up_thread.is_alive()

    def begin_up(self) -> bool:
        if self.starting:
            return False
        self._up_thread = threading.Thread(target=self.cloud.up, name="up", daemon=True)
        self._up_thread.start()
        return True

    def _watch(self) -> None:
        while not self._stop_watching.wait(WATCH_INTERVAL_S):
            self.cloud.watch_once()

    def shut_down(self) -> None:
        self._stop_watching.set()
        if self._up_thread is not None:
            self._up_thread.join()
        self.cloud.down()

    # -- routes ---------------------------------------------------------------------------

    async def status(self, request: Request) -> JSONResponse:
        rows = await run_in_threadpool(self.cloud.status)
        return JSONResponse({
            "pid": os.getpid(),
            "home": str(self.cloud.workspace.home),
            "backend": self.backend_name,
            "starting": self.starting,
            "components": [asdict(row) for row in rows],
            "events": [asdict(event) for event in self.cloud.events()[-20:]],
        })

    async def up(self, request: Request) -> JSONResponse:
        began = self.begin_up()
        return JSONResponse({"starting": True, "already": not began}, status_code=202)

    async def down(self, request: Request) -> JSONResponse:
        await run_in_threadpool(self.shut_down)
        if self.server is not None:
            self.server.should_exit = True
        return JSONResponse({"stopped": list(self.cloud.components)})

    async def component(self, request: Request) -> JSONResponse:
        name, action = request.path_params["name"], request.path_params["action"]
        if name not in self.cloud.components:
            return _error(404, "unknown component",
                          f"no component named {name!r}; known: {sorted(self.cloud.components)}")
        if action not in ACTIONS:
            return _error(400, "unknown action", f"{action!r} is not one of {ACTIONS}")
        if action in ("stop", "restart"):
            await run_in_threadpool(self.cloud.stop_component, name)
        if action == "kill":
            await run_in_threadpool(self.cloud.kill_component, name)
        if action in ("start", "restart"):
            await run_in_threadpool(self.cloud.up)
        return JSONResponse({"name": name, "state": self.cloud.state(name)})

    def app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self._watcher.start()
            yield
            await run_in_threadpool(self.shut_down)

        routes = [
            Route("/v1/status", self.status, methods=["GET"]),
            Route("/v1/up", self.up, methods=["POST"]),
            Route("/v1/down", self.down, methods=["POST"]),
            Route("/v1/components/{name}/{action}", self.component, methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)


def running_control_plane(workspace: Workspace) -> int | None:
    """The pid of a live control plane for this workspace, if there is one."""
    try:
        pid = int(workspace.control_pidfile.read_text())
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and alive(pid) else None


def make_backend(name: str) -> Backend:
    if name == "docker":
        from stack.local.containers import ContainerBackend

        backend = ContainerBackend()
        backend.require()
        return backend
    return ProcessBackend()


def serve(workspace: Workspace, backend_name: str) -> None:
    workspace.ensure()
    holder = running_control_plane(workspace)
    if holder is not None:
        raise SystemExit(f"a control plane (pid {holder}) already serves {workspace.home}")
    socket = workspace.control_socket
    socket.unlink(missing_ok=True)
    workspace.control_pidfile.write_text(str(os.getpid()))
    try:
        cloud = LocalCloud(come2us(), workspace, make_backend(backend_name))
        cloud.clean_orphans()
        plane = ControlPlane(cloud, backend_name)
        config = uvicorn.Config(plane.app(), uds=str(socket), log_level="warning",
                                access_log=False, lifespan="on")
        plane.server = uvicorn.Server(config)
        plane.server.run()
    finally:
        socket.unlink(missing_ok=True)
        workspace.control_pidfile.unlink(missing_ok=True)

