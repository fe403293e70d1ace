"""Request and response bodies of the user service (camelCase on the wire, see ApiModel).

Only shapes are checked here (types, presence, sizes that bound the work a request can cause);
the rules — password policy, email and phone formats — are the domain's, so they are the same
for the API and the management command.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from services.common.schemas import ApiModel
from services.user.domain.passwords import MAX_LENGTH
from services.user.domain.sessions import TokenPair
from services.user.domain.users import EMAIL_MAX, ProfileChanges, User

Role = Literal["customer", "seller", "admin"]
# Generous bounds: the domain's rules say what is valid; these only cap the cost of a request.
_TEXT_MAX = 1_000


class SignUpRequest(ApiModel):
    email: str = Field(max_length=EMAIL_MAX + 10, examples=["kim@example.com"])
    password: str = Field(max_length=MAX_LENGTH + 1, examples=["correct horse 42"])
    display_name: str | None = Field(default=None, max_length=_TEXT_MAX, examples=["Kim"])


class LoginRequest(ApiModel):
    email: str = Field(max_length=EMAIL_MAX + 10)
    password: str = Field(max_length=MAX_LENGTH + 1)


class RefreshRequest(ApiModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenResponse(ApiModel):
    """OAuth 2's token response fields, in the platform's casing."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme, not a secret
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str
    refresh_expires_in: int = Field(
        description="seconds the session lasts without a refresh; each refresh renews it")

    @classmethod
    def of(cls, pair: TokenPair) -> TokenResponse:
        return cls(access_token=pair.access.token, expires_in=pair.access_expires_in,
                   refresh_token=pair.refresh_token, refresh_expires_in=pair.refresh_expires_in)


class UserResponse(ApiModel):
    id: str
    email: str
    display_name: str | None
    phone: str | None
    roles: list[Role]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserResponse:
        return cls(id=user.id, email=user.email, display_name=user.display_name,
                   phone=user.phone, roles=sorted(user.roles),  # type: ignore[arg-type]
                   created_at=user.created_at, updated_at=user.updated_at)


class ProfilePatch(ApiModel):
    """Only the fields present change; ``null`` clears one."""

    display_name: str | None = Field(default=None, max_length=_TEXT_MAX)
    phone: str | None = Field(default=None, max_length=_TEXT_MAX,
                              examples=["010-1234-5678"])

    def changes(self) -> ProfileChanges:
        return ProfileChanges(self.display_name, self.phone, frozenset(self.model_fields_set))


class RolesPatch(ApiModel):
    add: list[Role] = Field(default_factory=list, examples=[["seller"]])
    remove: list[Role] = Field(default_factory=list)
