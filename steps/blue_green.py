"""Steps of features/blue_green.feature: deploys, a crash and a switch under a real load."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from stack import bluegreen
from stack.local.bluegreen import LocalColours
from stack.local.load import (
    BackgroundLoad,
    HttpExchange,
    LoadPlan,
    LoadRun,
    client_tokens,
    clients_needed,
    served_rate_limit,
)
from stack.local.load_evidence import Marker, events_between, switch_instants, write_evidence
from stack.local.session import CloudSession
from stack.local.user_client import UserClient, bearer
from stack.model.edge import Colour
from stack.waiting import wait_for
from steps.common import Scene, serving_tasks
from steps.session import member, tokens

CATALOGUE = "/api/products?size=1"  # public, and answered by a real service (product-service)
GATEWAY = "gateway"
EVIDENCE_AREA = "blue_green"
LOAD_BOUND_S = 240.0  # no scenario's load runs longer, whatever happens to its steps
HEALTHY_S = 120.0  # a colour's tasks healthy again, on a loaded 2-core machine


@dataclass
class Traffic:
    """The scenario's load, what happened during it, and its evidence once stopped."""

    scenario: str
    load: BackgroundLoad | None = None
    run: LoadRun | None = None
    markers: list[Marker] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def mark(self, label: str) -> float:
        at = time.time()
        self.markers.append(Marker(at, label))
        return at


@pytest.fixture
def traffic(request: pytest.FixtureRequest, cloud: CloudSession) -> Iterator[Traffic]:
    """Stops the scenario's load however it ends, and writes its evidence."""
    title = str(request.node.function.__doc__ or request.node.name).split(": ", 1)[-1]
    traffic = Traffic(title)
    yield traffic
    if traffic.load is not None and traffic.run is None:
        stop_load(cloud, traffic)


def stop_load(cloud: CloudSession, traffic: Traffic) -> LoadRun:
    """Stop the load (once) and write the evidence: the run, the switch instants and the
    control plane's events on the same clock."""
    if traffic.run is not None:
        return traffic.run
    assert traffic.load is not None, "no load was started in this scenario"
    run = traffic.run = traffic.load.stop()
    events = events_between(cloud.workspace, run.started, run.ended + 1.0)
    markers = traffic.markers + switch_instants(events)
    paths = write_evidence(run, EVIDENCE_AREA, traffic.scenario, markers=markers,
                           events=events, facts=traffic.facts)
    print(f"evidence: {paths['md']}")
    return run


def other(colour: str) -> str:
    return str(Colour(colour).other)


def serving(cloud: CloudSession) -> tuple[str, str]:
    """The serving colour and its release."""
    deployment = cloud.client.deployment()
    return deployment["active"], deployment["colours"][deployment["active"]]


# -- the load --------------------------------------------------------------------------------


@given(parsers.parse("the catalogue answers through the ALB within {seconds:d} second"))
def catalogue_warm(scene: Scene, seconds: int) -> None:
    """A serving platform, not one that has just started: the first catalogue reads after
    `up` fill the product service's connections and cache, and take seconds."""
    url = scene.model.load_balancer.url + CATALOGUE

    def quick() -> tuple[float | None, str]:
        try:
            response = httpx.get(url, timeout=10.0, trust_env=False)
        except httpx.HTTPError as err:
            return None, type(err).__name__
        took = response.elapsed.total_seconds()
        return (took if response.status_code == 200 and took < seconds else None), \
            f"{response.status_code} in {took:.2f} s"

    wait_for(quick, timeout=HEALTHY_S, what=f"the catalogue answered within {seconds} s",
             interval=0.2)



@given(parsers.parse("a constant load of {rate:d} requests per second on the catalogue "
                     "through the ALB"))
