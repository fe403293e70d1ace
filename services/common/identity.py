"""Who is calling: the identity the gateway verified and forwarded.

The gateway checks the access token at the edge and forwards ``X-User-Id``, ``X-User-Roles``
(comma-separated) and ``X-User-Session``, removing any such header a client sent; services
trust these headers and nothing else, so no service verifies JWTs again. Services are bound
to private addresses (on AWS: reachable only from the gateway's security group).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from services.common.errors import Forbidden, Unauthorized

ROLES = ("customer", "seller", "admin")


@dataclass(frozen=True)
class Caller:
    user_id: str
    roles: frozenset[str]
    session_id: str | None = None

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    def headers(self) -> dict[str, str]:
        """The same identity, for a call this service makes to another service."""
        headers = {"X-User-Id": self.user_id, "X-User-Roles": ",".join(sorted(self.roles))}
        if self.session_id:
            headers["X-User-Session"] = self.session_id
        return headers


def optional_caller(
    x_user_id: Annotated[str | None, Header()] = None,
    x_user_roles: Annotated[str | None, Header()] = None,
    x_user_session: Annotated[str | None, Header()] = None,
) -> Caller | None:
    if not x_user_id:
        return None
    roles = frozenset(r.strip() for r in (x_user_roles or "").split(",") if r.strip())
    return Caller(x_user_id, roles, x_user_session or None)


def current_caller(caller: Annotated[Caller | None, Depends(optional_caller)]) -> Caller:
    if caller is None:
        raise Unauthorized("this route needs a signed-in user (call it through the gateway "
                           "with an access token)")
    return caller


def require_role(role: str) -> Callable[[Caller], Caller]:
    """A dependency that lets only callers with ``role`` (or admins) through, else 403."""

    def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if not caller.has(role):
            raise Forbidden(f"this needs the {role} role; you have {sorted(caller.roles)}")
        return caller

    return check


CurrentCaller = Annotated[Caller, Depends(current_caller)]
OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]
