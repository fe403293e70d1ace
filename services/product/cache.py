"""The cache layer: product detail and list pages in the cache Redis (seed §5, "caching layer").

**Keys.** A page is stored under a key that includes a *floor*:
``product:detail:{id}:{floor}`` and ``product:list:{floor}:{query digest}``. A floor is a
PostgreSQL WAL position (LSN) kept in ``product:floor:{id}`` (per product) and
``product:list-floor`` (all lists). After a write commits, the service raises the floors of what
it changed to the writer's LSN: readers then look under new keys, so every page cached before
the write is unreachable at once (no stale read after an invalidation; the orphans expire by
their TTL) — lists need no key scan, and a slow reader that fills an old key fills an orphan.

**Fresh enough.** A page is filled from the reader endpoint (the standby), which may lag the
writer by a few milliseconds. The loader is told the floor it must reach: it compares the
standby's replay LSN with it and reads from the writer when the standby is behind, so a lagging
replica never refills a cache key with the data an invalidation removed.

**Stampede.** An entry carries its soft expiry (the configured TTL) and lives in Redis for TTL +
``stale-seconds``. When it expires, the first request takes a short lock (``SET NX PX``) and
recomputes it (``X-Cache: MISS``) while the others keep answering with the stale copy
(``STALE``); with no copy at all (a cold or just-invalidated key) they wait up to ``wait-ms``
for the lock holder's result (``HIT``), then read the database themselves.

**A dead cache.** Every Redis call has a short timeout. A refused connection makes the cache
*unavailable* for ``backoff-seconds``, during which pages come straight from the database
(``BYPASS``) without touching Redis, so a dead cache costs nothing per request; a timeout sends
that one request to the database and starts a probe (a few PINGs) that opens the back-off only
if the cache really does not answer — a burst that starves this process's event loop for longer
than the timeout must not switch the cache off.
Floors that could not be raised while it was unreachable are raised when it answers again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = logging.getLogger("services.product.cache")

LOOKUPS = Counter("product_cache_lookups_total", "Product page lookups by outcome",
                  ("page", "outcome"))
FAILURES = Counter("product_cache_failures_total",
                   "Cache Redis calls that failed (each starts a back-off)", ("operation",))

FLOOR_TTL_MS = 24 * 3600 * 1000  # far beyond any page TTL: a floor outlives the keys under it
POLL_S = 0.025                   # how often a waiting request looks for the lock holder's page
CACHE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
TIMEOUTS = (RedisTimeoutError, asyncio.TimeoutError)
PROBES = 3           # pings that must all fail before a timeout counts as the cache being down
PROBE_GAP_S = 0.1

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Outcome(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"
    BYPASS = "BYPASS"


@dataclass(frozen=True)
class Page:
    """A rendered page: the JSON body served as is, and facts the route checks (e.g. owner)."""

    body: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Served:
    page: Page
    outcome: Outcome
    ttl_s: float  # the TTL the served entry was (or will be) stored with


Loader = Callable[[int], Awaitable[Page | None]]
"""Reads a page at least as fresh as the given floor (an LSN), or None when it does not exist."""


@dataclass(frozen=True)
class CachePolicy:
    ttl_s: float
    stale_s: float
    lock_ms: int
    wait_ms: int
    backoff_s: float


class CacheStore(Protocol):
    """The few Redis operations the page cache needs (a fake one in the unit tests)."""

    async def read(self, floor_key: str, prefix: str, suffix: str) -> tuple[int, str | None]:
        """The floor (0 if none) and the entry stored at ``prefix + floor + suffix``."""

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, ttl_ms: int) -> None: ...

    async def lock(self, key: str, token: str, ttl_ms: int) -> bool: ...

    async def unlock(self, key: str, token: str) -> None: ...

    async def raise_floors(self, floor_keys: list[str], lsn: int, ttl_ms: int) -> None:
        """Set each floor to max(floor, lsn), with ``ttl_ms``."""

    async def ping(self) -> None: ...


class CacheHealth:
    """Whether to try the cache now: after a failure, not again for ``backoff_s``."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._down_until = 0.0
        self.down = False

    def usable(self) -> bool:
        return self.clock() >= self._down_until

    def failed(self, backoff_s: float) -> None:
        if not self.down:
            log.warning("cache Redis unavailable; serving from the database for %.1f s at a "
                        "time until it answers", backoff_s)
        self.down = True
        self._down_until = self.clock() + backoff_s

    def succeeded(self) -> bool:
        """Record a success; True if the cache was down until now (it has come back)."""
        if self.down:
            log.info("cache Redis answers again")
            self.down = False
            return True
        return False


