"""Accounts: sign-up, sign-in, the member's own profile, and role changes by an admin.

Hashing a password costs tens of milliseconds of CPU, so it runs in a worker thread and the
event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.common.errors import Conflict, Invalid, NotFound, Unauthorized
from services.common.identity import Caller
from services.user.domain.passwords import Passwords, check_policy
from services.user.domain.roles import SIGN_UP_ROLES, RoleChange, may_read
from services.user.domain.sessions import Sessions
from services.user.domain.users import (
    EmailTaken,
    NewUser,
    ProfileChanges,
    User,
    Users,
    new_user_id,
    normalise_display_name,
    normalise_email,
    normalise_phone,
    parse_user_id,
)

WRONG_CREDENTIALS = "email or password is wrong"


@dataclass(frozen=True)
class SignUp:
    email: str
    password: str
    display_name: str | None = None


class Accounts:
    def __init__(self, users: Users, passwords: Passwords, sessions: Sessions) -> None:
        self.users = users
        self.passwords = passwords
        self.sessions = sessions

    async def sign_up(self, request: SignUp, roles: frozenset[str] = SIGN_UP_ROLES) -> User:
        email = normalise_email(request.email)
        check_policy(request.password, email)
        display_name = normalise_display_name(request.display_name)
        password_hash = await asyncio.to_thread(self.passwords.hash, request.password)
        try:
            return await self.users.add(NewUser(new_user_id(), email, password_hash,
                                                display_name, roles))
        except EmailTaken:
            raise Conflict(f"an account with the email {email} exists already") from None

    async def authenticate(self, email: str, password: str) -> User:
        """The member these credentials belong to; the same 401 whatever was wrong."""
        try:
            normalised = normalise_email(email)
        except Invalid:  # not an email: it cannot have an account
            raise Unauthorized(WRONG_CREDENTIALS) from None
        stored = await self.users.credentials(normalised)
        ok = await asyncio.to_thread(self.passwords.verify,
                                     stored.password_hash if stored else None, password)
        if stored is None or not ok:
            raise Unauthorized(WRONG_CREDENTIALS)
        if self.passwords.needs_rehash(stored.password_hash):
            new_hash = await asyncio.to_thread(self.passwords.hash, password)
            await self.users.set_password_hash(stored.user.id, new_hash)
        return stored.user

    async def me(self, caller: Caller) -> User:
        return await self.read(caller, caller.user_id)

    async def read(self, caller: Caller, user_id: str) -> User:
        may_read(caller, user_id)
        user = await self._find(user_id)
        if user is None:
            raise NotFound(f"no member with id {user_id}")
        return user

    async def update_profile(self, caller: Caller, changes: ProfileChanges) -> User:
        checked = ProfileChanges(
            display_name=normalise_display_name(changes.display_name),
            phone=normalise_phone(changes.phone), fields=changes.fields)
        user_id = parse_user_id(caller.user_id)
        user = await self.users.update_profile(user_id, checked) if user_id else None
        if user is None:
            raise NotFound(f"no member with id {caller.user_id}")
        return user

    async def change_roles(self, caller: Caller, user_id: str, change: RoleChange) -> User:
        """Apply an admin's change; a removed role ends the member's sessions at once."""
        before: list[frozenset[str]] = []

        def apply(current: frozenset[str]) -> frozenset[str]:
            before.append(current)
            return change.apply(current, actor_id=caller.user_id, target_id=user_id)

        target = parse_user_id(user_id)
        user = await self.users.change_roles(target, apply) if target else None
        if user is None:
            raise NotFound(f"no member with id {user_id}")
        if change.removes_from(before[-1]):
            await self.sessions.end_all(user.id, "role removed")
        return user

    async def _find(self, user_id: str) -> User | None:
        parsed = parse_user_id(user_id)
        return await self.users.get(parsed) if parsed else None
