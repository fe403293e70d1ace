"""Steps of features/discovery.feature."""

from __future__ import annotations

import time

from pytest_bdd import given, then, when

from services.common.tokens import AccessToken
from stack.local import clients
from stack.local.services import ECHO, OnDemandInstances, ServiceProcess
from stack.local.session import CloudSession
from stack.model import Node
from stack.waiting import wait_for
from steps.common import Scene

# Slack on top of the model's bounds for a loaded 2-core machine (process start-up, GC, load).
MARGIN_S = 5.0
ECHO_PATH = "/api/echo/where"


def discovery_in(scene: Scene, zone: str) -> Node:
    for instance in scene.model.compute.instances_of("discovery"):
        if instance.node.zone.label == zone:
            return instance.node
    raise LookupError(f"no discovery instance in {zone}")


def answered_by(scene: Scene, token: AccessToken) -> tuple[int, str | None]:
    with clients.gateway(scene.model) as gateway:
        response = gateway.get(ECHO_PATH, headers={"Authorization": f"Bearer {token.token}"})
    instance = response.json().get("instance") if response.status_code == 200 else None
    return response.status_code, instance


def routing_bound_s(scene: Scene) -> float:
    """Registration is immediate; the gateway sees it at its next registry fetch."""
    return 2 * scene.model.compute.discovery.registry_fetch_s + MARGIN_S


def wait_routed(scene: Scene, token: AccessToken, echoes: list[ServiceProcess]) -> None:
    wanted = {e.instance_id for e in echoes}
    seen: set[str] = set()

    def attempt() -> tuple[bool | None, str]:
        status, instance = answered_by(scene, token)
        if instance:
            seen.add(instance)
        return (True if wanted <= seen else None), f"last {status} from {instance}; seen {seen}"

    wait_for(attempt, timeout=routing_bound_s(scene), what=f"gateway routing to {sorted(wanted)}")


@when("an echo instance starts in AZ-a and registers with discovery")
def start_echo_a(echoes: OnDemandInstances, scene: Scene) -> None:
    scene.values["echo a"] = echoes.start("AZ-a", routable=False)


@then("requests through the gateway reach that instance within the registry fetch interval")
def routed_to_new_instance(scene: Scene, caller: AccessToken) -> None:
    wait_routed(scene, caller, [scene.values["echo a"]])


@given("an echo instance runs in AZ-a and another in AZ-b, both routed to by the gateway")
def echo_in_both(echoes: OnDemandInstances, scene: Scene, caller: AccessToken) -> None:
    scene.values["echo a"] = echoes.start("AZ-a")
    scene.values["echo b"] = echoes.start("AZ-b")
    wait_routed(scene, caller, [scene.values["echo a"], scene.values["echo b"]])


@when("the echo instance in AZ-b is killed")
def kill_echo_b(scene: Scene) -> None:
    scene.values["echo b"].kill()
    scene.values["killed at"] = time.monotonic()


@then("both discovery servers stop listing it within the lease plus the eviction interval")
def evicted(scene: Scene) -> None:
    gone = scene.values["echo b"].instance_id
    servers = [i.node for i in scene.model.compute.instances_of("discovery")]
    bound = scene.model.compute.discovery.eviction_bound_s

    def attempt() -> tuple[bool | None, str]:
        listing = {node.name: clients.registered_instances(node, ECHO.name) for node in servers}
        still = [name for name, found in listing.items() if gone in found]
        return (True if not still else None), f"still listed by {still}"

    wait_for(attempt, timeout=bound + MARGIN_S, what=f"{gone} evicted")
    elapsed = time.monotonic() - scene.values["killed at"]
    assert elapsed <= bound + MARGIN_S, f"evicted after {elapsed:.1f} s (bound {bound} s)"


@then("every request through the gateway is answered by the instance in AZ-a")
def only_a_answers(scene: Scene, caller: AccessToken) -> None:
    expected = scene.values["echo a"].instance_id
    answers = [answered_by(scene, caller) for _ in range(20)]
    assert answers == [(200, expected)] * 20, answers


@given("an echo instance runs in AZ-a and is routed to by the gateway")
def echo_in_a_routed(echoes: OnDemandInstances, scene: Scene, caller: AccessToken) -> None:
    scene.values["echo a"] = echoes.start("AZ-a")
    wait_routed(scene, caller, [scene.values["echo a"]])


@when("discovery in AZ-a stops")
def stop_discovery_a(cloud: CloudSession, scene: Scene) -> None:
    cloud.client.component(discovery_in(scene, "AZ-a").name, "stop")


@then("discovery in AZ-b keeps listing the echo instance for longer than a lease")
def b_keeps_listing(scene: Scene) -> None:
    survivor = discovery_in(scene, "AZ-b")
    echo = scene.values["echo a"].instance_id
    hold = scene.model.compute.discovery.eviction_bound_s + 1.0
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:  # a listing that survives a whole lease was renewed
        listed = clients.registered_instances(survivor, ECHO.name)
        assert listed.get(echo) == "UP", f"{survivor.name} lists {listed}"
        time.sleep(0.5)


@then("an echo instance that starts in AZ-b afterwards is listed by discovery in AZ-b")
def late_registration(echoes: OnDemandInstances, scene: Scene) -> None:
    scene.values["echo b"] = echoes.start("AZ-b")
    survivor = discovery_in(scene, "AZ-b")
    late = scene.values["echo b"].instance_id
    wait_for(lambda: ((True if late in clients.registered_instances(survivor, ECHO.name)
                       else None), f"{late} not listed yet"),
             timeout=MARGIN_S, what=f"{late} listed by {survivor.name}")


@then("requests through the gateway reach both echo instances")
def both_reached(scene: Scene, caller: AccessToken) -> None:
    wait_routed(scene, caller, [scene.values["echo a"], scene.values["echo b"]])