def encode_entry(page: Page, expires_at: float, ttl_s: float) -> str:
    header = json.dumps({"exp": expires_at, "ttl": ttl_s, "meta": page.meta},
                        separators=(",", ":"))
    return f"{header}\n{page.body}"


def decode_entry(raw: str) -> tuple[Page, float, float]:
    header, _, body = raw.partition("\n")
    fields = json.loads(header)
    return Page(body, fields.get("meta") or {}), float(fields["exp"]), float(fields["ttl"])


class PageCache:
    """Cached pages with a stampede guard, invalidation by floors, and a fallback to the loader.

    ``clock`` is wall time (entries carry their expiry, shared by every instance);
    ``health`` has its own monotonic clock.
    """

    def __init__(self, store: CacheStore, *, clock: Clock = time.time,
                 sleep: Sleep = asyncio.sleep, health: CacheHealth | None = None) -> None:
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.health = health or CacheHealth()
        self._pending_floors: dict[str, int] = {}
        self._probe: asyncio.Task[None] | None = None

    # --- reading ----------------------------------------------------------------------------

    async def fetch(self, page: str, floor_key: str, prefix: str, suffix: str,
                    policy: CachePolicy, load: Loader) -> Served | None:
        """The page from the cache, or loaded (and stored); None when the loader finds none."""
        served = await self._fetch(floor_key, prefix, suffix, policy, load)
        if served is not None:
            LOOKUPS.labels(page, served.outcome.value).inc()
        return served

    async def _fetch(self, floor_key: str, prefix: str, suffix: str, policy: CachePolicy,
                     load: Loader) -> Served | None:
        if not self.health.usable():
            return await self._bypass(policy, load)
        if self._pending_floors:  # invalidations first: what they hide must not be read
            await self._flush_floors(policy.backoff_s)
            if self._pending_floors:
                return await self._bypass(policy, load)
        try:
            floor, raw = await self.store.read(floor_key, prefix, suffix)
            self.health.succeeded()
        except CACHE_ERRORS as error:
            self._failed("read", error, policy)
            return await self._bypass(policy, load)
        key = f"{prefix}{floor}{suffix}"
        stale: tuple[Page, float] | None = None
        if raw is not None:
            entry, expires_at, ttl = self._decode(raw)
            if entry is not None:
                if self.clock() < expires_at:
                    return Served(entry, Outcome.HIT, ttl)
                stale = (entry, ttl)
        token = uuid.uuid4().hex
        try:
            holder = await self.store.lock(f"{key}:lock", token, policy.lock_ms)
        except CACHE_ERRORS as error:
            self._failed("lock", error, policy)
            return await self._bypass(policy, load)
        if holder:
            try:
                return await self._recompute(key, floor, policy, load)
            finally:
                await self._quietly(self.store.unlock(f"{key}:lock", token), "unlock", policy)
        if stale is not None:
            return Served(stale[0], Outcome.STALE, stale[1])
        waited = await self._wait_for_holder(key, policy)
        if waited is not None:
            return waited
        page = await load(floor)  # the holder is slow: read it ourselves, leave the fill to it
        return None if page is None else Served(page, Outcome.MISS, policy.ttl_s)

    async def _recompute(self, key: str, floor: int, policy: CachePolicy,
                         load: Loader) -> Served | None:
        page = await load(floor)
        if page is None:
            return None
        entry = encode_entry(page, self.clock() + policy.ttl_s, policy.ttl_s)
        ttl_ms = max(1, int((policy.ttl_s + policy.stale_s) * 1000))
        await self._quietly(self.store.put(key, entry, ttl_ms), "put", policy)
        return Served(page, Outcome.MISS, policy.ttl_s)

    async def _wait_for_holder(self, key: str, policy: CachePolicy) -> Served | None:
        deadline = self.clock() + policy.wait_ms / 1000
        while self.clock() < deadline:
            await self.sleep(POLL_S)
            try:
                raw = await self.store.get(key)
            except CACHE_ERRORS as error:
                self._failed("get", error, policy)
                return None
            if raw is not None:
                entry, expires_at, ttl = self._decode(raw)
                if entry is not None and self.clock() < expires_at:
                    return Served(entry, Outcome.HIT, ttl)
        return None

    async def _bypass(self, policy: CachePolicy, load: Loader) -> Served | None:
        page = await load(0)
        return None if page is None else Served(page, Outcome.BYPASS, policy.ttl_s)

    @staticmethod
    def _decode(raw: str) -> tuple[Page | None, float, float]:
        try:
            return decode_entry(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable cache entry")
            return None, 0.0, 0.0

    # --- invalidation -----------------------------------------------------------------------

    async def invalidate(self, floor_keys: Iterable[str], lsn: int, backoff_s: float) -> None:
        """Make every page under ``floor_keys`` unreachable: raise the floors to ``lsn``.

        Called after the write committed, with the writer's LSN. If the cache cannot be
        reached, the floors are kept and raised before this instance reads the cache again.
        """
        for key in floor_keys:
            self._pending_floors[key] = max(lsn, self._pending_floors.get(key, 0))
        if not self.health.usable():
            return
        await self._flush_floors(backoff_s)

    async def _flush_floors(self, backoff_s: float) -> None:
        while self._pending_floors:
            lsn = max(self._pending_floors.values())
            keys = sorted(self._pending_floors)
            try:
                await self.store.raise_floors(keys, lsn, FLOOR_TTL_MS)
            except CACHE_ERRORS as error:
                FAILURES.labels("invalidate").inc()
                self.health.failed(backoff_s)
                log.warning("cache invalidation postponed (%s): %d floor(s) pending",
                            type(error).__name__, len(self._pending_floors))
                return
            for key in keys:
                if self._pending_floors.get(key, 0) <= lsn:
                    self._pending_floors.pop(key, None)
            self.health.succeeded()

    @property
    def pending_invalidations(self) -> int:
        return len(self._pending_floors)

    # --- failures ---------------------------------------------------------------------------

    def _failed(self, operation: str, error: BaseException, policy: CachePolicy) -> None:
        """A refused or broken connection means the cache is down: back off now. A timeout
        may only mean this process is busy (a burst can starve the event loop for longer than
        the timeout): a probe in the background decides, this request reads the database."""
        FAILURES.labels(operation).inc()
        log.debug("cache %s failed: %r", operation, error)
        if not isinstance(error, TIMEOUTS):
            self.health.failed(policy.backoff_s)
        elif self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._confirm(policy), name="cache-probe")

    async def _confirm(self, policy: CachePolicy) -> None:
        for attempt in range(PROBES):
            if attempt:
                await self.sleep(PROBE_GAP_S)
            try:
                await self.store.ping()
            except CACHE_ERRORS:
                continue
            return
        self.health.failed(policy.backoff_s)

    async def _quietly(self, call: Awaitable[Any], operation: str, policy: CachePolicy) -> None:
        try:
            await call
        except CACHE_ERRORS as error:
            self._failed(operation, error, policy)


