"""Assembles the order service: routes, the outbox relay, and the payment-result consumer.

Readiness is the database only: the session Redis is needed just for orders with a coupon (they
fail alone, with 503, while it is away), and Kafka being down must not stop orders at all —
that is what the outbox is for.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from services.common.events import Messaging
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
    messaging = Messaging(runtime.platform.kafka.bootstrap_servers,
                          f"{runtime.name}-{runtime.launch.instance_id}",
                          runtime.database.writes, outbox, CONSUMER_GROUP, [PAYMENT_EVENTS],
                          settlement.handlers())

    runtime.starting.append(messaging.start)
    runtime.stopping.append(messaging.stop)
    app = create_app(runtime, "COME2US order service")
    mount(app, OrderState(repository=repository, checkout=checkout, settlement=settlement,
                          options=options, published=messaging.nudge, clock=now))
    return app


def mount(app: FastAPI, state: OrderState) -> None:
    """The routes and the state they use (tests mount them on a bare app with fakes)."""
    app.state.order = state
    for router in (orders.router, coupons.router, addresses.router):
        app.include_router(router)
