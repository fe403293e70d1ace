"""The config server's HTTP API as Spring clients call it, over a scratch git repository."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.common.bus import RemoteEvent
from services.config.app import create_app
from services.config.bus import BusPublisher, BusUnavailable
from services.config.settings import ConfigServerSettings
from tests.scratch_git import ScratchRepo

FILES = {
    "config-repo/application.yml": "shared: base\nserver:\n  port: 8080\n",
    "config-repo/gateway.yml": (
        "routes:\n  - id: users\n    uri: lb://user-service\n    filters: [StripPrefix=2]\n"
        "rate-limit:\n  replenish-rate: 10\n"
        "url: http://${host}:${server.port}/x\nhost: gw\n"
    ),
    "config-repo/gateway-local.yml": "rate-limit:\n  replenish-rate: 1000\nlocal: true\n",
}


class RecordingPublisher(BusPublisher):
    """Records what it would publish; `fail` plays Kafka being down."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", "springCloudBus", "config-server:8888:test")
        self.published: list[RemoteEvent] = []
        self.fail = False

    async def publish_refresh(self, destination: str | None = None) -> RemoteEvent:
        if self.fail:
            raise BusUnavailable("cannot publish on topic springCloudBus at 127.0.0.1:1: down")
        event = RemoteEvent.refresh(self.origin_service, destination)
        self.published.append(event)
        return event


@pytest.fixture
def scratch(tmp_path: Path) -> ScratchRepo:
    repo = ScratchRepo(tmp_path / "repo")
    repo.commit(FILES, "base")
    return repo


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


def settings_for(scratch: ScratchRepo, **overrides: object) -> ConfigServerSettings:
    values: dict[str, object] = {"host": IPv4Address("127.0.0.1"), "port": 8888,
                                 "repo": str(scratch.path)}
    values.update(overrides)
    return ConfigServerSettings.model_validate(values)


@pytest.fixture
def client(scratch: ScratchRepo, publisher: RecordingPublisher) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(scratch), publisher=publisher)) as test_client:
        yield test_client


def test_environment(client: TestClient, scratch: ScratchRepo) -> None:
    response = client.get("/gateway/local")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "gateway"
    assert body["profiles"] == ["local"]
    assert body["label"] == "main"
    assert body["version"] == scratch.head()
    uri = scratch.path.resolve().as_uri()
    assert [source["name"] for source in body["propertySources"]] == [
        f"{uri}/config-repo/gateway-local.yml", f"{uri}/config-repo/gateway.yml",
        f"{uri}/config-repo/application.yml"]
    assert body["propertySources"][1]["source"]["routes[0].filters[0]"] == "StripPrefix=2"


def test_environment_at_a_label(client: TestClient, scratch: ScratchRepo) -> None:
    base = scratch.head()
    scratch.commit({"config-repo/gateway-local.yml": "local: false\n"})
    assert client.get(f"/gateway/local/{base}").json()["version"] == base
    assert client.get("/gateway/local/main").json()["version"] == scratch.head()


def test_unknown_label_is_a_json_404_naming_it(client: TestClient) -> None:
    response = client.get("/gateway/local/no-such-branch")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404
    assert body["error"] == "Not Found"
    assert body["message"] == "No such label: no-such-branch"
    assert body["path"] == "/gateway/local/no-such-branch"
    assert body["requestId"] == response.headers["X-Request-Id"]


def test_unknown_application_gets_application_yml(client: TestClient) -> None:
    body = client.get("/nobody/default").json()
    assert [source["name"].rsplit("/", 1)[1] for source in body["propertySources"]] == [
        "application.yml"]