# --- the Redis implementation -------------------------------------------------------------

_READ = """
local floor = redis.call('GET', KEYS[1]) or '0'
return {floor, redis.call('GET', ARGV[1] .. floor .. ARGV[2])}
"""
_RAISE_FLOORS = """
for _, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  if tonumber(ARGV[1]) > current then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return 1
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def cache_client(url: str, timeout_ms: int) -> Redis:
    """A client for the cache Redis that fails fast: short timeouts, no retries of its own.

    (`ServiceRuntime.cache_redis` allows a second per call; a page that waits that long for a
    cache is slower than the database it saves.)
    """
    timeout_s = timeout_ms / 1000
    return Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                          retry=Retry(NoBackoff(), 0), decode_responses=True,
                          health_check_interval=0)


class RedisCacheStore:
    """`CacheStore` on a Redis client: one round trip per operation (scripts where needed)."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self._read = client.register_script(_READ)
        self._raise = client.register_script(_RAISE_FLOORS)
        self._unlock = client.register_script(_UNLOCK)

    async def read(self, floor_key: str, prefix: str, suffix: str) -> tuple[int, str | None]:
        floor, raw = await self._read(keys=[floor_key], args=[prefix, suffix])
        return int(floor), raw

    async def get(self, key: str) -> str | None:
        value = await self.client.get(key)
        return None if value is None else str(value)

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        await self.client.set(key, value, px=ttl_ms)

    async def lock(self, key: str, token: str, ttl_ms: int) -> bool:
        return bool(await self.client.set(key, token, nx=True, px=ttl_ms))

    async def unlock(self, key: str, token: str) -> None:
        await self._unlock(keys=[key], args=[token])

    async def raise_floors(self, floor_keys: list[str], lsn: int, ttl_ms: int) -> None:
        await self._raise(keys=floor_keys, args=[lsn, ttl_ms])

    async def ping(self) -> None:
        await self.client.ping()


# --- the keys of the product pages ----------------------------------------------------------

LIST_FLOOR = "product:list-floor"


def detail_keys(product_id: int) -> tuple[str, str, str]:
    """(floor key, prefix, suffix) of a product's detail page."""
    return f"product:floor:{product_id}", f"product:detail:{product_id}:", ""


def list_keys(digest: str) -> tuple[str, str, str]:
    return LIST_FLOOR, "product:list:", f":{digest}"


def floors_of(product_ids: Iterable[int]) -> list[str]:
    """The floors a change to these products raises: their details and every list."""
    return [*(detail_keys(pid)[0] for pid in sorted(set(product_ids))), LIST_FLOOR]