def constant_load(cloud: CloudSession, scene: Scene, traffic: Traffic, rate: int) -> None:
    url = scene.model.load_balancer.url + CATALOGUE
    limit = served_rate_limit(scene.model, CATALOGUE)
    headers = client_tokens(cloud.workspace, clients_needed(rate, limit),
                            prefix=f"load-{uuid.uuid4().hex[:6]}")
    plan = LoadPlan(url, rate=rate, duration_s=LOAD_BOUND_S)
    traffic.facts.update({"clients": len(headers), "per-client limit":
                          f"{limit.replenish_rate:g}/s" if limit else "none"})
    traffic.facts["serving before"] = "{} at release {}".format(*serving(cloud))
    traffic.load = BackgroundLoad(plan, lambda: HttpExchange(url, headers))
    traffic.load.start()
    traffic.mark("load started")


@then(parsers.parse("every request of the load was answered 2xx, none missing, at {rate:d} "
                    "requests per second or more"))
def none_lost(cloud: CloudSession, traffic: Traffic, rate: int) -> None:
    run = stop_load(cloud, traffic)
    assert run.sent >= rate, f"the load ended too soon: {run.describe()}"
    assert not run.missing and not run.failures, run.describe()
    assert run.achieved_rate >= rate, f"the load fell short of {rate}/s: {run.describe()}"


# -- deploys ---------------------------------------------------------------------------------


def deploy(cloud: CloudSession, scene: Scene, traffic: Traffic,
           faults: tuple[str, ...] = ()) -> None:
    """`come2us deploy --target local`'s code path: the shared procedure over the local
    platform, against whichever colour is idle."""
    old, old_release = serving(cloud)
    release = f"bg-{uuid.uuid4().hex[:6]}"
    scene.values.update({"old": old, "old release": old_release, "release": release})
    traffic.mark(f"deploy {release} started")
    platform = LocalColours(cloud.client, scene.model, faults=faults)
    result = bluegreen.promote(platform, release, say=lambda line: print(line))
    traffic.mark(f"deploy ended: {result.outcome}")
    traffic.facts.update({"release": release, "faults": list(faults),
                          "outcome": str(result.outcome), "steps": result.steps,
                          "reason": result.reason})
    scene.values["result"] = result


@when("a new release is deployed to the idle colour, switched to and the old colour retired")
def deploy_new_release(cloud: CloudSession, scene: Scene, traffic: Traffic) -> None:
    deploy(cloud, scene, traffic)


@when("a new release whose gateways fail their health check is deployed to the idle colour")
def deploy_unhealthy_release(cloud: CloudSession, scene: Scene, traffic: Traffic) -> None:
    from services.gateway.__main__ import HEALTH_FAULT

    deploy(cloud, scene, traffic, faults=(HEALTH_FAULT,))


@then(parsers.parse('the deploy\'s outcome is "{outcome}"'))
def deploy_outcome(scene: Scene, outcome: str) -> None:
    result: bluegreen.Result = scene.values["result"]
    assert str(result.outcome) == outcome, f"{result.outcome}: {result.reason} {result.steps}"


@then(parsers.parse("the old colour answered every request sent until {bound:d} second before "
                    "the switch, the new colour with the new release every request sent from "
                    "{bound2:d} second after it"))
def switched_cleanly(cloud: CloudSession, scene: Scene, traffic: Traffic, bound: int,
                     bound2: int) -> None:
    run = stop_load(cloud, traffic)
    switches = switch_instants(events_between(cloud.workspace, run.started, run.ended))
    assert len(switches) == 1, f"one switch expected during the load: {switches}"
    at = switches[0].at
    old, new = scene.values["old"], other(scene.values["old"])
    before = run.sent_between(run.started, at - bound)
    after = run.sent_between(at + bound2)
    assert before and after, f"the load must run on both sides of the switch: {run.describe()}"
    wrong_before = [s for s in before if (s.colour, s.release) !=
                    (old, scene.values["old release"])]
    wrong_after = [s for s in after if (s.colour, s.release) != (new, scene.values["release"])]
    assert not wrong_before, f"{len(wrong_before)} answered otherwise before the switch: " \
                             f"{wrong_before[:3]}"
    assert not wrong_after, f"{len(wrong_after)} answered otherwise after the switch: " \
                            f"{wrong_after[:3]}"


