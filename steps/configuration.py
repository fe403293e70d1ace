"""Steps of features/configuration.feature."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from services.common.tokens import AccessToken
from stack.local import clients
from stack.local.config_repo import ConfigRepository, filter_args, route
from stack.local.services import OnDemandInstances
from stack.local.session import CloudSession
from stack.local.token_forge import good_token
from stack.waiting import wait_for
from steps.common import Scene, serving_tasks
from steps.discovery import ECHO_PATH, wait_routed

GATEWAY_FILE = "gateway.yml"
ECHO_ROUTE = "echo"
RATE_LIMITER = "RequestRateLimiter"


def config_url(scene: Scene) -> str:
    return f"http://{scene.model.compute.instances_of('config')[0].node.address}"


def gateway_processes(cloud: CloudSession) -> list[int]:
    return sorted(int(task["pid"]) for task in serving_tasks(cloud, "gateway"))


def refresh_bus(scene: Scene) -> None:
    response = httpx.post(f"{config_url(scene)}/actuator/busrefresh", timeout=5.0)
    assert response.status_code == 204, response.text


@pytest.fixture
def restore_gateway_config(config_repository: ConfigRepository,
                           scene: Scene) -> Iterator[None]:
    """Put gateway.yml back as it was and refresh, so later scenarios see the usual limits."""
    original = config_repository.file(GATEWAY_FILE).read_text()
    yield
    if config_repository.file(GATEWAY_FILE).read_text() != original:
        config_repository.restore(GATEWAY_FILE, original, "restore gateway.yml")
        refresh_bus(scene)


@given("an echo instance serves the echo route")
def echo_serves(echoes: OnDemandInstances, scene: Scene, caller: AccessToken) -> None:
    wait_routed(scene, caller, [echoes.start("AZ-a")])


@when("I ask the config server for the gateway's settings in the local profile")
def ask_gateway_settings(scene: Scene) -> None:
    response = httpx.get(f"{config_url(scene)}/gateway/local", timeout=5.0)
    assert response.status_code == 200, response.text
    scene.values["environment"] = response.json()


@then("the answer names the commit it was read from and its property sources, most specific "
      "first")
def spring_shape(scene: Scene, config_repository: ConfigRepository) -> None:
    environment: dict[str, Any] = scene.values["environment"]
    assert environment["name"] == "gateway"
    assert environment["profiles"] == ["local"]
    assert environment["version"] == config_repository.head()
    names = [source["name"] for source in environment["propertySources"]]
    ours = [name.rsplit("/", 1)[-1] for name in names if name.startswith("file:")]
    assert ours == ["gateway.yml", "application.yml"], names


@then("the platform's own addresses come last, derived from the stack model")
def platform_last(scene: Scene) -> None:
    last = scene.values["environment"]["propertySources"][-1]
    assert last["name"].startswith("come2us-platform")
    assert last["source"]["come2us.kafka.bootstrap-servers"] == \
        scene.model.data.kafka.bootstrap_servers


def quick_requests(scene: Scene, token: AccessToken, count: int) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {token.token}"}
    with clients.gateway(scene.model) as gateway:
        return [gateway.get(ECHO_PATH, headers=headers) for _ in range(count)]


@given("a client can send the echo route's configured burst of requests at once")
def burst_allowed(cloud: CloudSession, scene: Scene, config_repository: ConfigRepository,
                  restore_gateway_config: None) -> None:
    document = config_repository.read(GATEWAY_FILE)
    burst = int(filter_args(route(document, ECHO_ROUTE), RATE_LIMITER)["burstCapacity"])
    token = good_token(cloud.workspace)
    statuses = [r.status_code for r in quick_requests(scene, token, min(burst, 20))]
    assert statuses == [200] * len(statuses), statuses
    scene.values["gateway pids"] = gateway_processes(cloud)


@when(parsers.parse("I commit a burst capacity of {burst:d} for the echo route to the "
                    "configuration repository"))
def commit_burst(config_repository: ConfigRepository, scene: Scene, burst: int) -> None:
    def edit(document: dict[str, Any]) -> None:
        args = filter_args(route(document, ECHO_ROUTE), RATE_LIMITER)
        args["burstCapacity"] = burst
        args["replenishRate"] = 1

    config_repository.change(GATEWAY_FILE, edit, f"echo route: burst {burst}")
    scene.values["burst"] = burst


@when("I ask the config server to refresh every service over the bus")
def bus_refresh(scene: Scene) -> None:
    refresh_bus(scene)


@then(parsers.parse("within {seconds:d} seconds the gateway answers 429 to that client's "
                    "fourth quick request"))
def limited_after_refresh(cloud: CloudSession, scene: Scene, seconds: int) -> None:
    burst = scene.values["burst"]

    def attempt() -> tuple[httpx.Response | None, str]:
        token = good_token(cloud.workspace)  # a fresh client: a full bucket of the new size
        responses = quick_requests(scene, token, burst + 1)
        statuses = [r.status_code for r in responses]
        limited = statuses[:burst] == [200] * burst and statuses[burst] == 429
        return (responses[burst] if limited else None), f"statuses {statuses}"

    refused = wait_for(attempt, timeout=seconds, what="the new burst capacity in force")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["status"] == 429


@then("the gateway is still the same process")
def same_gateway(cloud: CloudSession, scene: Scene) -> None:
    assert gateway_processes(cloud) == scene.values["gateway pids"]
