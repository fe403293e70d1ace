"""The user service's API through the gateway: sign up, log in, refresh, log out, read me.

What features, the seeding command and people at a Python prompt use to act as a member. It
calls the gateway exactly as a browser or app would (no identity headers of its own, only the
tokens the service gave it), so what works here works for a client on the internet.

The auth routes are rate-limited per client address (``gateway.yml``: a burst of 10, then 5 a
second), and every caller on this machine is one address; a 429 is therefore waited out as a
well-behaved client does — ``Retry-After``, within a bound — instead of failing a test that
merely ran after another. Every other answer is returned as it is, errors as `UserApiError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import jwt

from services.common.properties import unflatten
from services.common.settings import environment_properties
from services.gateway.settings import from_config
from stack.local.clients import gateway
from stack.local.services import PROFILE
from stack.model import Platform

RATE_LIMIT_BUDGET_S = 20.0


class UserApiError(Exception):
    """A non-2xx answer: ``status`` and the JSON error body (``message``, ``errors``, …)."""

    def __init__(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{method} {path}: {status} {body.get('message', body)}")
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int

    @property
    def claims(self) -> dict[str, Any]:
        """The access token's claims, read without verifying (the gateway verifies)."""
        claims: dict[str, Any] = jwt.decode(self.access_token,
                                            options={"verify_signature": False})
        return claims

    @property
    def session_id(self) -> str:
        return str(self.claims["sid"])

    @classmethod
    def of(cls, body: dict[str, Any]) -> Tokens:
        return cls(body["accessToken"], body["refreshToken"], int(body["expiresIn"]),
                   int(body["refreshExpiresIn"]))


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


class UserClient:
    """``with UserClient(model) as users: tokens = users.login(email, password)``."""

    def __init__(self, model: Platform, *, timeout_s: float = 5.0,
                 rate_limit_budget_s: float = RATE_LIMIT_BUDGET_S) -> None:
        self.http = gateway(model, timeout=timeout_s)
        self.rate_limit_budget_s = rate_limit_budget_s

    def __enter__(self) -> UserClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def signup(self, email: str, password: str, display_name: str | None = None
               ) -> dict[str, Any]:
        body: dict[str, Any] = {"email": email, "password": password}
        if display_name is not None:
            body["displayName"] = display_name
        return self._json("POST", "/api/auth/signup", json=body)

    def login(self, email: str, password: str) -> Tokens:
        return Tokens.of(self._json("POST", "/api/auth/login",
                                    json={"email": email, "password": password}))

    def refresh(self, refresh_token: str) -> Tokens:
        return Tokens.of(self._json("POST", "/api/auth/refresh",
                                    json={"refreshToken": refresh_token}))

    def logout(self, access_token: str) -> None:
        self.call("POST", "/api/auth/logout", headers=bearer(access_token))

    def me(self, access_token: str) -> dict[str, Any]:
        return self._json("GET", "/api/users/me", headers=bearer(access_token))

    def update_me(self, access_token: str, **fields: Any) -> dict[str, Any]:
        return self._json("PATCH", "/api/users/me", headers=bearer(access_token), json=fields)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, a 429 waited out within the budget; a non-2xx raises UserApiError."""
        deadline = time.monotonic() + self.rate_limit_budget_s
        while True:
            response = self.http.request(method, path, **kwargs)
            wait_s = float(response.headers.get("Retry-After") or 1)
            if response.status_code != 429 or time.monotonic() + wait_s > deadline:
                break
            time.sleep(wait_s)
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:300]}
        raise UserApiError(method, path, response.status_code, body)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.call(method, path, **kwargs).json()
        return body


def gateway_token_leeway_s(model: Platform) -> float:
    """How long past its ``exp`` the gateway still accepts an access token (its allowance for
    clock skew, ``gateway.jwt.leeway``), as the config server serves it now."""
    config = model.compute.instances_of("config")[0].node.address
    response = httpx.get(f"http://{config}/gateway/{PROFILE}", timeout=5.0)
    response.raise_for_status()
    settings = from_config(unflatten(environment_properties(response.json())))
    return settings.jwt.leeway_s if settings.jwt is not None else 0.0
