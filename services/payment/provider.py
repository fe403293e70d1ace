"""The payment provider over HTTP: timeouts, a few retries with one idempotency key, a breaker.

Every attempt of one charge (or refund) carries the same idempotency key, so a retry after a
timeout — when the provider may well have charged — gets the first answer back instead of a
second charge. Only "no answer" is retried: a timeout, a connection failure, a 5xx or 429.
A decline (402) or a refusal (4xx) is an answer and final.

The breaker (`services.payment.domain.breaker`) counts "no answer" as failure; while it is
open no call goes out and the outcome is UNAVAILABLE at once, so an outage costs the consumer
nothing per order instead of a timeout per order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client import Counter, Gauge

from services.payment.domain.breaker import BreakerState, CircuitBreaker
from services.payment.domain.payments import Answer, Outcome
from services.payment.settings import PaymentOptions

CALLS = Counter("payment_provider_calls_total", "Calls to the payment provider",
                ("operation", "result"))
BREAKER = Gauge("payment_provider_breaker_open",
                "1 while the payment provider's circuit breaker is open, else 0")

Sleep = Callable[[float], Awaitable[None]]


class ProviderClient:
    """`services.payment.domain.processing.Provider` for the provider's REST API."""

    def __init__(self, url: Callable[[], str], options: Callable[[], PaymentOptions], *,
                 clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.options = options
        self.sleep = sleep
        self.breaker = CircuitBreaker(options().breaker.policy(), clock)
        self._http = httpx.AsyncClient(transport=transport)

    async def charge(self, *, amount: int, currency: str, reference: str, key: str) -> Outcome:
        return await self._call("charge", "/charges", {
            "amount": amount, "currency": currency, "reference": reference,
            "idempotencyKey": key})

    async def refund(self, *, charge_id: str, amount: int, key: str) -> Outcome:
        return await self._call("refund", "/refunds", {
            "chargeId": charge_id, "amount": amount, "idempotencyKey": key})

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, operation: str, path: str, body: dict[str, Any]) -> Outcome:
        options = self.options()
        self.breaker.reconfigure(options.breaker.policy())
        provider = options.provider
        base = self.url().rstrip("/")
        if not base:
            return Outcome(Answer.UNAVAILABLE, reason="no payment provider URL is configured "
                                                      "(come2us.payment-provider.url)")
        timeout = httpx.Timeout(provider.read_timeout_ms / 1000,
                                connect=provider.connect_timeout_ms / 1000)
        delay = provider.retry_backoff_ms / 1000
        reason = ""
        for attempt in range(1, provider.attempts + 1):
            if not self.breaker.allow():
                CALLS.labels(operation, "breaker_open").inc()
                return Outcome(Answer.UNAVAILABLE, reason=(
                    f"circuit open after repeated failures ({reason or 'earlier calls'}); "
                    f"next trial in {self.breaker.retry_after_s():.0f} s"))
            try:
                response = await self._http.post(f"{base}{path}", json=body, timeout=timeout)
            except httpx.TimeoutException:
                reason = f"no answer within {timeout.read} s"
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    self._record(True)
                    outcome = answer(response)
                    CALLS.labels(operation, outcome.answer.value).inc()
                    return outcome
                reason = f"answered {response.status_code}"
            self._record(False)
            CALLS.labels(operation, "no_answer").inc()
            if attempt < provider.attempts and delay:
                await self.sleep(delay)
                delay *= 2
        return Outcome(Answer.UNAVAILABLE, reason=f"{reason} ({provider.attempts} attempts)")

    def _record(self, success: bool) -> None:
        self.breaker.record(success)
        BREAKER.set(1 if self.breaker.state is BreakerState.OPEN else 0)


def answer(response: httpx.Response) -> Outcome:
    """A 2xx is done, a 402 a decline, any other 4xx a refusal; with the provider's words."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    provider_id = body.get("id")
    if 200 <= response.status_code < 300:
        return Outcome(Answer.DONE, provider_id=str(provider_id) if provider_id else None)
    message = body.get("reason") or body.get("message") or f"HTTP {response.status_code}"
    if response.status_code == 402:
        return Outcome(Answer.REFUSED, provider_id=str(provider_id) if provider_id else None,
                       reason=f"declined: {message}")
    return Outcome(Answer.REFUSED, reason=f"refused ({response.status_code}): {message}")
