"""A bounded, open-loop, constant-rate load generator: the traffic that proves blue/green.

A deploy "loses no request" only if every request sent during it was answered, so the
generator records each one — when it was issued, its status (or the connection error that
came instead), the colour and release that answered it (the gateway's ``x-come2us-colour`` and
``x-come2us-release``), its latency — and a run is judged from those records alone.

Open loop, as real users are: request *i* is issued at ``start + i / rate`` whether or not
earlier ones have been answered (a closed loop would slow down exactly when the platform
struggles, and hide it). A scheduler that fell behind — two cores shared with the cloud it
loads — catches up at once rather than skipping, and `LoadRun.achieved_rate` reports what was
really issued. Every run is bounded in time (``duration_s``) and count (``max_requests``), and
every request in time (``timeout_s``).

The gateway limits each client (``gateway.rate-limit``: a token bucket per token subject, or
per client address without one — and every request of a load generator comes from one address).
The load therefore spreads itself over enough signed-in clients (`client_tokens`) that each
stays well inside its bucket: the load tests the deploy, never the limiter.

    plan = LoadPlan(url=model.load_balancer.url + "/api/products?size=1", rate=100,
                    duration_s=60)
    load = BackgroundLoad(plan, lambda: HttpExchange(plan.url, headers))
    load.start(); ...; run = load.stop()
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from services.common.properties import unflatten
from services.common.settings import environment_properties
from services.gateway.routes import compile_routes
from services.gateway.settings import RateLimitSettings, from_config
from stack.local.services import PROFILE
from stack.local.token_forge import good_token
from stack.local.workspace import Workspace
from stack.model import Platform

COLOUR_HEADER = "x-come2us-colour"
RELEASE_HEADER = "x-come2us-release"
# Each client asks at most this share of its bucket's replenish rate: the gateways' shared
# buckets are synchronised in batches, so a client near its rate could see a 429 by chance.
CLIENT_SHARE = 0.5
TOKEN_TTL_S = 900  # longer than any bounded run (a bench level, a scenario)


@dataclass(frozen=True)
class LoadPlan:
    """What to send: one GET, at ``rate`` per second, at most ``duration_s`` and
    ``max_requests`` (whichever comes first), each answered within ``timeout_s``."""

    url: str
    rate: float
    duration_s: float
    max_requests: int = 1_000_000
    timeout_s: float = 10.0
    connections: int = 64  # at most this many requests in flight on as many connections

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0 or self.max_requests <= 0:
            raise ValueError(f"a load needs a positive rate, duration and count: {self}")

    @property
    def planned(self) -> int:
        """How many requests the plan issues if nobody stops it early."""
        return min(self.max_requests, max(1, math.floor(self.rate * self.duration_s)))


@dataclass(frozen=True)
class Answer:
    status: int
    colour: str | None = None
    release: str | None = None
    retried: bool = False  # sent again after a kept-alive connection closed under it


@dataclass
class Sample:
    """One request: issued at ``sent`` (epoch seconds, comparable with the control plane's
    events), answered with ``status`` or failed with ``error`` after ``latency_s``."""

    index: int
    sent: float
    latency_s: float | None = None
    status: int | None = None
    error: str | None = None
    colour: str | None = None
    release: str | None = None
    retried: bool = False

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def outcome(self) -> str:
        """``200``, ``502`` or the error's name: how the request ended, in one word."""
        return str(self.status) if self.status is not None else (self.error or "unanswered")

    def row(self, origin: float) -> list[Any]:
        """Compact form for the evidence: offset, latency ms, outcome, colour, release."""
        return [round(self.sent - origin, 4),
                round(self.latency_s * 1000, 2) if self.latency_s is not None else None,
                self.outcome, self.colour, self.release]


