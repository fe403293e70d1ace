"""The payment provider's circuit breaker, driven by a fake clock."""

from __future__ import annotations

import pytest

from services.payment.domain.breaker import BreakerPolicy, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, threshold: int = 3, half_open_calls: int = 1) -> CircuitBreaker:
    return CircuitBreaker(BreakerPolicy(threshold, open_s=10.0, half_open_calls=half_open_calls),
                          clock)


def fail(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert b.allow()
        b.record(False)


def test_it_opens_after_consecutive_failures_only() -> None:
    b = breaker(Clock())
    fail(b, 2)
    b.record(True)  # a success in between starts the count again
    fail(b, 2)
    assert b.state is BreakerState.CLOSED

    fail(b, 1)

    assert b.state is BreakerState.OPEN
    assert not b.allow()


def test_open_refuses_until_the_wait_is_over_then_lets_one_trial_through() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)

    clock.now = 9.9
    refused = b.allow()
    clock.now = 10.0
    trial = b.allow()
    second = b.allow()

    assert (refused, trial, second) == (False, True, False)
    assert b.state is BreakerState.HALF_OPEN
    assert b.retry_after_s() == 0.0


def test_a_successful_trial_closes_it() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now = 10.0
    b.allow()

    b.record(True)

    assert b.state is BreakerState.CLOSED
    assert b.allow()


def test_a_failed_trial_opens_it_again_for_a_full_wait() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now = 10.0
    b.allow()

    b.record(False)

    assert b.state is BreakerState.OPEN
    assert b.retry_after_s() == 10.0
    clock.now = 19.9
    assert not b.allow()


def test_several_trials_must_all_succeed() -> None:
    clock = Clock()
    b = breaker(clock, half_open_calls=2)
    fail(b, 3)
    clock.now = 10.0
    assert b.allow() and b.allow()
    assert not b.allow()

    b.record(True)
    assert b.state is BreakerState.HALF_OPEN
    b.record(True)

    assert b.state is BreakerState.CLOSED


def test_a_late_outcome_while_open_changes_nothing() -> None:
    clock = Clock()
    b = breaker(clock)
    assert b.allow()  # admitted before the breaker opened
    fail(b, 3)

    b.record(True)

    assert b.state is BreakerState.OPEN


def test_a_policy_must_make_sense() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(failure_threshold=0)
