"""Eureka's REST API of the discovery server, in process: shapes, status codes, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring
from starlette.testclient import TestClient

from services.discovery.__main__ import parse_args
from services.discovery.app import create_app
from services.discovery.registry import RegistrySettings
from services.discovery.settings import DiscoverySettings
from stack.waiting import wait_for

START_MS = 1_700_000_000_000
JSON = {"Accept": "application/json"}
XML = {"Accept": "application/xml"}


@dataclass
class FakeClock:
    now: int = START_MS

    def __call__(self) -> int:
        return self.now


def document(app: str = "USER-SERVICE", instance_id: str = "127.0.1.61:user-service:8081",
             **overrides: Any) -> dict[str, Any]:
    """An instance document as py-eureka-client sends it."""
    instance: dict[str, Any] = {
        "instanceId": instance_id,
        "hostName": "127.0.1.61",
        "app": app,
        "ipAddr": "127.0.1.61",
        "status": "UP",
        "overriddenstatus": "UNKNOWN",
        "port": {"$": 8081, "@enabled": "true"},
        "securePort": {"$": 8443, "@enabled": "false"},
        "countryId": 1,
        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                           "name": "MyOwn"},
        "leaseInfo": {"renewalIntervalInSecs": 1, "durationInSecs": 5,
                      "registrationTimestamp": 0, "lastRenewalTimestamp": 0,
                      "evictionTimestamp": 0, "serviceUpTimestamp": 0},
        "metadata": {"colour": "blue", "zone": "AZ-a", "management.port": "8081"},
        "homePageUrl": "http://127.0.1.61:8081/",
        "statusPageUrl": "http://127.0.1.61:8081/info",
        "healthCheckUrl": "http://127.0.1.61:8081/health",
        "secureHealthCheckUrl": "",
        "vipAddress": "user-service",
        "secureVipAddress": "user-service-secure",
        "lastUpdatedTimestamp": str(START_MS - 10),
        "lastDirtyTimestamp": str(START_MS - 10),
        "isCoordinatingDiscoveryServer": "false",
    }
    instance.update(overrides)
    return {"instance": instance}


XML_DOCUMENT = b"""<instance>
  <instanceId>order-1</instanceId><hostName>127.0.2.71</hostName><app>ORDER-SERVICE</app>
  <ipAddr>127.0.2.71</ipAddr><status>UP</status><overriddenstatus>UNKNOWN</overriddenstatus>
  <port enabled="true">8083</port><securePort enabled="false">443</securePort>
  <countryId>1</countryId>
  <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">
    <name>MyOwn</name></dataCenterInfo>
  <leaseInfo><renewalIntervalInSecs>2</renewalIntervalInSecs>
    <durationInSecs>6</durationInSecs></leaseInfo>
  <metadata><zone>AZ-b</zone><my__key>v</my__key></metadata>
  <vipAddress>order-service</vipAddress>
  <lastDirtyTimestamp>1699999999000</lastDirtyTimestamp>
</instance>"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Iterator[TestClient]:
    settings = DiscoverySettings(port=18761, registry=RegistrySettings(lease_duration_s=5),
                                 eviction_interval_s=0.02)
    with TestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


def register(client: TestClient, body: dict[str, Any] | None = None,
             app: str = "USER-SERVICE") -> None:
    response = client.post(f"/eureka/apps/{app}", json=body or document(app=app))
    assert response.status_code == 204, response.text


