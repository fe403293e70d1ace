"""In-memory stand-ins for the order service's store, the product service and the clock.

The store keeps the repository's semantics that the rules depend on: a transaction commits
everything or nothing (a snapshot is restored on error, or when told to fail its commit), one
order per (user, idempotency key), one redemption per (coupon, order), event ids applied once.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.errors import Conflict, Unavailable
from services.common.events import Event
from services.order.domain.addresses import Address, AddressFields
from services.order.domain.checkout import Cart, CartLine, Reserved
from services.order.domain.coupons import Coupon, CouponTerms
from services.order.domain.orders import Line, Order, OrderStatus

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class CommitFailed(Exception):
    pass


@dataclass
class Tables:
    addresses: dict[int, Address] = field(default_factory=dict)
    coupons: dict[str, Coupon] = field(default_factory=dict)
    redemptions: set[tuple[int, str, str]] = field(default_factory=set)  # coupon, order, user
    orders: dict[str, Order] = field(default_factory=dict)
    outbox: list[tuple[str, Event]] = field(default_factory=list)
    processed: set[str] = field(default_factory=set)
    next_id: int = 1


class FakeOrderTx:
    def __init__(self, tables: Tables, user_id: str = "", key: str = "") -> None:
        self.t = tables
        self.user_id = user_id
        self.key = key

    # CheckoutTx
    async def existing(self) -> Order | None:
        return next((o for o in self.t.orders.values()
                     if (o.user_id, o.idempotency_key) == (self.user_id, self.key)), None)

    async def address(self, address_id: int) -> Address | None:
        return self.t.addresses.get(address_id)

    async def coupon(self, code: str) -> Coupon | None:
        return self.t.coupons.get(code)

    async def redeemed_by(self, coupon_id: int, user_id: str) -> bool:
        return any(c == coupon_id and u == user_id for c, _, u in self.t.redemptions)

    async def add(self, order: Order) -> None:
        if await self.existing() is not None:
            raise Conflict("unique (user_id, idempotency_key)")
        self.t.orders[order.id] = order
        self.t.outbox.append((order.id, order.created_event()))

    # OrderTx
    async def first_delivery(self, event: Event) -> bool:
        if event.id in self.t.processed:
            return False
        self.t.processed.add(event.id)
        return True

    async def locked(self, order_id: str) -> Order | None:
        return self.t.orders.get(order_id)

    async def save(self, order: Order) -> None:
        self.t.orders[order.id] = order

    async def redeem(self, order: Order) -> None:
        coupon = self.t.coupons[order.coupon_code or ""]
        entry = (coupon.id, order.id, order.user_id)
        if entry not in self.t.redemptions:
            self.t.redemptions.add(entry)
            self.t.coupons[coupon.code] = replace(coupon,
                                                  redeemed_count=coupon.redeemed_count + 1)

    async def add_event(self, order: Order, event: Event) -> None:
        self.t.outbox.append((order.id, event))


class FakeOrderStore:
    def __init__(self, clock: Clock) -> None:
        self.t = Tables()
        self.clock = clock
        self.fail_commits = 0

    @asynccontextmanager
    async def _transaction(self, user_id: str = "", key: str = "") -> AsyncIterator[FakeOrderTx]:
        snapshot = copy.deepcopy(self.t)
        try:
            yield FakeOrderTx(self.t, user_id, key)
            if self.fail_commits:
                self.fail_commits -= 1
                raise CommitFailed("the commit was lost (simulated)")
        except BaseException:
            self.t.__dict__.update(snapshot.__dict__)
            raise

    def checkout(self, user_id: str, key: str) -> Any:
        return self._transaction(user_id, key)

    def coupons(self) -> Any:
        return self._transaction()

    def transaction(self) -> Any:
        return self._transaction()

    async def order(self, order_id: str) -> Order | None:
        return self.t.orders.get(order_id)

    async def history(self, user_id: str | None, status: OrderStatus | None, limit: int,
                      offset: int) -> list[Order]:
        found = [o for o in self.t.orders.values()
                 if (user_id is None or o.user_id == user_id)
                 and (status is None or o.status is status)]
        found.sort(key=lambda o: o.created_at, reverse=True)
        return found[offset:offset + limit]

    async def addresses_of(self, user_id: str) -> list[Address]:
        return [a for a in self.t.addresses.values() if a.user_id == user_id]

    async def address(self, address_id: int) -> Address | None:
        return self.t.addresses.get(address_id)

    async def add_address(self, user_id: str, fields: AddressFields) -> Address:
        address = Address(self.t.next_id, user_id, fields, self.clock(), self.clock())
        self.t.next_id += 1
        self.t.addresses[address.id] = address
        return address

    async def update_address(self, address_id: int, fields: AddressFields) -> Address:
        address = replace(self.t.addresses[address_id], fields=fields, updated_at=self.clock())
        self.t.addresses[address_id] = address
        return address

    async def delete_address(self, address_id: int) -> None:
        self.t.addresses.pop(address_id, None)

    async def issue_coupon(self, terms: CouponTerms, issued_by: str) -> Coupon:
        if terms.code in self.t.coupons:
            raise Conflict(f"a coupon with code {terms.code} exists already")
        coupon = Coupon(self.t.next_id, terms, 0, self.clock())
        self.t.next_id += 1
        self.t.coupons[terms.code] = coupon
        return coupon

    async def coupon(self, code: str) -> Coupon | None:
        return self.t.coupons.get(code)

    async def all_coupons(self, limit: int, offset: int) -> list[Coupon]:
        return list(self.t.coupons.values())[offset:offset + limit]


class FakeCatalogue:
    """The product service: carts by user, stock by product, reservations by order id."""

    def __init__(self) -> None:
        self.carts: dict[str, Cart] = {}
        self.stock: dict[int, int] = {}
        self.reservations: dict[str, tuple[Line, ...]] = {}
        self.released: list[str] = []
        self.cleared: list[str] = []
        self.prices: dict[int, int] = {}  # a price changed after the cart was read
        self.down = False

    def put(self, user_id: str, *lines: CartLine, delivery_fee: int = 0) -> None:
        self.carts[user_id] = Cart(tuple(lines), delivery_fee)
        for line in lines:
            self.stock.setdefault(line.product_id, 100)

    async def cart(self, user_id: str) -> Cart:
        self._check()
        return self.carts.get(user_id, Cart(()))

    async def reserve(self, order_id: str, user_id: str, lines: Sequence[Line]) -> Reserved:
        self._check()
        delivery = self.carts.get(user_id, Cart(())).delivery_fee
        if order_id in self.reservations:
            return Reserved(self.reservations[order_id], delivery)
        for line in lines:
            if self.stock.get(line.product_id, 0) < line.quantity:
                raise Conflict(f"product {line.product_id}: not enough stock")
        for line in lines:
            self.stock[line.product_id] -= line.quantity
        priced = tuple(replace(line, unit_price=self.prices.get(line.product_id,
                                                                line.unit_price))
                       for line in lines)
        self.reservations[order_id] = priced
        return Reserved(priced, delivery)

    async def release(self, order_id: str) -> None:
        self._check()
        lines = self.reservations.pop(order_id, ())
        for line in lines:
            self.stock[line.product_id] += line.quantity
        if lines:
            self.released.append(order_id)

    async def clear_cart(self, user_id: str) -> None:
        self._check()
        self.carts.pop(user_id, None)
        self.cleared.append(user_id)

    def _check(self) -> None:
        if self.down:
            raise Unavailable("product-service is down (simulated)")


def address_fields() -> AddressFields:
    return AddressFields(recipient="Kim Minji", phone="010-1234-5678", postal_code="04524",
                         line1="110 Sejong-daero, Jung-gu, Seoul", line2="3F")