@then("only the new colour's tasks run, at the new release, and the listener forwards to it")
def only_new_colour(cloud: CloudSession, scene: Scene) -> None:
    only_colour(cloud, other(scene.values["old"]), scene.values["release"])


@then("every request of the load was answered by the colour that served before, at its release")
def all_old_colour(cloud: CloudSession, scene: Scene, traffic: Traffic) -> None:
    run = stop_load(cloud, traffic)
    expected = (scene.values["old"], scene.values["old release"])
    others = [s for s in run.samples if (s.colour, s.release) != expected]
    assert not others, f"{len(others)} answered by another colour or release: {others[:3]}"


@then("only the colour that served before has tasks, and the listener never left it")
def only_old_colour(cloud: CloudSession, scene: Scene, traffic: Traffic) -> None:
    run = stop_load(cloud, traffic)
    assert not switch_instants(events_between(cloud.workspace, run.started, run.ended))
    only_colour(cloud, scene.values["old"], scene.values["old release"])


def only_colour(cloud: CloudSession, colour: str, release: str) -> None:
    status = cloud.client.status()
    assert status["listener"]["active"] == colour, status["listener"]
    assert cloud.client.deployment()["colours"] == {colour: release}
    live = [(t["id"], t["colour"], t["release"], t["state"]) for t in status["tasks"]
            if t["state"] != "stopped"]
    assert live and all(c == colour and r == release for _, c, r, _ in live), live
    other = next(g for g in status["listener"]["target_groups"] if not g.endswith(colour))
    assert not status["listener"]["target_groups"][other], status["listener"]


# -- members ---------------------------------------------------------------------------------


@then("the member's access token, issued before the switch, reads their profile from the new "
      "colour")
def profile_from_new_colour(scene: Scene) -> None:
    new = other(scene.values["old"])
    with UserClient(scene.model) as users:
        response = users.call("GET", "/api/users/me",
                              headers=bearer(tokens(scene).access_token))
    assert response.json()["email"] == member(scene).email
    assert response.headers["x-come2us-colour"] == new
    assert response.headers["x-come2us-release"] == scene.values["release"]


# -- a crash ---------------------------------------------------------------------------------


def target_health(cloud: CloudSession, colour: str) -> dict[str, str]:
    groups: dict[str, dict[str, str]] = cloud.client.status()["listener"]["target_groups"]
    return next(health for group, health in groups.items() if group.endswith(f"-{colour}"))


@pytest.fixture
def gateway_count_restored(cloud: CloudSession, scene: Scene) -> Iterator[None]:
    """Back to one gateway task per colour, and healthy, however the scenario ends."""
    yield
    colour = scene.values.get("scaled colour")
    if colour is not None and not scene.values.get("scaled back"):
        cloud.client.scale(GATEWAY, colour, 1)
        cloud.client.colour_health(colour, wait_s=HEALTHY_S)


@given(parsers.parse("the serving colour runs {count:d} gateway tasks, both healthy targets"))
def gateways_scaled(cloud: CloudSession, scene: Scene, gateway_count_restored: None,
                    count: int) -> None:
    colour, _ = serving(cloud)
    scene.values["scaled colour"] = colour
    cloud.client.scale(GATEWAY, colour, count)
    health = cloud.client.colour_health(colour, wait_s=HEALTHY_S)
    assert health["healthy"], health

    def all_healthy() -> tuple[dict[str, str] | None, str]:
        targets = target_health(cloud, colour)
        healthy = [t for t, h in targets.items() if h == "healthy"]
        return (targets if len(healthy) == count == len(targets) else None), str(targets)

    wait_for(all_healthy, timeout=HEALTHY_S, what=f"{count} healthy gateway targets",
             interval=0.2)


