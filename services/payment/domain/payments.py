"""Payments and refunds: their states, the provider's answers, and the events they produce.

::

    payment  PENDING --approved--> COMPLETED --refund done--> REFUNDED
                     --declined / provider unavailable--> FAILED
    refund   PENDING --refunded--> COMPLETED
                     --refused by the provider--> FAILED   (needs a person: logged as error)

One payment per order (unique in the database), and the provider's idempotency key is derived
from the order id (`charge_key`), so however often an order's event arrives — redelivered, or
re-published with a new event id — the order is charged at most once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.common.errors import Forbidden
from services.common.events import Event
from services.common.identity import Caller
from services.common.topics import PAYMENT_COMPLETED, PAYMENT_FAILED, PAYMENT_REFUNDED


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Answer(StrEnum):
    """What the provider said, reduced to what the payment service does next."""

    DONE = "done"  # approved / refunded
    REFUSED = "refused"  # declined, or refused as invalid: final, do not retry
    UNAVAILABLE = "unavailable"  # no answer (timeout, 5xx, breaker open): outcome unknown


@dataclass(frozen=True)
class Outcome:
    answer: Answer
    provider_id: str | None = None  # the provider's charge or refund id
    reason: str | None = None


def charge_key(order_id: str) -> str:
    return f"order-{order_id}-charge"


def refund_key(order_id: str) -> str:
    return f"order-{order_id}-refund"


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    order_id: str
    amount: int
    status: RefundStatus
    created_at: datetime
    updated_at: datetime
    provider_refund_id: str | None = None
    failure_reason: str | None = None

    def settled(self, outcome: Outcome, at: datetime) -> Refund:
        if outcome.answer is Answer.DONE:
            return replace(self, status=RefundStatus.COMPLETED,
                           provider_refund_id=outcome.provider_id, updated_at=at)
        if outcome.answer is Answer.REFUSED:
            return replace(self, status=RefundStatus.FAILED, failure_reason=outcome.reason,
                           updated_at=at)
        return replace(self, updated_at=at)  # still pending: tried again later


@dataclass(frozen=True)
class Payment:
    id: str
    order_id: str
    user_id: str
    amount: int
    currency: str
    status: PaymentStatus
    created_at: datetime
    updated_at: datetime
    provider_charge_id: str | None = None
    failure_reason: str | None = None
    refund: Refund | None = None

    @classmethod
    def for_order(cls, event: Event, at: datetime) -> Payment:
        data = event.data
        return cls(id=new_id(), order_id=str(data["orderId"]), user_id=str(data["userId"]),
                   amount=int(data["amount"]), currency=str(data.get("currency") or "KRW"),
                   status=PaymentStatus.PENDING, created_at=at, updated_at=at)

    def check_visible_to(self, caller: Caller) -> None:
        if caller.user_id != self.user_id and not caller.has("admin"):
            raise Forbidden("this payment belongs to another user")

    def settled(self, outcome: Outcome, at: datetime) -> Payment:
        """The payment once the provider answered (or did not): COMPLETED or FAILED."""
        if outcome.answer is Answer.DONE:
            return replace(self, status=PaymentStatus.COMPLETED,
                           provider_charge_id=outcome.provider_id, updated_at=at)
        reason = outcome.reason or "declined"
        if outcome.answer is Answer.UNAVAILABLE:
            reason = f"the payment provider is unavailable: {reason}"
        return replace(self, status=PaymentStatus.FAILED, failure_reason=reason,
                       provider_charge_id=outcome.provider_id, updated_at=at)

    def refunded(self, at: datetime) -> Payment:
        return replace(self, status=PaymentStatus.REFUNDED, updated_at=at)

    def new_refund(self, at: datetime) -> Refund:
        return Refund(id=new_id(), payment_id=self.id, order_id=self.order_id,
                      amount=self.amount, status=RefundStatus.PENDING, created_at=at,
                      updated_at=at)

    def result_event(self) -> Event:
        if self.status is PaymentStatus.COMPLETED:
            return Event.new(PAYMENT_COMPLETED, {
                "orderId": self.order_id, "paymentId": self.id, "amount": self.amount,
                "providerReference": self.provider_charge_id})
        if self.status is PaymentStatus.FAILED:
            return Event.new(PAYMENT_FAILED, {"orderId": self.order_id,
                                              "reason": self.failure_reason})
        raise ValueError(f"payment {self.id} is {self.status}: no result to publish yet")

    def refunded_event(self) -> Event:
        return Event.new(PAYMENT_REFUNDED, {"orderId": self.order_id, "paymentId": self.id,
                                            "amount": self.amount})
