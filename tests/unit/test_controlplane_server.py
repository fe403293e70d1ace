"""The control plane's HTTP API (Starlette) in process, over a LocalCloud of fake components.

`TestClient` used as a context manager runs the app's lifespan, so the crash watcher starts and
the cloud is taken down at the end exactly as under uvicorn; no socket is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_components import FakeCloud, build_fake_cloud
from starlette.testclient import TestClient

from stack.local.controlplane.server import ACTIONS, ControlPlane
from stack.local.tasks.task import Release
from stack.model.edge import Colour
from stack.waiting import wait_for


@pytest.fixture
def lab(tmp_path: Path) -> FakeCloud:
    return build_fake_cloud(tmp_path / "home", [("db", ()), ("app", ("db",))])


@pytest.fixture
def plane(lab: FakeCloud) -> ControlPlane:
    return ControlPlane(lab.cloud, "process")


@pytest.fixture
def client(plane: ControlPlane) -> Iterator[TestClient]:
    with TestClient(plane.app()) as test_client:
        yield test_client


def test_status_reports_the_plane_and_every_component(client: TestClient, lab: FakeCloud) -> None:
    response = client.get("/v1/status")

    assert response.status_code == 200
    body = response.json()
    assert body["pid"] == os.getpid()
    assert body["home"] == str(lab.workspace.home)
    assert (body["backend"], body["starting"], body["events"]) == ("process", False, [])
    assert body["components"] == [
        {"name": "db", "kind": "fake", "zone": "AZ-t", "address": "127.0.9.11:7009",
         "role": "fake-role", "state": "stopped", "pid": None, "detail": ""},
        {"name": "app", "kind": "fake", "zone": "AZ-t", "address": "127.0.9.12:7009",
         "role": "fake-role", "state": "stopped", "pid": None, "detail": ""},
    ]


def test_up_answers_202_at_once_and_brings_the_cloud_up(client: TestClient,
                                                         plane: ControlPlane) -> None:
    response = client.post("/v1/up")

    assert response.status_code == 202
    assert response.json() == {"starting": True, "already": False}

    def finished() -> tuple[list[str] | None, str]:
        body = client.get("/v1/status").json()
        states = [row["state"] for row in body["components"]]
        return (None if body["starting"] else states), f"starting={body['starting']} {states}"

    assert wait_for(finished, timeout=10, what="up finished", interval=0.05) == ["ready", "ready"]


def test_an_unknown_component_is_a_404_naming_the_known_ones(client: TestClient) -> None:
    response = client.post("/v1/components/nosuch/start")

    assert response.status_code == 404
    body = response.json()
    assert (body["status"], body["error"]) == (404, "unknown component")
    assert "'nosuch'" in body["message"]
    assert "'app'" in body["message"] and "'db'" in body["message"]


def test_an_unknown_action_is_a_400_listing_the_actions(client: TestClient) -> None:
    response = client.post("/v1/components/db/explode")

    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["error"]) == (400, "unknown action")
    assert "'explode'" in body["message"]
    assert all(action in body["message"] for action in ACTIONS)


def test_kill_then_start_a_component_through_the_api(client: TestClient, lab: FakeCloud) -> None:
    assert lab.cloud.up() is True

    killed = client.post("/v1/components/db/kill")
    assert (killed.status_code, killed.json()) == (200, {"name": "db", "state": "crashed"})

    started = client.post("/v1/components/db/start")
    assert (started.status_code, started.json()) == (200, {"name": "db", "state": "ready"})


def test_leaving_the_app_takes_the_cloud_down(plane: ControlPlane, lab: FakeCloud) -> None:
    with TestClient(plane.app()):
        assert lab.cloud.up() is True

    assert lab.journal.names("stop") == ["app", "db"]


# -- tasks and colours: what the API refuses, and how it says so -------------------------------


class RecordingPlane:
    """Stands in for `TaskPlane`: records what the API asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def record_release(self, label: str, directory: Path | None,
                       faults: tuple[str, ...]) -> Release:
        self.calls.append(("release", label, *faults))
        return Release(label, directory or Path("/checkout"), faults)

    def deploy(self, colour: Colour, release: Release) -> None:
        self.calls.append(("deploy", str(colour), release.label))

    def switch(self, colour: Colour) -> None:
        self.calls.append(("switch", str(colour)))

    def shutdown(self) -> None:  # the cloud goes down when the app leaves
        pass


@pytest.fixture
def tasks_client(plane: ControlPlane) -> Iterator[tuple[TestClient, RecordingPlane]]:
    recording = RecordingPlane()
    plane.tasks = recording  # type: ignore[assignment]
    with TestClient(plane.app()) as test_client:
        yield test_client, recording


def test_before_any_task_runs_colour_calls_are_a_404_saying_why(client: TestClient) -> None:
    response = client.post("/v1/listener", json={"colour": "green"})

    assert response.status_code == 404
    assert "no task runs yet" in response.json()["message"]


def test_deploying_a_colour_records_the_release_and_deploys_it(
        tasks_client: tuple[TestClient, RecordingPlane]) -> None:
    client, recording = tasks_client

    response = client.post("/v1/colours/green", json={"version": "v2", "faults": ["f"]})

    assert response.status_code == 202
    assert recording.calls == [("release", "v2", "f"), ("deploy", "green", "v2")]


@pytest.mark.parametrize(("method", "path", "body", "message"), [
    ("POST", "/v1/colours/purple", {"version": "v2"},
     "'purple' is not a colour: use one of blue, green"),
    ("POST", "/v1/colours/green", {}, "the body needs 'version' (str), e.g. {\"version\": \"v2\"}"),
    ("POST", "/v1/colours/green", ["v2"], "the request body must be a JSON object"),
    ("POST", "/v1/listener", {"colour": 3}, "the body needs 'colour' (str)"),
    ("PUT", "/v1/services/gateway/blue", {"count": "two"}, "the body needs 'count' (int)"),
    ("GET", "/v1/colours/green/health?wait=soon", None, "?wait= takes seconds"),
])
def test_bad_input_is_a_400_naming_what_was_wrong(
        tasks_client: tuple[TestClient, RecordingPlane], method: str, path: str,
        body: object, message: str) -> None:
    client, recording = tasks_client

    response = client.request(method, path, json=body)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "refused"
    assert message in response.json()["message"]
    assert recording.calls == []  # nothing was acted on