@when("one of the serving colour's gateway tasks is killed")
def kill_gateway(cloud: CloudSession, scene: Scene, traffic: Traffic) -> None:
    time.sleep(2.0)  # not a race: the load runs a while on both targets before the crash
    victim = sorted(t["id"] for t in serving_tasks(cloud, GATEWAY)
                    if t["state"] == "running")[0]
    scene.values["victim"] = victim
    scene.values["killed at"] = traffic.mark(f"kill {victim}")
    cloud.client.task(victim, "kill")


@then(parsers.parse("within {seconds:d} seconds the killed task is no longer a healthy target "
                    "of its target group"))
def out_of_rotation(cloud: CloudSession, scene: Scene, traffic: Traffic, seconds: int) -> None:
    colour, victim = scene.values["scaled colour"], scene.values["victim"]

    def gone() -> tuple[str | None, str]:
        state = target_health(cloud, colour).get(victim, "deregistered")
        return (state if state != "healthy" else None), state

    state = wait_for(gone, timeout=seconds, what=f"{victim} out of rotation", interval=0.05)
    traffic.mark(f"{victim} out of rotation ({state})")


@then(parsers.parse("within {seconds:d} seconds a new gateway task is a healthy target beside "
                    "the survivor, its replacement counted and logged as an event"))
def replaced(cloud: CloudSession, scene: Scene, traffic: Traffic, seconds: int) -> None:
    colour, victim = scene.values["scaled colour"], scene.values["victim"]

    def two_healthy() -> tuple[list[str] | None, str]:
        targets = target_health(cloud, colour)
        healthy = sorted(t for t, h in targets.items() if h == "healthy" and t != victim)
        return (healthy if len(healthy) == 2 else None), str(targets)

    healthy = wait_for(two_healthy, timeout=seconds, what="a replacement gateway healthy",
                       interval=0.2)
    traffic.mark(f"replacement healthy: {healthy}")
    events = events_between(cloud.workspace, scene.values["killed at"], time.time())
    counted = [e for e in events if e["component"] == victim and "replaced (replacement" in
               e["message"]]
    assert counted, f"no replacement event for {victim}: {events}"
    row = next(r for r in cloud.client.status()["services"]
               if r["service"] == GATEWAY and r["colour"] == colour)
    assert row["replaced"] >= 1, row


@when(parsers.parse("the serving colour's gateway is scaled back to {count:d} task"))
def scaled_back(cloud: CloudSession, scene: Scene, traffic: Traffic, count: int) -> None:
    colour = scene.values["scaled colour"]
    traffic.mark(f"scale in to {count}")
    cloud.client.scale(GATEWAY, colour, count)

    def settled() -> tuple[dict[str, str] | None, str]:
        targets = target_health(cloud, colour)
        return (targets if list(targets.values()) == ["healthy"] else None), str(targets)

    wait_for(settled, timeout=HEALTHY_S, what=f"{count} gateway target left", interval=0.2)
    scene.values["scaled back"] = True
    time.sleep(1.0)  # not a race: one more second of load on the one gateway left


@then(parsers.parse("every request of the load was answered 2xx but at most {bound:d} in "
                    "flight on the killed task when it died, none of them later than {late:d} "
                    "second after the kill, at {rate:d} requests per second or more"))
def crash_losses(cloud: CloudSession, scene: Scene, traffic: Traffic, bound: int,
                 late: int, rate: int) -> None:
    run = stop_load(cloud, traffic)
    killed_at = scene.values["killed at"]
    failures = run.failures
    print(f"load: {run.describe()}")
    assert len(failures) <= bound, run.describe()
    stray = [s for s in failures
             if not killed_at - run.plan.timeout_s <= s.sent <= killed_at + late]
    assert not stray, f"failures away from the kill: {stray}"
    assert run.achieved_rate >= rate, run.describe()
