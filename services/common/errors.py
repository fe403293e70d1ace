"""One JSON error shape for every service, the same one the gateway answers with.

``{"status", "error", "message", "requestId", "path"}`` — plus ``errors`` for a 422, one entry
per invalid field naming the field and the rule it broke. Domain code raises the exceptions
below; it never builds a response itself, so the shape cannot drift between services.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.logs import current_request_id

log = logging.getLogger("come2us.errors")


class ServiceError(Exception):
    """An answer other than success, with the status a client should see."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Forbidden(ServiceError):
    status = 403


class Unauthorized(ServiceError):
    status = 401


class Invalid(ServiceError):
    """A request that is well-formed but breaks a domain rule (e.g. a password policy)."""

    status = 422

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class Unavailable(ServiceError):
    """A dependency is down and no fallback exists."""

    status = 503


def error_body(status: int, message: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
        "requestId": current_request_id(),
        "path": path,
        **extra,
    }


def _field_name(location: tuple[Any, ...]) -> str:
    """``("body", "address", "zip")`` -> ``address.zip``; the part a client wrote."""
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in location)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(error, Invalid):
            extra["errors"] = [{"field": error.field, "rule": error.rule,
                                "message": error.message}]
        return JSONResponse(error_body(error.status, error.message, request.url.path, **extra),
                            status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(tuple(item.get("loc", ()))),
                   "rule": item.get("type", "invalid"), "message": item.get("msg", "")}
                  for item in error.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(error_body(422, summary, request.url.path, errors=errors),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(error.status_code, str(error.detail), request.url.path),
                            status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal error; see the service log with this "
                                            "request id", request.url.path), status_code=500)
