"""The config server's HTTP API, wire-compatible with Spring Cloud Config Server.

Routes are thin: they ask `EnvironmentRepository` for an Environment and `BusPublisher` to
publish, and shape the answer. Order matters where Spring relies on pattern specificity: the
plain-file forms (``/main/gateway-local.yml``) are registered before ``/{application}/{profile}``
so that a two-segment file path is never read as an application and a profile.

    GET  /{application}/{profiles}[/{label}]          Environment JSON
    GET  [/{label}]/{application}-{profiles}.yml      merged, as YAML (also .yaml)
    GET  [/{label}]/{application}-{profiles}.properties   merged, as key: value lines
    GET  [/{label}]/{application}-{profiles}.json     merged, as JSON
    POST /actuator/busrefresh[/{destination}]         RefreshRemoteApplicationEvent, 204
    GET  /actuator/health, /health                    {"status": "UP", ...}

Errors are JSON in Spring Boot's shape: timestamp, status, error, message, path, requestId (the
``X-Request-Id`` the response carries too).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.logs import RequestIdMiddleware, current_request_id
from services.config.bus import BusPublisher, BusUnavailable
from services.config.formats import FileFormat, render
from services.config.repository import (
    EnvironmentRepository,
    GitRepository,
    LabelNotFound,
    RepositoryError,
    load_platform_source,
    repository_path,
)
from services.config.settings import SERVICE_NAME, ConfigServerSettings


def error_body(status: int, message: str, path: str) -> dict[str, object]:
    """Spring Boot's error attributes; ``requestId`` as Spring WebFlux adds it, for the logs."""
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
        "path": path,
        "requestId": current_request_id(),
    }


def _error(request: Request, status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message, request.url.path), status_code=status)


def build_repository(settings: ConfigServerSettings) -> EnvironmentRepository:
    """The repository ``--repo`` names; fails now, with git's words, if it is not one."""
    git = GitRepository(repository_path(settings.repo))
    git.check()
    uri = settings.repo if settings.repo.startswith("file:") else git.uri
    platform = load_platform_source(settings.platform_file) if settings.platform_file else None
    return EnvironmentRepository(git, settings.search_path, settings.default_label, uri=uri,
                                 platform=platform)


def create_app(
    settings: ConfigServerSettings,
    repository: EnvironmentRepository | None = None,
    publisher: BusPublisher | None = None,
) -> FastAPI:
    """The config server app; ``repository``/``publisher`` default to what ``settings`` say."""
    repo = repository if repository is not None else build_repository(settings)
    bus = publisher
    if bus is None and settings.kafka:
        bus = BusPublisher(settings.kafka, settings.bus_topic,
                           f"{SERVICE_NAME}:{settings.port}:{uuid.uuid4().hex}")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if bus is not None:
                await bus.close()

    app = FastAPI(title="COME2US config server", lifespan=lifespan)
    app.add_middleware(RequestIdMiddleware)
    app.state.repository = repo
    app.state.publisher = bus

    _add_error_handlers(app)
    _add_actuator_routes(app, repo, bus)
    _add_file_routes(app, repo)
    _add_environment_routes(app, repo)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LabelNotFound)
    async def label_not_found(request: Request, error: LabelNotFound) -> JSONResponse:
        return _error(request, 404, str(error))

    @app.exception_handler(RepositoryError)
    async def repository_error(request: Request, error: RepositoryError) -> JSONResponse:
        return _error(request, 500, str(error))

    @app.exception_handler(BusUnavailable)
    async def bus_unavailable(request: Request, error: BusUnavailable) -> JSONResponse:
        return _error(request, 503, str(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else HTTPStatus(
            error.status_code).phrase
        if error.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        return _error(request, error.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(request, 400, str(error.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return _error(request, 500, f"{type(error).__name__}: {error}")


def _add_actuator_routes(app: FastAPI, repo: EnvironmentRepository,
                         bus: BusPublisher | None) -> None:
    def health() -> JSONResponse:
        """UP when the default label resolves: the one thing every client request needs."""
        try:
            label, commit = repo.resolve(None)
        except (LabelNotFound, RepositoryError) as error:
            return JSONResponse({"status": "DOWN", "components": {"configServer": {
                "status": "DOWN", "details": {"repository": repo.uri, "error": str(error)}}}},
                status_code=503)
        return JSONResponse({"status": "UP", "components": {"configServer": {
            "status": "UP",
            "details": {"repository": repo.uri, "searchPath": repo.search_path,
                        "label": label, "version": commit},
        }}})

    app.add_api_route("/actuator/health", health, methods=["GET"])
    app.add_api_route("/health", health, methods=["GET"])

    async def busrefresh(destination: str | None = None) -> Response:
        if bus is None:
            raise StarletteHTTPException(503, "the refresh bus is not configured (no --kafka)")
        await bus.publish_refresh(destination)
        return Response(status_code=204)

    app.add_api_route("/actuator/busrefresh", busrefresh, methods=["POST"], status_code=204)
    app.add_api_route("/actuator/busrefresh/{destination}", busrefresh, methods=["POST"],
                      status_code=204)


def _add_file_routes(app: FastAPI, repo: EnvironmentRepository) -> None:
    def handler(file_format: FileFormat) -> Callable[..., Response]:
        def serve(name: str, profiles: str, label: str | None = None,
                  resolvePlaceholders: bool = True) -> Response:
            environment = repo.find_one(name, profiles, label)
            return Response(render(environment, file_format, resolvePlaceholders),
                            media_type=file_format.media_type)
        return serve

    for file_format in FileFormat:
        suffix = "{name}-{profiles}." + file_format.extension
        app.add_api_route(f"/{suffix}", handler(file_format), methods=["GET"])
        app.add_api_route(f"/{{label}}/{suffix}", handler(file_format), methods=["GET"])


def _add_environment_routes(app: FastAPI, repo: EnvironmentRepository) -> None:
    def environment(application: str, profiles: str, label: str | None = None) -> JSONResponse:
        return JSONResponse(repo.find_one(application, profiles, label).to_json())

    app.add_api_route("/{application}/{profiles}", environment, methods=["GET"])
    app.add_api_route("/{application}/{profiles}/{label}", environment, methods=["GET"])
