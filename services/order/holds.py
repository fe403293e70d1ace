"""Coupon holds in the session Redis's transient keyspace (seed §5: "쿠폰 임시 저장").

Two keys per coupon, both with the coupon code as hash tag so they share a slot on a cluster:

``transient:coupon:{CODE}:hold:<user>``  the holder (an order id, or ``cart`` while the coupon
                                         is applied to the cart), expiring with the hold;
``transient:coupon:{CODE}:holders``      sorted set of users holding it, scored by expiry,
                                         so the holds that count against a total limit are
                                         the members scored in the future.

Taking and releasing a hold are Lua scripts, so the check and the write are one atomic step.
Time comes from the Redis server (``TIME``), not from the caller, so instances whose clocks
disagree still agree on which holds have expired.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.errors import Unavailable
from services.order.domain.checkout import HoldOutcome, HoldResult
from services.order.domain.coupons import CART_OWNER

PREFIX = "transient:coupon:"

# KEYS: hold key, holders set. ARGV: owner, ttl ms, user, capacity (-1: no limit), cart owner.
# Returns {1, ""} held, {0, holder} held by another order of this user, {-1, ""} exhausted.
HOLD = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] and current ~= ARGV[5] then
  return {0, current}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local capacity = tonumber(ARGV[4])
if capacity >= 0 and not redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  if redis.call('ZCARD', KEYS[2]) >= capacity then
    return {-1, ''}
  end
end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ttl)
return {1, ''}
"""

# KEYS: hold key, holders set. ARGV: owner, user. Returns 1 if released, 0 if not the holder.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


def hold_key(code: str, user_id: str) -> str:
    return f"{PREFIX}{{{code}}}:hold:{user_id}"


def holders_key(code: str) -> str:
    return f"{PREFIX}{{{code}}}:holders"


class RedisHolds:
    """`services.order.domain.checkout.Holds` on a Redis client (decode_responses=True)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._hold = redis.register_script(HOLD)
        self._release = redis.register_script(RELEASE)

    async def hold(self, code: str, user_id: str, owner: str, ttl_s: int,
                   capacity: int | None) -> HoldResult:
        try:
            status, holder = await self._hold(
                keys=[hold_key(code, user_id), holders_key(code)],
                args=[owner, int(ttl_s * 1000), user_id,
                      -1 if capacity is None else capacity, CART_OWNER])
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise Unavailable(f"coupon holds are unavailable ({error}); try again") from error
        if int(status) == 1:
            return HoldResult(HoldOutcome.HELD)
        if int(status) == 0:
            return HoldResult(HoldOutcome.HELD_ELSEWHERE, str(holder))
        return HoldResult(HoldOutcome.EXHAUSTED)

    async def release(self, code: str, user_id: str, owner: str) -> bool:
        released = await self._release(keys=[hold_key(code, user_id), holders_key(code)],
                                       args=[owner, user_id])
        return bool(int(released))

    async def holder(self, code: str, user_id: str) -> str | None:
        value = await self.redis.get(hold_key(code, user_id))
        return None if value is None else str(value)
