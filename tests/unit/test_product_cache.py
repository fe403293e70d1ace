"""The page cache over a fake store and a fake clock: hits, expiry, the stampede guard,
invalidation by floors, and answering from the database while the cache is down."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.product.cache import (
    LIST_FLOOR,
    CacheHealth,
    CachePolicy,
    Outcome,
    Page,
    PageCache,
    Served,
    detail_keys,
    floors_of,
    list_keys,
)

pytestmark = pytest.mark.anyio
POLICY = CachePolicy(ttl_s=10.0, stale_s=5.0, lock_ms=2000, wait_ms=300, backoff_s=3.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class FakeStore:
    """The CacheStore operations over a dict with expiry on the fake clock; ``down`` fails all."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.values: dict[str, tuple[str, float]] = {}
        self.down = False
        self.slow = False  # every call times out (a blackholed cache, or a starved client)
        self.pings_fail = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("connection refused")
        if self.slow:
            raise RedisTimeoutError("Timeout reading from socket")

    async def ping(self) -> None:
        if self.down or self.pings_fail:
            raise RedisTimeoutError("Timeout reading from socket")

    def _get(self, key: str) -> str | None:
        found = self.values.get(key)
        if found is None or found[1] <= self.clock():
            self.values.pop(key, None)
            return None
        return found[0]

    async def read(self, floor_key: str, prefix: str, suffix: str) -> tuple[int, str | None]:
        self._check()
        floor = int(self._get(floor_key) or 0)
        return floor, self._get(f"{prefix}{floor}{suffix}")

    async def get(self, key: str) -> str | None:
        self._check()
        return self._get(key)

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        self._check()
        self.values[key] = (value, self.clock() + ttl_ms / 1000)

    async def lock(self, key: str, token: str, ttl_ms: int) -> bool:
        self._check()
        if self._get(key) is not None:
            return False
        self.values[key] = (token, self.clock() + ttl_ms / 1000)
        return True

    async def unlock(self, key: str, token: str) -> None:
        self._check()
        if self._get(key) == token:
            del self.values[key]

    async def raise_floors(self, floor_keys: list[str], lsn: int, ttl_ms: int) -> None:
        self._check()
        for key in floor_keys:
            current = int(self._get(key) or 0)
            self.values[key] = (str(max(current, lsn)), self.clock() + ttl_ms / 1000)


class Database:
    """The loader: counts reads and remembers the floor each was asked to reach."""

    def __init__(self, body: str = '{"price": 100}') -> None:
        self.body = body
        self.floors: list[int] = []
        self.gate: asyncio.Event | None = None

    async def load(self, floor: int) -> Page | None:
        self.floors.append(floor)
        if self.gate is not None:
            await self.gate.wait()
        return Page(self.body, {"version": len(self.floors)})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> FakeStore:
    return FakeStore(clock)


@pytest.fixture
def cache(clock: Clock, store: FakeStore) -> PageCache:
    return PageCache(store, clock=clock, sleep=clock.sleep, health=CacheHealth(clock))


async def detail(cache: PageCache, db: Database, product_id: int = 7) -> Served:
    served = await cache.fetch("detail", *detail_keys(product_id), POLICY, db.load)
    assert served is not None
    return served


async def outcome(cache: PageCache, db: Database) -> Outcome:
    return (await detail(cache, db)).outcome


async def test_a_page_is_read_once_then_served_from_the_cache(cache: PageCache) -> None:
    db = Database()
    first = await detail(cache, db)
    second = await detail(cache, db)
    assert (first.outcome, second.outcome) == (Outcome.MISS, Outcome.HIT)
    assert second.page.body == db.body and second.ttl_s == POLICY.ttl_s
    assert len(db.floors) == 1


async def test_after_the_ttl_the_page_is_read_from_the_database_again(
        cache: PageCache, clock: Clock) -> None:
    db = Database()
    await detail(cache, db)
    clock.now += POLICY.ttl_s - 0.01
    assert await outcome(cache, db) is Outcome.HIT
    clock.now += 0.02
    assert await outcome(cache, db) is Outcome.MISS
    assert await outcome(cache, db) is Outcome.HIT
    assert len(db.floors) == 2


async def test_while_one_request_refreshes_an_expired_page_the_others_get_the_stale_copy(
        cache: PageCache, clock: Clock) -> None:
    db = Database()
    await detail(cache, db)
    clock.now += POLICY.ttl_s + 1  # expired, still within the stale period
    db.gate = asyncio.Event()
    refreshing = asyncio.create_task(detail(cache, db))
    await asyncio.sleep(0)
    others = [await outcome(cache, db) for _ in range(20)]
    assert others == [Outcome.STALE] * 20
    db.gate.set()
    assert (await refreshing).outcome is Outcome.MISS
    assert len(db.floors) == 2  # one database read for 21 requests
    assert await outcome(cache, db) is Outcome.HIT


