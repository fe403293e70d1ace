"""The local ALB for real: HAProxy started through AlbComponent in a scratch workspace, with small
HTTP targets (tests/integration/alb_target.py, each its own process) on the test block's
loopback addresses. Each test gets its own HAProxy and targets and stops them.

What is proven is what an ALB user relies on: the healthy threshold before traffic, unhealthy
targets out of rotation, draining on deregistration, an atomic switch without reload or dropped
connection, weights, the preview header, the ALB's own 502/503/504 answers, the access log.
Thresholds and delays are read from the model, never restated; bounds are generous (2 shared
cores) and every wait has a deadline that says what it last saw.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.come2us import come2us
from stack.local.alb.access_log import AccessLogEntry, log_size, read_access_log
from stack.local.alb.component import AlbComponent
from stack.local.alb.targets import Target, TargetHealth
from stack.local.backend import ProcessBackend
from stack.local.workspace import Workspace
from stack.model.edge import Colour
from stack.waiting import wait_for
from tests.integration.conftest import free_port

TARGET_SCRIPT = Path(__file__).with_name("alb_target.py")
BLUE, GREEN = Colour.BLUE, Colour.GREEN
MARGIN_S = 10.0  # on top of what the model's clocks need, for a loaded 2-core machine


@dataclass
class RunningTarget:
    """One target process and how the ALB knows it."""

    target: Target
    process: subprocess.Popen[bytes]

    @property
    def name(self) -> str:
        return self.target.target_id

    @property
    def url(self) -> str:
        return f"http://{self.target.address}"

    def control(self, action: str) -> None:
        httpx.post(f"{self.url}/control/{action}", timeout=5).raise_for_status()

    def in_flight(self) -> int:
        return int(httpx.get(f"{self.url}/control/in-flight", timeout=5).json()["inFlight"])

    def connections(self) -> int:
        """Connections accepted so far (this question's own included)."""
        return int(httpx.get(f"{self.url}/control/connections", timeout=5).json()["connections"])


@pytest.fixture
def start_alb(tmp_path: Path) -> Iterator[Callable[..., AlbComponent]]:
    """Start HAProxy from the model's ALB (on a free port of its address), optionally changed
    (e.g. a short idle timeout); each one is stopped at the end."""
    started: list[AlbComponent] = []

    def start(**changes: Any) -> AlbComponent:
        model = come2us().load_balancer
        lb = replace(model, node=replace(model.node, port=free_port(model.node.host)),
                     **changes)
        workspace = Workspace(tmp_path / f"alb-{len(started)}")
        workspace.ensure()
        alb = AlbComponent(lb, workspace, ProcessBackend())
        started.append(alb)
        alb.start()
        alb.wait_ready()
        return alb

    yield start
    for alb in started:
        alb.stop()


@pytest.fixture
def start_target() -> Iterator[Callable[[AlbComponent, Colour, str], RunningTarget]]:
    """Start a target process in its colour's AZ and register it; all are killed at the end."""
    running: list[RunningTarget] = []

    def start(alb: AlbComponent, colour: Colour, name: str) -> RunningTarget:
        zone = come2us().region.zones[0 if colour is BLUE else 1]
        host = zone.address(150 + len(running))
        port = free_port(host)
        process = subprocess.Popen(
            [sys.executable, str(TARGET_SCRIPT), "--host", str(host), "--port", str(port),
             "--name", name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        target = RunningTarget(Target(alb.group_of("gateway", colour), name, str(host), port),
                               process)
        running.append(target)

        def answers() -> tuple[bool | None, str]:
            if process.poll() is not None:
                raise AssertionError(f"target {name} exited with {process.returncode}")
            try:
                return httpx.get(f"{target.url}/actuator/health", timeout=1).is_success, "ok"
            except httpx.HTTPError as err:
                return None, repr(err)

        wait_for(answers, timeout=MARGIN_S, what=f"target {name} answering")
        alb.register(target.target)
        return target

    yield start
    for target in running:
        if target.process.poll() is None:
            target.process.kill()
        target.process.wait(timeout=10)


def health_of(alb: AlbComponent, target: RunningTarget) -> TargetHealth | None:
    return alb.health(target.target.group).get(target.name)


def wait_health(alb: AlbComponent, target: RunningTarget, wanted: TargetHealth | None,
                timeout: float | None = None) -> float:
    """Wait until the target's health is ``wanted`` (None: gone); return how long it took."""
    check = alb.lb.health
    limit = timeout if timeout is not None else (
        (max(check.healthy_threshold, check.unhealthy_threshold) + 1) * check.interval_s
        + MARGIN_S)
    began = time.monotonic()

    def attempt() -> tuple[bool | None, str]:
        seen = health_of(alb, target)
        return (True if seen is wanted else None), f"{target.name}: {seen}"

    wait_for(attempt, timeout=limit, what=f"{target.name} {wanted or 'gone'}")
    return time.monotonic() - began


def get(alb: AlbComponent, path: str = "/", headers: dict[str, str] | None = None,
        timeout: float = 10.0) -> httpx.Response:
    return httpx.get(f"{alb.url}{path}", headers=headers, timeout=timeout)


def served_by(alb: AlbComponent, count: int, path: str = "/") -> list[str]:
    """``count`` requests on one keep-alive connection; the target that answered each."""
    names: list[str] = []
    with httpx.Client(base_url=alb.url, timeout=10) as client:
        for _ in range(count):
            response = client.get(path)
            assert response.status_code == 200, response.text
            names.append(response.json()["target"])
    return names


def test_a_target_gets_traffic_only_once_it_has_passed_the_healthy_threshold(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    check = alb.lb.health
    a = start_target(alb, BLUE, "a")
    assert health_of(alb, a) is TargetHealth.INITIAL
    assert get(alb).status_code == 503  # registered, not yet healthy: no traffic

    took = wait_health(alb, a, TargetHealth.HEALTHY)
    # `healthy_threshold` passing checks, `interval_s` apart (the first may come at once)
    assert took >= (check.healthy_threshold - 1) * check.interval_s * 0.8
    assert served_by(alb, 5) == ["a"] * 5


def test_connections_to_a_target_are_kept_alive_and_reused(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    """A new connection per request would cost the target more than the request itself (an
    HAProxy 2.6 dynamic server keeps none unless told to)."""
    alb = start_alb()
    a = start_target(alb, BLUE, "a")
    wait_health(alb, a, TargetHealth.HEALTHY)
    before = a.connections()
    requests = 50
    served_by(alb, requests)
    opened = a.connections() - before - 1  # less the question itself
    # one kept-alive connection carries them all; a health check may open one or two meanwhile
    assert opened <= 3, f"{opened} connections for {requests} requests"


def test_a_target_failing_its_health_check_is_taken_out_of_rotation(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    a, b = start_target(alb, BLUE, "a"), start_target(alb, BLUE, "b")
    wait_health(alb, a, TargetHealth.HEALTHY)
    wait_health(alb, b, TargetHealth.HEALTHY)
    assert set(served_by(alb, 10)) == {"a", "b"}  # round robin over both

    a.control("unhealthy")
    wait_health(alb, a, TargetHealth.UNHEALTHY)
    assert served_by(alb, 20) == ["b"] * 20

    a.control("healthy")  # and back after the healthy threshold
    wait_health(alb, a, TargetHealth.HEALTHY)
    assert set(served_by(alb, 10)) == {"a", "b"}


def test_a_killed_target_is_taken_out_of_rotation_without_a_failed_request(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    a, b = start_target(alb, BLUE, "a"), start_target(alb, BLUE, "b")
    wait_health(alb, a, TargetHealth.HEALTHY)
    wait_health(alb, b, TargetHealth.HEALTHY)

    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=10)
    # Until the checks notice, a request sent to the dead target is refused at connect and
    # HAProxy tries it once more on another target (`retries 1`, `option redispatch`).
    statuses: list[int] = []
    deadline = time.monotonic() + 3 * alb.lb.health.interval_s + MARGIN_S
    with httpx.Client(base_url=alb.url, timeout=10) as client:
        while health_of(alb, a) is not TargetHealth.UNHEALTHY:
            assert time.monotonic() < deadline, f"a still {health_of(alb, a)}"
            statuses.append(client.get("/").status_code)
    assert statuses and set(statuses) == {200}
    assert served_by(alb, 20) == ["b"] * 20


def test_deregistration_lets_requests_in_flight_finish_and_sends_new_ones_elsewhere(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    delay = alb.lb.deregistration_delay_s
    a, b = start_target(alb, BLUE, "a"), start_target(alb, BLUE, "b")
    wait_health(alb, a, TargetHealth.HEALTHY)
    wait_health(alb, b, TargetHealth.HEALTHY)

    # Slow requests until one is in flight on `a` (round robin sends every other one there).
    slow_s = delay * 0.6
    answers: list[httpx.Response] = []

    def slow() -> None:
        answers.append(get(alb, f"/slow?seconds={slow_s}", timeout=slow_s + MARGIN_S))

    senders = [threading.Thread(target=slow) for _ in range(2)]
    for sender in senders:
        sender.start()
    wait_for(lambda: (True if a.in_flight() else None, f"a in flight: {a.in_flight()}"),
             timeout=MARGIN_S, what="a slow request in flight on a")

    deregistered = time.monotonic()
    alb.deregister(a.target)
    assert health_of(alb, a) is TargetHealth.DRAINING
    assert served_by(alb, 10) == ["b"] * 10  # new requests: elsewhere
    for sender in senders:
        sender.join(timeout=slow_s + 2 * MARGIN_S)
    assert sorted((r.status_code, r.json()["target"]) for r in answers) == \
        [(200, "a"), (200, "b")]  # the one in flight on `a` finished

    wait_health(alb, a, None, timeout=delay + MARGIN_S)
    assert time.monotonic() - deregistered >= delay * 0.9  # gone only after the delay
    assert alb.registered() == [b.target]


def test_switch_is_atomic_without_reload_or_dropped_connection(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    blue, green = start_target(alb, BLUE, "blue-1"), start_target(alb, GREEN, "green-1")
    wait_health(alb, blue, TargetHealth.HEALTHY)
    wait_health(alb, green, TargetHealth.HEALTHY)
    pid = alb.api.info()["Pid"]
    assert pid == str(alb.runner.pid)

    conn = http.client.HTTPConnection(str(alb.lb.node.host), alb.lb.node.port, timeout=10)
    try:
        served: list[str] = []

        def ask() -> None:
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200
            served.append(json.loads(response.read())["target"])

        ask()
        sock, local = conn.sock, conn.sock.getsockname()
        stop = threading.Event()

        def keep_asking() -> None:  # one client in a loop, bounded in count and time
            deadline = time.monotonic() + MARGIN_S
            while not stop.is_set() and len(served) < 5000 and time.monotonic() < deadline:
                ask()

        client = threading.Thread(target=keep_asking)
        client.start()
        wait_for(lambda: (True if len(served) > 20 else None, f"{len(served)} answers"),
                 timeout=MARGIN_S, what="traffic before the switch")
        alb.switch(GREEN)
        switched_at = len(served)
        wait_for(lambda: (True if len(served) > switched_at + 20 else None,
                          f"{len(served)} answers"), timeout=MARGIN_S,
                 what="traffic after the switch")
        stop.set()
        client.join(timeout=MARGIN_S)
        ask()
        assert conn.sock is sock and conn.sock.getsockname() == local  # same connection
    finally:
        conn.close()
    # Each request saw the old action or the new one: blue until some request, green after.
    first_green = served.index("green-1")
    assert set(served[:first_green]) == {"blue-1"}
    assert set(served[first_green:]) == {"green-1"}
    assert first_green <= switched_at + 1
    assert alb.api.info()["Pid"] == pid and alb.runner.pid == int(pid)  # no reload
    assert alb.active_colour() is GREEN
    assert health_of(alb, blue) is TargetHealth.HEALTHY  # the old colour stays, idle


def test_weights_split_traffic_between_the_colours(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    blue, green = start_target(alb, BLUE, "blue-1"), start_target(alb, GREEN, "green-1")
    wait_health(alb, blue, TargetHealth.HEALTHY)
    wait_health(alb, green, TargetHealth.HEALTHY)
    alb.set_weights({BLUE: 70, GREEN: 30})
    sample = served_by(alb, 400)
    share = sample.count("green-1") / len(sample)
    # binomial: 400 draws at 0.30 have a standard deviation of 0.023; 0.08 is ~3.5 of them
    assert abs(share - 0.30) < 0.08, f"green got {share:.3f} of {len(sample)}"
    assert alb.active_colour() is BLUE

    alb.set_weights({BLUE: 0, GREEN: 1})
    assert served_by(alb, 20) == ["green-1"] * 20


def test_the_preview_header_routes_to_the_colour_it_names(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    blue, green = start_target(alb, BLUE, "blue-1"), start_target(alb, GREEN, "green-1")
    wait_health(alb, blue, TargetHealth.HEALTHY)
    wait_health(alb, green, TargetHealth.HEALTHY)
    header = alb.lb.preview_header
    cases = {"green": "green-1", "GREEN": "green-1", "blue": "blue-1", "purple": "blue-1"}
    for value, expected in cases.items():
        response = get(alb, "/", {header: value})
        assert response.status_code == 200 and response.json()["target"] == expected, value
    assert get(alb).json()["target"] == "blue-1"
    alb.switch(GREEN)
    assert get(alb, "/", {header: "blue"}).json()["target"] == "blue-1"


def error_body(response: httpx.Response, status: int) -> dict[str, Any]:
    """The ALB's own answer: JSON in the gateway's error shape, its id in the trace header."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "error", "message", "requestId", "path"}
    assert body["status"] == status
    assert response.headers["x-amzn-trace-id"] == f"Root={body['requestId']}"
    return body


def test_no_healthy_target_is_a_503_in_the_error_shape(
        start_alb: Callable[..., AlbComponent]) -> None:
    alb = start_alb()
    body = error_body(get(alb, "/api/products?secret=1"), 503)
    assert body["error"] == "Service Unavailable"
    assert body["path"] == "/api/products"  # the query string is not echoed
    assert body["message"] == f"no healthy target in {alb.group_of('gateway', BLUE)}"


def test_a_target_that_closes_the_connection_is_a_502(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    a = start_target(alb, BLUE, "a")
    wait_health(alb, a, TargetHealth.HEALTHY)
    body = error_body(get(alb, "/close"), 502)
    assert body["error"] == "Bad Gateway" and body["path"] == "/close"
    assert get(alb, "/").status_code == 200  # the target itself is fine


def test_a_target_slower_than_the_idle_timeout_is_a_504(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    idle_s = 1.0  # the model's 60 s is too long for a test
    alb = start_alb(idle_timeout_s=idle_s)
    a = start_target(alb, BLUE, "a")
    wait_health(alb, a, TargetHealth.HEALTHY)
    began = time.monotonic()
    body = error_body(get(alb, f"/slow?seconds={idle_s + 2}"), 504)
    took = time.monotonic() - began
    assert idle_s * 0.9 <= took < idle_s + 2, f"504 after {took:.2f} s"
    assert body["message"] == f"the target did not answer in time ({idle_s:g} s)"


def test_the_access_log_has_one_json_line_per_request(
        start_alb: Callable[..., AlbComponent],
        start_target: Callable[[AlbComponent, Colour, str], RunningTarget]) -> None:
    alb = start_alb()
    a = start_target(alb, BLUE, "a")
    wait_health(alb, a, TargetHealth.HEALTHY)
    since = log_size(alb.log_file)
    header = alb.lb.preview_header
    sent = [("/one", None, 200), ("/two?x=1", None, 200), ("/preview", "green", 503),
            ("/close", None, 502), ("/three", None, 200)]
    for path, colour, status in sent:
        assert get(alb, path, {header: colour} if colour else None).status_code == status

    def logged() -> tuple[list[AccessLogEntry] | None, str]:
        entries = read_access_log(alb.log_file, since)
        return (entries if len(entries) >= len(sent) else None), f"{len(entries)} entries"

    entries = wait_for(logged, timeout=MARGIN_S, what="the access log lines")
    lines = [line for line in alb.log_file.read_bytes()[since:].decode().splitlines()
             if line.startswith("{")]
    assert len(lines) == len(entries) == len(sent)  # one line per request, each parseable
    blue_group, green_group = (alb.group_of("gateway", c) for c in (BLUE, GREEN))
    expected = [(path, status, green_group if colour else blue_group,
                 None if colour else "a", colour or "blue") for path, colour, status in sent]
    assert [(e.path, e.status, e.target_group, e.target, e.colour) for e in entries] == expected
    assert all(e.method == "GET" and e.listener == "listener" and e.trace_id for e in entries)
    assert entries[3].termination != "--"  # the 502 says how it ended

