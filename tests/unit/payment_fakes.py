"""An in-memory payment store with the repository's guarantees: one payment per order, one
refund per payment, event ids applied once, conditional settles, all-or-nothing commits."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.common.events import Event
from services.payment.domain.payments import Payment, PaymentStatus, Refund, RefundStatus


@dataclass
class Tables:
    payments: dict[str, Payment] = field(default_factory=dict)  # by order id
    refunds: dict[str, Refund] = field(default_factory=dict)  # by payment id
    outbox: list[tuple[str, Event]] = field(default_factory=list)
    processed: set[str] = field(default_factory=set)


class FakePaymentTx:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def first_delivery(self, event: Event) -> bool:
        if event.id in self.t.processed:
            return False
        self.t.processed.add(event.id)
        return True

    async def payment_of_order(self, order_id: str) -> Payment | None:
        payment = self.t.payments.get(order_id)
        if payment is None:
            return None
        return replace(payment, refund=self.t.refunds.get(payment.id))

    async def add_payment(self, payment: Payment) -> Payment:
        self.t.payments.setdefault(payment.order_id, payment)
        return self.t.payments[payment.order_id]

    async def settle_payment(self, payment: Payment) -> bool:
        stored = self.t.payments[payment.order_id]
        if stored.status is not PaymentStatus.PENDING:
            return False
        self.t.payments[payment.order_id] = payment
        return True

    async def mark_refunded(self, payment: Payment) -> None:
        self.t.payments[payment.order_id] = payment

    async def add_refund(self, refund: Refund) -> Refund:
        return self.t.refunds.setdefault(refund.payment_id, refund)

    async def settle_refund(self, refund: Refund) -> bool:
        if self.t.refunds[refund.payment_id].status is not RefundStatus.PENDING:
            return False
        self.t.refunds[refund.payment_id] = refund
        return True

    async def add_event(self, key: str, event: Event) -> None:
        self.t.outbox.append((key, event))


class FakePaymentStore:
    def __init__(self) -> None:
        self.t = Tables()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[FakePaymentTx]:
        snapshot = copy.deepcopy(self.t)
        try:
            yield FakePaymentTx(self.t)
        except BaseException:
            self.t.__dict__.update(snapshot.__dict__)
            raise

    def transaction(self) -> Any:
        return self._transaction()

    async def stale_payments(self, before: datetime) -> list[Payment]:
        return [p for p in self.t.payments.values()
                if p.status is PaymentStatus.PENDING and p.updated_at < before]

    async def stale_refunds(self, before: datetime) -> list[tuple[Refund, Payment]]:
        by_id = {p.id: p for p in self.t.payments.values()}
        return [(r, by_id[r.payment_id]) for r in self.t.refunds.values()
                if r.status is RefundStatus.PENDING and r.updated_at < before]

    # what the API reads
    async def payment(self, payment_id: str) -> Payment | None:
        found = next((p for p in self.t.payments.values() if p.id == payment_id), None)
        return None if found is None else replace(found, refund=self.t.refunds.get(found.id))

    async def payments_of(self, user_id: str | None, order_id: str | None, limit: int,
                          offset: int) -> list[Payment]:
        found = [p for p in self.t.payments.values()
                 if (user_id is None or p.user_id == user_id)
                 and (order_id is None or p.order_id == order_id)]
        return found[offset:offset + limit]

    def events(self, type_: str) -> list[Event]:
        return [event for _, event in self.t.outbox if event.type == type_]
