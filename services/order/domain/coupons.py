"""Coupons: what one takes off an order, and whether a user may use it now.

A coupon is used in three steps, because checkout and payment are apart in time:

1. **hold** — while a user checks out (applies it to the cart, then places the order), the
   coupon is held for them in the session Redis's transient keyspace for a few minutes
   (`services.order.holds`). Holds count against a coupon's total limit, so two buyers cannot
   both be promised the last redemption, and a user cannot use a one-per-user coupon on two
   orders paid at the same time.
2. **redeem** — once, when the order's payment succeeds, in the database (the authority).
3. **release** — when the payment fails; a hold that nobody releases expires by itself, which
   is why losing the transient keyspace costs at most a few minutes of a coupon's capacity.

Money is an integer number of KRW; a percentage discount rounds down (in the buyer's favour
would be up, but the seller's terms are "at most N %").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.common.errors import Invalid

CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")
CART_OWNER = "cart"  # a hold taken when the coupon is applied to the cart, before any order


class DiscountType(StrEnum):
    FIXED = "FIXED"  # discount_value KRW off
    PERCENT = "PERCENT"  # discount_value % off, capped by max_discount


def normalise_code(code: str, field: str = "code") -> str:
    """Codes are case-insensitive for people and upper-case in storage."""
    normalised = code.strip().upper()
    if not CODE.match(normalised):
        raise Invalid(field, "pattern", "a coupon code is 3-32 letters, digits, '-' or '_'")
    return normalised


@dataclass(frozen=True)
class CouponTerms:
    """What an admin issues; checked once, here, so a stored coupon is always coherent."""

    code: str
    discount_type: DiscountType
    discount_value: int
    min_amount: int
    valid_until: datetime
    max_discount: int | None = None
    one_per_user: bool = True
    total_limit: int | None = None

    def check(self, now: datetime) -> None:
        normalise_code(self.code)
        if self.discount_type is DiscountType.PERCENT and not 1 <= self.discount_value <= 100:
            raise Invalid("discountValue", "percent", "a percentage is 1..100")
        if self.discount_type is DiscountType.FIXED and self.discount_value < 1:
            raise Invalid("discountValue", "positive", "a fixed discount is at least 1 KRW")
        if self.discount_type is DiscountType.FIXED and self.max_discount is not None:
            raise Invalid("maxDiscount", "percent-only", "only a percentage has a maximum")
        if self.max_discount is not None and self.max_discount < 1:
            raise Invalid("maxDiscount", "positive", "the maximum discount is at least 1 KRW")
        if self.min_amount < 0:
            raise Invalid("minAmount", "non-negative", "the minimum amount is 0 or more")
        if self.total_limit is not None and self.total_limit < 1:
            raise Invalid("totalLimit", "positive", "a total limit is at least 1")
        if self.valid_until <= now:
            raise Invalid("validUntil", "future", "a coupon must be valid for some time")


@dataclass(frozen=True)
class Coupon:
    id: int
    terms: CouponTerms
    redeemed_count: int
    created_at: datetime

    @property
    def code(self) -> str:
        return self.terms.code

    def discount_for(self, subtotal: int) -> int:
        """KRW off an order whose items cost ``subtotal``; never more than the subtotal."""
        terms = self.terms
        if terms.discount_type is DiscountType.FIXED:
            off = terms.discount_value
        else:
            off = subtotal * terms.discount_value // 100
            if terms.max_discount is not None:
                off = min(off, terms.max_discount)
        return max(0, min(off, subtotal))

    def remaining(self) -> int | None:
        """Redemptions left before the total limit; None when there is no limit."""
        if self.terms.total_limit is None:
            return None
        return max(0, self.terms.total_limit - self.redeemed_count)

    def check_usable(self, subtotal: int, now: datetime, redeemed_by_user: bool,
                     field: str = "couponCode") -> None:
        """Raise `Invalid` naming the rule this use breaks; holds are checked separately."""
        terms = self.terms
        if now >= terms.valid_until:
            raise Invalid(field, "expired", f"coupon {terms.code} expired at "
                                            f"{terms.valid_until.isoformat()}")
        if subtotal < terms.min_amount:
            raise Invalid(field, "min-amount", f"coupon {terms.code} needs an order of at "
                                               f"least {terms.min_amount} KRW; this one is "
                                               f"{subtotal} KRW")
        if terms.one_per_user and redeemed_by_user:
            raise Invalid(field, "already-redeemed", f"you have already used coupon "
                                                     f"{terms.code}")
        if self.remaining() == 0:
            raise Invalid(field, "exhausted", f"coupon {terms.code} has been used up")
