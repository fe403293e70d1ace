"""``/users/*``: the member's own record, anyone's record for admins, role changes.

Reached as ``/api/users/**`` through the gateway, which forwards the verified identity; every
route here needs it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from services.common.identity import Caller, CurrentCaller, require_role
from services.common.schemas import error_responses
from services.user.api.deps import AccountsDep
from services.user.api.schemas import ProfilePatch, RolesPatch, UserResponse
from services.user.domain.roles import ADMIN, RoleChange

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Caller, Depends(require_role(ADMIN))]


@router.get("/me", summary="My member record", response_model=UserResponse,
            responses=error_responses(401, 404))
async def read_me(caller: CurrentCaller, accounts: AccountsDep) -> UserResponse:
    return UserResponse.of(await accounts.me(caller))


@router.patch("/me", summary="Change my display name or phone", response_model=UserResponse,
              responses=error_responses(401, 404, 422))
async def update_me(body: ProfilePatch, caller: CurrentCaller,
                    accounts: AccountsDep) -> UserResponse:
    return UserResponse.of(await accounts.update_profile(caller, body.changes()))


@router.get("/{user_id}", summary="A member's record (your own, or anyone's for an admin)",
            response_model=UserResponse, responses=error_responses(401, 403, 404))
async def read_user(user_id: uuid.UUID, caller: CurrentCaller,
                    accounts: AccountsDep) -> UserResponse:
    return UserResponse.of(await accounts.read(caller, str(user_id)))


@router.patch("/{user_id}/roles", summary="Add or remove roles (admins only)",
              response_model=UserResponse, responses=error_responses(401, 403, 404, 422))
async def change_roles(user_id: uuid.UUID, body: RolesPatch, caller: Admin,
                       accounts: AccountsDep) -> UserResponse:
    """A removed role also ends the member's sessions, so it stops working at once; an
    added one appears in their next access token (next login or refresh)."""
    change = RoleChange(frozenset(body.add), frozenset(body.remove))
    return UserResponse.of(await accounts.change_roles(caller, str(user_id), change))
