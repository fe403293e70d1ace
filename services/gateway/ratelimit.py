"""Per-client token buckets, decided locally and shared across gateways in batches.

Spring's RedisRateLimiter runs a Lua script per request; at tens of thousands of requests a
second that round trip would be the gateway's largest cost. Here each gateway decides every
request from a **local** bucket (replenish rate ``r`` tokens/s, capacity ``B``) and, every
``sync_interval`` (``T``, 50 ms by default), sends the consumption of every bucket it touched
to the session Redis in **one** script call. The script refills the shared bucket by Redis's
clock, subtracts the consumption of this gateway, and answers the shared level, which becomes
the local level (minus what was consumed while the call was in flight). So:

- **One gateway:** exactly a token bucket; Redis only carries the state across restarts.
- **G gateways:** another gateway's consumption is seen within ``T`` plus a round trip. Between
  two syncs every gateway may spend what it last saw, so the cluster admits at most
  ``(G - 1) * (B + r * T)`` requests more than one bucket would (all saw a full bucket at once;
  for G = 2, B = 20, r = 10/s, T = 50 ms: 20.5 extra requests, once). The shared bucket keeps
  that excess as debt (down to ``-B``) and every gateway sees it at the next sync, so the
  long-run rate stays ``r``.
- **Redis unreachable:** each gateway keeps limiting with its local buckets alone (so the
  limit becomes per gateway, never absent), and the unsent consumption is retried at the next
  sync.

Keys are ``ratelimit:<route>:<client>`` hashes that expire once the bucket would be full again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis

from services.gateway.settings import RateLimitSettings

log = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"

# KEYS: bucket keys. ARGV: rate, capacity, consumed per key. Returns the shared levels as strings
# (Redis truncates Lua numbers to integers). Time is Redis's, so gateways' clocks do not matter.
SYNC_SCRIPT = """
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) + tonumber(now_t[2]) / 1000000
local levels = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[i * 3 - 2])
  local capacity = tonumber(ARGV[i * 3 - 1])
  local used = tonumber(ARGV[i * 3])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = capacity
    ts = now
  end
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
  tokens = math.max(-capacity, tokens - used)
  redis.call('HSET', key, 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', now))
  redis.call('PEXPIRE', key, math.ceil((capacity - tokens) / rate * 1000) + 1000)
  levels[i] = string.format('%.6f', tokens)
end
return levels
"""


class BucketStore(Protocol):
    """The shared side: apply consumption to each bucket and return the shared levels."""

    async def sync(self, entries: Sequence[tuple[str, float, int, int]]) -> Sequence[float]:
        """``entries`` are (key, rate, capacity, consumed); the answer is one level per entry."""
        ...


class RedisBucketStore:
    """The session Redis as the shared side, through :data:`SYNC_SCRIPT`."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(SYNC_SCRIPT)

    async def sync(self, entries: Sequence[tuple[str, float, int, int]]) -> Sequence[float]:
        keys = [KEY_PREFIX + entry[0] for entry in entries]
        args: list[str] = []
        for _, rate, capacity, used in entries:
            args += (repr(rate), str(capacity), str(used))
        levels = await self._script(keys=keys, args=args)
        return [float(level) for level in levels]


class Bucket:
    """Local view of one client's bucket on one route."""

    __slots__ = ("capacity", "in_flight", "pending", "rate", "requested", "stamp", "tokens")

    def __init__(self, limit: RateLimitSettings, now: float) -> None:
        self.rate = limit.replenish_rate
        self.capacity = limit.burst_capacity
        self.requested = limit.requested_tokens
        self.tokens = float(limit.burst_capacity)
        self.stamp = now
        self.pending = 0     # consumed locally, not yet sent
        self.in_flight = 0   # sent in the sync that is under way


class RateLimiter:
    """Decides requests from local buckets; :meth:`sync` shares them (run it every interval)."""

    def __init__(self, store: BucketStore | None, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._touched: dict[str, Bucket] = {}
        self._failing = False

    def acquire(self, key: str, limit: RateLimitSettings, now: float) -> tuple[bool, int, int]:
        """Take the request's tokens if there are enough.

        Returns ``(allowed, remaining, retry_after_s)``: remaining whole tokens after this
        request (Spring's X-RateLimit-Remaining), and when refused the whole seconds until the
        bucket holds enough again (Retry-After, at least 1).
        """
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != limit.replenish_rate \
                or bucket.capacity != limit.burst_capacity \
                or bucket.requested != limit.requested_tokens:
            bucket = self._buckets[key] = Bucket(limit, now)
        elif now > bucket.stamp:
            bucket.tokens = min(bucket.capacity,
                                bucket.tokens + (now - bucket.stamp) * bucket.rate)
            bucket.stamp = now
        self._touched[key] = bucket
        requested = bucket.requested
        if bucket.tokens >= requested:
            bucket.tokens -= requested
            bucket.pending += requested
            return True, int(bucket.tokens), 0
        wait = math.ceil((requested - bucket.tokens) / bucket.rate)
        return False, 0, max(1, wait)

    async def sync(self) -> None:
        """Send the consumption of every bucket touched since the last sync, in one call."""
        touched, self._touched = self._touched, {}
        self._evict_idle()
        if self.store is None or not touched:
            return
        entries = []
        for key, bucket in touched.items():
            bucket.in_flight, bucket.pending = bucket.pending, 0
            entries.append((key, bucket.rate, bucket.capacity, bucket.in_flight))
        try:
            levels = await self.store.sync(entries)
        except Exception as error:  # keep limiting locally; resend the consumption next time
            for key, bucket in touched.items():
                bucket.pending += bucket.in_flight
                bucket.in_flight = 0
                self._touched[key] = bucket
            if not self._failing:
                log.warning("rate limiter: shared sync failed (%s); limiting locally", error)
                self._failing = True
            return
        if self._failing:
            log.info("rate limiter: shared sync works again")
            self._failing = False
        now = self.clock()
        for (_, bucket), level in zip(touched.items(), levels, strict=True):
            # What this gateway consumed while the call was under way is not in ``level`` yet.
            bucket.tokens = level - bucket.pending
            bucket.stamp = now
            bucket.in_flight = 0

    def _evict_idle(self) -> None:
        """Forget buckets that have refilled completely: a new one starts full anyway."""
        if len(self._buckets) < 1024:
            return
        now = self.clock()
        idle = [key for key, b in self._buckets.items()
                if not b.pending and (now - b.stamp) * b.rate + b.tokens >= b.capacity]
        for key in idle:
            del self._buckets[key]

    async def run(self, interval: Callable[[], float]) -> None:
        """Sync forever, every ``interval()`` seconds."""
        while True:
            await asyncio.sleep(interval())
            try:
                await self.sync()
            except Exception:  # never let the sync loop die
                log.exception("rate limiter sync failed")

    def __len__(self) -> int:
        return len(self._buckets)
