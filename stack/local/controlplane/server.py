"""The control plane's HTTP API, served on a Unix socket inside the workspace.

A socket file rather than a TCP port: nothing to collide with, reachable only by users who can
read the workspace, and its path says which local cloud it belongs to.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stack.come2us import come2us
from stack.local.alb.targets import LoadBalancer
from stack.local.backend import Backend, ProcessBackend
from stack.local.cloud import LocalCloud
from stack.local.processes import alive
from stack.local.tasks.plane import TaskPlane
from stack.local.workspace import Workspace
from stack.model.edge import Colour

WATCH_INTERVAL_S = 0.5
ACTIONS = ("start", "stop", "kill", "restart")
TASK_ACTIONS = ("stop", "kill")


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "error": error, "message": message}, status_code=status)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    """An unknown task, colour or service, or a request that makes no sense: 400/404."""
    status = 404 if isinstance(exc, LookupError) else 400
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return _error(status, "refused", str(message))


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; anything else is refused (400) saying what was expected."""
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, example: str) -> Any:
    """``body[name]`` of type ``kind``, or a 400 naming the field and an example."""
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"the body needs {name!r} ({kind.__name__}), e.g. {example}")
    return value


def _colour(value: str) -> Colour:
    try:
        return Colour(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a colour: use one of "
                         f"{', '.join(c.value for c in Colour)}") from None


async def _failed(request: Request, exc: Exception) -> JSONResponse:
    return _error(500, "failed", str(exc))


