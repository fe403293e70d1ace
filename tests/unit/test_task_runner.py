"""The task runner's reconcile logic, on fakes and a fake clock (no process, no HAProxy)."""

from __future__ import annotations

import signal
from ipaddress import IPv4Address

from stack.come2us import LOCAL_HEALTH
from stack.local.alb.targets import TargetHealth
from stack.model.edge import Colour
from tests.unit.task_fakes import DEREGISTRATION_DELAY_S, FakeLauncher, rig

COLOUR_ROUTED = ("gateway", "user-service", "product-service", "order-service",
                 "payment-service", "ai-service")
GRACE_S = LOCAL_HEALTH.grace_period_s


def test_a_deployed_colour_runs_its_services_in_its_az_each_on_its_own_address() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()

    tasks = r.live()
    assert sorted(str(t["service"]) for t in tasks) == sorted(COLOUR_ROUTED)
    assert {t["zone"] for t in tasks} == {"AZ-a"}
    hosts = [str(t["address"]).split(":")[0] for t in tasks]
    assert len(set(hosts)) == len(hosts)
    assert all(IPv4Address(h) in r.model.region.zone("AZ-a").loopback for h in hosts)
    assert {t["state"] for t in tasks} == {"pending"}
    assert r.balancer.changes == ["register tg-gateway-blue/gateway-blue-1"]
    assert r.checks.watched == {f"{s}-blue-1" for s in COLOUR_ROUTED if s != "gateway"}
    assert {t.release.label for t in r.launcher.launched} == {"v1"}


def test_green_runs_in_az_b_with_the_counts_blue_has() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.scale("gateway", Colour.BLUE, 2)
    r.runner.deploy(Colour.GREEN, r.release("v2"))
    r.runner.reconcile()

    green = [t for t in r.live() if t["colour"] == "green"]
    assert {t["zone"] for t in green} == {"AZ-b"}
    assert sum(1 for t in green if t["service"] == "gateway") == 2


def test_a_task_becomes_running_when_healthy_and_the_colour_is_healthy_when_all_are_up() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    assert not r.runner.colour_health(Colour.BLUE).healthy

    r.clock.advance(3)
    r.make_healthy()

    assert {t["state"] for t in r.live()} == {"running"}
    assert all(t["healthy_since"] == r.clock.now for t in r.live())
    health = r.runner.colour_health(Colour.BLUE)
    assert health.healthy, health.detail


def test_a_task_starts_nicer_and_gets_normal_priority_once_healthy() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    assert not any(r.process(str(t["id"])).raised for t in r.live())

    r.make_healthy()

    assert all(r.process(str(t["id"])).raised for t in r.live())
    assert not any("stays at niceness" in m for m in r.messages())


def test_a_task_whose_priority_cannot_be_raised_says_so() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.process("gateway-blue-1").refuse_priority = "needs CAP_SYS_NICE"

    r.make_healthy()

    niceness = r.model.compute.tasks.starting_niceness
    assert f"gateway-blue-1: stays at niceness {niceness}: needs CAP_SYS_NICE" in r.messages()
    assert r.runner.colour_health(Colour.BLUE).healthy  # slower, but it serves


def test_the_colour_is_not_healthy_while_a_task_is_not_listed_up_in_discovery() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()
    gone = next(i for i in r.registry.up if i.startswith("order-service:"))
    r.registry.up.discard(gone)

    health = r.runner.colour_health(Colour.BLUE)

    assert not health.healthy
    assert "order-service-blue-1 not UP in discovery-a" in health.detail


def test_health_failures_during_the_grace_period_replace_nothing() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.balancer.set_health("tg-gateway-blue", "gateway-blue-1", TargetHealth.UNHEALTHY)

    r.clock.advance(GRACE_S - 1)
    r.runner.reconcile()

    assert r.runner.replacements[("gateway", Colour.BLUE)] == 0
    assert [t["id"] for t in r.live("gateway")] == ["gateway-blue-1"]


