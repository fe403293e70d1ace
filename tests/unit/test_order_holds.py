"""Coupon holds in Redis: the Lua scripts run by fakeredis's embedded Lua."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest

from services.order.domain.checkout import HoldOutcome
from services.order.domain.coupons import CART_OWNER
from services.order.holds import RedisHolds, hold_key, holders_key

TTL = 300

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def holds() -> RedisHolds:
    return RedisHolds(fakeredis.FakeAsyncRedis(decode_responses=True))


async def test_a_hold_is_taken_with_the_ttl_and_counted(holds: RedisHolds) -> None:
    result = await holds.hold("SPRING", "u1", "order-1", TTL, capacity=None)

    assert result.outcome is HoldOutcome.HELD
    assert await holds.holder("SPRING", "u1") == "order-1"
    assert 0 < await holds.redis.pttl(hold_key("SPRING", "u1")) <= TTL * 1000
    assert await holds.redis.zcard(holders_key("SPRING")) == 1


async def test_the_same_owner_may_hold_again_another_order_may_not(holds: RedisHolds) -> None:
    await holds.hold("SPRING", "u1", "order-1", TTL, None)

    again = await holds.hold("SPRING", "u1", "order-1", TTL, None)
    other = await holds.hold("SPRING", "u1", "order-2", TTL, None)

    assert again.outcome is HoldOutcome.HELD
    assert other.outcome is HoldOutcome.HELD_ELSEWHERE
    assert other.holder == "order-1"


async def test_an_order_takes_over_the_hold_its_cart_had(holds: RedisHolds) -> None:
    await holds.hold("SPRING", "u1", CART_OWNER, TTL, 1)

    taken = await holds.hold("SPRING", "u1", "order-1", TTL, 1)

    assert taken.outcome is HoldOutcome.HELD
    assert await holds.holder("SPRING", "u1") == "order-1"
    assert (await holds.hold("SPRING", "u1", CART_OWNER, TTL, 1)).outcome \
        is HoldOutcome.HELD_ELSEWHERE


async def test_holds_count_against_the_remaining_capacity(holds: RedisHolds) -> None:
    assert (await holds.hold("LAST2", "u1", "o1", TTL, 2)).outcome is HoldOutcome.HELD
    assert (await holds.hold("LAST2", "u2", "o2", TTL, 2)).outcome is HoldOutcome.HELD

    third = await holds.hold("LAST2", "u3", "o3", TTL, 2)
    await holds.release("LAST2", "u1", "o1")
    after_release = await holds.hold("LAST2", "u3", "o3", TTL, 2)

    assert third.outcome is HoldOutcome.EXHAUSTED
    assert after_release.outcome is HoldOutcome.HELD


async def test_a_user_already_holding_is_not_counted_twice(holds: RedisHolds) -> None:
    await holds.hold("LAST1", "u1", CART_OWNER, TTL, 1)

    assert (await holds.hold("LAST1", "u1", "o1", TTL, 1)).outcome is HoldOutcome.HELD


async def test_only_the_owner_releases(holds: RedisHolds) -> None:
    await holds.hold("SPRING", "u1", "order-1", TTL, None)

    assert not await holds.release("SPRING", "u1", "order-2")
    assert await holds.release("SPRING", "u1", "order-1")
    assert not await holds.release("SPRING", "u1", "order-1")
    assert await holds.holder("SPRING", "u1") is None
    assert await holds.redis.zcard(holders_key("SPRING")) == 0


async def test_an_expired_hold_frees_the_coupon(holds: RedisHolds) -> None:
    await holds.hold("LAST1", "u1", "o1", 0.05, 1)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)

    assert (await holds.hold("LAST1", "u2", "o2", TTL, 1)).outcome is HoldOutcome.HELD
    assert (await holds.hold("LAST1", "u1", "o3", TTL, 1)).outcome is HoldOutcome.EXHAUSTED