def test_registration_answers_204_and_the_json_registry_has_eurekas_shape(
        client: TestClient) -> None:
    register(client)
    response = client.get("/eureka/apps", headers=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    apps = response.json()["applications"]
    assert apps["versions__delta"] == "1"
    assert apps["apps__hashcode"] == "UP_1_"
    [app] = apps["application"]
    assert app["name"] == "USER-SERVICE"
    [instance] = app["instance"]
    assert list(instance) == [
        "instanceId", "hostName", "app", "ipAddr", "status", "overriddenStatus", "port",
        "securePort", "countryId", "dataCenterInfo", "leaseInfo", "metadata", "homePageUrl",
        "statusPageUrl", "healthCheckUrl", "secureHealthCheckUrl", "vipAddress",
        "secureVipAddress", "isCoordinatingDiscoveryServer", "lastUpdatedTimestamp",
        "lastDirtyTimestamp", "actionType"]
    assert instance["port"] == {"$": 8081, "@enabled": "true"}
    assert instance["securePort"] == {"$": 8443, "@enabled": "false"}
    assert instance["dataCenterInfo"] == {
        "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}
    assert instance["leaseInfo"] == {
        "renewalIntervalInSecs": 1, "durationInSecs": 5, "registrationTimestamp": START_MS,
        "lastRenewalTimestamp": START_MS, "evictionTimestamp": 0, "serviceUpTimestamp": START_MS}
    assert instance["metadata"] == {"colour": "blue", "zone": "AZ-a", "management.port": "8081"}
    assert instance["isCoordinatingDiscoveryServer"] == "false"
    assert instance["lastUpdatedTimestamp"] == str(START_MS)
    assert instance["lastDirtyTimestamp"] == str(START_MS - 10)
    assert instance["actionType"] == "ADDED"
    assert instance["overriddenStatus"] == "UNKNOWN"


@pytest.mark.parametrize("accept", [None, "*/*", "application/xml"])
def test_xml_unless_json_is_asked_for_as_eureka_does(client: TestClient,
                                                     accept: str | None) -> None:
    register(client)
    headers = {"Accept": accept} if accept else {"Accept": ""}
    response = client.get("/eureka/apps/", headers=headers)
    assert response.headers["content-type"] == "application/xml"
    root = fromstring(response.content)
    assert root.tag == "applications"
    assert root.findtext("versions__delta") == "1"
    assert root.findtext("apps__hashcode") == "UP_1_"
    instance = root.find("application/instance")
    assert instance is not None
    assert root.findtext("application/name") == "USER-SERVICE"
    assert instance.findtext("overriddenstatus") == "UNKNOWN"
    port = instance.find("port")
    assert port is not None and port.text == "8081" and port.get("enabled") == "true"
    center = instance.find("dataCenterInfo")
    assert center is not None
    assert center.get("class") == "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
    assert instance.findtext("leaseInfo/durationInSecs") == "5"
    assert instance.findtext("metadata/colour") == "blue"
    assert instance.findtext("actionType") == "ADDED"


def test_an_xml_registration_is_read_with_xstreams_name_escaping(client: TestClient) -> None:
    response = client.post("/eureka/apps/order-service", content=XML_DOCUMENT,
                           headers={"Content-Type": "application/xml"})
    assert response.status_code == 204, response.text
    instance = client.get("/eureka/apps/ORDER-SERVICE/order-1", headers=JSON).json()["instance"]
    assert instance["metadata"] == {"zone": "AZ-b", "my_key": "v"}
    assert instance["leaseInfo"]["durationInSecs"] == 6
    assert instance["port"] == {"$": 8083, "@enabled": "true"}
    xml = fromstring(client.get("/eureka/apps/ORDER-SERVICE/order-1", headers=XML).content)
    assert xml.findtext("metadata/my__key") == "v"


def test_empty_metadata_is_written_as_eurekas_empty_map(client: TestClient) -> None:
    register(client, document(metadata={}))
    instance = client.get("/eureka/apps/USER-SERVICE", headers=JSON).json()["application"][
        "instance"][0]
    assert instance["metadata"] == {"@class": "java.util.Collections$EmptyMap"}
    xml = fromstring(client.get("/eureka/apps/USER-SERVICE", headers=XML).content)
    metadata = xml.find("instance/metadata")
    assert metadata is not None and metadata.get("class") == "java.util.Collections$EmptyMap"
    # and reading the marker back (a peer's copy) gives empty metadata, not an "@class" entry
    register(client, document(metadata={"@class": "java.util.Collections$EmptyMap"},
                              instanceId="other"))
    other = client.get("/eureka/apps/USER-SERVICE/other", headers=JSON).json()["instance"]
    assert other["metadata"] == {"@class": "java.util.Collections$EmptyMap"}


def test_application_names_are_case_insensitive(client: TestClient) -> None:
    register(client, document(app="user-service"), app="user-service")
    for name in ("USER-SERVICE", "user-service", "User-Service"):
        answer = client.get(f"/eureka/apps/{name}", headers=JSON)
        assert answer.status_code == 200
        assert answer.json()["application"]["name"] == "USER-SERVICE"


def test_heartbeats_answer_200_for_known_and_404_for_unknown_instances(
        client: TestClient, clock: FakeClock) -> None:
    register(client)
    clock.now += 3000
    path = "/eureka/apps/USER-SERVICE/127.0.1.61:user-service:8081"
    ok = client.put(path, params={"status": "UP", "lastDirtyTimestamp": str(START_MS - 10)})
    assert ok.status_code == 200
    lease = client.get(path, headers=JSON).json()["instance"]["leaseInfo"]
    assert lease["lastRenewalTimestamp"] == START_MS + 3000
    missing = client.put("/eureka/apps/USER-SERVICE/ghost", params={"status": "UP"})
    assert missing.status_code == 404
    assert missing.content == b""  # Java clients parse any heartbeat body as an instance
    # A client whose copy is newer than ours is told to register it.
    newer = client.put(path, params={"status": "UP", "lastDirtyTimestamp": str(START_MS + 5)})
    assert newer.status_code == 404


def test_a_peer_with_an_older_copy_gets_409_and_ours(client: TestClient) -> None:
    register(client)
    answer = client.put(
        "/eureka/apps/USER-SERVICE/127.0.1.61:user-service:8081",
        params={"status": "UP", "lastDirtyTimestamp": "1"},
        headers={"x-netflix-discovery-replication": "true", **JSON})
    assert answer.status_code == 409
    assert answer.json()["instance"]["lastDirtyTimestamp"] == str(START_MS - 10)


def test_status_override_and_its_removal(client: TestClient) -> None:
    register(client)
    path = "/eureka/apps/USER-SERVICE/127.0.1.61:user-service:8081"
    assert client.put(f"{path}/status", params={"value": "OUT_OF_SERVICE"}).status_code == 200
    held = client.get(path, headers=JSON).json()["instance"]
    assert (held["status"], held["overriddenStatus"]) == ("OUT_OF_SERVICE", "OUT_OF_SERVICE")
    assert client.delete(f"{path}/status", params={"value": "UP"}).status_code == 200
    held = client.get(path, headers=JSON).json()["instance"]
    assert (held["status"], held["overriddenStatus"]) == ("UP", "UNKNOWN")
    bad = client.put(f"{path}/status", params={"value": "SIDEWAYS"})
    assert bad.status_code == 400 and "SIDEWAYS" in bad.json()["message"]
    assert client.put("/eureka/apps/USER-SERVICE/ghost/status",
                      params={"value": "UP"}).status_code == 404


def test_metadata_update_and_cancel(client: TestClient) -> None:
    register(client)
    path = "/eureka/apps/USER-SERVICE/127.0.1.61:user-service:8081"
    assert client.put(f"{path}/metadata", params={"colour": "green"}).status_code == 200
    assert client.get(path, headers=JSON).json()["instance"]["metadata"]["colour"] == "green"
    assert client.put(f"{path}/metadata", params={"bad key": "x"}).status_code == 400
    assert client.delete(path).status_code == 200
    assert client.delete(path).status_code == 404
    assert client.get(path, headers=JSON).status_code == 404
    assert client.get("/eureka/apps/USER-SERVICE", headers=JSON).status_code == 404


def test_lookups_by_id_and_by_vip(client: TestClient) -> None:
    register(client)
    by_id = client.get("/eureka/instances/127.0.1.61:user-service:8081", headers=JSON)
    assert by_id.json()["instance"]["app"] == "USER-SERVICE"
    assert client.get("/eureka/instances/ghost", headers=JSON).status_code == 404
    vip = client.get("/eureka/vips/user-service", headers=JSON).json()["applications"]
    assert vip["application"][0]["name"] == "USER-SERVICE"
    svip = client.get("/eureka/svips/user-service-secure", headers=JSON).json()["applications"]
    assert len(svip["application"]) == 1
    assert client.get("/eureka/vips/nothing", headers=JSON).json()["applications"][
        "application"] == []


def test_delta_reports_action_types(client: TestClient) -> None:
    register(client)
    register(client, document(instanceId="second"))
    client.delete("/eureka/apps/USER-SERVICE/second")
    delta = client.get("/eureka/apps/delta", headers=JSON).json()["applications"]
    actions = {i["instanceId"]: i["actionType"] for i in delta["application"][0]["instance"]}
    assert actions == {"127.0.1.61:user-service:8081": "ADDED", "second": "DELETED"}
    assert delta["apps__hashcode"] == "UP_1_"
    assert delta["versions__delta"] == "3"


@pytest.mark.parametrize(("field", "named"), [
    ("hostName", "hostName"), ("app", "app"), ("ipAddr", "ipAddr"),
    ("dataCenterInfo", "dataCenterInfo")])
def test_a_document_missing_a_required_field_is_400_naming_it(
        client: TestClient, field: str, named: str) -> None:
    body = document()
    del body["instance"][field]
    response = client.post("/eureka/apps/USER-SERVICE", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["status"] == 400 and error["error"] == "Bad Request"
    assert named in error["message"]


@pytest.mark.parametrize(("body", "content_type", "named"), [
    (b"{not json", "application/json", "JSON"),
    (b'{"hostName": "x"}', "application/json", "instance"),
    (b"<instance><hostName>x</hostName>", "application/xml", "XML"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><instance/>', "application/xml", "XML"),
    (json.dumps(document(port={"$": "eighty"})).encode(), "application/json", "port"),
    (json.dumps(document(metadata={"nested": {"a": 1}})).encode(), "application/json",
     "metadata.nested"),
])
def test_malformed_documents_are_400(client: TestClient, body: bytes, content_type: str,
                                     named: str) -> None:
    response = client.post("/eureka/apps/USER-SERVICE", content=body,
                           headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_a_document_for_another_app_is_400(client: TestClient) -> None:
    response = client.post("/eureka/apps/ORDER-SERVICE", json=document())
    assert response.status_code == 400
    assert "ORDER-SERVICE" in response.json()["message"]


def test_an_oversized_document_is_413(client: TestClient) -> None:
    body = document(metadata={"padding": "x" * 70_000})
    assert client.post("/eureka/apps/USER-SERVICE", json=body).status_code == 413


def test_unknown_routes_are_json_404_and_requests_carry_an_id(client: TestClient) -> None:
    response = client.get("/eureka/nothing-here", headers={"X-Request-Id": "abc-123"})
    assert response.status_code == 404
    assert response.json()["request_id"] == "abc-123"
    assert response.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("path", ["/health", "/actuator/health"])
def test_health(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.json() == {"status": "UP"}


def test_the_eviction_task_removes_expired_instances(client: TestClient,
                                                     clock: FakeClock) -> None:
    register(client)
    clock.now += 5001

    def gone() -> tuple[bool | None, str]:
        status = client.get("/eureka/apps/USER-SERVICE", headers=JSON).status_code
        return (True if status == 404 else None), f"GET /eureka/apps/USER-SERVICE -> {status}"

    wait_for(gone, timeout=2.0, what="the eviction task to evict the expired instance",
             interval=0.02)


def test_the_command_line_builds_the_settings() -> None:
    settings = parse_args(["--host", "127.0.1.51", "--port", "8761",
                           "--peer", "http://127.0.2.51:8761/eureka/",
                           "--lease-duration-s", "3", "--eviction-interval-s", "0.5",
                           "--self-preservation"])
    assert settings.url == "http://127.0.1.51:8761/eureka"
    assert settings.peers == ("http://127.0.2.51:8761/eureka",)
    assert settings.registry.lease_duration_s == 3
    assert settings.registry.self_preservation
    assert settings.eviction_interval_s == 0.5
    assert not parse_args([]).registry.self_preservation  # off by default locally


@pytest.mark.parametrize("argv", [["--peer", "ftp://x"], ["--lease-duration-s", "0"],
                                  ["--eviction-interval-s", "-1"], ["--port", "0"]])
def test_the_command_line_refuses_bad_settings(argv: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err