@dataclass
class LoadRun:
    plan: LoadPlan
    started: float
    ended: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def sent(self) -> int:
        return len(self.samples)

    @property
    def answered(self) -> int:
        return sum(1 for s in self.samples if s.answered)

    @property
    def missing(self) -> list[Sample]:
        """Requests that got no HTTP answer at all: refused, reset, timed out."""
        return [s for s in self.samples if not s.answered]

    @property
    def failures(self) -> list[Sample]:
        """Every request that was not answered 2xx (the missing ones included)."""
        return [s for s in self.samples if not s.ok]

    @property
    def achieved_rate(self) -> float:
        """Requests issued per second, from the first to the last one issued."""
        if len(self.samples) < 2:
            return 0.0
        span = self.samples[-1].sent - self.samples[0].sent
        return (len(self.samples) - 1) / span if span > 0 else 0.0

    def latency_ms(self, quantile: float) -> float:
        values = sorted(s.latency_s for s in self.samples if s.latency_s is not None)
        if not values:
            return 0.0
        return values[min(len(values) - 1, math.ceil(quantile * len(values)) - 1)] * 1000

    def outcomes(self) -> dict[str, int]:
        """How many requests ended each way, keyed like a series: ``green 200``, ``502``."""
        counts: dict[str, int] = {}
        for sample in self.samples:
            key = series_key(sample)
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def sent_between(self, start: float, end: float = math.inf) -> list[Sample]:
        return [s for s in self.samples if start <= s.sent < end]

    def summary(self) -> dict[str, Any]:
        return {
            "asked_rate": self.plan.rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "sent": self.sent,
            "answered": self.answered,
            "missing": len(self.missing),
            "not_2xx": len(self.failures),
            "retried_on_closed_keepalive": sum(1 for s in self.samples if s.retried),
            "outcomes": self.outcomes(),
            "latency_ms": {"p50": round(self.latency_ms(0.50), 2),
                           "p99": round(self.latency_ms(0.99), 2),
                           "max": round(self.latency_ms(1.0), 2)},
            "seconds": round(self.ended - self.started, 2),
            "stopped_early": self.stopped_early,
        }

    def describe(self) -> str:
        """One line for an assertion message or a bench row."""
        failures = self.failures
        first = ", ".join(f"#{s.index} {s.outcome} at +{s.sent - self.started:.2f} s"
                          for s in failures[:5])
        return (f"{self.sent} sent at {self.achieved_rate:.1f}/s (asked {self.plan.rate:g}), "
                f"{self.answered} answered, {len(failures)} not 2xx, "
                f"{sum(1 for s in self.samples if s.retried)} retried on a closed keep-alive"
                + (f" (first: {first})" if first else "")
                + f"; outcomes {self.outcomes()}; p50 {self.latency_ms(0.5):.1f} ms, "
                  f"p99 {self.latency_ms(0.99):.1f} ms")


def series_key(sample: Sample) -> str:
    """Which line of the chart a request belongs to: its colour and how it ended."""
    return f"{sample.colour} {sample.outcome}" if sample.colour else sample.outcome


class Exchange(Protocol):
    """One request/response; raising means no HTTP answer (the error's name is recorded)."""

    async def __call__(self, index: int) -> Answer: ...

    async def aclose(self) -> None: ...


async def run_load(plan: LoadPlan, exchange: Exchange,
                   should_stop: Callable[[], bool] = lambda: False,
                   wall: Callable[[], float] = time.time) -> LoadRun:
    """Issue the plan's requests open-loop; return once every issued one has ended."""
    loop = asyncio.get_running_loop()
    run = LoadRun(plan, started=wall())
    origin = loop.time()
    in_flight: set[asyncio.Task[None]] = set()
    for index in range(plan.planned):
        delay = origin + index / plan.rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if should_stop():
            run.stopped_early = True
            break
        sample = Sample(index, wall())
        run.samples.append(sample)
        task = asyncio.create_task(_one(exchange, sample, plan.timeout_s))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)
    run.ended = wall()
    return run


async def _one(exchange: Exchange, sample: Sample, timeout_s: float) -> None:
    began = time.perf_counter()
    try:
        answer = await asyncio.wait_for(exchange(sample.index), timeout_s)
    except TimeoutError:
        sample.error = "timeout"
    except Exception as err:  # what a client would see: refused, reset, closed early
        sample.error = type(err).__name__
    else:
        sample.status, sample.colour, sample.release, sample.retried = \
            answer.status, answer.colour, answer.release, answer.retried
    sample.latency_s = time.perf_counter() - began


# -- HTTP/1.1 over keep-alive connections --------------------------------------------------


class ClosedEarly(ConnectionError):
    """The connection closed before a whole response arrived."""


