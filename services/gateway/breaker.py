"""A circuit breaker per route, so a failing service gets time to recover instead of more load.

States as in Resilience4j (which Spring Cloud Gateway's CircuitBreaker filter uses):

- **closed**: calls pass; outcomes go into a count-based sliding window of the last
  ``window_size`` calls. It opens when the window holds at least ``minimum_calls`` outcomes and
  the failure rate reaches ``failure_rate_threshold`` percent, or after ``consecutive_failures``
  failures in a row (a fast trip when a service dies outright).
- **open**: every call is refused (the gateway answers the JSON 503 fallback) for
  ``open_wait_s``.
- **half-open**: up to ``half_open_calls`` trial calls pass; if they all succeed the breaker
  closes with an empty window, the first failure opens it again.

A call that ends without an outcome (the client went away) gives its half-open slot back.
The clock is injected so tests drive time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from services.gateway.settings import BreakerSettings


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = ("_consecutive", "_failures", "_trial_successes", "_trials_in_flight",
                 "_window", "_window_index", "clock", "opened_at", "settings", "state", "steady")

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.state = State.CLOSED
        self.opened_at = 0.0
        self._reset_window()

    def _reset_window(self) -> None:
        # Closed with a full window of successes: recording one more success changes nothing,
        # so callers may skip record(False) while this is True (the common case, per request).
        self.steady = False
        self._window: list[bool] = []  # True = failure; a ring once it is full
        self._window_index = 0
        self._failures = 0
        self._consecutive = 0
        self._trials_in_flight = 0
        self._trial_successes = 0

    def reconfigure(self, settings: BreakerSettings) -> None:
        """New tuning from a settings refresh; the current state is kept, the window restarts."""
        if settings != self.settings:
            self.settings = settings
            self._reset_window()

    def allow(self) -> bool:
        """May a call go through now? In half-open, taking a trial slot."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.OPEN:
            if self.clock() - self.opened_at < self.settings.open_wait_s:
                return False
            self.state = State.HALF_OPEN
            self._trials_in_flight = 0
            self._trial_successes = 0
        if self._trials_in_flight + self._trial_successes >= self.settings.half_open_calls:
            return False
        self._trials_in_flight += 1
        return True

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a trial call through."""
        if self.state is not State.OPEN:
            return 0.0
        return max(0.0, self.settings.open_wait_s - (self.clock() - self.opened_at))

    def record(self, failure: bool) -> None:
        """The outcome of a call that ``allow()`` let through."""
        if self.state is State.HALF_OPEN:
            self._trials_in_flight = max(0, self._trials_in_flight - 1)
            if failure:
                self._open()
            else:
                self._trial_successes += 1
                if self._trial_successes >= self.settings.half_open_calls:
                    self.state = State.CLOSED
                    self._reset_window()
            return
        if self.state is State.OPEN:
            return  # a call admitted before the breaker opened; its outcome changes nothing
        settings = self.settings
        window = self._window
        if len(window) < settings.window_size:
            window.append(failure)
        else:
            self._failures -= window[self._window_index]
            window[self._window_index] = failure
            self._window_index = (self._window_index + 1) % settings.window_size
        if failure:
            self._failures += 1
            self._consecutive += 1
            self.steady = False
            if self._consecutive >= settings.consecutive_failures:
                self._open()
                return
        else:
            self._consecutive = 0
            self.steady = not self._failures and len(window) == settings.window_size
        # Evaluated after every call, as Resilience4j does: a success can complete the minimum.
        if self._failures and len(window) >= settings.minimum_calls \
                and self._failures * 100.0 >= settings.failure_rate_threshold * len(window):
            self._open()

    def abandon(self) -> None:
        """A call ended without an outcome; give back its half-open trial slot."""
        if self.state is State.HALF_OPEN and self._trials_in_flight:
            self._trials_in_flight -= 1

    def _open(self) -> None:
        self.state = State.OPEN
        self.opened_at = self.clock()
        self._reset_window()
