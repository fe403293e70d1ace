"""`wait_for`: the value comes back as soon as it exists; a timeout says what was last seen."""

from __future__ import annotations

import pytest

from stack.waiting import DeadlineExceeded, wait_for


def test_returns_the_first_value_and_stops_asking() -> None:
    answers = iter([(None, "booting"), (None, "recovering"), ("ready", "accepting"),
                    ("never asked", "")])
    calls: list[int] = []

    def attempt() -> tuple[str | None, str]:
        calls.append(1)
        return next(answers)

    assert wait_for(attempt, timeout=5, what="server", interval=0) == "ready"
    assert len(calls) == 3


def test_a_falsy_value_other_than_none_ends_the_wait() -> None:
    assert wait_for(lambda: (0, "zero rows"), timeout=5, what="count", interval=0) == 0


def test_a_timeout_carries_the_last_observation() -> None:
    seen = iter(range(1_000_000))

    def attempt() -> tuple[bool | None, str]:
        return None, f"role is replica (try {next(seen)})"

    with pytest.raises(DeadlineExceeded) as caught:
        wait_for(attempt, timeout=0.05, what="rds-standby promoted", interval=0.01)

    tries = next(seen)
    assert caught.value.last_seen == f"role is replica (try {tries - 1})"
    assert str(caught.value) == (
        f"rds-standby promoted: not reached within 0.05 s; last seen: {caught.value.last_seen}")
    assert isinstance(caught.value, TimeoutError)


def test_a_zero_timeout_tries_exactly_once() -> None:
    calls: list[int] = []

    def attempt() -> tuple[bool | None, str]:
        calls.append(1)
        return None, "closed"

    with pytest.raises(DeadlineExceeded, match="last seen: closed"):
        wait_for(attempt, timeout=0, what="port open")
    assert len(calls) == 1


def test_an_error_raised_by_the_attempt_is_not_swallowed() -> None:
    def attempt() -> tuple[bool | None, str]:
        raise ConnectionRefusedError("127.0.9.1:1 refused")

    with pytest.raises(ConnectionRefusedError):
        wait_for(attempt, timeout=5, what="connect")
