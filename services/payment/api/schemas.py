"""Response bodies of the payment service (JSON in camelCase, money in KRW)."""

from __future__ import annotations

from datetime import datetime

from services.common.schemas import ApiModel
from services.payment.domain.payments import Payment, PaymentStatus, Refund, RefundStatus


class RefundOut(ApiModel):
    id: str
    amount: int
    status: RefundStatus
    provider_refund_id: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, refund: Refund) -> RefundOut:
        return cls(id=refund.id, amount=refund.amount, status=refund.status,
                   provider_refund_id=refund.provider_refund_id,
                   failure_reason=refund.failure_reason, created_at=refund.created_at,
                   updated_at=refund.updated_at)


class PaymentOut(ApiModel):
    id: str
    order_id: str
    user_id: str
    amount: int
    currency: str
    status: PaymentStatus
    provider_charge_id: str | None
    failure_reason: str | None
    refund: RefundOut | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        return cls(id=payment.id, order_id=payment.order_id, user_id=payment.user_id,
                   amount=payment.amount, currency=payment.currency, status=payment.status,
                   provider_charge_id=payment.provider_charge_id,
                   failure_reason=payment.failure_reason,
                   refund=RefundOut.of(payment.refund) if payment.refund else None,
                   created_at=payment.created_at, updated_at=payment.updated_at)


class PaymentPage(ApiModel):
    items: list[PaymentOut]
    limit: int
    offset: int
