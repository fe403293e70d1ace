"""The JSON shape every service's API shares: camelCase fields, and the documented error body.

Request and response bodies are pydantic models deriving from `ApiModel`, so Python code says
``display_name`` while the wire says ``displayName`` — the same casing as the error body
(``requestId``) and the event envelope (``occurredAt``). Routes list the errors they can answer
with `error_responses`, so the OpenAPI document shows the shape of a 404 or a 422 as well as
the success.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A request or response body: camelCase on the wire, either casing accepted on input."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class FieldError(ApiModel):
    field: str
    rule: str
    message: str


class ErrorResponse(ApiModel):
    """What `services.common.errors` answers for every error (``errors`` only on a 422)."""

    status: int
    error: str
    message: str
    request_id: str | None
    path: str
    errors: list[FieldError] | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` argument of a route that may answer with these error statuses.

    422 is always listed: FastAPI documents one for every route with parameters, and ours has
    the shape of `ErrorResponse`, not FastAPI's own ``HTTPValidationError``.
    """
    return {status: {"model": ErrorResponse, "description": HTTPStatus(status).phrase}
            for status in sorted({*statuses, 422})}
