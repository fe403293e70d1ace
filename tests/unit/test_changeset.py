"""Change sets: the type is explicit, changes are shown, events followed, failures named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stack.aws.changeset import (
    NO_CHANGES,
    ChangeSetRunner,
    SilentReporter,
    StackFailed,
    Timing,
    change_set_type,
)
from stack.aws.records import Change

REGION = "ap-northeast-2"
FAST = Timing(poll_s=0.0, timeout_s=5.0)


def template(*queues: str) -> str:
    return json.dumps({"Resources": {
        f"Queue{name.title()}": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}
        for name in queues}})


class Collecting(SilentReporter):
    def __init__(self) -> None:
        self.change_sets: list[list[Change]] = []
        self.events: list[dict[str, Any]] = []

    def change_set(self, stack: str, changes: list[Change]) -> None:
        self.change_sets.append(changes)

    def event(self, event: dict[str, Any]) -> None:
        self.events.append(event)


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def test_the_type_is_create_for_a_new_stack_or_an_empty_shell_else_update() -> None:
    assert change_set_type(None) == "CREATE"
    assert change_set_type("REVIEW_IN_PROGRESS") == "CREATE"
    assert change_set_type("UPDATE_COMPLETE") == "UPDATE"


def test_create_then_update_then_no_change(cloudformation: Any) -> None:
    reporter = Collecting()
    runner = ChangeSetRunner(cloudformation, reporter, FAST)
    created = runner.run("s", {}, template_body=template("a"))
    assert (created.change_set_type, created.status) == ("CREATE", "CREATE_COMPLETE")
    assert [(c.action, c.logical_id) for c in created.changes] == [("Add", "QueueA")]
    assert reporter.change_sets == [created.changes]
    assert any(e["ResourceStatus"] == "CREATE_COMPLETE" for e in reporter.events)

    updated = runner.run("s", {}, template_body=template("a", "b"))
    assert (updated.change_set_type, updated.status) == ("UPDATE", "UPDATE_COMPLETE")
    assert [(c.action, c.logical_id) for c in updated.changes] == [("Add", "QueueB")]

    same = runner.run("s", {}, template_body=template("a", "b"))
    assert same.status == NO_CHANGES and same.changes == []
    assert cloudformation.list_change_sets(StackName="s")["Summaries"] == [] or all(
        s["ChangeSetName"] != same.change_set
        for s in cloudformation.list_change_sets(StackName="s")["Summaries"])


def test_a_template_is_given_once(cloudformation: Any) -> None:
    runner = ChangeSetRunner(cloudformation, SilentReporter(), FAST)
    with pytest.raises(ValueError, match="either"):
        runner.run("s", {})


class FailingCloudFormation:
    """A stack whose create fails the way AWS reports it: events, then ROLLBACK_COMPLETE."""

    def __init__(self, final: str = "ROLLBACK_COMPLETE", initial: str | None = None) -> None:
        self.status = initial
        self.final = final
        self.events: list[dict[str, Any]] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if self.status is None:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ValidationError",
                                         "Message": f"Stack with id {StackName} does not exist"}},
                              "DescribeStacks")
        return {"Stacks": [{"StackStatus": self.status}]}

    def create_change_set(self, **request: Any) -> None:
        assert request["ChangeSetType"] == "CREATE"
        self.status = "REVIEW_IN_PROGRESS"

    def describe_change_set(self, **_: Any) -> dict[str, Any]:
        return {"Status": "CREATE_COMPLETE", "Changes": [{"ResourceChange": {
            "Action": "Add", "LogicalResourceId": "Database",
            "ResourceType": "AWS::RDS::DBInstance"}}]}

    def get_paginator(self, _: str) -> Any:
        events = self.events

        class Pages:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                return [{"StackEvents": list(reversed(events))}]

        return Pages()

    def _event(self, logical: str, status: str, reason: str = "") -> None:
        self.events.append({"EventId": str(len(self.events)), "LogicalResourceId": logical,
                            "ResourceType": "AWS::RDS::DBInstance" if logical == "Database"
                            else "AWS::SQS::Queue", "ResourceStatus": status,
                            "ResourceStatusReason": reason})

    def execute_change_set(self, **_: Any) -> None:
        self._event("Queue", "CREATE_FAILED", "Resource creation cancelled")
        self._event("Database", "CREATE_FAILED", "DB instance class db.x1 is not supported")
        self._event("s", self.final)
        self.status = self.final


def test_a_failure_names_the_resource_that_failed_first_and_why() -> None:
    runner = ChangeSetRunner(FailingCloudFormation(), SilentReporter(), FAST)
    with pytest.raises(StackFailed) as failed:
        runner.run("s", {}, template_url="https://b.s3.ap-northeast-2.amazonaws.com/t.json")
    assert [f.logical_id for f in failed.value.failures] == ["Database"]
    assert "Database (AWS::RDS::DBInstance) CREATE_FAILED: DB instance class db.x1" in str(
        failed.value)
    assert "ROLLBACK_COMPLETE" in str(failed.value)


def test_a_stack_that_cannot_be_updated_is_refused_with_the_way_out() -> None:
    runner = ChangeSetRunner(FailingCloudFormation(initial="ROLLBACK_COMPLETE"),
                             SilentReporter(), FAST)
    with pytest.raises(StackFailed, match="delete-stack --stack-name s"):
        runner.run("s", {}, template_body="{}")
