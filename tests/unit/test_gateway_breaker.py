"""The circuit breaker's state machine, driven by an injected clock, and the error JSON shape."""

from __future__ import annotations

import json

from services.gateway.breaker import CircuitBreaker, State
from services.gateway.errors import error_response
from services.gateway.settings import BreakerSettings

SETTINGS = BreakerSettings(window_size=10, minimum_calls=4, failure_rate_threshold=50,
                           consecutive_failures=5, open_wait_s=2.0, half_open_calls=2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def calls(breaker: CircuitBreaker, outcomes: str) -> None:
    """``"ssf"``: success, success, failure — each through allow()."""
    for outcome in outcomes:
        assert breaker.allow()
        breaker.record(outcome == "f")


def test_opens_on_failure_rate_once_enough_calls() -> None:
    breaker = CircuitBreaker(SETTINGS, Clock())
    calls(breaker, "sff")
    assert breaker.state is State.CLOSED               # 3 calls < minimum_calls
    calls(breaker, "s")
    assert breaker.state is State.OPEN                 # 2 of 4 failed = 50 %
    assert not breaker.allow()


def test_opens_on_consecutive_failures() -> None:
    settings = BreakerSettings(window_size=100, minimum_calls=100, consecutive_failures=3)
    breaker = CircuitBreaker(settings, Clock())
    calls(breaker, "ssssff")
    assert breaker.state is State.CLOSED
    calls(breaker, "f")
    assert breaker.state is State.OPEN


def test_sliding_window_forgets_old_failures() -> None:
    breaker = CircuitBreaker(SETTINGS, Clock())
    calls(breaker, "fssssssssss")                      # the failure slides out of the window
    calls(breaker, "fsfs")                             # 2 of the last 10
    assert breaker.state is State.CLOSED


def test_half_open_after_wait_then_closes_on_successful_trials() -> None:
    clock = Clock()
    breaker = CircuitBreaker(SETTINGS, clock)
    calls(breaker, "ffff")
    assert breaker.state is State.OPEN
    clock.now += 1.0
    assert not breaker.allow() and breaker.retry_after_s() == 1.0
    clock.now += 1.0
    assert breaker.allow()
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()                         # only half_open_calls trials at once
    breaker.record(False)
    breaker.record(False)
    assert breaker.state is State.CLOSED
    calls(breaker, "sss")                              # a fresh window


def test_half_open_failure_opens_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(SETTINGS, clock)
    calls(breaker, "ffff")
    clock.now += 2.0
    assert breaker.allow()
    breaker.record(True)
    assert breaker.state is State.OPEN
    assert not breaker.allow()
    clock.now += 2.0
    assert breaker.allow()


def test_abandoned_trial_gives_its_slot_back() -> None:
    clock = Clock()
    breaker = CircuitBreaker(SETTINGS, clock)
    calls(breaker, "ffff")
    clock.now += 2.0
    assert breaker.allow() and breaker.allow()
    assert not breaker.allow()
    breaker.abandon()
    assert breaker.allow()


def test_error_response_shape() -> None:
    response = error_response(429, "rate limit exceeded", "rid-1", "/api/x",
                              headers=b"retry-after: 2\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 429 Too Many Requests"
    assert "content-type: application/json" in lines
    assert "x-request-id: rid-1" in lines and "retry-after: 2" in lines
    assert f"content-length: {len(body)}" in lines
    assert json.loads(body) == {"status": 429, "error": "Too Many Requests",
                                "message": "rate limit exceeded", "requestId": "rid-1",
                                "path": "/api/x"}


def test_error_response_close_and_head() -> None:
    response = error_response(404, "no route", "r", "/x", keep_alive=False, head_only=True)
    assert b"connection: close\r\n" in response
    assert response.endswith(b"\r\n\r\n")
