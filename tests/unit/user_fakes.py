"""In-memory stand-ins for the user service's stores, with the same contracts as the real ones.

`FakeSessionStore` keeps the semantics of the Redis store (digest -> session, compare-and-swap
rotation, TTLs on a clock the test moves, revocations recorded) so the domain's decisions can
be tested without Redis; the Lua script itself is tested against a real Redis in
tests/integration/test_user_session_store.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.user.domain.sessions import Presented, Rotation
from services.user.domain.users import (
    EmailTaken,
    NewUser,
    ProfileChanges,
    RoleChange,
    StoredUser,
    User,
)


def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class FakeUsers:
    def __init__(self) -> None:
        self.rows: dict[str, StoredUser] = {}
        self.reads_from_writer = 0

    async def add(self, user: NewUser) -> User:
        if any(s.user.email == user.email for s in self.rows.values()):
            raise EmailTaken(user.email)
        now = datetime.now(UTC)
        stored = User(user.id, user.email, user.display_name, None, user.roles, now, now)
        self.rows[user.id] = StoredUser(stored, user.password_hash)
        return stored

    async def credentials(self, email: str) -> StoredUser | None:
        self.reads_from_writer += 1
        return next((s for s in self.rows.values() if s.user.email == email), None)

    async def get(self, user_id: str, *, fresh: bool = False) -> User | None:
        stored = self.rows.get(user_id)
        return stored.user if stored else None

    async def update_profile(self, user_id: str, changes: ProfileChanges) -> User | None:
        stored = self.rows.get(user_id)
        if stored is None:
            return None
        display_name, phone = changes.apply_to(stored.user)
        user = replace(stored.user, display_name=display_name, phone=phone,
                       updated_at=datetime.now(UTC))
        self.rows[user_id] = replace(stored, user=user)
        return user

    async def change_roles(self, user_id: str, change: RoleChange) -> User | None:
        stored = self.rows.get(user_id)
        if stored is None:
            return None
        user = replace(stored.user, roles=change(stored.user.roles))
        self.rows[user_id] = replace(stored, user=user)
        return user

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.rows[user_id] = replace(self.rows[user_id], password_hash=password_hash)

    def grant(self, user_id: str, *roles: str) -> None:
        stored = self.rows[user_id]
        self.rows[user_id] = replace(stored, user=replace(
            stored.user, roles=stored.user.roles | frozenset(roles)))


@dataclass
class _Session:
    user_id: str
    current: str
    expires_at: float


@dataclass
class FakeSessionStore:
    """Sessions on a manual clock (``now``); ``replicas`` is what a revocation's WAIT says."""

    now: float = 0.0
    replicas: int = 1
    sessions: dict[str, _Session] = field(default_factory=dict)
    issued: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _live(self, session_id: str) -> _Session | None:
        session = self.sessions.get(session_id)
        if session is not None and session.expires_at <= self.now:
            del self.sessions[session_id]
            return None
        return session

    async def open(self, session_id: str, user_id: str, refresh_digest: str,
                   ttl_s: int) -> None:
        self.sessions[session_id] = _Session(user_id, refresh_digest, self.now + ttl_s)
        self.issued[refresh_digest] = (session_id, user_id, self.now + ttl_s)

    async def find(self, refresh_digest: str) -> Presented | None:
        entry = self.issued.get(refresh_digest)
        if entry is None or entry[2] <= self.now:
            return None
        return Presented(entry[0], entry[1])

    async def rotate(self, presented: Presented, refresh_digest: str, next_digest: str,
                     ttl_s: int) -> Rotation:
        async with self.lock:  # the Lua script's atomicity
            await asyncio.sleep(0)  # let a concurrent caller reach this point too
            session = self._live(presented.session_id)
            if session is None:
                return Rotation.ENDED
            if session.current != refresh_digest:
                return Rotation.STALE
            session.current = next_digest
            session.expires_at = self.now + ttl_s
            self.issued[next_digest] = (presented.session_id, presented.user_id,
                                        self.now + ttl_s)
            return Rotation.ROTATED

    async def end(self, session_id: str, user_id: str | None, replica_wait_ms: int) -> int:
        self.sessions.pop(session_id, None)
        self.revoked.append(session_id)
        self.waits.append(replica_wait_ms)
        return self.replicas if replica_wait_ms > 0 else 0

    async def sessions_of(self, user_id: str) -> list[str]:
        return sorted(sid for sid, s in list(self.sessions.items())
                      if s.user_id == user_id and self._live(sid))
