"""The load generator (stack.local.load) and its evidence (stack.local.load_evidence), with
fake exchanges and a local HTTP server: open-loop timing, bounds, records, summaries."""

from __future__ import annotations

import asyncio
import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from defusedxml import ElementTree

from services.gateway.settings import RateLimitSettings
from stack.local.load import (
    Answer,
    BackgroundLoad,
    HttpExchange,
    LoadPlan,
    LoadRun,
    Sample,
    clients_needed,
    read_response,
    run_load,
)
from stack.local.load_evidence import (
    Marker,
    per_second,
    slug,
    switch_instants,
    write_evidence,
)


class FakeExchange:
    """Answers by index: a function decides each answer (or raises)."""

    def __init__(self, answer: Callable[[int], Answer], delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.closed = False

    async def __call__(self, index: int) -> Answer:
        self.calls.append(index)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.answer(index)

    async def aclose(self) -> None:
        self.closed = True


def blue_ok(index: int) -> Answer:
    return Answer(200, "blue", "v1")


def test_a_plan_is_bounded_by_count_and_duration() -> None:
    assert LoadPlan("http://x", rate=100, duration_s=2).planned == 200
    assert LoadPlan("http://x", rate=100, duration_s=2, max_requests=50).planned == 50
    with pytest.raises(ValueError):
        LoadPlan("http://x", rate=0, duration_s=1)


def test_open_loop_issues_every_request_on_schedule_even_when_answers_are_slow() -> None:
    # Each answer takes 0.2 s; a closed loop of one would manage 2 in 0.4 s, the open loop 40.
    exchange = FakeExchange(blue_ok, delay_s=0.2)
    run = asyncio.run(run_load(LoadPlan("http://x", rate=100, duration_s=0.4), exchange))
    assert run.sent == 40 and exchange.calls == list(range(40))
    assert run.answered == 40 and not run.failures and not run.missing
    assert 60 < run.achieved_rate < 140
    assert all(s.latency_s is not None and s.latency_s >= 0.19 for s in run.samples)
    assert run.ended >= run.samples[-1].sent + 0.19  # waited for the ones in flight


def test_errors_timeouts_and_non_2xx_are_recorded_not_raised() -> None:
    def answer(index: int) -> Answer:
        if index == 1:
            raise ConnectionRefusedError("refused")
        return Answer(502) if index == 2 else Answer(200, "green", "v2")

    class Stuck(FakeExchange):
        async def __call__(self, index: int) -> Answer:
            if index == 3:
                await asyncio.sleep(10)
            return await super().__call__(index)

    plan = LoadPlan("http://x", rate=200, duration_s=0.025, timeout_s=0.1)
    run = asyncio.run(run_load(plan, Stuck(answer)))
    outcomes = [s.outcome for s in run.samples]
    assert outcomes == ["200", "ConnectionRefusedError", "502", "timeout", "200"]
    assert [s.index for s in run.missing] == [1, 3]
    assert [s.index for s in run.failures] == [1, 2, 3]
    assert run.outcomes() == {"502": 1, "ConnectionRefusedError": 1, "green 200": 2,
                              "timeout": 1}
    assert "3 not 2xx" in run.describe()


def test_stopping_early_ends_issuing_and_keeps_what_was_sent() -> None:
    asked: list[bool] = []

    def stop_after_five() -> bool:
        asked.append(True)
        return len(asked) > 5

    plan = LoadPlan("http://x", rate=1000, duration_s=10)
    run = asyncio.run(run_load(plan, FakeExchange(blue_ok), should_stop=stop_after_five))
    assert run.sent == 5 and run.answered == 5 and run.stopped_early


def test_background_load_runs_beside_synchronous_code_and_closes_its_exchange() -> None:
    exchange = FakeExchange(blue_ok)
    load = BackgroundLoad(LoadPlan("http://x", rate=500, duration_s=5), lambda: exchange)
    load.start()
    assert load.running
    asyncio.run(asyncio.sleep(0.05))
    run = load.stop()
    assert 0 < run.sent < 2500 and run.stopped_early and exchange.closed
    assert not load.running


def test_enough_clients_that_each_stays_within_half_its_bucket() -> None:
    limit = RateLimitSettings(replenish_rate=50, burst_capacity=100)
    assert clients_needed(100, limit) == 4
    assert clients_needed(400, limit) == 16
    assert clients_needed(101, limit) == 5
    assert clients_needed(400, None) == 1


def run_of(rows: list[tuple[float, str, str | None]], started: float = 1000.0) -> LoadRun:
    run = LoadRun(LoadPlan("http://x/api", rate=4, duration_s=3), started=started)
    for i, (offset, outcome, colour) in enumerate(rows):
        sample = Sample(i, started + offset, latency_s=0.002, colour=colour)
        if outcome.isdigit():
            sample.status = int(outcome)
        else:
            sample.error = outcome
        run.samples.append(sample)
    run.ended = started + 3
    return run


def test_requests_per_second_by_colour_and_outcome() -> None:
    run = run_of([(0.1, "200", "blue"), (0.6, "200", "blue"), (1.2, "200", "blue"),
                  (1.7, "200", "green"), (2.1, "502", None), (2.5, "200", "green")])
    starts, series = per_second(run)
    assert starts == [0.0, 1.0, 2.0]
    assert series == {"502": [0, 0, 1], "blue 200": [2, 1, 0], "green 200": [0, 1, 1]}


def test_switch_instants_come_from_the_listeners_events() -> None:
    events = [{"at": 5.0, "component": "alb", "message": "switch: the listener forwards to "
                                                          "green (was blue)"},
              {"at": 6.0, "component": "gateway-blue-1", "message": "stopping"}]
    assert switch_instants(events) == [Marker(5.0, str(events[0]["message"]))]


def test_evidence_json_markdown_and_svg(tmp_path: Path) -> None:
    run = run_of([(0.1, "200", "blue"), (1.2, "200", "green"), (2.2, "200", "green")])
    switch = Marker(1001.0, "switch to green")
    events = [{"at": 1001.0, "component": "alb", "message": "switch to green"}]
    paths = write_evidence(run, "blue_green", "Deploy: no request lost!", markers=[switch],
                           events=events, facts={"outcome": "promoted"}, root=tmp_path)
    assert paths["json"] == tmp_path / "blue_green" / "deploy-no-request-lost.json"
    document = json.loads(paths["json"].read_text())
    assert document["summary"]["sent"] == 3 and document["summary"]["not_2xx"] == 0
    assert document["markers"] == [{"at": 1001.0, "offset_s": 1.0,
                                    "label": "switch to green"}]
    assert document["per_second"]["series"] == {"blue 200": [1, 0, 0], "green 200": [0, 1, 1]}
    assert document["samples"]["rows"][1] == [1.2, 2.0, "200", "green", None]
    table = paths["md"].read_text()
    assert "| 1 | 0 | 1 | switch to green |" in table
    assert "- outcome: promoted" in table
    chart = ElementTree.fromstring(paths["svg"].read_text())  # well-formed
    assert len(chart.findall("{http://www.w3.org/2000/svg}polyline")) == 2
    assert slug("A  green that FAILS") == "a-green-that-fails"


# -- the HTTP client against a real (local) server ----------------------------------------


class _Handler(socketserver.StreamRequestHandler):
    """Answers keep-alive GETs with colour headers; closes the connection without an answer
    instead of answering the requests numbered in ``drop`` (1 is the first)."""

    seen: ClassVar[list[bytes]] = []
    drop: ClassVar[set[int]] = set()

    def handle(self) -> None:
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            self.seen.append(head)
            if len(self.seen) in self.drop:
                return
            body = b'{"ok":true}'
            self.wfile.write(b"HTTP/1.1 200 OK\r\nx-come2us-colour: green\r\n"
                             b"x-come2us-release: v2\r\ncontent-length: %d\r\n\r\n%b"
                             % (len(body), body))


@pytest.fixture
def server() -> Iterator[tuple[str, list[bytes]]]:
    _Handler.seen = []
    _Handler.drop = set()
    listener = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    listener.daemon_threads = True
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    port = listener.server_address[1]
    yield f"http://127.0.0.1:{port}/api/products?size=1", _Handler.seen
    listener.shutdown()
    listener.server_close()


def exchange_four(url: str) -> list[Answer | str]:
    async def main() -> list[Answer | str]:
        exchange = HttpExchange(url, [{"Authorization": "Bearer a"},
                                      {"Authorization": "Bearer b"}], connections=1)
        results: list[Answer | str] = []
        for index in range(4):
            try:
                results.append(await exchange(index))
            except ConnectionError as err:
                results.append(type(err).__name__)
        await exchange.aclose()
        return results

    return asyncio.run(main())


def test_http_exchange_keeps_connections_alive(server: tuple[str, list[bytes]]) -> None:
    url, seen = server
    assert exchange_four(url) == [Answer(200, "green", "v2")] * 4
    assert seen[0].startswith(b"GET /api/products?size=1 HTTP/1.1\r\n")
    assert b"Authorization: Bearer a" in seen[0] and b"Authorization: Bearer b" in seen[1]


def test_a_kept_alive_connection_closed_under_a_request_is_retried_once_and_marked(
        server: tuple[str, list[bytes]]) -> None:
    url, seen = server
    _Handler.drop = {3}  # the third request arrives on a reused connection
    results = exchange_four(url)
    assert results[2] == Answer(200, "green", "v2", retried=True)
    assert results[3] == Answer(200, "green", "v2")
    assert len(seen) == 5


def test_a_new_connection_closed_without_an_answer_is_a_failure(
        server: tuple[str, list[bytes]]) -> None:
    url, _ = server
    _Handler.drop = {1, 3, 4}  # the first on a new connection; the third, and its retry
    results = exchange_four(url)
    assert results == ["NothingReceived", Answer(200, "green", "v2"), "NothingReceived",
                       Answer(200, "green", "v2")]


def test_chunked_and_close_delimited_bodies_are_read() -> None:
    async def parse(raw: bytes) -> tuple[int, dict[str, str], bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await read_response(reader)

    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert asyncio.run(parse(chunked)) == (200, {"transfer-encoding": "chunked"}, True)
    closing = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\nbody"
    status, _, keep = asyncio.run(parse(closing))
    assert status == 503 and not keep
