"""Carts in the session Redis's transient keyspace (seed §5: "transient layer").

A cart is one hash ``cart:{user_id}`` of product id -> quantity, expiring ``cart.ttl-seconds``
after its last change (reading it does not extend it). Nothing else keeps it: a Redis failover
that loses the last writes, or the TTL, leaves an empty cart, which is a normal cart — never an
error. Prices are not stored; they are looked up when the cart is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.errors import Unavailable

log = logging.getLogger("services.product.carts")

KEY_PREFIX = "cart:"
CART_ERRORS = (RedisError, OSError, TimeoutError)


def cart_key(user_id: str) -> str:
    return f"{KEY_PREFIX}{user_id}"


class CartStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def read(self, user_id: str) -> tuple[dict[int, int], int | None]:
        """(product id -> quantity, seconds until it expires); raises Unavailable."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(cart_key(user_id))
                pipe.ttl(cart_key(user_id))
                raw, ttl = await pipe.execute()
        except CART_ERRORS as error:
            raise Unavailable(f"the cart store cannot be reached ({type(error).__name__})") \
                from error
        quantities: dict[int, int] = {}
        for product, quantity in raw.items():
            try:
                quantities[int(product)] = int(quantity)
            except ValueError:
                log.warning("ignoring a malformed cart line %r=%r", product, quantity)
        return quantities, (int(ttl) if ttl is not None and int(ttl) >= 0 else None)

    async def set_quantity(self, user_id: str, product_id: int, quantity: int,
                           ttl_s: int) -> None:
        await self._write(user_id, ttl_s, set_fields={str(product_id): quantity})

    async def remove(self, user_id: str, product_ids: list[int], ttl_s: int) -> None:
        if product_ids:
            await self._write(user_id, ttl_s, remove=[str(p) for p in product_ids])

    async def clear(self, user_id: str) -> None:
        try:
            await self.redis.delete(cart_key(user_id))
        except CART_ERRORS as error:
            raise Unavailable(f"the cart store cannot be reached ({type(error).__name__})") \
                from error

    async def _write(self, user_id: str, ttl_s: int, *, set_fields: Mapping[str, int] | None = None,
                     remove: list[str] | None = None) -> None:
        key = cart_key(user_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                if set_fields:
                    pipe.hset(key, mapping={k: v for k, v in set_fields.items()})
                if remove:
                    pipe.hdel(key, *remove)
                pipe.expire(key, ttl_s)
                await pipe.execute()
        except CART_ERRORS as error:
            raise Unavailable(f"the cart store cannot be reached ({type(error).__name__}); "
                              f"try again") from error
