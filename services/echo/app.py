"""The echo service's HTTP app: one catch-all route, plus the health endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.logs import RequestIdMiddleware, current_request_id

FORWARDED_IDENTITY = ("x-user-id", "x-user-roles")


@dataclass(frozen=True)
class EchoSettings:
    app: str
    instance_id: str
    host: str
    port: int
    discovery_urls: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    lease_duration_s: int = 5
    renewal_interval_s: float = 1.0


def create_app(settings: EchoSettings) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "UP"})

    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({
            "app": settings.app,
            "instance": settings.instance_id,
            "metadata": settings.metadata,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "requestId": current_request_id(),
            "identity": {name: request.headers.get(name) for name in FORWARDED_IDENTITY},
            "bodyBytes": len(body),
        })

    app = Starlette(routes=[
        Route("/actuator/health", health, methods=["GET"]),
        Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ])
    app.add_middleware(RequestIdMiddleware)
    return app
