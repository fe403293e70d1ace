"""Login sessions: an access token to show, a refresh token to renew it, rotation, revocation.

A login opens a *session* (``sid``) with one *current* refresh token. Refreshing consumes that
token and issues the next one (rotation); the tokens a session has issued form its *family*.
Presenting a consumed token again means two parties hold the family — the owner and a thief,
and there is no telling which is which — so the whole session is revoked: its refresh chain
ends and every access token carrying its ``sid`` is refused by the gateway from then on.

The store (`SessionStore`) does the atomic parts; the decisions — what is a reuse, when a
session ends, what is revoked — are made here, so they can be tested against a fake store.

Refresh tokens are 256 random bits; the store keeps only their SHA-256 digests, so a copy of
the session Redis yields no usable token.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from services.common.errors import Unauthorized
from services.common.tokens import AccessToken
from services.user.domain.users import User, UserLookup

log = logging.getLogger("come2us.user.sessions")

SESSIONS_ENDED = Counter(
    "user_sessions_ended_total",
    "Sessions ended (revoked), by reason and by whether the session Redis replica confirmed "
    "the revocation before the answer (false: a failover then could undo it)",
    ("reason", "replicated"))


@dataclass(frozen=True)
class Lifetimes:
    """Seconds an access token lives, and how long a session lives without a refresh."""

    access_s: int
    refresh_s: int
    replica_wait_ms: int = 100


@dataclass(frozen=True)
class TokenPair:
    access: AccessToken
    access_expires_in: int
    refresh_token: str
    refresh_expires_in: int

    @property
    def session_id(self) -> str:
        return str(self.access.claims["sid"])


@dataclass(frozen=True)
class Presented:
    """What the store knows about a presented refresh token before trying to rotate it."""

    session_id: str
    user_id: str


class Rotation(enum.Enum):
    ROTATED = "rotated"  # the token was the current one; the next one is now current
    STALE = "stale"      # the session lives, but the token was already consumed: a reuse
    ENDED = "ended"      # the session is gone (logged out, revoked, or expired)


class SessionStore(Protocol):
    """The atomic operations on sessions (`services.user.session_store.RedisSessionStore`)."""

    async def open(self, session_id: str, user_id: str, refresh_digest: str,
                   ttl_s: int) -> None:
        """Create a session whose current refresh token has this digest."""

    async def find(self, refresh_digest: str) -> Presented | None:
        """The session that issued this token (current or consumed); None if unknown/expired."""

    async def rotate(self, presented: Presented, refresh_digest: str, next_digest: str,
                     ttl_s: int) -> Rotation:
        """If ``refresh_digest`` is current, make ``next_digest`` current — atomically, so of
        two concurrent uses of one token exactly one rotates."""

    async def end(self, session_id: str, user_id: str | None, replica_wait_ms: int) -> int:
        """Delete the session and revoke its ``sid`` (tokens.revoke); return how many replicas
        acknowledged within ``replica_wait_ms`` (0 when none or when not waited for)."""

    async def sessions_of(self, user_id: str) -> list[str]:
        """The session ids a member may still have open."""


class Signer(Protocol):
    def __call__(self, user: User, session_id: str, ttl_s: int) -> AccessToken:
        """An access token for the member in this session (tokens.issue_access_token)."""


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


class Sessions:
    """Log in, refresh, log out, and end a member's sessions, by the rules above."""

    def __init__(self, store: SessionStore, sign: Signer, lifetimes: Callable[[], Lifetimes],
                 current_user: UserLookup) -> None:
        self.store = store
        self.sign = sign
        self.lifetimes = lifetimes  # read per call: a configuration refresh applies at once
        self.current_user = current_user

    async def start(self, user: User) -> TokenPair:
        lifetimes = self.lifetimes()
        session_id = uuid.uuid4().hex
        refresh_token = new_refresh_token()
        await self.store.open(session_id, user.id, digest(refresh_token), lifetimes.refresh_s)
        return self._pair(user, session_id, refresh_token, lifetimes)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """New tokens for a current refresh token; a consumed one revokes its whole session."""
        lifetimes = self.lifetimes()
        presented_digest = digest(refresh_token)
        presented = await self.store.find(presented_digest)
        if presented is None:
            raise Unauthorized("refresh token unknown or expired: log in again")
        # The member is read before the rotation: if the database fails here, nothing has been
        # consumed and the client may simply retry with the same token.
        user = await self.current_user(presented.user_id)
        if user is None:
            await self.end(presented.session_id, presented.user_id, "member gone")
            raise Unauthorized("this member no longer exists")
        next_token = new_refresh_token()
        outcome = await self.store.rotate(presented, presented_digest, digest(next_token),
                                          lifetimes.refresh_s)
        if outcome is Rotation.ENDED:
            raise Unauthorized("this session has ended: log in again")
        if outcome is Rotation.STALE:
            await self.end(presented.session_id, presented.user_id, "refresh token reused")
            raise Unauthorized("refresh token already used: the session is revoked for "
                               "safety, log in again")
        return self._pair(user, presented.session_id, next_token, lifetimes)

    async def end(self, session_id: str, user_id: str | None, reason: str) -> None:
        """Revoke a session everywhere: its refresh tokens stop working, and the gateway
        refuses its access tokens. Safe to repeat."""
        wait_ms = self.lifetimes().replica_wait_ms
        replicas = await self.store.end(session_id, user_id, wait_ms)
        replicated = replicas > 0
        SESSIONS_ENDED.labels(reason, str(replicated).lower()).inc()
        if not replicated and wait_ms > 0:
            # In force on the primary (which every gateway reads), but not yet on the replica:
            # a failover in the next moments could bring the session back. See README.
            log.warning("session revoked without replica confirmation",
                        extra={"sid": session_id, "reason": reason, "wait_ms": wait_ms})

    async def end_all(self, user_id: str, reason: str) -> int:
        sessions = await self.store.sessions_of(user_id)
        for session_id in sessions:
            await self.end(session_id, user_id, reason)
        return len(sessions)

    def _pair(self, user: User, session_id: str, refresh_token: str,
              lifetimes: Lifetimes) -> TokenPair:
        access = self.sign(user, session_id, lifetimes.access_s)
        return TokenPair(access, lifetimes.access_s, refresh_token, lifetimes.refresh_s)