def test_a_target_still_unhealthy_after_the_grace_period_is_replaced_and_counted() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.balancer.set_health("tg-gateway-blue", "gateway-blue-1", TargetHealth.UNHEALTHY)

    r.clock.advance(GRACE_S + 0.5)
    r.runner.reconcile()

    gateways = {t["id"]: t["state"] for t in r.live("gateway")}
    assert gateways == {"gateway-blue-1": "stopping", "gateway-blue-2": "pending"}
    assert r.runner.replacements[("gateway", Colour.BLUE)] == 1
    assert r.runner.colour_health(Colour.BLUE).failed_tasks == 1
    assert any(f"unhealthy after the {GRACE_S:g} s grace period: replaced (replacement 1 of "
               f"gateway blue)" in m for m in r.messages())
    # It never took traffic: no drain, SIGTERM at once.
    assert r.process("gateway-blue-1").signals == [signal.SIGTERM]


def test_a_running_task_whose_target_turns_unhealthy_is_replaced() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()
    r.balancer.set_health("tg-gateway-blue", "gateway-blue-1", TargetHealth.UNHEALTHY)

    r.runner.reconcile()

    failed = LOCAL_HEALTH.unhealthy_threshold
    assert any(m.startswith(f"gateway-blue-1: target unhealthy ({failed} failed checks)")
               for m in r.messages())
    assert "gateway-blue-2" in {t["id"] for t in r.live("gateway")}
    assert r.runner.replacements[("gateway", Colour.BLUE)] == 1


def test_a_task_that_dies_is_replaced_and_the_replacement_logged() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()
    r.process("product-service-blue-1").code = -9

    r.runner.reconcile()

    assert [t["id"] for t in r.live("product-service")] == ["product-service-blue-2"]
    assert r.runner.replacements[("product-service", Colour.BLUE)] == 1
    assert ("product-service-blue-1", "exited with code -9: replaced (replacement 1 of "
            "product-service blue)") in r.events
    stopped = [t for t in r.runner.tasks() if t["id"] == "product-service-blue-1"]
    assert stopped[0]["state"] == "stopped" and stopped[0]["exit_code"] == -9
    assert "product-service-blue-1" not in r.checks.watched


def test_a_dead_gateway_is_deregistered_from_its_target_group() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()
    r.process("gateway-blue-1").code = -9

    r.runner.reconcile()

    assert "deregister tg-gateway-blue/gateway-blue-1" in r.balancer.changes
    assert r.balancer.changes[-1] == "register tg-gateway-blue/gateway-blue-2"


def test_stopping_a_gateway_drains_it_for_the_deregistration_delay_then_terms_then_kills() -> None:
    r = rig(launcher=FakeLauncher(exits_on_term=False))
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()
    r.runner.scale("gateway", Colour.BLUE, 0)

    r.runner.reconcile()
    process = r.process("gateway-blue-1")
    assert r.balancer.changes[-1] == "deregister tg-gateway-blue/gateway-blue-1"
    assert r.live("gateway")[0]["state"] == "draining" and process.signals == []

    r.clock.advance(DEREGISTRATION_DELAY_S - 0.1)
    r.runner.reconcile()
    assert process.signals == []
    r.clock.advance(0.2)
    r.runner.reconcile()
    assert process.signals == [signal.SIGTERM]
    assert r.live("gateway")[0]["state"] == "stopping"

    r.clock.advance(r.model.compute.tasks.stop_timeout_s)
    r.runner.reconcile()
    assert process.signals == [signal.SIGTERM, signal.SIGKILL]
    r.runner.reconcile()
    assert r.live("gateway") == []
    assert r.runner.replacements[("gateway", Colour.BLUE)] == 0