class NothingReceived(ClosedEarly):
    """The connection closed before the first byte of a response."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class HttpExchange:
    """GETs one URL over a pool of keep-alive connections, cycling through ``headers`` (one
    set per client). A plain asyncio client: httpx costs ~1 ms of CPU a request, which the
    platform under test would lose on a 2-core machine.

    One retry only, the one every HTTP client makes (RFC 9110 §9.2.2, e.g. Go's net/http): a
    GET written to a *reused* connection that closes before the first byte of an answer is
    sent once more on a new connection — the server closed an idle connection as the request
    left, so it never saw it. It is marked `Answer.retried` and counted in the evidence. Any
    other failure, and any failure on a new connection, is a failure."""

    def __init__(self, url: str, headers: Sequence[Mapping[str, str]] = ({},),
                 connections: int = 64, connect_timeout_s: float = 2.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"an http:// URL with a host is needed, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._requests = [self._head(target, parts.netloc, h) for h in headers] or \
            [self._head(target, parts.netloc, {})]
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)
        self._connect_timeout_s = connect_timeout_s

    @staticmethod
    def _head(target: str, host: str, headers: Mapping[str, str]) -> bytes:
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "User-Agent: come2us-load",
                 *(f"{name}: {value}" for name, value in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def __call__(self, index: int) -> Answer:
        request = self._requests[index % len(self._requests)]
        async with self._slots:
            connection = self._reusable()
            if connection is not None:
                try:
                    return await self._exchange(connection, request)
                except (NothingReceived, ConnectionResetError, BrokenPipeError):
                    pass  # closed under us while idle: the server never saw the request
                answer = await self._exchange(await self._open(), request)
                return Answer(answer.status, answer.colour, answer.release, retried=True)
            return await self._exchange(await self._open(), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> Answer:
        try:
            connection.writer.write(request)
            status, headers, keep = await read_response(connection.reader)
        except BaseException:
            connection.writer.close()
            raise
        if keep:
            self._idle.append(connection)
        else:
            connection.writer.close()
        return Answer(status, headers.get(COLOUR_HEADER), headers.get(RELEASE_HEADER))

    def _reusable(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection
            connection.writer.close()
        return None

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self._connect_timeout_s)
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.writer.close()
        self._idle.clear()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bool]:
    """Status, lower-cased headers and whether the connection may be reused; the body is
    read (Content-Length, chunked, or to the end) and dropped."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial:
            raise NothingReceived("connection closed before a response") from err
        raise ClosedEarly("connection closed in the middle of a response head") from err
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status = int(rest.split(" ", 1)[0])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    try:
        if "content-length" in headers:
            await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif status not in (204, 304):
            await reader.read()
            keep = False
    except asyncio.IncompleteReadError as err:
        raise ClosedEarly("connection closed in the middle of a response") from err
    return status, headers, keep


# -- running a load beside synchronous code (steps, benchmarks) ----------------------------


class BackgroundLoad:
    """A load in a thread of its own with its own event loop, so a step can start it, run a
    deploy, and stop it: ``start()``, then ``stop()`` returns the `LoadRun`."""

    def __init__(self, plan: LoadPlan, exchange: Callable[[], Exchange]) -> None:
        self.plan = plan
        self._exchange = exchange
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run: LoadRun | None = None
        self._error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this load was started already")
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        async def main() -> LoadRun:
            exchange = self._exchange()
            try:
                return await run_load(self.plan, exchange, self._stop.is_set)
            finally:
                await exchange.aclose()

        try:
            self._run = _event_loop_runner(main)
        except BaseException as err:  # reported by stop()
            self._error = err

    def stop(self) -> LoadRun:
        """Stop issuing, wait for the requests in flight (each bounded by the plan's
        timeout), and return the run."""
        if self._thread is None:
            raise RuntimeError("this load was never started")
        self._stop.set()
        self._thread.join(self.plan.timeout_s + 30.0)
        if self._thread.is_alive():
            raise RuntimeError(f"the load did not end within {self.plan.timeout_s + 30:g} s "
                               f"of being stopped")
        if self._error is not None:
            raise RuntimeError(f"the load failed: {self._error!r}") from self._error
        assert self._run is not None
        return self._run

    def wait(self) -> LoadRun:
        """Let the run end by its own bounds (duration, count), then return it."""
        if self._thread is None:
            raise RuntimeError("this load was never started")
        self._thread.join(self.plan.duration_s + self.plan.timeout_s + 30.0)
        return self.stop()


def _event_loop_runner(main: Callable[[], Any]) -> LoadRun:
    """uvloop when present (less CPU per request on a machine the load shares), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(main())  # type: ignore[no-any-return]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())  # type: ignore[no-any-return]


# -- clients within the gateway's per-client limit -----------------------------------------


def served_rate_limit(model: Platform, path: str, method: str = "GET"
                      ) -> RateLimitSettings | None:
    """The per-client limit the gateway applies to ``path`` now, as the config server
    serves it (the route's own limiter, else the default), or None when unlimited."""
    config = model.compute.instances_of("config")[0].node.address
    response = httpx.get(f"http://{config}/gateway/{PROFILE}", timeout=5.0, trust_env=False)
    response.raise_for_status()
    settings = from_config(unflatten(environment_properties(response.json())))
    route = compile_routes(settings).match(method.encode(), path.split("?", 1)[0])
    if route is None:
        raise LookupError(f"no gateway route matches {method} {path}")
    return route.rate_limit


def clients_needed(rate: float, limit: RateLimitSettings | None) -> int:
    """How many clients share ``rate`` so that each asks at most `CLIENT_SHARE` of its
    bucket's replenish rate."""
    if limit is None:
        return 1
    per_client = limit.replenish_rate / limit.requested_tokens * CLIENT_SHARE
    return max(1, math.ceil(rate / per_client))


def client_tokens(workspace: Workspace, count: int, prefix: str = "load"
                  ) -> list[dict[str, str]]:
    """Authorization headers of ``count`` distinct signed-in clients (tokens signed as the
    user service signs them), one header set per client."""
    tokens = [good_token(workspace, subject=f"{prefix}-{i}", ttl_s=TOKEN_TTL_S)
              for i in range(count)]
    return [{"Authorization": f"Bearer {token.token}"} for token in tokens]
