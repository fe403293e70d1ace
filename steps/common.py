"""What every feature shares: the scenario's scratchpad, the status rows, the Background step."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_bdd import given

from services.common.tokens import AccessToken
from stack.come2us import come2us
from stack.local.services import ECHO, OnDemandInstances
from stack.local.session import CloudSession, require_ready
from stack.local.tasks.task import TaskState
from stack.local.token_forge import good_token
from stack.model import Platform

UP_TIMEOUT_S = 240.0


@dataclass
class Scene:
    """What one scenario wrote, so later sentences can look for it."""

    model: Platform = field(default_factory=come2us)
    values: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def scene() -> Scene:
    return Scene()


@pytest.fixture
def echoes(cloud: CloudSession, scene: Scene) -> Iterator[OnDemandInstances]:
    """Echo instances a scenario starts; all stopped when it ends."""
    # In the serving colour: its gateways route only to instances of their own colour.
    active = cloud.client.deployment()["active"]
    fleet = OnDemandInstances(ECHO, scene.model, cloud.workspace, colour=active)
    yield fleet
    fleet.stop_all()


@pytest.fixture
def caller(cloud: CloudSession) -> AccessToken:
    """One client identity per scenario: its own rate-limit bucket, nobody else's."""
    return good_token(cloud.workspace)


def rows(cloud: CloudSession) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in cloud.client.status()["components"]}


def serving_tasks(cloud: CloudSession, service: str) -> list[dict[str, Any]]:
    """The running tasks of ``service`` in the colour the ALB forwards to."""
    report = cloud.client.status()
    active = report["listener"]["active"]
    return [task for task in report["tasks"] if task["service"] == service
            and task["colour"] == active and task["state"] == TaskState.RUNNING]


@given("the local cloud is up")
def local_cloud_is_up(cloud: CloudSession) -> None:
    """Also heals what an earlier scenario stopped or killed."""
    cloud.client.up()
    require_ready(cloud.client.wait_started(timeout=UP_TIMEOUT_S))
