"""What the payment service's results do to an order, each applied exactly once.

``payment.completed``  PENDING_PAYMENT -> PAID; the coupon is redeemed in the same
                       transaction, then its hold released and the cart emptied (best effort:
                       the hold expires and the cart is transient anyway).
``payment.failed``     PENDING_PAYMENT -> PAYMENT_FAILED; the stock and the coupon hold are
                       released *before* the state is committed, so a crash in between is
                       repaired by the redelivery (both releases are idempotent).
``payment.refunded``   REFUND_REQUESTED -> REFUNDED; the stock is released the same way.

Kafka delivers at least once: the event id goes into ``processed_events`` in the transaction
that applies it, and the state machine (`decide`) turns a late or repeated outcome into a no-op.
A failure of the product service raises, so the consumer retries the event rather than losing
the release.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from services.common.errors import NotFound
from services.common.events import Event, Handler
from services.common.identity import Caller
from services.common.topics import PAYMENT_COMPLETED, PAYMENT_FAILED, PAYMENT_REFUNDED
from services.order.domain.checkout import Catalogue, Holds
from services.order.domain.orders import Decision, Order, OrderStatus, decide

log = logging.getLogger("come2us.order.settlement")


class OrderTx(Protocol):
    async def first_delivery(self, event: Event) -> bool:
        """Record the event as applied; False if it already was."""

    async def locked(self, order_id: str) -> Order | None:
        """The order, locked for update until the transaction ends."""

    async def save(self, order: Order) -> None:
        """Store the order's state (status, payment, failure reason, updated time)."""

    async def redeem(self, order: Order) -> None:
        """Record the coupon's redemption by the order (once per order)."""

    async def add_event(self, order: Order, event: Event) -> None: ...


class OrderStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[OrderTx]: ...

    async def order(self, order_id: str) -> Order | None: ...



class Settlement:
    def __init__(self, store: OrderStore, catalogue: Catalogue, holds: Holds,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.catalogue = catalogue
        self.holds = holds
        self.clock = clock

    def handlers(self) -> Mapping[str, Handler]:
        return {PAYMENT_COMPLETED: self.completed, PAYMENT_FAILED: self.failed,
                PAYMENT_REFUNDED: self.refunded}

    async def completed(self, event: Event) -> None:
        order_id = str(event.data["orderId"])
        async with self.store.transaction() as tx:
            if not await tx.first_delivery(event):
                return
            order = await tx.locked(order_id)
            if order is None or not self._applies(order, OrderStatus.PAID, event):
                return
            paid = order.moved(OrderStatus.PAID, self.clock(),
                               payment_id=str(event.data.get("paymentId") or "") or None)
            await tx.save(paid)
            if paid.coupon_code:
                await tx.redeem(paid)
        if paid.coupon_code:
            await self._release_hold(paid)
        try:
            await self.catalogue.clear_cart(paid.user_id)
        except Exception:
            log.warning("order %s is paid but the cart of %s could not be emptied",
                        paid.id, paid.user_id, exc_info=True)

    async def failed(self, event: Event) -> None:
        order_id = str(event.data["orderId"])
        order = await self.store.order(order_id)
        if order is not None and order.status is OrderStatus.PENDING_PAYMENT:
            await self.catalogue.release(order.id)
            if order.coupon_code:
                await self._release_hold(order)
        async with self.store.transaction() as tx:
            if not await tx.first_delivery(event):
                return
            order = await tx.locked(order_id)
            if order is None or not self._applies(order, OrderStatus.PAYMENT_FAILED, event):
                return
            await tx.save(order.moved(OrderStatus.PAYMENT_FAILED, self.clock(),
                                      failure_reason=str(event.data.get("reason") or
                                                         "payment failed")))

    async def refunded(self, event: Event) -> None:
        order_id = str(event.data["orderId"])
        order = await self.store.order(order_id)
        if order is not None and order.status is OrderStatus.REFUND_REQUESTED:
            await self.catalogue.release(order.id)
        async with self.store.transaction() as tx:
            if not await tx.first_delivery(event):
                return
            order = await tx.locked(order_id)
            if order is None or not self._applies(order, OrderStatus.REFUNDED, event):
                return
            await tx.save(order.moved(OrderStatus.REFUNDED, self.clock()))

    async def request_refund(self, caller: Caller, order_id: str) -> Order:
        """The buyer asks for their money back: ``order.refund-requested`` via the outbox."""
        async with self.store.transaction() as tx:
            order = await tx.locked(order_id)
            if order is None:
                raise NotFound(f"no order {order_id}")
            order.check_visible_to(caller)
            asked = order.refund_requested(caller, self.clock())
            await tx.save(asked)
            await tx.add_event(asked, asked.refund_requested_event())
        return asked

    def _applies(self, order: Order, target: OrderStatus, event: Event) -> bool:
        decision = decide(order.status, target)
        if decision is Decision.CONTRADICTS:
            log.error("%s %s for order %s, which is %s: not applied", event.type, event.id,
                      order.id, order.status)
        return decision is Decision.APPLY

    async def _release_hold(self, order: Order) -> None:
        assert order.coupon_code is not None
        try:
            await self.holds.release(order.coupon_code, order.user_id, order.id)
        except Exception:
            log.warning("the hold of coupon %s by order %s could not be released; it expires "
                        "by itself", order.coupon_code, order.id, exc_info=True)
