"""Processing orders' payment events: durable intent first, then the provider, then the result.

For ``order.created``:

1. one transaction records the event as processed and creates the order's payment as PENDING
   (or finds it: a copy of the event with another id finds the same payment, since there is
   one per order) — from here the intent survives a crash;
2. the provider is called with the order's idempotency key (`charge_key`);
3. one transaction settles the payment (only if still PENDING) and puts ``payment.completed``
   or ``payment.failed`` in the outbox.

A crash between 1 and 3 leaves a PENDING payment that `Processor.resume` (run periodically)
settles later with the same key — the provider answers it from its record, so nobody is
charged twice. ``order.refund-requested`` works the same way with a PENDING refund; a refund
the provider could not be reached for stays PENDING and is retried, because money owed back
must not be dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

from services.common.events import Event, Handler
from services.common.topics import ORDER_CREATED, ORDER_REFUND_REQUESTED
from services.payment.domain.payments import (
    Answer,
    Outcome,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    charge_key,
    refund_key,
)

log = logging.getLogger("come2us.payment.processing")


class Provider(Protocol):
    async def charge(self, *, amount: int, currency: str, reference: str,
                     key: str) -> Outcome: ...

    async def refund(self, *, charge_id: str, amount: int, key: str) -> Outcome: ...


class PaymentTx(Protocol):
    async def first_delivery(self, event: Event) -> bool: ...

    async def payment_of_order(self, order_id: str) -> Payment | None:
        """The order's payment (with its refund), locked until the transaction ends."""

    async def add_payment(self, payment: Payment) -> Payment:
        """Insert it; if the order has one already, that one is returned instead."""

    async def settle_payment(self, payment: Payment) -> bool:
        """Store the new state if the stored payment is still PENDING; False otherwise."""

    async def mark_refunded(self, payment: Payment) -> None: ...

    async def add_refund(self, refund: Refund) -> Refund:
        """Insert it; if the payment has one already, that one is returned instead."""

    async def settle_refund(self, refund: Refund) -> bool:
        """Store the new state if the stored refund is still PENDING; False otherwise."""

    async def add_event(self, key: str, event: Event) -> None: ...


class PaymentStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[PaymentTx]: ...

    async def stale_payments(self, before: datetime) -> list[Payment]:
        """PENDING payments last changed before ``before``."""

    async def stale_refunds(self, before: datetime) -> list[tuple[Refund, Payment]]:
        """PENDING refunds last tried before ``before``, with their payments."""


class Processor:
    def __init__(self, store: PaymentStore, provider: Provider,
                 clock: Callable[[], datetime], published: Callable[[], None]) -> None:
        self.store = store
        self.provider = provider
        self.clock = clock
        self.published = published

    def handlers(self) -> Mapping[str, Handler]:
        return {ORDER_CREATED: self.order_created, ORDER_REFUND_REQUESTED: self.refund_requested}

    async def order_created(self, event: Event) -> None:
        async with self.store.transaction() as tx:
            if not await tx.first_delivery(event):
                log.info("%s %s was processed already", event.type, event.id)
                return
            payment = await tx.add_payment(Payment.for_order(event, self.clock()))
        if payment.status is not PaymentStatus.PENDING:
            log.info("order %s has a %s payment already; event %s changes nothing",
                     payment.order_id, payment.status, event.id)
            return
        await self.charge(payment)

    async def charge(self, payment: Payment) -> Payment:
        outcome = await self.provider.charge(amount=payment.amount, currency=payment.currency,
                                             reference=payment.order_id,
                                             key=charge_key(payment.order_id))
        settled = payment.settled(outcome, self.clock())
        async with self.store.transaction() as tx:
            if not await tx.settle_payment(settled):
                return settled  # settled meanwhile by another attempt with the same key
            await tx.add_event(settled.order_id, settled.result_event())
        self.published()
        log.info("payment %s of order %s: %s%s", settled.id, settled.order_id, settled.status,
                 f" ({settled.failure_reason})" if settled.failure_reason else "")
        return settled

    async def refund_requested(self, event: Event) -> None:
        order_id = str(event.data["orderId"])
        async with self.store.transaction() as tx:
            if not await tx.first_delivery(event):
                return
            payment = await tx.payment_of_order(order_id)
            if payment is None or payment.status is not PaymentStatus.COMPLETED:
                if payment is None or payment.status is not PaymentStatus.REFUNDED:
                    log.error("refund requested for order %s, whose payment is %s: ignored",
                              order_id, payment.status if payment else "missing")
                return
            refund = await tx.add_refund(payment.new_refund(self.clock()))
        if refund.status is RefundStatus.PENDING:
            await self.refund(refund, payment)

    async def refund(self, refund: Refund, payment: Payment) -> Refund:
        if payment.provider_charge_id is None:
            raise ValueError(f"payment {payment.id} is completed without a provider charge id")
        outcome = await self.provider.refund(charge_id=payment.provider_charge_id,
                                             amount=refund.amount,
                                             key=refund_key(payment.order_id))
        settled = refund.settled(outcome, self.clock())
        async with self.store.transaction() as tx:
            if not await tx.settle_refund(settled):
                return settled
            if settled.status is RefundStatus.COMPLETED:
                await tx.mark_refunded(payment.refunded(self.clock()))
                await tx.add_event(payment.order_id, payment.refunded_event())
        if settled.status is RefundStatus.COMPLETED:
            self.published()
        elif settled.status is RefundStatus.FAILED:
            log.error("the provider refused the refund of order %s (%s): it needs a person",
                      payment.order_id, settled.failure_reason)
        elif outcome.answer is Answer.UNAVAILABLE:
            log.warning("refund of order %s waits for the provider (%s)", payment.order_id,
                        outcome.reason)
        return settled

    async def resume(self, payments_after: timedelta, refunds_after: timedelta) -> int:
        """Finish what a crash or an outage left PENDING; returns how many were tried."""
        now = self.clock()
        tried = 0
        for payment in await self.store.stale_payments(now - payments_after):
            log.warning("payment %s of order %s was left pending; settling it now",
                        payment.id, payment.order_id)
            await self.charge(payment)
            tried += 1
        for refund, payment in await self.store.stale_refunds(now - refunds_after):
            await self.refund(refund, payment)
            tried += 1
        return tried
