"""Checkout: an order from the cart, placed once per idempotency key, all or nothing.

Placing an order touches three systems — the product service (cart and stock), the session
Redis (the coupon hold) and this service's database — and must leave no trace when it fails.
The steps, inside one database transaction that holds a lock on (user, idempotency key):

1. an order already stored under the key is the answer to a retried request (same order, never
   a second one); the same key with a different request is refused;
2. read the cart at today's prices; snapshot the delivery address;
3. check the coupon and hold it for the order (`services.order.domain.coupons`);
4. reserve the stock under the order id (the product service is idempotent by order id); the
   prices the stock was reserved at are the order's price snapshot;
5. insert the order, its lines and ``order.created`` into the outbox, and commit.

Anything failing after step 3 undoes what was done: the stock reservation and the hold are
released. The lock makes a concurrent duplicate wait for the first request's outcome instead
of racing it; the unique (user, key) constraint backs it up.

The outside world is reached through the small protocols below, so the rules here run in unit
tests against fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from services.common.errors import Conflict, Invalid, NotFound
from services.common.identity import Caller
from services.order.domain.addresses import Address
from services.order.domain.coupons import CART_OWNER, Coupon, normalise_code
from services.order.domain.orders import (
    Line,
    Order,
    OrderStatus,
    fingerprint,
    new_id,
    priced,
)

log = logging.getLogger("come2us.order.checkout")


@dataclass(frozen=True)
class CartLine:
    product_id: int
    name: str
    unit_price: int
    quantity: int
    available: bool = True  # purchasable now in this quantity (active, enough stock)


@dataclass(frozen=True)
class Cart:
    lines: tuple[CartLine, ...]
    delivery_fee: int = 0

    @property
    def subtotal(self) -> int:
        return sum(line.unit_price * line.quantity for line in self.lines)


@dataclass(frozen=True)
class Reserved:
    """What the product service reserved: the lines at the price they were reserved at."""

    lines: tuple[Line, ...]
    delivery_fee: int


class Catalogue(Protocol):
    """The product service, as checkout needs it."""

    async def cart(self, user_id: str) -> Cart: ...

    async def reserve(self, order_id: str, user_id: str, lines: Sequence[Line]) -> Reserved:
        """Take the stock of every line or none; `Conflict` when something is short."""

    async def release(self, order_id: str) -> None:
        """Give the order's stock back; harmless when there is nothing to give back."""

    async def clear_cart(self, user_id: str) -> None: ...


class HoldOutcome(Enum):
    HELD = "held"
    HELD_ELSEWHERE = "held elsewhere"  # this user's hold belongs to another of their orders
    EXHAUSTED = "exhausted"  # redemptions plus others' holds reach the total limit


@dataclass(frozen=True)
class HoldResult:
    outcome: HoldOutcome
    holder: str | None = None


class Holds(Protocol):
    """Coupon holds in the transient keyspace (one per coupon and user)."""

    async def hold(self, code: str, user_id: str, owner: str, ttl_s: int,
                   capacity: int | None) -> HoldResult: ...

    async def release(self, code: str, user_id: str, owner: str) -> bool:
        """Remove the hold if ``owner`` has it; False when it had expired or moved on."""


class CouponReads(Protocol):
    async def coupon(self, code: str) -> Coupon | None: ...

    async def redeemed_by(self, coupon_id: int, user_id: str) -> bool: ...


class CheckoutTx(CouponReads, Protocol):
    async def existing(self) -> Order | None:
        """The order already stored under this transaction's (user, key)."""

    async def address(self, address_id: int) -> Address | None: ...

    async def add(self, order: Order) -> None:
        """Insert the order, its lines, and its ``order.created`` event into the outbox."""


class CheckoutStore(Protocol):
    def checkout(self, user_id: str, key: str) -> AbstractAsyncContextManager[CheckoutTx]:
        """A transaction holding the (user, key) lock; commits when the block succeeds."""

    def coupons(self) -> AbstractAsyncContextManager[CouponReads]: ...


@dataclass(frozen=True)
class PlaceOrder:
    address_id: int
    coupon_code: str | None = None

    def normalised(self) -> PlaceOrder:
        code = normalise_code(self.coupon_code, "couponCode") if self.coupon_code else None
        return PlaceOrder(self.address_id, code)


@dataclass(frozen=True)
class Placed:
    order: Order
    replayed: bool  # True: the answer to an earlier request with the same key


@dataclass(frozen=True)
class AppliedCoupon:
    code: str
    subtotal: int
    discount: int
    ttl_s: int


MAX_KEY_LENGTH = 100


def check_idempotency_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise Invalid("Idempotency-Key", "required", "placing an order needs an "
                      "Idempotency-Key header (any unique string, reused on retries)")
    if len(key) > MAX_KEY_LENGTH:
        raise Invalid("Idempotency-Key", "max-length",
                      f"an Idempotency-Key is at most {MAX_KEY_LENGTH} characters")
    return key.strip()


