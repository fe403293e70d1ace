"""Checkout and settlement on fakes: idempotency, all or nothing, coupon hold/redeem/release."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import fakeredis
import pytest
from order_fakes import (
    NOW,
    Clock,
    CommitFailed,
    FakeCatalogue,
    FakeOrderStore,
    address_fields,
)

from services.common.errors import Conflict, Invalid, Unavailable
from services.common.events import Event
from services.common.identity import Caller
from services.common.topics import (
    ORDER_CREATED,
    ORDER_REFUND_REQUESTED,
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
)
from services.order.domain.checkout import CartLine, Checkout, PlaceOrder, check_idempotency_key
from services.order.domain.coupons import CouponTerms, DiscountType
from services.order.domain.orders import Order, OrderStatus
from services.order.domain.settlement import Settlement
from services.order.holds import RedisHolds

pytestmark = pytest.mark.anyio

BUYER = Caller("buyer", frozenset({"customer"}))
OTHER = Caller("other", frozenset({"customer"}))
SHOES = CartLine(1, "Running shoes", 89_000, 1)
SOCKS = CartLine(2, "Socks", 5_000, 2)
HOLD_TTL = 300


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class World:
    clock: Clock
    store: FakeOrderStore
    catalogue: FakeCatalogue
    holds: RedisHolds
    checkout: Checkout
    settlement: Settlement
    address_id: int = 0

    async def place(self, key: str = "k1", coupon: str | None = None,
                    caller: Caller = BUYER) -> Order:
        placed = await self.checkout.place(caller, key, PlaceOrder(self.address_id, coupon))
        return placed.order

    def events(self, type_: str) -> list[Event]:
        return [event for _, event in self.store.t.outbox if event.type == type_]

    async def coupon(self, code: str = "SPRING", **changes: object) -> None:
        terms = {"code": code, "discount_type": DiscountType.FIXED, "discount_value": 10_000,
                 "min_amount": 50_000, "valid_until": NOW + timedelta(days=1), **changes}
        await self.store.issue_coupon(CouponTerms(**terms), "admin")  # type: ignore[arg-type]


@pytest.fixture
async def world() -> World:
    clock = Clock()
    store = FakeOrderStore(clock)
    catalogue = FakeCatalogue()
    holds = RedisHolds(fakeredis.FakeAsyncRedis(decode_responses=True))
    w = World(clock, store, catalogue, holds,
              Checkout(store, catalogue, holds, lambda: HOLD_TTL, clock),
              Settlement(store, catalogue, holds, clock))
    w.address_id = (await store.add_address("buyer", address_fields())).id
    catalogue.put("buyer", SHOES, SOCKS, delivery_fee=3_000)
    return w


def result(type_: str, order: Order, **data: object) -> Event:
    return Event.new(type_, {"orderId": order.id, **data})


# -- placing an order -----------------------------------------------------------------------

async def test_an_order_snapshots_the_cart_and_reserves_its_stock(world: World) -> None:
    order = await world.place()

    assert order.status is OrderStatus.PENDING_PAYMENT
    assert [(line.product_id, line.unit_price, line.quantity) for line in order.lines] == [
        (1, 89_000, 1), (2, 5_000, 2)]
    assert (order.pricing.subtotal, order.pricing.delivery_fee, order.pricing.total) == (
        99_000, 3_000, 102_000)
    assert order.address["postalCode"] == "04524"
    assert world.catalogue.stock == {1: 99, 2: 98}
    [created] = world.events(ORDER_CREATED)
    assert created.data["orderId"] == order.id
    assert created.data["amount"] == 102_000


async def test_the_snapshot_is_the_price_the_stock_was_reserved_at(world: World) -> None:
    await world.coupon("TENPCT", discount_type=DiscountType.PERCENT, discount_value=10)
    world.catalogue.prices[1] = 79_000  # a price cut lands between reading the cart and reserving

    order = await world.place(coupon="TENPCT")

    assert order.lines[0].unit_price == 79_000
    assert (order.pricing.subtotal, order.pricing.discount) == (89_000, 8_900)


async def test_a_retried_request_gets_the_same_order(world: World) -> None:
    first = await world.checkout.place(BUYER, "k1", PlaceOrder(world.address_id))
    again = await world.checkout.place(BUYER, "k1", PlaceOrder(world.address_id))

    assert (first.replayed, again.replayed) == (False, True)
    assert again.order.id == first.order.id
    assert len(world.store.t.orders) == 1
    assert len(world.events(ORDER_CREATED)) == 1
    assert world.catalogue.stock == {1: 99, 2: 98}


async def test_the_same_key_for_another_request_is_a_conflict(world: World) -> None:
    await world.coupon()
    await world.place("k1")

    with pytest.raises(Conflict, match="different order request"):
        await world.place("k1", coupon="SPRING")


async def test_keys_are_per_user(world: World) -> None:
    other_address = (await world.store.add_address("other", address_fields())).id
    world.catalogue.put("other", SHOES)
    mine = await world.place("k1")
    theirs = (await world.checkout.place(OTHER, "k1", PlaceOrder(other_address))).order

    assert mine.id != theirs.id


async def test_someone_elses_address_cannot_be_used(world: World) -> None:
    other_address = (await world.store.add_address("other", address_fields())).id

    with pytest.raises(Invalid) as refused:
        await world.checkout.place(BUYER, "k1", PlaceOrder(other_address))
    assert (refused.value.field, refused.value.rule) == ("addressId", "unknown")


async def test_an_empty_cart_or_an_unavailable_line_places_nothing(world: World) -> None:
    world.catalogue.put("buyer")
    with pytest.raises(Invalid):
        await world.place("k1")
    world.catalogue.put("buyer", CartLine(1, "Running shoes", 89_000, 1, available=False))
    with pytest.raises(Conflict):
        await world.place("k2")

    assert world.store.t.orders == {}
    assert world.store.t.outbox == []


async def test_short_stock_leaves_nothing_behind(world: World) -> None:
    await world.coupon()
    world.catalogue.stock[2] = 1

    with pytest.raises(Conflict):
        await world.place(coupon="SPRING")

    assert world.store.t.orders == {}
    assert world.store.t.outbox == []
    assert world.catalogue.stock == {1: 100, 2: 1}
    assert await world.holds.holder("SPRING", "buyer") is None


async def test_a_lost_commit_gives_stock_and_coupon_back(world: World) -> None:
    await world.coupon()
    world.store.fail_commits = 1

    with pytest.raises(CommitFailed):
        await world.place(coupon="SPRING")

    assert world.store.t.orders == {}
    assert world.catalogue.stock == {1: 100, 2: 100}
    assert world.catalogue.reservations == {}
    assert await world.holds.holder("SPRING", "buyer") is None
    assert (await world.place(coupon="SPRING")).coupon_code == "SPRING"  # usable again


async def test_the_product_service_down_places_nothing(world: World) -> None:
    world.catalogue.down = True

    with pytest.raises(Unavailable):
        await world.place()
    assert world.store.t.orders == {}


def test_an_idempotency_key_is_required_and_bounded() -> None:
    assert check_idempotency_key(" abc ") == "abc"
    for bad in (None, "", "x" * 101):
        with pytest.raises(Invalid) as refused:
            check_idempotency_key(bad)
        assert refused.value.field == "Idempotency-Key"


# -- coupons at checkout --------------------------------------------------------------------

async def test_a_coupon_discounts_the_order_and_is_held_for_it(world: World) -> None:
    await world.coupon()

    order = await world.place(coupon="spring")

    assert order.coupon_code == "SPRING"
    assert order.pricing.discount == 10_000
    assert order.pricing.total == 92_000
    assert await world.holds.holder("SPRING", "buyer") == order.id


async def test_a_held_coupon_cannot_be_used_by_a_second_order(world: World) -> None:
    await world.coupon()
    await world.place("k1", coupon="SPRING")

    with pytest.raises(Conflict, match="held for your order"):
        await world.place("k2", coupon="SPRING")
    assert len(world.store.t.orders) == 1


async def test_applying_to_the_cart_holds_and_the_order_takes_it_over(world: World) -> None:
    await world.coupon(total_limit=1)

    applied = await world.checkout.apply_coupon(BUYER, "spring")
    order = await world.place(coupon="SPRING")

    assert (applied.code, applied.subtotal, applied.discount, applied.ttl_s) == (
        "SPRING", 99_000, 10_000, HOLD_TTL)
    assert await world.holds.holder("SPRING", "buyer") == order.id


async def test_the_last_redemption_held_by_one_is_refused_to_another(world: World) -> None:
    await world.coupon(total_limit=1)
    world.catalogue.put("other", SHOES)
    await world.checkout.apply_coupon(BUYER, "SPRING")

    with pytest.raises(Conflict, match="fully held"):
        await world.checkout.apply_coupon(OTHER, "SPRING")
    await world.checkout.unapply_coupon(BUYER, "SPRING")
    assert (await world.checkout.apply_coupon(OTHER, "SPRING")).code == "SPRING"


async def test_unknown_or_unusable_coupons_name_the_rule(world: World) -> None:
    await world.coupon("BIG", min_amount=500_000)

    with pytest.raises(Invalid) as unknown:
        await world.place("k1", coupon="NOPE")
    with pytest.raises(Invalid) as too_small:
        await world.place("k2", coupon="BIG")

    assert unknown.value.rule == "unknown"
    assert too_small.value.rule == "min-amount"
    assert world.catalogue.reservations == {}


# -- settlement -----------------------------------------------------------------------------

async def test_payment_completed_pays_redeems_and_frees_the_cart(world: World) -> None:
    await world.coupon()
    order = await world.place(coupon="SPRING")

    await world.settlement.completed(result(PAYMENT_COMPLETED, order, paymentId="p1"))

    paid = world.store.t.orders[order.id]
    assert (paid.status, paid.payment_id) == (OrderStatus.PAID, "p1")
    assert world.store.t.coupons["SPRING"].redeemed_count == 1
    assert await world.holds.holder("SPRING", "buyer") is None
    assert world.catalogue.cleared == ["buyer"]
    world.catalogue.put("buyer", SHOES)
    with pytest.raises(Invalid) as again:  # one per user: redeemed now
        await world.place("k2", coupon="SPRING")
    assert again.value.rule == "already-redeemed"


async def test_a_redelivered_result_is_applied_once(world: World) -> None:
    await world.coupon()
    order = await world.place(coupon="SPRING")
    event = result(PAYMENT_COMPLETED, order, paymentId="p1")

    await world.settlement.completed(event)
    await world.settlement.completed(event)
    await world.settlement.completed(result(PAYMENT_COMPLETED, order, paymentId="p1"))

    assert world.store.t.coupons["SPRING"].redeemed_count == 1
    assert len(world.store.t.redemptions) == 1


async def test_payment_failed_releases_stock_and_coupon(world: World) -> None:
    await world.coupon()
    order = await world.place(coupon="SPRING")

    await world.settlement.failed(result(PAYMENT_FAILED, order, reason="card declined"))

    failed = world.store.t.orders[order.id]
    assert (failed.status, failed.failure_reason) == (OrderStatus.PAYMENT_FAILED,
                                                      "card declined")
    assert world.catalogue.stock == {1: 100, 2: 100}
    assert await world.holds.holder("SPRING", "buyer") is None
    assert world.store.t.coupons["SPRING"].redeemed_count == 0
    assert (await world.place("k2", coupon="SPRING")).coupon_code == "SPRING"


async def test_a_failure_is_retried_while_the_product_service_is_down(world: World) -> None:
    order = await world.place()
    event = result(PAYMENT_FAILED, order, reason="declined")
    world.catalogue.down = True

    with pytest.raises(Unavailable):
        await world.settlement.failed(event)
    assert world.store.t.orders[order.id].status is OrderStatus.PENDING_PAYMENT
    world.catalogue.down = False
    await world.settlement.failed(event)  # the consumer's retry

    assert world.store.t.orders[order.id].status is OrderStatus.PAYMENT_FAILED
    assert world.catalogue.stock == {1: 100, 2: 100}


async def test_a_result_that_contradicts_the_state_is_not_applied(world: World) -> None:
    order = await world.place()
    await world.settlement.failed(result(PAYMENT_FAILED, order, reason="declined"))

    await world.settlement.completed(result(PAYMENT_COMPLETED, order, paymentId="p1"))

    assert world.store.t.orders[order.id].status is OrderStatus.PAYMENT_FAILED


async def test_a_refund_goes_out_as_an_event_and_comes_back_refunded(world: World) -> None:
    order = await world.place()
    await world.settlement.completed(result(PAYMENT_COMPLETED, order, paymentId="p1"))

    asked = await world.settlement.request_refund(BUYER, order.id)
    await world.settlement.refunded(result(PAYMENT_REFUNDED, order, paymentId="p1"))

    assert asked.status is OrderStatus.REFUND_REQUESTED
    [event] = world.events(ORDER_REFUND_REQUESTED)
    assert event.data["paymentId"] == "p1"
    assert world.store.t.orders[order.id].status is OrderStatus.REFUNDED
    assert world.catalogue.stock == {1: 100, 2: 100}


async def test_a_refund_of_an_unpaid_order_is_refused(world: World) -> None:
    order = await world.place()

    with pytest.raises(Conflict):
        await world.settlement.request_refund(BUYER, order.id)
    assert world.events(ORDER_REFUND_REQUESTED) == []