async def test_with_no_copy_at_all_the_others_wait_for_the_lock_holder(
        cache: PageCache, store: FakeStore) -> None:
    db = Database()
    db.gate = asyncio.Event()
    holder = asyncio.create_task(detail(cache, db))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(detail(cache, db))
    for _ in range(3):
        await asyncio.sleep(0)
    db.gate.set()
    assert (await holder).outcome is Outcome.MISS
    assert (await waiting).outcome is Outcome.HIT
    assert len(db.floors) == 1


async def test_a_waiter_reads_the_database_itself_when_the_holder_is_too_slow(
        cache: PageCache, store: FakeStore) -> None:
    db = Database()
    await store.lock(f"{detail_keys(7)[1]}0:lock", "a crashed holder", 60_000)
    served = await detail(cache, db)
    assert served.outcome is Outcome.MISS and db.floors == [0]
    assert await store.get(f"{detail_keys(7)[1]}0") is None  # it leaves the fill to the holder


async def test_a_change_makes_the_cached_pages_unreachable_and_sets_the_floor(
        cache: PageCache) -> None:
    db = Database()
    lists = Database('{"items": []}')
    await detail(cache, db)
    await cache.fetch("list", *list_keys("q1"), POLICY, lists.load)
    await cache.invalidate(floors_of([7]), lsn=5_000, backoff_s=3.0)
    db.body = '{"price": 90}'
    served = await detail(cache, db)
    assert served.outcome is Outcome.MISS and served.page.body == db.body
    assert db.floors == [0, 5_000]  # the loader must read at least as fresh as the change
    relisted = await cache.fetch("list", *list_keys("q1"), POLICY, lists.load)
    assert relisted is not None and relisted.outcome is Outcome.MISS and lists.floors[-1] == 5_000


async def test_floors_only_rise(cache: PageCache, store: FakeStore) -> None:
    await cache.invalidate(floors_of([1]), lsn=900, backoff_s=3.0)
    await cache.invalidate(floors_of([1]), lsn=800, backoff_s=3.0)  # an older commit, later
    assert await store.get(LIST_FLOOR) == "900" and await store.get(detail_keys(1)[0]) == "900"


async def test_a_dead_cache_is_bypassed_and_not_tried_again_during_the_backoff(
        cache: PageCache, store: FakeStore, clock: Clock) -> None:
    db = Database()
    store.down = True
    assert await outcome(cache, db) is Outcome.BYPASS
    calls = store.calls
    for _ in range(10):
        assert await outcome(cache, db) is Outcome.BYPASS
    assert store.calls == calls  # no timeout paid per request
    assert db.floors == [0] * 11
    clock.now += POLICY.backoff_s
    store.down = False
    assert await outcome(cache, db) is Outcome.MISS
    assert await outcome(cache, db) is Outcome.HIT


async def test_a_timeout_under_load_does_not_switch_the_cache_off(
        cache: PageCache, store: FakeStore) -> None:
    db = Database()
    store.slow = True
    assert await outcome(cache, db) is Outcome.BYPASS  # this request reads the database
    assert cache._probe is not None
    await cache._probe
    assert cache.health.usable()  # the cache answered the probe's PINGs
    store.slow = False
    assert await outcome(cache, db) is Outcome.MISS


async def test_a_cache_that_stops_answering_is_switched_off_after_the_probe(
        cache: PageCache, store: FakeStore) -> None:
    db = Database()
    store.slow = store.pings_fail = True
    assert await outcome(cache, db) is Outcome.BYPASS
    assert cache._probe is not None
    await cache._probe
    assert not cache.health.usable()
    calls = store.calls
    assert await outcome(cache, db) is Outcome.BYPASS and store.calls == calls


async def test_invalidations_missed_while_the_cache_was_down_are_applied_when_it_returns(
        cache: PageCache, store: FakeStore, clock: Clock) -> None:
    db = Database()
    await detail(cache, db)
    store.down = True
    await cache.invalidate(floors_of([7]), lsn=42, backoff_s=3.0)
    assert cache.pending_invalidations == 2
    clock.now += 3.0
    store.down = False
    served = await detail(cache, db)  # the first call that reaches the cache flushes them
    assert served.outcome is Outcome.MISS and db.floors[-1] == 42
    assert cache.pending_invalidations == 0


async def test_a_failure_while_storing_a_page_still_answers(
        cache: PageCache, store: FakeStore) -> None:
    db = Database()

    async def failing_put(key: str, value: str, ttl_ms: int) -> None:
        raise RedisConnectionError("timeout")

    store.put = failing_put
    served = await detail(cache, db)
    assert served.outcome is Outcome.MISS and served.page.body == db.body
    assert not cache.health.usable()


async def test_a_missing_page_is_not_cached(cache: PageCache) -> None:
    reads: list[int] = []

    async def nothing(floor: int) -> Page | None:
        reads.append(floor)
        return None

    assert await cache.fetch("detail", *detail_keys(1), POLICY, nothing) is None
    assert await cache.fetch("detail", *detail_keys(1), POLICY, nothing) is None
    assert len(reads) == 2
