"""Request and response bodies of the order service (JSON in camelCase, money in KRW)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from services.common.schemas import ApiModel
from services.order.domain.addresses import Address, AddressFields
from services.order.domain.checkout import AppliedCoupon
from services.order.domain.coupons import Coupon, CouponTerms, DiscountType, normalise_code
from services.order.domain.orders import Order, OrderStatus

# -- addresses ----------------------------------------------------------------------------

class AddressIn(ApiModel):
    recipient: str = Field(min_length=1, max_length=60)
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{6,18}$", description="e.g. 010-1234-5678")
    postal_code: str = Field(pattern=r"^[0-9]{5}$", description="Korean 5-digit postal code")
    line1: str = Field(min_length=1, max_length=200)
    line2: str = Field(default="", max_length=200)

    def fields(self) -> AddressFields:
        return AddressFields(recipient=self.recipient.strip(), phone=self.phone,
                             postal_code=self.postal_code, line1=self.line1.strip(),
                             line2=self.line2.strip())


class AddressOut(ApiModel):
    id: int
    recipient: str
    phone: str
    postal_code: str
    line1: str
    line2: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, address: Address) -> AddressOut:
        f = address.fields
        return cls(id=address.id, recipient=f.recipient, phone=f.phone,
                   postal_code=f.postal_code, line1=f.line1, line2=f.line2,
                   created_at=address.created_at, updated_at=address.updated_at)


# -- coupons ------------------------------------------------------------------------------

class CouponIn(ApiModel):
    code: str = Field(min_length=3, max_length=32)
    discount_type: DiscountType
    discount_value: int = Field(gt=0, description="KRW for FIXED, percent for PERCENT")
    max_discount: int | None = Field(default=None, gt=0,
                                     description="cap of a PERCENT discount, KRW")
    min_amount: int = Field(default=0, ge=0, description="items subtotal needed, KRW")
    valid_until: AwareDatetime
    one_per_user: bool = True
    total_limit: int | None = Field(default=None, gt=0,
                                    description="redemptions in total; none: unlimited")

    def terms(self) -> CouponTerms:
        return CouponTerms(code=normalise_code(self.code), discount_type=self.discount_type,
                           discount_value=self.discount_value, min_amount=self.min_amount,
                           valid_until=self.valid_until, max_discount=self.max_discount,
                           one_per_user=self.one_per_user, total_limit=self.total_limit)


class CouponOut(ApiModel):
    code: str
    discount_type: DiscountType
    discount_value: int
    max_discount: int | None
    min_amount: int
    valid_until: datetime
    one_per_user: bool
    total_limit: int | None
    redeemed_count: int
    created_at: datetime

    @classmethod
    def of(cls, coupon: Coupon) -> CouponOut:
        t = coupon.terms
        return cls(code=t.code, discount_type=t.discount_type, discount_value=t.discount_value,
                   max_discount=t.max_discount, min_amount=t.min_amount,
                   valid_until=t.valid_until, one_per_user=t.one_per_user,
                   total_limit=t.total_limit, redeemed_count=coupon.redeemed_count,
                   created_at=coupon.created_at)


class AppliedCouponOut(ApiModel):
    code: str
    subtotal: int
    discount: int
    held_for_seconds: int = Field(description="the hold ends then unless an order takes it")

    @classmethod
    def of(cls, applied: AppliedCoupon) -> AppliedCouponOut:
        return cls(code=applied.code, subtotal=applied.subtotal, discount=applied.discount,
                   held_for_seconds=applied.ttl_s)


# -- orders -------------------------------------------------------------------------------

class OrderIn(ApiModel):
    address_id: int = Field(gt=0)
    coupon_code: str | None = Field(default=None, max_length=32)


class OrderLineOut(ApiModel):
    product_id: int
    name: str
    unit_price: int
    quantity: int
    line_total: int


class OrderOut(ApiModel):
    id: str
    user_id: str
    status: OrderStatus
    items: list[OrderLineOut]
    subtotal: int
    delivery_fee: int
    discount: int
    total: int
    currency: str
    coupon_code: str | None
    address: dict[str, Any]
    payment_id: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        p = order.pricing
        return cls(
            id=order.id, user_id=order.user_id, status=order.status,
            items=[OrderLineOut(product_id=line.product_id, name=line.name,
                                unit_price=line.unit_price, quantity=line.quantity,
                                line_total=line.line_total) for line in order.lines],
            subtotal=p.subtotal, delivery_fee=p.delivery_fee, discount=p.discount,
            total=p.total, currency=order.currency, coupon_code=order.coupon_code,
            address=dict(order.address), payment_id=order.payment_id,
            failure_reason=order.failure_reason, created_at=order.created_at,
            updated_at=order.updated_at)


class OrderPage(ApiModel):
    items: list[OrderOut]
    limit: int
    offset: int