class ControlPlane:
    """The cloud, its tasks, the thread that brings them up, and the watcher of crashes."""

    def __init__(self, cloud: LocalCloud, backend_name: str,
                 tasks: Callable[[], TaskPlane] | None = None) -> None:
        """``tasks`` makes the task plane once the ALB it needs runs (None: components only,
        how unit tests supervise fakes)."""
        self.cloud = cloud
        self.backend_name = backend_name
        self.server: uvicorn.Server | None = None
        self._make_tasks = tasks
        self.tasks: TaskPlane | None = None
        self._up_thread: threading.Thread | None = None
        self._stop_watching = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="watcher", daemon=True)

    @property
    def starting(self) -> bool:
        return self._up_thread is not None and self._up_thread.is_alive()

    def begin_up(self) -> bool:
        if self.starting:
            return False
        self._up_thread = threading.Thread(target=self._up, name="up", daemon=True)
        self._up_thread.start()
        return True

    def _up(self) -> None:
        """The components, then the serving colour's tasks (`TaskPlane.bring_up`)."""
        if not self.cloud.up() or self._make_tasks is None:
            return
        try:
            if self.tasks is None:
                self.tasks = self._make_tasks()
            health = self.tasks.bring_up()
        except Exception as err:  # reported like a component's failure
            self.cloud.record_event("tasks", f"failed to start: {type(err).__name__}: {err}")
            return
        if not health.healthy:
            self.cloud.record_event("tasks", f"not healthy: {health.detail}")

    def _watch(self) -> None:
        while not self._stop_watching.wait(WATCH_INTERVAL_S):
            self.cloud.watch_once()

    def shut_down(self) -> None:
        self._stop_watching.set()
        if self._up_thread is not None:
            self._up_thread.join()
        if self.tasks is not None:
            self.tasks.shutdown()  # the tasks first: they use every component
        self.cloud.down()

    def _plane(self) -> TaskPlane:
        if self.tasks is None:
            raise LookupError("no task runs yet: the local cloud is still starting (or failed "
                              "to); see `come2us status`")
        return self.tasks

    # -- routes ---------------------------------------------------------------------------

    async def status(self, request: Request) -> JSONResponse:
        rows = await run_in_threadpool(self.cloud.status)
        tasks = await run_in_threadpool(self.tasks.status) if self.tasks is not None else None
        if tasks is None and self._make_tasks is not None:
            tasks = {"platform": {"ready": False, "detail": "no task runs yet"}}
        return JSONResponse({
            "pid": os.getpid(),
            "home": str(self.cloud.workspace.home),
            "backend": self.backend_name,
            "starting": self.starting,
            "components": [asdict(row) for row in rows],
            **(tasks or {}),
            "events": [asdict(event) for event in self.cloud.events()[-40:]],
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
        if name not in self.cloud.components and self.tasks is not None \
                and action in TASK_ACTIONS:
            return await self.task(request)
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

    # -- tasks and colours (see stack.local.tasks.plane) -----------------------------------

    async def task(self, request: Request) -> JSONResponse:
        """Stop a task (drained, like a scale-in) or kill it (a crashed container)."""
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in TASK_ACTIONS:
            return _error(400, "unknown action", f"{action!r} is not one of {TASK_ACTIONS}")
        plane = self._plane()
        act = plane.runner.kill_task if action == "kill" else plane.runner.stop_task
        await run_in_threadpool(act, name)
        return JSONResponse({"name": name, "state": "killed" if action == "kill"
                             else "stopping"})

    async def deployment(self, request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(self._plane().deployment))

    async def deploy_colour(self, request: Request) -> JSONResponse:
        """Record the release and make it the colour's desired state (② of §7-1)."""
        colour = _colour(request.path_params["colour"])
        body = await _json_body(request)
        version = _field(body, "version", str, '{"version": "v2"}')
        plane = self._plane()
        directory = body.get("directory")
        release = await run_in_threadpool(
            plane.record_release, version,
            Path(directory) if directory else None, tuple(body.get("faults") or ()))
        await run_in_threadpool(plane.deploy, colour, release)
        return JSONResponse({"colour": colour, "release": release.view()}, status_code=202)

    async def retire_colour(self, request: Request) -> JSONResponse:
        """⑤: every task of the colour drains and stops; answers once they have."""
        colour = _colour(request.path_params["colour"])
        await run_in_threadpool(self._plane().retire, colour)
        return JSONResponse({"colour": colour, "retired": True})

    async def colour_health(self, request: Request) -> JSONResponse:
        """③: the colour's health now, or with ``?wait=S`` once it is healthy and routable
        (every gateway has fetched the registry), its circuit breaker opened, or S passed."""
        colour = _colour(request.path_params["colour"])
        try:
            wait = float(request.query_params.get("wait", 0))
        except ValueError:
            raise ValueError("?wait= takes seconds, e.g. ?wait=90") from None
        plane = self._plane()
        health = await run_in_threadpool(
            lambda: plane.wait_healthy(colour, wait, routable=True) if wait
            else plane.runner.colour_health(colour))
        return JSONResponse(asdict(health))

    async def switch(self, request: Request) -> JSONResponse:
        """④: the listener forwards to the colour from the next request on."""
        colour = _colour(_field(await _json_body(request), "colour", str, '{"colour": "green"}'))
        await run_in_threadpool(self._plane().switch, colour)
        return JSONResponse({"active": colour})

    async def scale(self, request: Request) -> JSONResponse:
        service, colour = request.path_params["service"], _colour(request.path_params["colour"])
        count = _field(await _json_body(request), "count", int, '{"count": 2}')
        await run_in_threadpool(self._plane().runner.scale, service, colour, count)
        return JSONResponse({"service": service, "colour": colour, "count": count})

    async def replace(self, request: Request) -> JSONResponse:
        """Replace a service's tasks (the serving colour's, unless the body names one) and
        answer once the colour is healthy and routable again."""
        body = await _json_body(request)
        colour = _colour(body["colour"]) if body.get("colour") else None
        replaced = await run_in_threadpool(self._plane().replace,
                                           request.path_params["service"], colour)
        return JSONResponse({"replaced": replaced})

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
            Route("/v1/tasks/{name}/{action}", self.task, methods=["POST"]),
            Route("/v1/deployment", self.deployment, methods=["GET"]),
            Route("/v1/colours/{colour}", self.deploy_colour, methods=["POST"]),
            Route("/v1/colours/{colour}", self.retire_colour, methods=["DELETE"]),
            Route("/v1/colours/{colour}/health", self.colour_health, methods=["GET"]),
            Route("/v1/listener", self.switch, methods=["POST"]),
            Route("/v1/services/{service}/{colour}", self.scale, methods=["PUT"]),
            Route("/v1/services/{service}/replace", self.replace, methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan,
                         exception_handlers={LookupError: _refused, ValueError: _refused,
                                             RuntimeError: _failed})


def running_control_plane(workspace: Workspace) -> int | None:
    """The pid of a live control plane for this workspace, if there is one."""
    try:
        pid = int(workspace.control_pidfile.read_text())
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and alive(pid) else None


def alb_of(cloud: LocalCloud) -> LoadBalancer:
    """The load balancer the cloud's ALB component drives (HAProxy's runtime API)."""
    component = cloud.components[cloud.model.load_balancer.name]
    balancer: LoadBalancer = component.balancer  # type: ignore[attr-defined]
    return balancer


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
        model = come2us()
        cloud = LocalCloud(model, workspace, make_backend(backend_name))
        cloud.clean_orphans()
        plane = ControlPlane(cloud, backend_name, tasks=lambda: TaskPlane(
            model, workspace, alb_of(cloud), cloud.record_event))
        config = uvicorn.Config(plane.app(), uds=str(socket), log_level="warning",
                                access_log=False, lifespan="on")
        plane.server = uvicorn.Server(config)
        plane.server.run()
    finally:
        socket.unlink(missing_ok=True)
        workspace.control_pidfile.unlink(missing_ok=True)

