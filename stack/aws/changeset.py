"""One stack update through a CloudFormation change set: create, show, execute, follow, judge.

A change set is reviewed before it runs: the deploy shows what will be added, modified (and
whether it is replaced) or removed, then executes it and prints the stack's events as they
come, until the stack reaches a final status. A failure is reported with the resource that
failed first and CloudFormation's reason — the cause, not the cascade of cancellations and
rollbacks that follows it.

The change-set type is always explicit: CREATE when the stack does not exist (or only exists as
the empty shell a failed CREATE change set leaves, REVIEW_IN_PROGRESS), UPDATE otherwise —
moto, unlike AWS, does not infer it (../shared/NOTES.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from stack.aws.records import Change

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
NO_CHANGES = "NO_CHANGES"
SUCCESS = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
# A first create that failed and rolled back: only deleting the stack lets a create run again.
DEAD_ENDS = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED",
             "UPDATE_ROLLBACK_FAILED"}
# Events that follow a failure rather than cause it.
CONSEQUENCES = ("Resource creation cancelled", "Resource update cancelled",
                "The following resource(s) failed")


class Reporter(Protocol):
    """Where a deploy tells what it does: the CLI prints it, tests collect it."""

    def step(self, title: str) -> None: ...
    def change_set(self, stack: str, changes: list[Change]) -> None: ...
    def event(self, event: dict[str, Any]) -> None: ...
    def note(self, message: str) -> None: ...


class SilentReporter:
    def step(self, title: str) -> None:
        pass

    def change_set(self, stack: str, changes: list[Change]) -> None:
        pass

    def event(self, event: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class Failure:
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.resource_type}) {self.status}: {self.reason}"


class StackFailed(RuntimeError):
    """The change set could not be made or did not complete; names the failing resource."""

    def __init__(self, stack: str, status: str, failures: list[Failure], detail: str = "") -> None:
        self.stack = stack
        self.status = status
        self.failures = failures
        cause = str(failures[0]) if failures else (detail or "no failure event was recorded")
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(f"stack {stack} ended {status}: {cause}{more}")


@dataclass
class Outcome:
    stack: str
    change_set: str
    change_set_type: str
    changes: list[Change]
    status: str  # the final stack status, or NO_CHANGES
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Timing:
    poll_s: float = 5.0  # AWS; the emulator answers at once
    timeout_s: float = 3600.0


def stack_status(cloudformation: Any, stack: str) -> str | None:
    """The stack's status, or None when there is no stack of that name."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def change_set_type(status: str | None) -> str:
    if status is None or status == "REVIEW_IN_PROGRESS":
        return "CREATE"
    return "UPDATE"