def order_lines(cart: Cart) -> tuple[Line, ...]:
    unavailable = [line.name for line in cart.lines if not line.available]
    if unavailable:
        raise Conflict(f"not available in the quantity in your cart: {', '.join(unavailable)}; "
                       f"change the cart and order again")
    return tuple(Line(line.product_id, line.name, line.unit_price, line.quantity)
                 for line in cart.lines)


def check_hold(result: HoldResult, code: str) -> None:
    if result.outcome is HoldOutcome.HELD_ELSEWHERE:
        raise Conflict(f"coupon {code} is held for your order {result.holder} until its "
                       f"payment ends")
    if result.outcome is HoldOutcome.EXHAUSTED:
        raise Conflict(f"coupon {code} is fully held by checkouts in progress; try again in a "
                       f"few minutes")


class Checkout:
    def __init__(self, store: CheckoutStore, catalogue: Catalogue, holds: Holds,
                 hold_ttl_s: Callable[[], int], clock: Callable[[], datetime]) -> None:
        self.store = store
        self.catalogue = catalogue
        self.holds = holds
        self.hold_ttl_s = hold_ttl_s
        self.clock = clock

    async def place(self, caller: Caller, key: str, request: PlaceOrder) -> Placed:
        request = request.normalised()
        wanted = fingerprint(request.address_id, request.coupon_code)
        order_id = new_id()
        held: str | None = None  # the coupon code this attempt holds
        reserved = False
        done = False
        try:
            async with self.store.checkout(caller.user_id, key) as tx:
                existing = await tx.existing()
                if existing is not None:
                    if existing.fingerprint != wanted:
                        raise Conflict("this Idempotency-Key was used for a different order "
                                       "request; use a new key for a new order")
                    done = True
                    return Placed(existing, replayed=True)
                address = await tx.address(request.address_id)
                if address is None or address.user_id != caller.user_id:
                    raise Invalid("addressId", "unknown", "no such address in your address book")
                cart = await self.catalogue.cart(caller.user_id)
                lines = order_lines(cart)
                coupon: Coupon | None = None
                if request.coupon_code is not None:
                    coupon = await self._usable(tx, request.coupon_code, caller.user_id,
                                                cart.subtotal)
                    check_hold(await self.holds.hold(
                        coupon.code, caller.user_id, order_id, self.hold_ttl_s(),
                        coupon.remaining()), coupon.code)
                    held = coupon.code
                reserved = True  # from here a failure releases: the call may have reserved
                stock = await self.catalogue.reserve(order_id, caller.user_id, lines)
                # The snapshot is what was reserved: a price that changed since the cart was
                # read is the one the stock was taken at.
                subtotal = sum(line.line_total for line in stock.lines)
                discount = coupon.discount_for(subtotal) if coupon is not None else 0
                now = self.clock()
                order = Order(
                    id=order_id, user_id=caller.user_id, status=OrderStatus.PENDING_PAYMENT,
                    lines=stock.lines, pricing=priced(stock.lines, stock.delivery_fee, discount),
                    address=address.snapshot(), idempotency_key=key, fingerprint=wanted,
                    created_at=now, updated_at=now, coupon_code=held)
                await tx.add(order)
            done = True
            return Placed(order, replayed=False)
        finally:
            if not done:
                await self._undo(order_id, caller.user_id, held, reserved)

    async def _usable(self, coupons: CouponReads, code: str, user_id: str,
                      subtotal: int) -> Coupon:
        coupon = await coupons.coupon(code)
        if coupon is None:
            raise Invalid("couponCode", "unknown", f"there is no coupon {code}")
        coupon.check_usable(subtotal, self.clock(),
                            redeemed_by_user=await coupons.redeemed_by(coupon.id, user_id))
        return coupon

    async def _undo(self, order_id: str, user_id: str, held: str | None,
                    reserved: bool) -> None:
        """Best effort: what cannot be undone now expires (holds) or is logged (stock)."""
        if reserved:
            try:
                await self.catalogue.release(order_id)
            except Exception:
                log.exception("checkout failed and the stock of order %s could not be released",
                              order_id)
        if held is not None:
            try:
                await self.holds.release(held, user_id, order_id)
            except Exception:
                log.warning("checkout failed and the hold of coupon %s could not be released; "
                            "it expires by itself", held, exc_info=True)

    async def apply_coupon(self, caller: Caller, code: str) -> AppliedCoupon:
        """Hold a coupon for the caller's cart (checkout started); the order takes it over."""
        code = normalise_code(code, "code")
        cart = await self.catalogue.cart(caller.user_id)
        async with self.store.coupons() as coupons:
            coupon = await self._usable(coupons, code, caller.user_id, cart.subtotal)
        ttl = self.hold_ttl_s()
        check_hold(await self.holds.hold(coupon.code, caller.user_id, CART_OWNER, ttl,
                                         coupon.remaining()), coupon.code)
        return AppliedCoupon(coupon.code, cart.subtotal, coupon.discount_for(cart.subtotal), ttl)

    async def unapply_coupon(self, caller: Caller, code: str) -> None:
        code = normalise_code(code, "code")
        if not await self.holds.release(code, caller.user_id, CART_OWNER):
            raise NotFound(f"coupon {code} is not applied to your cart")
