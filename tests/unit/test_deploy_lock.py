"""The deploy lock against moto's in-process DynamoDB, in the table the model describes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stack.come2us import come2us
from stack.deploy_lock import DeployLock, LockHeld, LockInfo
from stack.local.aws_clients import aws_environment
from stack.local.aws_resources import ensure_lock_table


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in aws_environment(come2us().aws).items():
        if name != "AWS_ENDPOINT_URL":  # mock_aws answers in process, not at the endpoint
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        ensure_lock_table(client, come2us().data.lock_table)
        yield client


@pytest.fixture
def lock(dynamodb: Any) -> DeployLock:
    table = come2us().data.lock_table
    return DeployLock(dynamodb, table.name, table.partition_key)


def test_acquire_takes_a_free_lock_and_holder_reports_it(lock: DeployLock) -> None:
    assert lock.holder() is None

    taken = lock.acquire("alice@laptop", reason="release 1.4.0")

    assert lock.holder() == taken
    assert (taken.holder, taken.reason) == ("alice@laptop", "release 1.4.0")


def test_a_second_deployer_is_refused_naming_the_first(lock: DeployLock) -> None:
    first = lock.acquire("alice@laptop", reason="release 1.4.0")

    with pytest.raises(LockHeld) as refused:
        lock.acquire("bob@ci")

    assert refused.value.info == first
    message = str(refused.value)
    assert message.startswith(f"the deploy lock is held by {first.describe()}")
    assert "alice@laptop" in message and "(release 1.4.0)" in message
    assert "`come2us deploy --break-lock`" in message
    assert lock.holder() == first


def test_release_by_someone_else_is_refused_and_keeps_the_lock(lock: DeployLock) -> None:
    first = lock.acquire("alice@laptop")

    with pytest.raises(LockHeld, match="held by alice@laptop"):
        lock.release("bob@ci")

    assert lock.holder() == first


def test_release_by_the_holder_frees_the_lock_for_the_next(lock: DeployLock) -> None:
    lock.acquire("alice@laptop")

    lock.release("alice@laptop")

    assert lock.holder() is None
    assert lock.acquire("bob@ci").holder == "bob@ci"


def test_releasing_a_free_lock_is_harmless(lock: DeployLock) -> None:
    lock.release("alice@laptop")

    assert lock.holder() is None


def test_break_lock_removes_a_stale_lock_and_says_whose_it_was(lock: DeployLock) -> None:
    stale = lock.acquire("crashed-deployer")

    assert lock.break_lock() == stale
    assert lock.holder() is None
    assert lock.break_lock() is None


def test_describe_says_who_since_when_and_why() -> None:
    info = LockInfo("alice@laptop", 0.0, "hotfix")

    assert info.describe().startswith("alice@laptop since ")
    assert info.describe().endswith(" (hotfix)")
    assert LockInfo("alice@laptop", 0.0, "").describe().endswith(":00")
