"""The order service's rules: the order state machine, pricing, and coupon math."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from order_fakes import NOW

from services.common.errors import Conflict, Forbidden, Invalid
from services.common.identity import Caller
from services.common.topics import ORDER_CREATED, ORDER_REFUND_REQUESTED
from services.order.domain.coupons import Coupon, CouponTerms, DiscountType, normalise_code
from services.order.domain.orders import (
    Decision,
    Line,
    Order,
    OrderStatus,
    decide,
    fingerprint,
    priced,
)

BUYER = Caller("buyer", frozenset({"customer"}))
STRANGER = Caller("stranger", frozenset({"customer"}))
ADMIN = Caller("root", frozenset({"admin"}))


def order(status: OrderStatus = OrderStatus.PENDING_PAYMENT) -> Order:
    lines = (Line(1, "Running shoes", 89_000, 1), Line(2, "Socks", 5_000, 3))
    return Order(id="o1", user_id="buyer", status=status, lines=lines,
                 pricing=priced(lines, delivery_fee=3_000, discount=10_000),
                 address={"recipient": "Kim"}, idempotency_key="k", fingerprint="f",
                 created_at=NOW, updated_at=NOW, coupon_code="SPRING")


def coupon(**changes: object) -> Coupon:
    terms = CouponTerms(code="SPRING", discount_type=DiscountType.PERCENT, discount_value=10,
                        min_amount=50_000, valid_until=NOW + timedelta(days=7),
                        max_discount=15_000, one_per_user=True, total_limit=100)
    return Coupon(id=1, terms=replace(terms, **changes), redeemed_count=0,  # type: ignore[arg-type]
                  created_at=NOW)


# -- the state machine ----------------------------------------------------------------------

@pytest.mark.parametrize(("current", "target", "decision"), [
    (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, Decision.APPLY),
    (OrderStatus.PENDING_PAYMENT, OrderStatus.PAYMENT_FAILED, Decision.APPLY),
    (OrderStatus.PAID, OrderStatus.PAID, Decision.ALREADY),
    (OrderStatus.PAID, OrderStatus.REFUND_REQUESTED, Decision.APPLY),
    (OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED, Decision.APPLY),
    (OrderStatus.PAYMENT_FAILED, OrderStatus.PAID, Decision.CONTRADICTS),
    (OrderStatus.PENDING_PAYMENT, OrderStatus.REFUNDED, Decision.CONTRADICTS),
    (OrderStatus.REFUNDED, OrderStatus.PAID, Decision.CONTRADICTS),
])
def test_decide_follows_the_state_machine(current: OrderStatus, target: OrderStatus,
                                          decision: Decision) -> None:
    assert decide(current, target) is decision


def test_a_move_the_machine_forbids_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        order(OrderStatus.PAYMENT_FAILED).moved(OrderStatus.PAID, NOW)


def test_only_the_buyer_may_ask_a_refund_and_only_of_a_paid_order() -> None:
    asked = order(OrderStatus.PAID).refund_requested(BUYER, NOW)

    assert asked.status is OrderStatus.REFUND_REQUESTED
    with pytest.raises(Forbidden):
        order(OrderStatus.PAID).refund_requested(STRANGER, NOW)
    with pytest.raises(Conflict):
        order(OrderStatus.PENDING_PAYMENT).refund_requested(BUYER, NOW)


def test_an_order_is_visible_to_its_buyer_and_admins_only() -> None:
    order().check_visible_to(BUYER)
    order().check_visible_to(ADMIN)
    with pytest.raises(Forbidden):
        order().check_visible_to(STRANGER)


# -- pricing and events ---------------------------------------------------------------------

def test_the_total_is_items_minus_discount_plus_delivery() -> None:
    pricing = order().pricing

    assert (pricing.subtotal, pricing.discount, pricing.delivery_fee) == (104_000, 10_000, 3_000)
    assert pricing.total == 97_000


def test_an_empty_cart_cannot_be_priced() -> None:
    with pytest.raises(Invalid) as refused:
        priced([], 0, 0)
    assert (refused.value.field, refused.value.rule) == ("cart", "not-empty")


def test_the_created_event_carries_the_contract_of_topics() -> None:
    event = order().created_event()

    assert event.type == ORDER_CREATED
    assert event.data == {
        "orderId": "o1", "userId": "buyer", "amount": 97_000, "currency": "KRW",
        "items": [{"productId": 1, "quantity": 1, "unitPrice": 89_000},
                  {"productId": 2, "quantity": 3, "unitPrice": 5_000}],
        "couponCode": "SPRING"}


def test_the_refund_event_names_the_payment() -> None:
    paid = replace(order(OrderStatus.PAID), payment_id="p1")

    event = paid.refund_requested_event()

    assert event.type == ORDER_REFUND_REQUESTED
    assert event.data == {"orderId": "o1", "userId": "buyer", "paymentId": "p1",
                          "amount": 97_000}


def test_the_fingerprint_tells_requests_apart() -> None:
    assert fingerprint(1, None) == fingerprint(1, None)
    assert fingerprint(1, None) != fingerprint(1, "SPRING")
    assert fingerprint(1, None) != fingerprint(2, None)


# -- coupon math ----------------------------------------------------------------------------

def test_a_percentage_rounds_down_and_stops_at_its_cap() -> None:
    assert coupon().discount_for(99_999) == 9_999
    assert coupon().discount_for(500_000) == 15_000


def test_a_fixed_discount_never_exceeds_the_subtotal() -> None:
    fixed = coupon(discount_type=DiscountType.FIXED, discount_value=5_000, max_discount=None)

    assert fixed.discount_for(60_000) == 5_000
    assert fixed.discount_for(3_000) == 3_000


@pytest.mark.parametrize(("subtotal", "at", "redeemed", "coupon_changes", "rule"), [
    (60_000, NOW + timedelta(days=8), False, {}, "expired"),
    (49_999, NOW, False, {}, "min-amount"),
    (60_000, NOW, True, {}, "already-redeemed"),
])
def test_a_coupon_that_cannot_be_used_names_the_rule(
        subtotal: int, at: object, redeemed: bool, coupon_changes: dict[str, object],
        rule: str) -> None:
    with pytest.raises(Invalid) as refused:
        coupon(**coupon_changes).check_usable(subtotal, at, redeemed)  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.rule) == ("couponCode", rule)


def test_a_used_up_coupon_is_refused_and_an_unlimited_one_never_is() -> None:
    used_up = replace(coupon(total_limit=2), redeemed_count=2)
    with pytest.raises(Invalid) as refused:
        used_up.check_usable(60_000, NOW, False)

    assert refused.value.rule == "exhausted"
    assert coupon(total_limit=None).remaining() is None
    assert coupon(one_per_user=False).check_usable(60_000, NOW, True) is None


@pytest.mark.parametrize(("changes", "field"), [
    ({"discount_value": 101}, "discountValue"),
    ({"discount_type": DiscountType.FIXED}, "maxDiscount"),
    ({"min_amount": -1}, "minAmount"),
    ({"total_limit": 0}, "totalLimit"),
    ({"valid_until": NOW}, "validUntil"),
])
def test_incoherent_terms_are_refused_when_issued(changes: dict[str, object],
                                                  field: str) -> None:
    with pytest.raises(Invalid) as refused:
        coupon(**changes).terms.check(NOW)
    assert refused.value.field == field


def test_codes_are_case_insensitive_and_plain() -> None:
    assert normalise_code(" spring-10 ") == "SPRING-10"
    with pytest.raises(Invalid):
        normalise_code("a b")