class ChangeSetRunner:
    """Runs change sets against one CloudFormation endpoint (AWS or the emulator)."""

    def __init__(self, cloudformation: Any, reporter: Reporter, timing: Timing = Timing(),
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cf = cloudformation
        self.reporter = reporter
        self.timing = timing
        self.clock = clock
        self.sleep = sleep

    def run(self, stack: str, parameters: dict[str, str], *, template_url: str | None = None,
            template_body: str | None = None, role_arn: str | None = None,
            tags: dict[str, str] | None = None, description: str = "") -> Outcome:
        """Apply one template (from S3, or inline when small) to ``stack``; returns when the
        stack is settled, raises `StackFailed` naming the failing resource otherwise."""
        if (template_url is None) == (template_body is None):
            raise ValueError("give the template either as a URL or as a body")
        began = self.clock()
        status = stack_status(self.cf, stack)
        if status in DEAD_ENDS:
            raise StackFailed(stack, status or "", [], detail=(
                f"the stack is {status}; CloudFormation cannot update it. Look at its events, "
                f"then delete it (`aws cloudformation delete-stack --stack-name {stack}`) and "
                f"deploy again"))
        if status is not None and status.endswith("_IN_PROGRESS") and status != \
                "REVIEW_IN_PROGRESS":
            raise StackFailed(stack, status, [], detail="another operation is in progress "
                              "on this stack (outside the deploy lock?)")
        kind = change_set_type(status)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        name = f"come2us-{stamp}-{int(time.time() * 1000) % 1000:03d}"
        source = ({"TemplateURL": template_url} if template_url is not None
                  else {"TemplateBody": template_body})
        request: dict[str, Any] = {
            "StackName": stack, "ChangeSetName": name, "ChangeSetType": kind,
            **source, "Capabilities": CAPABILITIES,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                           for k, v in sorted(parameters.items())],
        }
        if description:
            request["Description"] = description[:1024]
        if role_arn:
            request["RoleARN"] = role_arn
        if tags:
            request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        self.cf.create_change_set(**request)
        described = self._wait_for_change_set(stack, name)
        changes = self._changes(stack, name, described)
        if described["Status"] == "FAILED":
            reason = str(described.get("StatusReason", ""))
            if "didn't contain changes" in reason or "No updates" in reason:
                self.cf.delete_change_set(StackName=stack, ChangeSetName=name)
                self.reporter.note(f"{stack}: no changes")
                return Outcome(stack, name, kind, [], NO_CHANGES, self.clock() - began)
            raise StackFailed(stack, "change set FAILED", [], detail=reason)
        self.reporter.change_set(stack, changes)
        before = frozenset(str(e["EventId"]) for e in self._events(stack))
        try:
            self.cf.execute_change_set(StackName=stack, ChangeSetName=name)
        except ClientError as err:
            # moto executes synchronously and answers a failing create with an error.
            raise StackFailed(stack, f"{kind} failed", self._failures(stack, before),
                              detail=str(err)) from err
        final, events = self._follow(stack, set(before))
        outcome = Outcome(stack, name, kind, changes, final, self.clock() - began, events)
        if final not in SUCCESS:
            raise StackFailed(stack, final, self._failures(stack, before))
        return outcome

    def _wait_for_change_set(self, stack: str, name: str) -> dict[str, Any]:
        deadline = self.clock() + self.timing.timeout_s
        while True:
            described: dict[str, Any] = self.cf.describe_change_set(
                StackName=stack, ChangeSetName=name)
            if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
                return described
            if self.clock() > deadline:
                raise StackFailed(stack, "change set " + described["Status"], [],
                                  detail="the change set was not ready in time")
            self.sleep(min(self.timing.poll_s, 2.0))

    def _changes(self, stack: str, name: str, described: dict[str, Any]) -> list[Change]:
        raw = list(described.get("Changes", []))
        token = described.get("NextToken")
        while token:
            page = self.cf.describe_change_set(StackName=stack, ChangeSetName=name,
                                               NextToken=token)
            raw.extend(page.get("Changes", []))
            token = page.get("NextToken")
        changes = []
        for item in raw:
            change = item.get("ResourceChange", {})
            changes.append(Change(action=str(change.get("Action", "")),
                                  logical_id=str(change.get("LogicalResourceId", "")),
                                  resource_type=str(change.get("ResourceType", "")),
                                  replacement=str(change.get("Replacement", "") or "")))
        return sorted(changes, key=lambda c: (c.action, c.logical_id))

    def _events(self, stack: str) -> list[dict[str, Any]]:
        """The stack's events, oldest first."""
        events: list[dict[str, Any]] = []
        try:
            for page in self.cf.get_paginator("describe_stack_events").paginate(StackName=stack):
                events.extend(page["StackEvents"])
        except ClientError:
            return []
        return list(reversed(events))

    def _follow(self, stack: str, seen: set[str]) -> tuple[str, list[dict[str, Any]]]:
        deadline = self.clock() + self.timing.timeout_s
        shown: list[dict[str, Any]] = []
        while True:
            for event in self._events(stack):
                if str(event["EventId"]) not in seen:
                    seen_now = str(event["EventId"])
                    seen.add(seen_now)
                    shown.append(event)
                    self.reporter.event(event)
            status = stack_status(self.cf, stack) or "GONE"
            if not status.endswith("_IN_PROGRESS"):
                return status, shown
            if self.clock() > deadline:
                return f"{status} (still, after {self.timing.timeout_s:.0f} s)", shown
            self.sleep(self.timing.poll_s)

    def _failures(self, stack: str, before: frozenset[str]) -> list[Failure]:
        failures = []
        for event in self._events(stack):
            if str(event["EventId"]) in before:
                continue
            status = str(event.get("ResourceStatus", ""))
            reason = str(event.get("ResourceStatusReason", ""))
            if not status.endswith("_FAILED") or reason.startswith(CONSEQUENCES):
                continue
            failures.append(Failure(str(event.get("LogicalResourceId", "")),
                                    str(event.get("ResourceType", "")), status, reason))
        return failures
