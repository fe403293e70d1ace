"""Payment processing against the real simulator app (in process): charged once per order,
whatever Kafka redelivers; declines and outages fail the payment; refunds; crash recovery."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from payment_fakes import FakePaymentStore

from services.common.events import Event
from services.common.topics import (
    ORDER_CREATED,
    ORDER_REFUND_REQUESTED,
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
)
from services.payment.domain.payments import Payment, PaymentStatus, RefundStatus
from services.payment.domain.processing import Processor
from services.payment.provider import ProviderClient
from services.payment.settings import PaymentOptions
from services.payment_provider.app import create_app
from services.payment_provider.ledger import Behaviour, Ledger

pytestmark = pytest.mark.anyio

START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


async def no_wait(seconds: float) -> None:
    return None


@dataclass
class World:
    ledger: Ledger
    store: FakePaymentStore
    processor: Processor
    clock: Clock
    behaviour: dict[str, Behaviour]
    published: list[int]

    def misbehave(self, **behaviour: float) -> None:
        self.behaviour["behaviour"] = Behaviour(**behaviour)  # type: ignore[arg-type]

    def charges(self, order_id: str) -> int:
        return len(self.ledger.find_charges(reference=order_id))

    def payment(self, order_id: str) -> Payment:
        return self.store.t.payments[order_id]


@pytest.fixture
def world() -> World:
    ledger = Ledger(chance=lambda: 0.5)
    app = create_app(ledger)
    behaviour: dict[str, Behaviour] = {}

    # The simulator's behaviour is changed the way a feature does: through its admin route.
    class Admin(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "behaviour" in behaviour:
                b = behaviour.pop("behaviour")
                await self.inner.handle_async_request(httpx.Request(
                    "PUT", "http://provider/admin/behaviour",
                    json={"latencyMs": b.latency_ms, "failureRate": b.failure_rate,
                          "errorRate": b.error_rate}))
            return await self.inner.handle_async_request(request)

    store = FakePaymentStore()
    clock = Clock()
    published: list[int] = []
    provider = ProviderClient(lambda: "http://provider", PaymentOptions, sleep=no_wait,
                              transport=Admin())
    processor = Processor(store, provider, clock, lambda: published.append(1))
    return World(ledger, store, processor, clock, behaviour, published)


def created(order_id: str = "o1", amount: int = 92_000) -> Event:
    return Event.new(ORDER_CREATED, {"orderId": order_id, "userId": "buyer", "amount": amount,
                                     "currency": "KRW", "items": [], "couponCode": None})


async def test_an_order_is_charged_and_completed(world: World) -> None:
    await world.processor.order_created(created())

    payment = world.payment("o1")
    assert payment.status is PaymentStatus.COMPLETED
    assert payment.provider_charge_id is not None
    [event] = world.store.events(PAYMENT_COMPLETED)
    assert event.data == {"orderId": "o1", "paymentId": payment.id, "amount": 92_000,
                          "providerReference": payment.provider_charge_id}
    assert world.published == [1]


async def test_the_same_event_twice_charges_once(world: World) -> None:
    event = created()

    await world.processor.order_created(event)
    await world.processor.order_created(event)

    assert world.charges("o1") == 1
    assert len(world.store.events(PAYMENT_COMPLETED)) == 1


async def test_a_copy_with_a_new_event_id_charges_once(world: World) -> None:
    await world.processor.order_created(created())
    await world.processor.order_created(created())

    assert world.charges("o1") == 1
    assert len(world.store.t.payments) == 1
    assert len(world.store.events(PAYMENT_COMPLETED)) == 1


async def test_a_decline_fails_the_payment(world: World) -> None:
    world.misbehave(failure_rate=1.0)

    await world.processor.order_created(created())

    payment = world.payment("o1")
    assert payment.status is PaymentStatus.FAILED
    assert payment.failure_reason is not None and "declined" in payment.failure_reason
    [event] = world.store.events(PAYMENT_FAILED)
    assert event.data == {"orderId": "o1", "reason": payment.failure_reason}


async def test_an_outage_fails_the_payment_after_the_retries(world: World) -> None:
    world.misbehave(error_rate=1.0)

    await world.processor.order_created(created())

    payment = world.payment("o1")
    assert payment.status is PaymentStatus.FAILED
    assert "unavailable" in (payment.failure_reason or "")
    assert world.charges("o1") == 0


async def test_a_crash_before_the_result_is_finished_by_the_recovery(world: World) -> None:
    # The intent was recorded, then the process died before calling the provider.
    async with world.store.transaction() as tx:
        await tx.add_payment(Payment.for_order(created(), START))

    world.clock.now = START + timedelta(seconds=61)
    tried = await world.processor.resume(timedelta(seconds=60), timedelta(seconds=10))

    assert tried == 1
    assert world.payment("o1").status is PaymentStatus.COMPLETED
    assert world.charges("o1") == 1


async def test_a_crash_after_charging_does_not_charge_again(world: World) -> None:
    await world.processor.order_created(created())
    payment = world.payment("o1")
    # As if the result had not been stored: the recovery calls the provider again, same key.
    world.store.t.payments["o1"] = replace(payment, status=PaymentStatus.PENDING,
                                           provider_charge_id=None)
    world.clock.now = START + timedelta(seconds=61)

    await world.processor.resume(timedelta(seconds=60), timedelta(seconds=10))

    assert world.charges("o1") == 1
    assert world.payment("o1").provider_charge_id == payment.provider_charge_id


async def test_a_refund_returns_the_money_once(world: World) -> None:
    await world.processor.order_created(created())
    payment = world.payment("o1")
    asked = Event.new(ORDER_REFUND_REQUESTED, {"orderId": "o1", "userId": "buyer",
                                               "paymentId": payment.id, "amount": 92_000})

    await world.processor.refund_requested(asked)
    await world.processor.refund_requested(asked)

    assert world.payment("o1").status is PaymentStatus.REFUNDED
    assert len(world.ledger.refunds) == 1
    [event] = world.store.events(PAYMENT_REFUNDED)
    assert event.data == {"orderId": "o1", "paymentId": payment.id, "amount": 92_000}


async def test_a_refund_waits_out_an_outage_and_is_retried(world: World) -> None:
    await world.processor.order_created(created())
    world.misbehave(error_rate=1.0)
    await world.processor.refund_requested(Event.new(ORDER_REFUND_REQUESTED, {
        "orderId": "o1", "userId": "buyer", "paymentId": "p", "amount": 92_000}))
    assert world.store.t.refunds[world.payment("o1").id].status is RefundStatus.PENDING

    world.misbehave(error_rate=0.0)
    world.clock.now = START + timedelta(seconds=11)
    # The breaker opened during the outage: let its wait pass as well.
    world.processor.provider.breaker.opened_at -= 60  # type: ignore[attr-defined]
    await world.processor.resume(timedelta(seconds=60), timedelta(seconds=10))

    assert world.payment("o1").status is PaymentStatus.REFUNDED
    assert len(world.store.events(PAYMENT_REFUNDED)) == 1


async def test_a_refund_for_an_unpaid_order_is_ignored(world: World) -> None:
    world.misbehave(failure_rate=1.0)
    await world.processor.order_created(created())

    await world.processor.refund_requested(Event.new(ORDER_REFUND_REQUESTED, {
        "orderId": "o1", "userId": "buyer", "paymentId": None, "amount": 92_000}))

    assert world.ledger.refunds == {}
    assert world.store.events(PAYMENT_REFUNDED) == []
