"""A circuit breaker around the payment provider: stop calling a provider that keeps failing.

When the provider is down every charge would wait for its timeout, and the consumer would fall
behind on ``order-events`` by a timeout per order. After ``failure_threshold`` failures in a row
the breaker **opens**: calls are refused at once (the payment fails fast with "provider
unavailable") for ``open_s``. Then it is **half-open**: up to ``half_open_calls`` trial calls
pass; as many successes close it, one failure opens it again. A decline is a success here: the
provider answered.

The same states as the gateway's breaker (services/gateway/breaker.py, Resilience4j's model),
reduced to consecutive failures: the payment service makes few calls, so a rate over a window
would open too late. The clock is injected so tests drive time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    open_s: float = 10.0
    half_open_calls: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_calls < 1 or self.open_s < 0:
            raise ValueError(f"not a breaker policy: {self}")


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.opened_at = 0.0
        self._failures = 0
        self._trials = 0  # half-open calls let through and not yet answered
        self._trial_successes = 0

    def allow(self) -> bool:
        """May a call go out now? In half-open, this takes one of the trial slots."""
        if self.state is BreakerState.OPEN:
            if self.clock() - self.opened_at < self.policy.open_s:
                return False
            self.state = BreakerState.HALF_OPEN
            self._trials = 0
            self._trial_successes = 0
        if self.state is BreakerState.HALF_OPEN:
            if self._trials + self._trial_successes >= self.policy.half_open_calls:
                return False
            self._trials += 1
        return True

    def record(self, success: bool) -> None:
        """The outcome of a call `allow` let through."""
        if self.state is BreakerState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            if not success:
                self._open()
                return
            self._trial_successes += 1
            if self._trial_successes >= self.policy.half_open_calls:
                self._close()
            return
        if self.state is BreakerState.OPEN:
            return  # admitted before it opened; changes nothing
        if success:
            self._failures = 0
            return
        self._failures += 1
        if self._failures >= self.policy.failure_threshold:
            self._open()

    def retry_after_s(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.policy.open_s - (self.clock() - self.opened_at))

    def reconfigure(self, policy: BreakerPolicy) -> None:
        """New tuning from a settings refresh; the state is kept."""
        self.policy = policy

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = self.clock()
        self._failures = 0

    def _close(self) -> None:
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._trials = 0
        self._trial_successes = 0