def test_a_business_task_is_taken_out_of_discovery_before_it_is_stopped() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()
    address = r.live("user-service")[0]["address"]

    r.runner.replace("user-service", Colour.BLUE, "restart")
    r.runner.reconcile()

    assert r.registry.taken_out == [f"user-service:{address}"]
    states = {t["id"]: t["state"] for t in r.live("user-service")}
    assert states == {"user-service-blue-1": "draining", "user-service-blue-2": "pending"}
    r.clock.advance(r.model.compute.tasks.discovery_drain_s + 0.1)
    r.runner.reconcile()
    assert r.process("user-service-blue-1").signals == [signal.SIGTERM]


def test_a_retired_colour_stops_its_gateway_before_its_business_services() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()

    r.runner.retire(Colour.BLUE)
    r.runner.reconcile()
    states = {t["service"]: t["state"] for t in r.live()}
    assert states.pop("gateway") == "draining"
    assert set(states.values()) == {"running"}

    r.clock.advance(DEREGISTRATION_DELAY_S + 0.1)
    r.runner.reconcile()  # SIGTERM: the gateway exits
    r.runner.reconcile()  # ... and is seen gone: now the rest drain
    assert {t["state"] for t in r.live()} == {"draining"}
    assert "gateway" not in {t["service"] for t in r.live()}
    assert r.runner.colours() == {}


def test_a_cold_start_delays_the_process() -> None:
    r = rig(cold_start={"product-service": 8.0})
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()

    product = r.live("product-service")[0]
    assert product["state"] == "provisioning" and product["pid"] is None
    r.clock.advance(8.0)
    r.runner.reconcile()
    assert r.live("product-service")[0]["state"] == "pending"
    assert r.live("product-service")[0]["started_at"] == r.clock.now


def test_a_new_release_of_a_colour_rolls_old_tasks_only_once_new_ones_are_healthy() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release("v1"))
    r.runner.reconcile()
    r.make_healthy()

    r.runner.deploy(Colour.BLUE, r.release("v2"))
    r.runner.reconcile()
    releases = {(t["service"], t["release"], t["state"]) for t in r.live("ai-service")}
    assert releases == {("ai-service", "v1", "running"), ("ai-service", "v2", "pending")}

    r.make_healthy()
    assert {(t["release"], t["state"]) for t in r.live("ai-service")} == {
        ("v1", "draining"), ("v2", "running")}


def test_a_task_that_cannot_be_launched_is_reported_and_tried_again() -> None:
    r = rig(launcher=FakeLauncher(fail=True))
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()

    assert ("gateway-blue-1", "could not start: no such interpreter") in r.events
    r.launcher.fail = False
    r.runner.reconcile()
    assert [t["id"] for t in r.live("gateway")] == ["gateway-blue-2"]


def test_an_address_held_by_another_process_is_skipped() -> None:
    r = rig()
    first = r.model.region.zone("AZ-a").address(r.model.compute.tasks.pool("AZ-a").hosts[0])
    r.taken.add((first, 8080))
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()

    assert not str(r.live("gateway")[0]["address"]).startswith(f"{first}:")


def test_shutdown_stops_every_task_and_forgets_the_desired_state() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()

    r.runner.shutdown(sleep=lambda _: r.clock.advance(0.1))

    assert r.live() == []
    assert all(p.signals == [signal.SIGTERM] for p in r.launcher.processes.values())
    assert r.runner.colours() == {}
    r.runner.reconcile()
    assert r.live() == []


def test_the_desired_rows_count_running_healthy_and_replaced_tasks() -> None:
    r = rig()
    r.runner.deploy(Colour.BLUE, r.release())
    r.runner.reconcile()
    r.make_healthy()
    r.process("ai-service-blue-1").code = 1
    r.runner.reconcile()

    row = next(d for d in r.runner.desired() if d["service"] == "ai-service")
    assert row == {"service": "ai-service", "colour": "blue", "desired": 1, "release": "v1",
                   "running": 1, "healthy": 0, "replaced": 1}
