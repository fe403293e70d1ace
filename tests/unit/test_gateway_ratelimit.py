"""Token-bucket math with an injected clock, and the batched sync against a fake shared store
that does what the Redis script does (refill by its own clock, subtract, floor at -capacity)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.gateway.ratelimit import RateLimiter
from services.gateway.settings import RateLimitSettings

LIMIT = RateLimitSettings(replenish_rate=10, burst_capacity=20)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStore:
    """The shared buckets, as the Lua script keeps them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}
        self.calls = 0
        self.failing = False

    async def sync(self, entries: Sequence[tuple[str, float, int, int]]) -> Sequence[float]:
        self.calls += 1
        if self.failing:
            raise ConnectionError("redis down")
        levels = []
        now = self.clock()
        for key, rate, capacity, used in entries:
            tokens, ts = self.buckets.get(key, (float(capacity), now))
            tokens = min(capacity, tokens + max(0.0, now - ts) * rate)
            tokens = max(-capacity, tokens - used)
            self.buckets[key] = (tokens, now)
            levels.append(tokens)
        return levels


def admitted(limiter: RateLimiter, clock: Clock, count: int, key: str = "r\x00alice") -> int:
    return sum(limiter.acquire(key, LIMIT, clock())[0] for _ in range(count))


def test_burst_then_replenish_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock)
    assert admitted(limiter, clock, 25) == 20          # the burst capacity
    clock.now += 0.5
    assert admitted(limiter, clock, 25) == 5           # 10 tokens/s for 0.5 s
    clock.now += 100
    assert admitted(limiter, clock, 25) == 20          # never above capacity


def test_answers_remaining_and_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock)
    assert limiter.acquire("k", LIMIT, clock()) == (True, 19, 0)
    admitted(limiter, clock, 19, key="k")
    allowed, remaining, retry_after = limiter.acquire("k", LIMIT, clock())
    assert (allowed, remaining) == (False, 0)
    assert retry_after == 1                            # one token takes 0.1 s: rounded up
    slow = RateLimitSettings(replenish_rate=0.2, burst_capacity=1)
    limiter.acquire("slow", slow, clock())
    assert limiter.acquire("slow", slow, clock())[2] == 5


def test_clients_and_routes_have_separate_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock)
    assert admitted(limiter, clock, 20, key="r\x00alice") == 20
    assert admitted(limiter, clock, 20, key="r\x00bob") == 20
    assert admitted(limiter, clock, 20, key="other\x00alice") == 20


def test_one_call_per_sync_for_all_clients() -> None:
    clock = Clock()
    store = FakeStore(clock)
    limiter = RateLimiter(store, clock)
    for client in ("a", "b", "c"):
        admitted(limiter, clock, 3, key=f"r\x00{client}")
    asyncio.run(limiter.sync())
    assert store.calls == 1
    assert {key: tokens for key, (tokens, _) in store.buckets.items()} == {
        "r\x00a": 17.0, "r\x00b": 17.0, "r\x00c": 17.0}
    asyncio.run(limiter.sync())
    assert store.calls == 1                            # nothing touched, nothing sent


def test_two_gateways_share_a_bucket_within_the_documented_bound() -> None:
    """Each spends its local view between syncs; the excess is at most (G-1)*(B + r*T), and it
    is repaid as debt so the long-run rate is the configured one."""
    clock = Clock()
    store = FakeStore(clock)
    first, second = RateLimiter(store, clock), RateLimiter(store, clock)
    interval = 0.05
    total = 0
    for _ in range(200):                               # 10 s of 20 requests per tick on each
        total += admitted(first, clock, 20) + admitted(second, clock, 20)
        asyncio.run(first.sync())
        asyncio.run(second.sync())
        clock.now += interval
    elapsed = 200 * interval
    single_bucket = LIMIT.burst_capacity + LIMIT.replenish_rate * elapsed
    bound = (2 - 1) * (LIMIT.burst_capacity + LIMIT.replenish_rate * interval)
    assert single_bucket <= total <= single_bucket + bound
    # After the initial burst the shared rate holds: the next 10 s admit 10/s in total.
    before = total
    for _ in range(200):
        total += admitted(first, clock, 20) + admitted(second, clock, 20)
        asyncio.run(first.sync())
        asyncio.run(second.sync())
        clock.now += interval
    assert total - before == pytest.approx(LIMIT.replenish_rate * elapsed, abs=2)


def test_consumption_during_a_sync_is_not_lost() -> None:
    clock = Clock()
    store = FakeStore(clock)
    limiter = RateLimiter(store, clock)

    async def scenario() -> None:
        admitted(limiter, clock, 5)
        sync = asyncio.create_task(limiter.sync())
        await asyncio.sleep(0)                         # the sync has taken the batch
        admitted(limiter, clock, 3)                    # consumed while it is in flight
        await sync
        assert limiter.acquire("r\x00alice", LIMIT, clock())[1] == 20 - 5 - 3 - 1

    asyncio.run(scenario())


def test_store_failure_keeps_limiting_locally_and_resends_later() -> None:
    clock = Clock()
    store = FakeStore(clock)
    limiter = RateLimiter(store, clock)
    store.failing = True
    assert admitted(limiter, clock, 25) == 20          # still limited, by the local bucket
    asyncio.run(limiter.sync())
    assert store.buckets == {}
    store.failing = False
    asyncio.run(limiter.sync())
    assert store.buckets["r\x00alice"][0] == 0.0       # the consumption arrived after all


def test_changed_limits_start_a_new_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock)
    admitted(limiter, clock, 20)
    bigger = RateLimitSettings(replenish_rate=10, burst_capacity=50)
    assert limiter.acquire("r\x00alice", bigger, clock()) == (True, 49, 0)
