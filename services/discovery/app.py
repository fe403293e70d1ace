"""The discovery server's HTTP face: Eureka's REST API under ``/eureka``, plus health.

Routes only translate HTTP to registry calls and back; the rules live in `registry`, the
formats in `codec`, replication in `replication`. Status codes are Eureka's, because clients
act on them: 204 for a registration, 404 for a heartbeat of an unknown instance (the client then
registers again), 200 for everything else that worked. A 404 for an unknown application or
instance has no body, as Eureka's (see `not_found`); other errors — bad input, unknown routes —
carry a JSON body ``{"status", "error", "message", "request_id"}``.

    create_app(DiscoverySettings(port=8761))  # then serve with uvicorn (see __main__)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.logs import RequestIdMiddleware, current_request_id
from services.discovery.codec import (
    DocumentError,
    Format,
    check_metadata_key,
    media_type,
    negotiate,
    parse_instance,
    render,
)
from services.discovery.models import Application, Applications, InstanceInfo, InstanceStatus
from services.discovery.registry import (
    Clock,
    Registry,
    RenewOutcome,
    evict_periodically,
    wall_clock_ms,
)
from services.discovery.replication import REPLICATION_HEADER, PeerAwareRegistry
from services.discovery.settings import DiscoverySettings

log = logging.getLogger(__name__)


def error_response(status: int, message: str) -> JSONResponse:
    """The error shape every COME2US service answers with."""
    return JSONResponse(
        {"status": status, "error": HTTPStatus(status).phrase, "message": message,
         "request_id": current_request_id()},
        status_code=status)


def not_found() -> Response:
    """Eureka's 404: no body. Java clients read any body of a heartbeat answer as an instance
    document, so an error document there would break their re-registration on 404.
    """
    return Response(status_code=404)


class _BadRequest(Exception):
    """Raised by the parameter readers; answered as a 400 naming the parameter."""


def _is_replication(request: Request) -> bool:
    return request.headers.get(REPLICATION_HEADER, "").lower() == "true"


def _timestamp_param(request: Request, name: str = "lastDirtyTimestamp") -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer (epoch milliseconds), got {raw!r}"
                          ) from None


def _status_param(request: Request, name: str, default: InstanceStatus | None = None
                  ) -> InstanceStatus | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return InstanceStatus(raw.upper())
    except ValueError:
        raise _BadRequest(f"{name} must be one of {', '.join(s.value for s in InstanceStatus)}, "
                          f"got {raw!r}") from None


class EurekaResource:
    """The endpoints of Eureka's REST API, bound to one node's registry."""

    def __init__(self, node: PeerAwareRegistry, settings: DiscoverySettings) -> None:
        self.node = node
        self.registry: Registry = node.registry
        self.settings = settings

    # -- reads ---------------------------------------------------------------------------------

    async def all_applications(self, request: Request) -> Response:
        return self._answer(request, self.registry.applications())

    async def delta(self, request: Request) -> Response:
        return self._answer(request, self.registry.delta())

    async def application(self, request: Request) -> Response:
        app = request.path_params["app"]
        found = self.registry.application(app)
        if found is None:
            return not_found()
        return self._answer(request, found)

    async def instance(self, request: Request) -> Response:
        app, instance_id = request.path_params["app"], request.path_params["instance_id"]
        found = self.registry.instance(app, instance_id)
        if found is None:
            return not_found()
        return self._answer(request, found)

    async def instance_by_id(self, request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        found = self.registry.instances_by_id(instance_id)
        if not found:
            return not_found()
        return self._answer(request, found[0])

    async def vip(self, request: Request) -> Response:
        return self._answer(request, self.registry.vip(request.path_params["vip"]))

    async def secure_vip(self, request: Request) -> Response:
        return self._answer(request, self.registry.vip(request.path_params["vip"], secure=True))

    # -- changes -------------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        app = request.path_params["app"]
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and (
                int(declared) > self.settings.max_document_bytes):
            return error_response(413, f"an instance document is at most "
                                       f"{self.settings.max_document_bytes} bytes")
        body = await request.body()
        if len(body) > self.settings.max_document_bytes:
            return error_response(413, f"an instance document is at most "
                                       f"{self.settings.max_document_bytes} bytes")
        try:
            info = parse_instance(body, request.headers.get("content-type"), app=app)
        except DocumentError as error:
            return error_response(400, str(error))
        self.node.register(info, replication=_is_replication(request))
        return Response(status_code=204)

    async def renew(self, request: Request) -> Response:
        app, instance_id = request.path_params["app"], request.path_params["instance_id"]
        try:
            last_dirty = _timestamp_param(request)
            overridden = _status_param(request, "overriddenstatus")
        except _BadRequest as error:
            return error_response(400, str(error))
        renewal = self.node.renew(app, instance_id, replication=_is_replication(request),
                                  last_dirty_ts=last_dirty, overridden_status=overridden)
        if renewal.outcome is RenewOutcome.NOT_FOUND:
            return not_found()
        if renewal.outcome is RenewOutcome.CONFLICT and renewal.instance is not None:
            fmt = negotiate(request.headers.get("accept"))
            return Response(render(renewal.instance, fmt), status_code=409,
                            media_type=media_type(fmt))
        return Response(status_code=200)

    async def cancel(self, request: Request) -> Response:
        app, instance_id = request.path_params["app"], request.path_params["instance_id"]
        if not self.node.cancel(app, instance_id, replication=_is_replication(request)):
            return not_found()
        return Response(status_code=200)

    async def update_status(self, request: Request) -> Response:
        app, instance_id = request.path_params["app"], request.path_params["instance_id"]
        try:
            status = _status_param(request, "value")
            last_dirty = _timestamp_param(request)
        except _BadRequest as error:
            return error_response(400, str(error))
        if status is None:
            return error_response(400, "the new status goes in the 'value' query parameter")
        if not self.node.update_status(app, instance_id, status, last_dirty,
                                       replication=_is_replication(request)):
            return not_found()
        return Response(status_code=200)

    async def delete_status_override(self, request: Request) -> Response:
        app, instance_id = request.path_params["app"], request.path_params["instance_id"]
        try:
            status = _status_param(request, "value", InstanceStatus.UNKNOWN)
            last_dirty = _timestamp_param(request)
        except _BadRequest as error:
            return error_response(400, str(error))
        assert status is not None
        if not self.node.delete_status_override(app, instance_id, status, last_dirty,
                                                replication=_is_replication(request)):
            return not_found()
        return Response(status_code=200)

    async def update_metadata(self, request: Request) -> Response:
        app, instance_id = request.path_params["app"], request.path_params["instance_id"]
        entries = dict(request.query_params)
        try:
            for key in entries:
                check_metadata_key(key)
        except DocumentError as error:
            return error_response(400, str(error))
        if not self.node.update_metadata(app, instance_id, entries):
            return not_found()
        return Response(status_code=200)

    # -- health --------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "UP"})

    def _answer(self, request: Request,
                entity: Applications | Application | InstanceInfo) -> Response:
        fmt: Format = negotiate(request.headers.get("accept"))
        return Response(render(entity, fmt), media_type=media_type(fmt))


def _routes(resource: EurekaResource) -> list[Route]:
    app_path = "/eureka/apps/{app}"
    instance_path = app_path + "/{instance_id}"
    return [
        # py-eureka-client asks for "apps/" with the slash; a redirect would cost it a request.
        Route("/eureka/apps", resource.all_applications, methods=["GET"]),
        Route("/eureka/apps/", resource.all_applications, methods=["GET"]),
        Route("/eureka/apps/delta", resource.delta, methods=["GET"]),
        Route(app_path, resource.application, methods=["GET"]),
        Route(app_path, resource.register, methods=["POST"]),
        Route(instance_path, resource.instance, methods=["GET"]),
        Route(instance_path, resource.renew, methods=["PUT"]),
        Route(instance_path, resource.cancel, methods=["DELETE"]),
        Route(instance_path + "/status", resource.update_status, methods=["PUT"]),
        Route(instance_path + "/status", resource.delete_status_override, methods=["DELETE"]),
        Route(instance_path + "/metadata", resource.update_metadata, methods=["PUT"]),
        Route("/eureka/instances/{instance_id}", resource.instance_by_id, methods=["GET"]),
        Route("/eureka/vips/{vip}", resource.vip, methods=["GET"]),
        Route("/eureka/svips/{vip}", resource.secure_vip, methods=["GET"]),
        Route("/actuator/health", resource.health, methods=["GET"]),
        Route("/health", resource.health, methods=["GET"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, f"no route for {request.method} {request.url.path}")
    return error_response(exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("request failed", exc_info=exc, extra={"event": "server_error",
                                                      "path": request.url.path})
    return error_response(500, "the discovery server failed to answer; see its log")


def create_app(settings: DiscoverySettings, *, clock: Clock = wall_clock_ms,
               http: httpx.AsyncClient | None = None) -> Starlette:
    """The discovery server for ``settings``.

    ``clock`` drives leases (tests pass a fake one); ``http`` is the client used to reach
    peers (tests route it to in-process servers). Start-up copies the registry from a peer, then
    starts the eviction task and the replication senders; shutdown stops them.
    """
    registry = Registry(settings.registry, clock)
    peer_client = http or httpx.AsyncClient(
        timeout=settings.peer_timeout_s,
        limits=httpx.Limits(max_connections=4 * max(1, len(settings.peers))))
    node = PeerAwareRegistry(registry, settings.peers, peer_client,
                             settings.replication_queue_size)
    resource = EurekaResource(node, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await node.sync_from_peers()
        tasks = [
            asyncio.create_task(evict_periodically(registry, settings.eviction_interval_s),
                                name="evict"),
            asyncio.create_task(node.run(), name="replicate"),
        ]
        log.info("discovery server ready", extra={
            "event": "started", "url": settings.url, "peers": list(settings.peers),
            "lease_duration_s": settings.registry.lease_duration_s,
            "eviction_interval_s": settings.eviction_interval_s,
            "self_preservation": settings.registry.self_preservation})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if http is None:
                await peer_client.aclose()

    app = Starlette(
        routes=_routes(resource),
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.node = node
    app.state.registry = registry
    app.state.settings = settings
    return app
