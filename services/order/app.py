"""Assembles the order service: routes, the outbox relay, and the payment-result consumer.

Readiness is the database only: the session Redis is needed just for orders with a coupon (they
fail alone, with 503, while it is away), and Kafka being down must not stop orders at all —
that is what the outbox is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI

from services.common.events import Consumer, OutboxRelay, Publisher
from services.common.runtime import ServiceRuntime, create_app
from services.common.topics import PAYMENT_EVENTS
from services.order.api import addresses, coupons, orders
from services.order.api.deps import OrderState
from services.order.catalogue import ProductCatalogue
from services.order.domain.checkout import Checkout
from services.order.domain.settlement import Settlement
from services.order.holds import RedisHolds
from services.order.models import outbox
from services.order.repository import OrderRepository
from services.order.settings import OrderOptions, OrderSettings

CONSUMER_GROUP = "order-service"


def now() -> datetime:
    return datetime.now(UTC)


def build(runtime: ServiceRuntime[OrderSettings]) -> FastAPI:
    assert runtime.database is not None, "serve() opens the database (schema order_service)"

    def options() -> OrderOptions:
        return runtime.settings.value.order

    repository = OrderRepository(runtime.database)
    catalogue = ProductCatalogue(runtime.calls, lambda: options().catalogue)
    holds = RedisHolds(runtime.session_redis())
    checkout = Checkout(repository, catalogue, holds,
                        lambda: options().coupons.hold_ttl_seconds, now)
    settlement = Settlement(repository, catalogue, holds, now)
    messaging = Messaging()
    database = runtime.database

    async def start() -> None:
        # aiokafka's clients must be made inside the running event loop.
        bootstrap = runtime.platform.kafka.bootstrap_servers
        messaging.publisher = Publisher(bootstrap,
                                        f"{runtime.name}-{runtime.launch.instance_id}")
        messaging.relay = OutboxRelay(database.writes, outbox, messaging.publisher)
        messaging.consumer = Consumer(bootstrap, CONSUMER_GROUP, [PAYMENT_EVENTS],
                                      settlement.handlers())
        messaging.relay.start()
        messaging.consumer.start()

    runtime.starting.append(start)
    runtime.stopping.append(messaging.stop)
    app = create_app(runtime, "COME2US order service")
    mount(app, OrderState(repository=repository, checkout=checkout, settlement=settlement,
                          options=options, published=messaging.nudge, clock=now))
    return app


@dataclass
class Messaging:
    """Kafka's side of the service, made when the service starts."""

    publisher: Publisher | None = None
    relay: OutboxRelay | None = None
    consumer: Consumer | None = None

    def nudge(self) -> None:
        if self.relay is not None:
            self.relay.nudge()

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.publisher is not None:
            await self.publisher.stop()


def mount(app: FastAPI, state: OrderState) -> None:
    """The routes and the state they use (tests mount them on a bare app with fakes)."""
    app.state.order = state
    for router in (orders.router, coupons.router, addresses.router):
        app.include_router(router)
