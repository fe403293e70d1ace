"""The supervisor (`LocalCloud`) over fake components: start order, failures, crashes, health.

The fakes (tests/unit/fake_components.py) run no process; each start, stop and first ready answer is
journaled, so the order of events is asserted rather than inferred from timing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable

from fake_components import FakeCloud

from stack.local.cloud import State
from stack.local.component import ComponentError, Health

Build = Callable[[Iterable[tuple[str, tuple[str, ...]]]], FakeCloud]


def test_a_dependent_starts_only_after_its_dependency_is_ready(fake_cloud: Build) -> None:
    lab = fake_cloud([("app", ("db",)), ("db", ())])
    lab.parts["db"].probes_before_ready = 3

    assert lab.cloud.up() is True

    assert lab.journal.position("ready", "db") < lab.journal.position("start", "app")
    assert {name: lab.cloud.state(name) for name in lab.parts} == {
        "app": State.READY, "db": State.READY}


def test_independent_components_start_concurrently(fake_cloud: Build) -> None:
    lab = fake_cloud([("left", ()), ("right", ())])
    # Each start waits for the other: started one after the other, the barrier breaks.
    both_starting = threading.Barrier(2, timeout=3.0)
    for part in lab.parts.values():
        part.fake.on_start = both_starting.wait

    assert lab.cloud.up() is True
    assert lab.cloud.state("left") is State.READY
    assert lab.cloud.state("right") is State.READY


def test_a_failing_dependency_fails_its_dependents_naming_it(fake_cloud: Build) -> None:
    lab = fake_cloud([("db", ()), ("app", ("db",)), ("other", ())])

    def refuse() -> None:
        raise ComponentError("db: port taken")

    lab.parts["db"].fake.on_start = refuse

    assert lab.cloud.up() is False

    rows = {row.name: row for row in lab.cloud.status()}
    assert rows["db"].state is State.FAILED
    assert "db: port taken" in rows["db"].detail
    assert rows["app"].state is State.FAILED
    assert rows["app"].detail == "not started: db is not ready"
    assert "app" not in lab.journal.names("start")
    assert rows["other"].state is State.READY


def test_up_again_retries_a_chain_that_failed_at_its_root(fake_cloud: Build) -> None:
    lab = fake_cloud([("primary", ()), ("replica", ("primary",)), ("sentinel", ("replica",))])

    def refuse() -> None:
        raise ComponentError("primary: port taken")

    lab.parts["primary"].fake.on_start = refuse
    assert lab.cloud.up() is False
    assert lab.cloud.state("sentinel") is State.FAILED

    # Fixed, but slow to answer: while the replica waits for it, the sentinel must not take
    # the replica's failure from the first attempt for a failure of this one.
    lab.parts["primary"].fake.on_start = None
    lab.parts["primary"].probes_before_ready = 5

    assert lab.cloud.up() is True
    assert [lab.cloud.state(name) for name in ("primary", "replica", "sentinel")] == [
        State.READY, State.READY, State.READY]


def test_a_runner_that_exits_after_ready_is_reported_crashed(fake_cloud: Build) -> None:
    lab = fake_cloud([("cache", ())])
    assert lab.cloud.up() is True

    lab.parts["cache"].fake.exit(137)
    lab.cloud.watch_once()

    assert lab.cloud.state("cache") is State.CRASHED
    [row] = lab.cloud.status()
    assert (row.state, row.detail) == (State.CRASHED, "exited with code 137")
    assert [(e.component, e.message) for e in lab.cloud.events()] == [
        ("cache", "crashed: exited with code 137")]
    logged = [json.loads(line) for line in
              (lab.workspace.logs / "events.jsonl").read_text().splitlines()]
    assert [(e["component"], e["message"]) for e in logged] == [
        ("cache", "crashed: exited with code 137")]


def test_watch_once_leaves_a_component_stopped_on_request_alone(fake_cloud: Build) -> None:
    lab = fake_cloud([("cache", ())])
    assert lab.cloud.up() is True
    lab.cloud.stop_component("cache")

    lab.cloud.watch_once()

    assert lab.cloud.state("cache") is State.STOPPED
    assert lab.cloud.events() == []


def test_up_restarts_a_crashed_component_and_records_it(fake_cloud: Build) -> None:
    lab = fake_cloud([("cache", ()), ("steady", ())])
    assert lab.cloud.up() is True
    lab.parts["cache"].fake.exit(1)
    lab.cloud.watch_once()

    assert lab.cloud.up() is True

    assert lab.cloud.state("cache") is State.READY
    assert lab.journal.names("start").count("cache") == 2
    assert lab.journal.names("start").count("steady") == 1, "a ready component is left alone"
    assert [e.message for e in lab.cloud.events()] == [
        "crashed: exited with code 1", "restarting after a crash"]


def test_status_marks_a_running_component_whose_probe_fails_unhealthy(fake_cloud: Build) -> None:
    lab = fake_cloud([("db", ())])
    assert lab.cloud.up() is True

    lab.parts["db"].answer = Health(False, "SELECT 1 timed out after 2 s")
    [row] = lab.cloud.status()

    assert (row.state, row.detail) == (State.UNHEALTHY, "SELECT 1 timed out after 2 s")
    assert lab.cloud.events()[-1].message == "unhealthy: SELECT 1 timed out after 2 s"

    lab.parts["db"].answer = Health(True, "answering", role="writer")
    [row] = lab.cloud.status()

    assert (row.state, row.role) == (State.READY, "writer")
    assert lab.cloud.events()[-1].message == "healthy again: answering"


def test_status_row_says_what_runs_where(fake_cloud: Build) -> None:
    lab = fake_cloud([("db", ())])
    [before] = lab.cloud.status()
    assert (before.state, before.pid) == (State.STOPPED, None)

    assert lab.cloud.up() is True
    [row] = lab.cloud.status()

    assert (row.name, row.kind, row.zone, row.address, row.role) == (
        "db", "fake", "AZ-t", "127.0.9.11:7009", "fake-role")
    assert row.state is State.READY


def test_down_stops_dependents_before_their_dependencies(fake_cloud: Build) -> None:
    lab = fake_cloud([("sentinel", ("replica", "primary")), ("replica", ("primary",)),
                      ("primary", ())])
    assert lab.cloud.up() is True

    lab.cloud.down()

    assert lab.journal.names("stop") == ["sentinel", "replica", "primary"]
    assert {lab.cloud.state(name) for name in lab.parts} == {State.STOPPED}


def test_kill_component_is_a_crash_that_up_repairs(fake_cloud: Build) -> None:
    lab = fake_cloud([("kafka", ())])
    assert lab.cloud.up() is True

    lab.cloud.kill_component("kafka")

    assert lab.cloud.state("kafka") is State.CRASHED
    assert lab.journal.names("kill") == ["kafka"]
    assert lab.cloud.events()[-1].message == "killed on request (simulated crash)"
    assert lab.cloud.up() is True
    assert lab.cloud.state("kafka") is State.READY
