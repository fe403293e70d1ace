"""Members in PostgreSQL (SQLAlchemy Core, async): the `Users` store of the domain.

- Every write is one transaction on the writer endpoint; a role change locks the row
  (``SELECT … FOR UPDATE``) so two admins changing roles at once cannot lose one change.
- Sign-in and token refresh read from the writer: a member who just signed up, or whose role
  was just changed, must be seen at once. Profile reads go to the reader endpoint (the
  synchronous standby), which may trail the writer by its replay delay — milliseconds.
- Writes are retried after a lost connection (a writer failover) only when repeating them is
  harmless: setting profile fields, replacing roles, and the sign-up insert, which carries an
  id made before the first attempt, so a retry finds its own row instead of a conflict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.database import FAILOVER_ERRORS, Database, retry_on_failover
from services.common.errors import Unavailable
from services.user.domain.users import (
    EmailTaken,
    NewUser,
    ProfileChanges,
    RoleChange,
    StoredUser,
    User,
)
from services.user.models import users

T = TypeVar("T")

# The gateway gives the users route 2 s; retries must fit well inside it.
RETRY_ATTEMPTS = 3
RETRY_DELAY_S = 0.25

_PUBLIC_COLUMNS = (users.c.id, users.c.email, users.c.display_name, users.c.phone,
                   users.c.roles, users.c.created_at, users.c.updated_at)


def _user(row: Any) -> User:
    """A member from a result row with `_PUBLIC_COLUMNS`."""
    data: Mapping[str, Any] = row._mapping
    return User(id=str(data["id"]), email=data["email"], display_name=data["display_name"],
                phone=data["phone"], roles=frozenset(data["roles"]),
                created_at=data["created_at"], updated_at=data["updated_at"])


async def _retrying(work: Callable[[], Awaitable[T]]) -> T:
    """Retry idempotent work over a writer failover; still failing, answer 503, not 500."""
    try:
        return await retry_on_failover(work, attempts=RETRY_ATTEMPTS, delay_s=RETRY_DELAY_S)
    except FAILOVER_ERRORS as error:
        raise Unavailable(f"the member database is unavailable ({type(error).__name__}); "
                          f"retry shortly") from error


class PostgresUsers:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, user: NewUser) -> User:
        async def attempt() -> User:
            async with self.database.writer.begin() as conn:
                row = (await conn.execute(
                    pg_insert(users).values(
                        id=user.id, email=user.email, password_hash=user.password_hash,
                        display_name=user.display_name, roles=sorted(user.roles))
                    .on_conflict_do_nothing()
                    .returning(*_PUBLIC_COLUMNS))).first()
                if row is not None:
                    return _user(row)
                mine = (await conn.execute(
                    select(*_PUBLIC_COLUMNS).where(users.c.id == user.id))).first()
            if mine is not None and mine.email == user.email:
                return _user(mine)  # an earlier attempt committed before the connection broke
            raise EmailTaken(user.email)

        return await _retrying(attempt)

    async def credentials(self, email: str) -> StoredUser | None:
        async def attempt() -> StoredUser | None:
            async with self.database.writer.connect() as conn:
                row = (await conn.execute(
                    select(*_PUBLIC_COLUMNS, users.c.password_hash)
                    .where(users.c.email == email))).first()
            return StoredUser(_user(row), row.password_hash) if row is not None else None

        return await _retrying(attempt)

    async def get(self, user_id: str, *, fresh: bool = False) -> User | None:
        engine = self.database.writer if fresh else self.database.reader

        async def attempt() -> User | None:
            async with engine.connect() as conn:
                row = (await conn.execute(
                    select(*_PUBLIC_COLUMNS).where(users.c.id == user_id))).first()
            return _user(row) if row is not None else None

        return await _retrying(attempt)

    async def update_profile(self, user_id: str, changes: ProfileChanges) -> User | None:
        values: dict[str, Any] = {"updated_at": func.now()}
        if "display_name" in changes.fields:
            values["display_name"] = changes.display_name
        if "phone" in changes.fields:
            values["phone"] = changes.phone

        async def attempt() -> User | None:
            async with self.database.writer.begin() as conn:
                row = (await conn.execute(
                    update(users).where(users.c.id == user_id).values(**values)
                    .returning(*_PUBLIC_COLUMNS))).first()
            return _user(row) if row is not None else None

        return await _retrying(attempt)

    async def change_roles(self, user_id: str, change: RoleChange) -> User | None:
        async def attempt() -> User | None:
            async with self.database.writer.begin() as conn:
                current = (await conn.execute(
                    select(users.c.roles).where(users.c.id == user_id).with_for_update()
                )).scalar_one_or_none()
                if current is None:
                    return None
                roles = change(frozenset(current))
                row = (await conn.execute(
                    update(users).where(users.c.id == user_id)
                    .values(roles=sorted(roles), updated_at=func.now())
                    .returning(*_PUBLIC_COLUMNS))).first()
            return _user(row) if row is not None else None

        return await _retrying(attempt)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async def attempt() -> None:
            async with self.database.writer.begin() as conn:
                await conn.execute(update(users).where(users.c.id == user_id)
                                   .values(password_hash=password_hash))

        await _retrying(attempt)

