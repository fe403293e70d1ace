"""What every client of a service's public API shares: a token, the gateway, the error.

A client is one caller (an identity, or none) on one HTTP connection pool; `as_token` makes
another caller on the same pool. A response with an unexpected status raises the client's
error class, carrying the status and the JSON error body the platform answers with.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from stack.local.clients import gateway
from stack.model import Platform

API = "/api"


class ApiError(RuntimeError):
    def __init__(self, response: httpx.Response) -> None:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:300]
        super().__init__(f"{response.request.method} {response.request.url.path}: "
                         f"HTTP {response.status_code}: {body}")
        self.status = response.status_code
        self.body = body


class ApiClient:
    error: ClassVar[type[ApiError]] = ApiError
    default_timeout_s: ClassVar[float] = 10.0

    def __init__(self, http: httpx.Client, token: str | None = None, *,
                 owns_http: bool = True) -> None:
        self.http = http
        self.token = token
        self._owns_http = owns_http

    @classmethod
    def through_gateway(cls, model: Platform, token: str | None = None,
                        timeout: float | None = None) -> Self:
        return cls(gateway(model, timeout=timeout or cls.default_timeout_s), token)

    def as_token(self, token: str | None) -> Self:
        """The same connection, calling as another identity (None: anonymous)."""
        return type(self)(self.http, token, owns_http=False)

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.request(method, API + path, headers=headers, **kwargs)

    def _expect(self, response: httpx.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise self.error(response)
        return response.json() if response.content else None
