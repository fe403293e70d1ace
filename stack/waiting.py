"""Waiting on a condition with a deadline, and saying what was last seen when it never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """The condition did not hold in time; ``last_seen`` says what the last attempt observed."""

    def __init__(self, what: str, timeout: float, last_seen: str) -> None:
        super().__init__(f"{what}: not reached within {timeout:g} s; last seen: {last_seen}")
        self.last_seen = last_seen


def wait_for(
    attempt: Callable[[], tuple[T | None, str]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call ``attempt`` until it returns a value; each call also returns what it observed.

    ``attempt`` returns ``(value, observation)``: a non-None value ends the wait, and the
    observation of the last failed try goes into the error, so a timeout explains itself.
    """
    deadline = time.monotonic() + timeout
    last_seen = "nothing yet"
    while True:
        value, last_seen = attempt()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(what, timeout, last_seen)
        time.sleep(interval)