def test_yaml_file_is_merged_and_resolved(client: TestClient) -> None:
    response = client.get("/gateway-local.yml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    merged = yaml.safe_load(response.text)
    assert merged["rate-limit"] == {"replenish-rate": 1000}
    assert merged["routes"] == [{"id": "users", "uri": "lb://user-service",
                                 "filters": ["StripPrefix=2"]}]
    assert merged["url"] == "http://gw:8080/x"
    assert merged["shared"] == "base"
    assert client.get("/gateway-local.yaml").text == response.text


def test_file_forms_with_label_and_without_placeholder_resolution(
        client: TestClient, scratch: ScratchRepo) -> None:
    base = scratch.head()
    scratch.commit({"config-repo/gateway-local.yml": "local: false\n"})
    assert yaml.safe_load(client.get(f"/{base}/gateway-local.yml").text)["local"] is True
    assert yaml.safe_load(client.get("/main/gateway-local.yml").text)["local"] is False
    raw = client.get("/gateway-local.json", params={"resolvePlaceholders": "false"}).json()
    assert raw["url"] == "http://${host}:${server.port}/x"


def test_properties_file(client: TestClient) -> None:
    response = client.get("/gateway-local.properties")
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines == sorted(lines)
    assert "rate-limit.replenish-rate: 1000" in lines
    assert "routes[0].uri: lb://user-service" in lines
    assert "local: true" in lines


def test_json_file(client: TestClient) -> None:
    response = client.get("/gateway-local.json")
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.text)["server"] == {"port": 8080}


def test_hyphenated_application_names_split_at_the_last_hyphen(
        client: TestClient, scratch: ScratchRepo) -> None:
    scratch.commit({"config-repo/product-service-local.yml": "ttl: 5\n"})
    assert yaml.safe_load(client.get("/product-service-local.yml").text)["ttl"] == 5


def test_file_form_with_unknown_label_is_404(client: TestClient) -> None:
    response = client.get("/nope/gateway-local.yml")
    assert response.status_code == 404
    assert response.json()["message"] == "No such label: nope"


def test_busrefresh_publishes_for_everyone(client: TestClient,
                                           publisher: RecordingPublisher) -> None:
    response = client.post("/actuator/busrefresh")
    assert response.status_code == 204
    assert response.content == b""
    [event] = publisher.published
    assert event.destination_service == "**"
    body = json.loads(event.to_json())
    assert body["type"] == "RefreshRemoteApplicationEvent"
    assert body["originService"] == "config-server:8888:test"
    assert set(body) == {"type", "timestamp", "originService", "destinationService", "id"}


@pytest.mark.parametrize(("destination", "expected"), [
    ("gateway:**", "gateway:**"),
    ("gateway", "gateway:**"),
    ("gateway:127.0.1.61:8080", "gateway:127.0.1.61:8080"),
])
def test_busrefresh_to_a_destination(client: TestClient, publisher: RecordingPublisher,
                                     destination: str, expected: str) -> None:
    assert client.post(f"/actuator/busrefresh/{destination}").status_code == 204
    assert publisher.published[-1].destination_service == expected


def test_busrefresh_when_kafka_is_down_is_a_json_503(client: TestClient,
                                                     publisher: RecordingPublisher) -> None:
    publisher.fail = True
    response = client.post("/actuator/busrefresh")
    assert response.status_code == 503
    assert "springCloudBus" in response.json()["message"]


def test_busrefresh_without_a_bus_is_a_json_503(scratch: ScratchRepo) -> None:
    with TestClient(create_app(settings_for(scratch))) as client:
        response = client.post("/actuator/busrefresh")
    assert response.status_code == 503
    assert "--kafka" in response.json()["message"]


def test_health(client: TestClient, scratch: ScratchRepo) -> None:
    for path in ("/actuator/health", "/health"):
        response = client.get(path)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "UP"
        assert body["components"]["configServer"]["details"]["version"] == scratch.head()


def test_health_is_down_when_the_default_label_is_gone(scratch: ScratchRepo) -> None:
    app = create_app(settings_for(scratch, default_label="release"))
    with TestClient(app) as client:
        response = client.get("/actuator/health")
    assert response.status_code == 503
    assert response.json()["status"] == "DOWN"


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/a/b/c/d")
    assert response.status_code == 404
    assert response.json()["path"] == "/a/b/c/d"


def test_repository_errors_are_json_500(client: TestClient, scratch: ScratchRepo) -> None:
    scratch.commit({"config-repo/broken.yml": "a: [1\n"})
    response = client.get("/broken/default")
    assert response.status_code == 500
    assert "broken.yml is not valid YAML" in response.json()["message"]


def test_only_loopback_addresses_are_served(scratch: ScratchRepo) -> None:
    with pytest.raises(ValidationError, match="not a loopback address"):
        settings_for(scratch, host=IPv4Address("10.0.0.1"))
