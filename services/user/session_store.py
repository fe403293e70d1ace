"""Sessions in the session Redis (through Sentinel): the `SessionStore` of the domain.

Keys, all with the session's lifetime as TTL (renewed at each rotation, so a session ends after
``refresh-token-ttl-seconds`` without a refresh):

``user:sid:<sid>``        hash: ``user`` (member id), ``current`` (digest of the current refresh
                          token), ``started``, ``rotated`` (epoch seconds)
``user:refresh:<digest>`` ``<sid> <member id>``: which session issued this refresh token. Kept
                          after the token is consumed, so that a reuse is recognised as one.
``user:sids:<member id>`` set of the member's session ids (to end them all on a role removal)

Rotation is one Lua script: compare the presented digest with ``current`` and swap in the next
one, atomically, so of two requests racing with the same token exactly one wins. Ending a
session deletes it, then revokes its sid with `services.common.tokens.revoke` and ``WAIT``s for
the replica on that same connection — which also covers the deletion written just before.

Redis errors become 503 answers: a client may retry; nothing is half-done, since every change
is a single command, script or transaction.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.tokens import Revocation, revoke
from services.user.domain.sessions import Presented, Rotation

T = TypeVar("T")

SESSION_PREFIX = "user:sid:"
REFRESH_PREFIX = "user:refresh:"
MEMBER_PREFIX = "user:sids:"

# KEYS: session, next refresh token, member's set. ARGV: presented digest, next digest,
# "<sid> <member>", ttl ms, now (s).
ROTATE = """
local current = redis.call('HGET', KEYS[1], 'current')
if not current then return 'ended' end
if current ~= ARGV[1] then return 'stale' end
redis.call('HSET', KEYS[1], 'current', ARGV[2], 'rotated', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return 'rotated'
"""


def session_key(session_id: str) -> str:
    return SESSION_PREFIX + session_id


def refresh_key(refresh_digest: str) -> str:
    return REFRESH_PREFIX + refresh_digest


def member_key(user_id: str) -> str:
    return MEMBER_PREFIX + user_id


class RedisSessionStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._rotate = redis.register_script(ROTATE)

    async def open(self, session_id: str, user_id: str, refresh_digest: str,
                   ttl_s: int) -> None:
        ttl_ms = ttl_s * 1000

        async def work() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                now = int(time.time())
                pipe.hset(session_key(session_id), mapping={
                    "user": user_id, "current": refresh_digest, "started": now,
                    "rotated": now})
                pipe.pexpire(session_key(session_id), ttl_ms)
                pipe.set(refresh_key(refresh_digest), f"{session_id} {user_id}", px=ttl_ms)
                pipe.sadd(member_key(user_id), session_id)
                pipe.pexpire(member_key(user_id), ttl_ms, gt=True)
                pipe.pexpire(member_key(user_id), ttl_ms, nx=True)
                await pipe.execute()

        await _available(work)

    async def find(self, refresh_digest: str) -> Presented | None:
        value = await _available(lambda: self.redis.get(refresh_key(refresh_digest)))
        if not value:
            return None
        session_id, _, user_id = str(value).partition(" ")
        return Presented(session_id, user_id)

    async def rotate(self, presented: Presented, refresh_digest: str, next_digest: str,
                     ttl_s: int) -> Rotation:
        keys = [session_key(presented.session_id), refresh_key(next_digest),
                member_key(presented.user_id)]
        owner = f"{presented.session_id} {presented.user_id}"
        args: list[str | int] = [refresh_digest, next_digest, owner, ttl_s * 1000,
                                 int(time.time())]
        outcome = await _available(lambda: self._rotate(keys=keys, args=args))
        return Rotation(str(outcome))

    async def end(self, session_id: str, user_id: str | None, replica_wait_ms: int) -> int:
        async def work() -> int:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(session_key(session_id))
                if user_id:
                    pipe.srem(member_key(user_id), session_id)
                await pipe.execute()
            replicas = await revoke(self.redis, Revocation("sid", session_id),
                                    replicas=1 if replica_wait_ms > 0 else 0,
                                    replica_timeout_ms=replica_wait_ms)
            return replicas or 0

        return await _available(work)

    async def sessions_of(self, user_id: str) -> list[str]:
        members: Any = await _available(lambda: self.redis.smembers(member_key(user_id)))
        return sorted(str(m) for m in members)

    async def check(self) -> str | None:
        """None when the session Redis master answers; else the problem (for readiness)."""
        try:
            await self.redis.ping()
        except (RedisError, OSError) as error:
            return f"session redis: {type(error).__name__}: {error}"[:160]
        return None


async def _available(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return await work()
    except (RedisError, OSError) as error:
        raise Unavailable(f"the session store is unavailable ({type(error).__name__}); "
                          f"retry shortly") from error
