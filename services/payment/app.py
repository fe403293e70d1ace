"""Assembles the payment service: the order-events consumer, the provider client, the outbox
relay, the recovery loop, and the read-only routes.

Readiness is the database only: with the provider down the service still answers and fails
payments fast (breaker), and with Kafka down there is nothing to consume or publish anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from services.common.events import Messaging
from services.common.runtime import ServiceRuntime, create_app
from services.common.topics import ORDER_EVENTS
from services.payment.api import payments
from services.payment.api.deps import PaymentState
from services.payment.domain.processing import Processor
from services.payment.models import outbox
from services.payment.provider import ProviderClient
from services.payment.recovery import RecoveryLoop
from services.payment.repository import PaymentRepository
from services.payment.settings import PaymentOptions, PaymentSettings

# The consumer group and topic the AWS model's lag alarm watches (stack/come2us.py LagWatch).
CONSUMER_GROUP = "payment-service"


def now() -> datetime:
    return datetime.now(UTC)


def build(runtime: ServiceRuntime[PaymentSettings]) -> FastAPI:
    assert runtime.database is not None, "serve() opens the database (schema payment_service)"

    def options() -> PaymentOptions:
        return runtime.settings.value.payment

    repository = PaymentRepository(runtime.database)
    provider = ProviderClient(lambda: runtime.settings.value.come2us.payment_provider.url,
                              options)
    messaging = Messaging(runtime.platform.kafka.bootstrap_servers,
                          f"{runtime.name}-{runtime.launch.instance_id}",
                          runtime.database.writes, outbox, CONSUMER_GROUP, [ORDER_EVENTS])
    processor = Processor(repository, provider, now, messaging.nudge)
    messaging.handlers = processor.handlers()
    recovery = RecoveryLoop(processor, lambda: options().recovery)

    async def start() -> None:
        await messaging.start()
        recovery.start()

    async def stop() -> None:
        await recovery.stop()
        await messaging.stop()
        await provider.close()

    runtime.starting.append(start)
    runtime.stopping.append(stop)
    app = create_app(runtime, "COME2US payment service")
    mount(app, PaymentState(repository=repository, options=options))
    return app


def mount(app: FastAPI, state: PaymentState) -> None:
    """The routes and the state they use (tests mount them on a bare app with fakes)."""
    app.state.payment = state
    app.include_router(payments.router)
