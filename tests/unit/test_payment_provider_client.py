"""The provider client: what is retried (no answer) and what is final (an answer), one
idempotency key across attempts, and the breaker that stops calls to a dead provider."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from services.payment.domain.breaker import BreakerState
from services.payment.domain.payments import Answer
from services.payment.provider import ProviderClient
from services.payment.settings import BreakerOptions, PaymentOptions, ProviderOptions

pytestmark = pytest.mark.anyio

Respond = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Script:
    """A provider that answers from a list, recording what it was sent."""

    def __init__(self, *answers: Respond | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request)

    def keys(self) -> list[str]:
        return [json.loads(r.content)["idempotencyKey"] for r in self.requests]


def status(code: int, **body: object) -> Respond:
    return lambda request: httpx.Response(code, json=body)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def client(script: Script, clock: Clock | None = None, attempts: int = 3,
           threshold: int = 5) -> ProviderClient:
    options = PaymentOptions(provider=ProviderOptions(attempts=attempts),
                             breaker=BreakerOptions(failure_threshold=threshold,
                                                    open_seconds=10))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return ProviderClient(lambda: "http://provider", lambda: options, clock=clock or Clock(),
                          sleep=sleep, transport=httpx.MockTransport(script))


async def charge(provider: ProviderClient) -> tuple[Answer, str | None, str | None]:
    outcome = await provider.charge(amount=1000, currency="KRW", reference="o1", key="k-o1")
    return outcome.answer, outcome.provider_id, outcome.reason


async def test_an_approval_is_done() -> None:
    script = Script(status(201, id="ch_1", status="approved"))

    assert await charge(client(script)) == (Answer.DONE, "ch_1", None)


async def test_a_decline_is_final_and_not_retried() -> None:
    script = Script(status(402, id="ch_1", status="declined", reason="card declined"))

    answer, provider_id, reason = await charge(client(script))

    assert (answer, provider_id) == (Answer.REFUSED, "ch_1")
    assert reason == "declined: card declined"
    assert len(script.requests) == 1


async def test_no_answer_is_retried_with_the_same_key() -> None:
    script = Script(httpx.ReadTimeout("slow"), status(503, message="down"),
                    status(201, id="ch_1"))

    assert (await charge(client(script)))[0] is Answer.DONE
    assert script.keys() == ["k-o1"] * 3


async def test_no_answer_at_all_is_unavailable_after_the_attempts() -> None:
    script = Script(httpx.ConnectError("refused"))

    answer, _, reason = await charge(client(script, attempts=2))

    assert answer is Answer.UNAVAILABLE
    assert reason is not None and "ConnectError" in reason and "2 attempts" in reason
    assert len(script.requests) == 2


async def test_the_breaker_opens_and_then_nothing_is_sent() -> None:
    clock = Clock()
    script = Script(status(503, message="down"))
    provider = client(script, clock, attempts=1, threshold=3)
    for _ in range(3):
        await charge(provider)

    answer, _, reason = await charge(provider)

    assert provider.breaker.state is BreakerState.OPEN
    assert answer is Answer.UNAVAILABLE
    assert reason is not None and "circuit open" in reason
    assert len(script.requests) == 3


async def test_after_the_wait_one_trial_closes_it_again() -> None:
    clock = Clock()
    script = Script(status(503), status(503), status(503), status(201, id="ch_9"))
    provider = client(script, clock, attempts=1, threshold=3)
    for _ in range(3):
        await charge(provider)

    clock.now = 10.0
    answer, provider_id, _ = await charge(provider)

    assert (answer, provider_id) == (Answer.DONE, "ch_9")
    assert provider.breaker.state is BreakerState.CLOSED


async def test_without_a_url_nothing_is_sent() -> None:
    script = Script(status(201))
    options = PaymentOptions()
    provider = ProviderClient(lambda: "", lambda: options, transport=httpx.MockTransport(script))

    assert (await charge(provider))[0] is Answer.UNAVAILABLE
    assert script.requests == []
