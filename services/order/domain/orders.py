"""Orders: the price snapshot taken at checkout, and the states an order moves through.

::

    PENDING_PAYMENT --payment.completed--> PAID --refund asked--> REFUND_REQUESTED
          |                                                         |
          +--payment.failed--> PAYMENT_FAILED         payment.refunded --> REFUNDED

Events arrive at least once, so applying the same outcome twice must be harmless: `decide`
says whether an outcome moves the order, was already applied, or contradicts what happened
(a bug or a reordering elsewhere, logged and not applied).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from services.common.errors import Conflict, Forbidden, Invalid
from services.common.events import Event
from services.common.identity import Caller
from services.common.topics import ORDER_CREATED, ORDER_REFUND_REQUESTED

CURRENCY = "KRW"


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    REFUND_REQUESTED = "REFUND_REQUESTED"
    REFUNDED = "REFUNDED"


TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.PAID, OrderStatus.PAYMENT_FAILED}),
    OrderStatus.PAID: frozenset({OrderStatus.REFUND_REQUESTED}),
    OrderStatus.REFUND_REQUESTED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.PAYMENT_FAILED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}


class Decision(Enum):
    APPLY = "apply"  # the order moves to the target state
    ALREADY = "already"  # it is there already: a redelivered event
    CONTRADICTS = "contradicts"  # it cannot get there from where it is


def decide(current: OrderStatus, target: OrderStatus) -> Decision:
    if current is target:
        return Decision.ALREADY
    if target in TRANSITIONS[current]:
        return Decision.APPLY
    return Decision.CONTRADICTS


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Line:
    """One product of the order, at the price it had when the order was placed."""

    product_id: int
    name: str
    unit_price: int
    quantity: int

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Pricing:
    subtotal: int  # the items
    delivery_fee: int
    discount: int  # off the items only

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.delivery_fee


def fingerprint(address_id: int, coupon_code: str | None) -> str:
    """What a retried request must repeat: the same key with another body is a mistake."""
    canonical = json.dumps({"addressId": address_id, "couponCode": coupon_code},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    status: OrderStatus
    lines: tuple[Line, ...]
    pricing: Pricing
    address: Mapping[str, Any]  # a copy: later edits of the address book do not change it
    idempotency_key: str
    fingerprint: str
    created_at: datetime
    updated_at: datetime
    currency: str = CURRENCY
    coupon_code: str | None = None
    payment_id: str | None = None
    failure_reason: str | None = None

    def check_visible_to(self, caller: Caller) -> None:
        if caller.user_id != self.user_id and not caller.has("admin"):
            raise Forbidden("this order belongs to another user")

    def moved(self, target: OrderStatus, at: datetime, **changes: Any) -> Order:
        """The order in ``target``; `Conflict` when the state machine does not allow it."""
        if target not in TRANSITIONS[self.status]:
            raise Conflict(f"order {self.id} is {self.status}; it cannot become {target}")
        return replace(self, status=target, updated_at=at, **changes)

    def refund_requested(self, caller: Caller, at: datetime) -> Order:
        if caller.user_id != self.user_id:
            raise Forbidden("only the buyer may ask for a refund of this order")
        if self.status is not OrderStatus.PAID:
            raise Conflict(f"only a PAID order can be refunded; order {self.id} is "
                           f"{self.status}")
        return self.moved(OrderStatus.REFUND_REQUESTED, at)

    def created_event(self) -> Event:
        return Event.new(ORDER_CREATED, {
            "orderId": self.id,
            "userId": self.user_id,
            "amount": self.pricing.total,
            "currency": self.currency,
            "items": [{"productId": line.product_id, "quantity": line.quantity,
                       "unitPrice": line.unit_price} for line in self.lines],
            "couponCode": self.coupon_code,
        })

    def refund_requested_event(self) -> Event:
        return Event.new(ORDER_REFUND_REQUESTED, {
            "orderId": self.id,
            "userId": self.user_id,
            "paymentId": self.payment_id,
            "amount": self.pricing.total,
        })


def priced(lines: Sequence[Line], delivery_fee: int, discount: int) -> Pricing:
    if not lines:
        raise Invalid("cart", "not-empty", "the cart is empty: add products before ordering")
    return Pricing(subtotal=sum(line.line_total for line in lines), delivery_fee=delivery_fee,
                   discount=discount)
