"""RuntimeLoadBalancer's logic against a fake HAProxy (tests/unit/alb_fakes.py): which runtime-API
commands each ALB operation sends, how HAProxy's answers become ELBv2 target health, and what is
remembered across restarts. The deregistration timer is captured, not slept on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stack.come2us import come2us
from stack.local.alb.balancer import (
    SWEEP_GRACE_S,
    ListenerState,
    ListenerStore,
    RuntimeLoadBalancer,
    TargetConflict,
    classify,
)
from stack.local.alb.config import server_options
from stack.local.alb.runtime_api import (
    AdminState,
    CheckResult,
    OpState,
    RuntimeApiError,
    ServerState,
    ServerStats,
)
from stack.local.alb.targets import Target, TargetHealth
from stack.model.edge import Colour
from tests.unit.alb_fakes import FakeHaproxy

BLUE, GREEN = Colour.BLUE, Colour.GREEN
GROUP = "tg-gateway-blue"
HEALTH = come2us().load_balancer.health
T1 = Target(GROUP, "gateway-blue-1", "127.0.1.101", 8080)
T2 = Target(GROUP, "gateway-blue-2", "127.0.1.102", 8080)


@dataclass
class CapturedTimer:
    interval: float
    function: Callable[..., None]
    args: tuple[Any, ...] = ()
    daemon: bool = False
    started: bool = False

    def start(self) -> None:
        self.started = True

    def fire(self) -> None:
        self.function(*self.args)


@dataclass
class Rig:
    haproxy: FakeHaproxy
    balancer: RuntimeLoadBalancer
    store: ListenerStore
    map_path: Path
    now: list[float]
    timers: list[CapturedTimer] = field(default_factory=list)

    def another_process(self) -> RuntimeLoadBalancer:
        """A second balancer on the same workspace (the CLI beside the control plane)."""
        return RuntimeLoadBalancer(self.balancer.lb, self.haproxy, self.store, self.map_path,
                                   clock=lambda: self.now[0])

    def commands_since(self, mark: int) -> list[str]:
        """What changed HAProxy since ``mark`` (reads left out)."""
        return [c for c in self.haproxy.commands[mark:]
                if not c.startswith(("show ", "get map"))]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    lb = come2us().load_balancer
    haproxy = FakeHaproxy.with_groups(lb.target_groups)
    store = ListenerStore(tmp_path / "listener.json")
    map_path = tmp_path / "alb-active.map"
    now = [1_000_000.0]
    r = Rig(haproxy, RuntimeLoadBalancer(lb, haproxy, store, map_path, clock=lambda: now[0]),
            store, map_path, now)

    def timer(interval: float, function: Callable[..., None],
              args: tuple[Any, ...] = ()) -> CapturedTimer:
        r.timers.append(CapturedTimer(interval, function, args))
        return r.timers[-1]

    # the balancer starts its removal timers as threading.Timer(delay, function, args=…)
    monkeypatch.setattr("stack.local.alb.balancer.threading.Timer", timer)
    r.balancer.prepare_start()
    haproxy.load_map(map_path)
    return r


def test_a_registered_target_is_checked_and_gets_no_traffic_before_the_healthy_threshold(
        rig: Rig) -> None:
    rig.balancer.register(T1)
    assert rig.commands_since(0) == [
        f"add server {GROUP}/gateway-blue-1 127.0.1.101:8080 {' '.join(server_options(HEALTH))}",
        f"enable health {GROUP}/gateway-blue-1",
        f"set server {GROUP}/gateway-blue-1 state drain",
        f"set server {GROUP}/gateway-blue-1 health down",
        f"set server {GROUP}/gateway-blue-1 state ready",
    ]
    server = rig.haproxy.server(GROUP, T1.target_id)
    assert server.health_checks and server.op_state is OpState.STOPPED
    assert rig.balancer.health(GROUP) == {T1.target_id: TargetHealth.INITIAL}
    rig.haproxy.checks_pass(GROUP, T1.target_id)
    assert rig.balancer.health(GROUP) == {T1.target_id: TargetHealth.HEALTHY}
    assert rig.balancer.registered() == [T1]


def test_a_target_that_fails_its_checks_is_unhealthy_whether_or_not_it_was_ever_healthy(
        rig: Rig) -> None:
    rig.balancer.register(T1)
    rig.balancer.register(T2)
    rig.haproxy.checks_fail(GROUP, T1.target_id)  # never passed
    rig.haproxy.checks_pass(GROUP, T2.target_id)
    rig.haproxy.checks_fail(GROUP, T2.target_id)  # was healthy, then failed
    assert rig.balancer.health(GROUP) == {T1.target_id: TargetHealth.UNHEALTHY,
                                          T2.target_id: TargetHealth.UNHEALTHY}


def test_registering_again_changes_nothing(rig: Rig) -> None:
    rig.balancer.register(T1)
    rig.haproxy.checks_pass(GROUP, T1.target_id)
    mark = len(rig.haproxy.commands)
    rig.balancer.register(T1)
    assert rig.commands_since(mark) == []
    assert rig.balancer.registered() == [T1]


def test_the_same_id_at_another_address_is_a_conflict(rig: Rig) -> None:
    rig.balancer.register(T1)
    moved = Target(GROUP, T1.target_id, "127.0.1.109", 8080)
    with pytest.raises(TargetConflict, match="deregister it first"):
        rig.balancer.register(moved)
    assert rig.balancer.registered() == [T1]


def test_a_registration_haproxy_refuses_half_way_leaves_no_server(rig: Rig) -> None:
    rig.haproxy.refuse["enable health"] = "Health checks are not configured on this server."
    with pytest.raises(RuntimeApiError, match="Health checks are not configured"):
        rig.balancer.register(T1)
    assert rig.haproxy.backends[GROUP] == {}
    assert rig.balancer.registered() == []


def test_an_unknown_target_group_is_refused_before_haproxy_is_asked(rig: Rig) -> None:
    with pytest.raises(KeyError, match="tg-gateway-purple"):
        rig.balancer.register(Target("tg-gateway-purple", "x", "127.0.1.1", 80))
    assert rig.haproxy.commands == []


def test_deregistration_drains_at_once_and_removes_after_the_delay(rig: Rig) -> None:
    rig.balancer.register(T1)
    rig.haproxy.checks_pass(GROUP, T1.target_id)
    mark = len(rig.haproxy.commands)
    rig.balancer.deregister(T1)
    assert rig.commands_since(mark) == [f"set server {GROUP}/gateway-blue-1 state drain"]
    assert rig.balancer.health(GROUP) == {T1.target_id: TargetHealth.DRAINING}
    assert rig.balancer.registered() == []
    (timer,) = rig.timers
    assert (timer.interval, timer.daemon, timer.started) == \
        (rig.balancer.lb.deregistration_delay_s, True, True)

    mark = len(rig.haproxy.commands)
    timer.fire()  # the deregistration delay has passed
    assert rig.commands_since(mark) == [f"set server {GROUP}/gateway-blue-1 state maint",
                                        f"shutdown sessions server {GROUP}/gateway-blue-1",
                                        f"del server {GROUP}/gateway-blue-1"]
    assert rig.balancer.health(GROUP) == {}
    assert rig.store.read().draining == {}


def test_a_second_deregistration_does_not_restart_the_drain(rig: Rig) -> None:
    rig.balancer.register(T1)
    rig.balancer.deregister(T1)
    mark = len(rig.haproxy.commands)
    rig.balancer.deregister(T1)
    assert rig.commands_since(mark) == [] and len(rig.timers) == 1


def test_deregistering_a_target_haproxy_does_not_know_only_forgets_it(rig: Rig) -> None:
    rig.balancer.deregister(T2)
    assert rig.commands_since(0) == [] and rig.timers == []


def test_removal_waits_while_haproxy_still_holds_connections(rig: Rig) -> None:
    rig.balancer.register(T1)
    rig.balancer.deregister(T1)
    rig.haproxy.busy_deletes = 2
    rig.timers[0].fire()
    deletes = [c for c in rig.haproxy.commands if c.startswith("del server")]
    assert len(deletes) == 3
    assert rig.haproxy.backends[GROUP] == {}


def test_a_target_registered_again_while_draining_is_back_and_not_removed(rig: Rig) -> None:
    rig.balancer.register(T1)
    rig.haproxy.checks_pass(GROUP, T1.target_id)
    rig.balancer.deregister(T1)
    mark = len(rig.haproxy.commands)
    rig.balancer.register(T1)
    assert rig.commands_since(mark) == [f"set server {GROUP}/gateway-blue-1 state ready"]
    rig.timers[0].fire()  # the old removal comes due: it must not remove the target
    assert rig.balancer.health(GROUP) == {T1.target_id: TargetHealth.HEALTHY}
    assert rig.balancer.registered() == [T1]


def test_a_removal_whose_timer_died_with_its_process_is_finished_by_the_next_caller(
        rig: Rig) -> None:
    rig.balancer.register(T1)
    rig.balancer.deregister(T1)  # its timer never fires: that process ended
    other = rig.another_process()
    rig.now[0] += rig.balancer.lb.deregistration_delay_s  # due, but within the grace
    assert other.health(GROUP) == {T1.target_id: TargetHealth.DRAINING}
    rig.now[0] += SWEEP_GRACE_S + 0.1
    assert other.health(GROUP) == {}
    assert rig.store.read().draining == {}
    rig.timers[0].fire()  # a late timer finds nothing left to do
    assert [c for c in rig.haproxy.commands if c.startswith("del server")] == \
        [f"del server {GROUP}/gateway-blue-1"]


def test_switch_replaces_the_forward_action_in_one_map_entry(rig: Rig) -> None:
    mark = len(rig.haproxy.commands)
    rig.balancer.switch(GREEN)
    assert rig.commands_since(mark) == [f"set map {rig.map_path} active green:0"]
    assert rig.balancer.active_colour() is GREEN
    assert rig.balancer.weights() == {BLUE: 0, GREEN: 100}
    assert rig.map_path.read_text() == "active green:0\n"  # what a restart starts from


@pytest.mark.parametrize(("start", "weights", "value", "active"), [
    (BLUE, {BLUE: 90, GREEN: 10}, "blue:100", BLUE),
    (BLUE, {BLUE: 10, GREEN: 90}, "green:100", GREEN),
    (GREEN, {BLUE: 50, GREEN: 50}, "green:500", GREEN),  # a tie keeps the active colour
    (BLUE, {GREEN: 7}, "green:0", GREEN),  # a colour left out weighs 0
])
def test_weights_become_the_active_colour_and_the_other_share(
        rig: Rig, start: Colour, weights: dict[Colour, int], value: str,
        active: Colour) -> None:
    rig.balancer.switch(start)
    rig.balancer.set_weights(weights)
    assert rig.haproxy.maps[str(rig.map_path)]["active"] == value
    assert rig.balancer.active_colour() is active
    assert rig.map_path.read_text() == f"active {value}\n"


@pytest.mark.parametrize("weights", [{BLUE: 0, GREEN: 0}, {BLUE: 1000}, {BLUE: -1}])
def test_weights_elbv2_would_refuse_leave_the_listener_alone(
        rig: Rig, weights: dict[Colour, int]) -> None:
    with pytest.raises(ValueError):
        rig.balancer.set_weights(weights)
    assert rig.haproxy.maps[str(rig.map_path)]["active"] == "blue:0"


def test_while_haproxy_is_down_the_active_colour_is_the_remembered_one(rig: Rig) -> None:
    rig.balancer.switch(GREEN)
    rig.haproxy.running = False
    assert rig.balancer.active_colour() is GREEN


def test_a_new_haproxy_gets_the_remembered_targets_and_forward_action(
        rig: Rig, tmp_path: Path) -> None:
    rig.balancer.register(T1)
    rig.balancer.register(T2)
    rig.balancer.set_weights({BLUE: 80, GREEN: 20})
    rig.balancer.deregister(T2)  # draining when HAProxy stopped: not brought back

    restarted = FakeHaproxy.with_groups(rig.balancer.lb.target_groups)
    balancer = RuntimeLoadBalancer(rig.balancer.lb, restarted, rig.store, rig.map_path)
    balancer.prepare_start()
    restarted.load_map(rig.map_path)
    balancer.restore()
    assert set(restarted.backends[GROUP]) == {T1.target_id}
    assert restarted.maps[str(rig.map_path)]["active"] == "blue:200"
    assert rig.store.read().draining == {}


def test_the_listener_state_file_round_trips_and_a_broken_one_says_how_to_recover(
        tmp_path: Path) -> None:
    state = ListenerState(active=GREEN, weights={BLUE: 30, GREEN: 70}, targets=[T1, T2],
                          draining={f"{GROUP}/x": 12.5})
    assert ListenerState.from_json(state.to_json()) == state
    store = ListenerStore(tmp_path / "listener.json")
    assert store.read() == ListenerState()  # nothing yet: blue, no targets
    store.path.write_text("{not json")
    with pytest.raises(ValueError, match="remove it to start from blue"):
        store.read()


def row(op: OpState = OpState.STOPPED, admin: AdminState = AdminState.NONE,
        check: CheckResult = CheckResult.UNKNOWN) -> ServerState:
    return ServerState(GROUP, "t", "127.0.1.101", 8080, op, admin, check, 0, 0)


def stats(down_transitions: int) -> ServerStats:
    return ServerStats(GROUP, "t", "DOWN", 0, down_transitions)


@pytest.mark.parametrize(("state", "stat", "removing", "health"), [
    (row(OpState.RUNNING), stats(1), False, TargetHealth.HEALTHY),
    (row(OpState.STARTING), stats(1), False, TargetHealth.HEALTHY),
    (row(check=CheckResult.UNKNOWN), stats(1), False, TargetHealth.INITIAL),
    (row(check=CheckResult.PASSED), stats(1), False, TargetHealth.INITIAL),  # rise not reached
    (row(check=CheckResult.FAILED), stats(1), False, TargetHealth.UNHEALTHY),
    (row(check=CheckResult.PASSED), stats(2), False, TargetHealth.UNHEALTHY),  # was up once
    (row(check=CheckResult.UNKNOWN), None, False, TargetHealth.INITIAL),
    (row(OpState.STOPPING), stats(1), False, TargetHealth.DRAINING),
    (row(OpState.RUNNING, AdminState.FORCED_DRAIN), stats(1), False, TargetHealth.DRAINING),
    (row(OpState.RUNNING, AdminState.FORCED_MAINT), stats(1), True, TargetHealth.DRAINING),
    (row(OpState.RUNNING, AdminState.FORCED_MAINT), stats(1), False, TargetHealth.UNUSED),
])
def test_haproxy_server_states_read_as_elbv2_target_health(
        state: ServerState, stat: ServerStats | None, removing: bool,
        health: TargetHealth) -> None:
    assert classify(state, stat, removing) is health
