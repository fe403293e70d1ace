"""Two real discovery processes, one per AZ, peers of each other, with real Eureka clients.

The servers run as ``python -m services.discovery`` (the way the runtime starts them) on free
ports of 127.0.1.161 (AZ-a) and 127.0.2.161 (AZ-b) — above the hosts the model gives its
components. The clients are the real ``py-eureka-client`` package, in a process of its own
(`py_eureka_client_app.py`), and our `DiscoveryClient`, on an event loop in a thread of the
test process. Every wait is a condition with a deadline; the eviction bound comes from the
servers' settings.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from services.common.eureka import DiscoveryClient, EurekaClient, Instance, Registration
from services.discovery.registry import RegistrySettings
from services.discovery.settings import DiscoverySettings
from stack.waiting import wait_for

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
PY_CLIENT_APP = Path(__file__).with_name("py_eureka_client_app.py")
HOST_A, HOST_B = "127.0.1.161", "127.0.2.161"
PY_CLIENT_HOST, OUR_CLIENT_HOST = "127.0.1.162", "127.0.2.163"
LEASE = RegistrySettings(lease_duration_s=5, renewal_interval_s=1)
EVICTION_INTERVAL_S = 1.0
READY_TIMEOUT_S = 20.0
# Replication and registry refreshes happen within a second or two; CI machines are slower.
PROPAGATION_TIMEOUT_S = 10.0
# The test sees an eviction only when it next polls; that poll, and the request, come on top
# of the server's bound.
POLL_S = 0.05
OBSERVATION_SLACK_S = 0.3
JSON = {"Accept": "application/json"}


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class DiscoveryProcess:
    """One ``python -m services.discovery`` and what we measured of it."""

    settings: DiscoverySettings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return self.settings.url

    def start(self) -> None:
        settings = self.settings
        command = [sys.executable, "-m", "services.discovery", "--host", settings.host,
                   "--port", str(settings.port),
                   "--lease-duration-s", str(settings.registry.lease_duration_s),
                   "--renewal-interval-s", str(settings.registry.renewal_interval_s),
                   "--eviction-interval-s", str(settings.eviction_interval_s),
                   "--no-self-preservation"]
        for peer in settings.peers:
            command += ["--peer", peer]
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log,
                                            stderr=subprocess.STDOUT)
        wait_for(self._healthy, timeout=READY_TIMEOUT_S, what=f"discovery at {self.url}",
                 interval=0.02)
        self.startup_s = time.monotonic() - started

    def _healthy(self) -> tuple[bool | None, str]:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"discovery exited with {self.process.returncode}:\n"
                                 + self.log_tail())
        try:
            response = httpx.get(f"http://{self.settings.host}:{self.settings.port}/health",
                                 timeout=1.0)
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"
        return (True if response.status_code == 200 else None), f"HTTP {response.status_code}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def rss_kib(self) -> int:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmRSS:"))

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event:
                found.append(record)
        return found

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=JSON, timeout=2.0)


@dataclass
class Pair:
    a: DiscoveryProcess
    b: DiscoveryProcess

    @property
    def urls(self) -> list[str]:
        return [self.a.url, self.b.url]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    port_a, port_b = free_port(HOST_A), free_port(HOST_B)
    url_a, url_b = f"http://{HOST_A}:{port_a}/eureka", f"http://{HOST_B}:{port_b}/eureka"
    servers = Pair(
        DiscoveryProcess(DiscoverySettings(host=HOST_A, port=port_a, peers=(url_b,),
                                           registry=LEASE,
                                           eviction_interval_s=EVICTION_INTERVAL_S),
                         tmp_path / "discovery-a.log"),
        DiscoveryProcess(DiscoverySettings(host=HOST_B, port=port_b, peers=(url_a,),
                                           registry=LEASE,
                                           eviction_interval_s=EVICTION_INTERVAL_S),
                         tmp_path / "discovery-b.log"))
    try:
        servers.a.start()
        servers.b.start()
        yield servers
    finally:
        servers.a.stop()
        servers.b.stop()
        for server in (servers.a, servers.b):
            if server.process is not None:
                print(f"--- {server.log_path.name} ---\n{server.log_tail()}")


class LoopThread:
    """An event loop in a thread: our asyncio client runs there while the test polls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@dataclass
class PyEurekaClientProcess:
    """py-eureka-client registering ``COMPAT-PY`` and looking for ``OUR-APP``."""

    process: subprocess.Popen[str]
    port: int
    output: list[dict[str, Any]]

    def last_seen(self) -> list[dict[str, Any]] | None:
        seen = [line for line in self.output if line.get("event") == "seen"]
        return seen[-1]["instances"] if seen else None


@pytest.fixture
def py_client(pair: Pair) -> Iterator[PyEurekaClientProcess]:
    port = 9090
    process = subprocess.Popen(
        [sys.executable, str(PY_CLIENT_APP), "--servers", ",".join(pair.urls),
         "--app", "compat-py", "--host", PY_CLIENT_HOST, "--port", str(port),
         "--lease-duration-s", str(LEASE.lease_duration_s), "--look-for", "our-app"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output: list[dict[str, Any]] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                output.append(json.loads(line))
            except ValueError:
                continue

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield PyEurekaClientProcess(process, port, output)
    finally:
        process.kill()  # its heartbeat thread cannot be stopped otherwise
        process.wait(timeout=10)
        reader.join(timeout=5)


@pytest.fixture
def our_client(pair: Pair, loop: LoopThread) -> Iterator[DiscoveryClient]:
    registration = Registration(
        app="our-app", instance_id=f"our-app:{OUR_CLIENT_HOST}:9091", host=OUR_CLIENT_HOST,
        port=9091, metadata={"colour": "blue", "zone": "AZ-a"},
        renewal_interval_s=LEASE.renewal_interval_s,
        lease_duration_s=LEASE.lease_duration_s)

    async def create() -> DiscoveryClient:
        client = DiscoveryClient(pair.urls, registration, refresh_interval_s=0.5)
        await client.start()
        return client

    client = loop.run(create())
    yield client
    loop.run(client.stop())


def registered(server: DiscoveryProcess, app: str) -> Callable[[], tuple[dict[str, Any] | None,
                                                                         str]]:
    """An attempt for wait_for: the first instance of ``app`` on ``server``, as JSON."""
    def attempt() -> tuple[dict[str, Any] | None, str]:
        try:
            response = server.get(f"/apps/{app}")
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}"
        instance: dict[str, Any] = response.json()["application"]["instance"][0]
        return instance, f"{instance['instanceId']} {instance['status']}"
    return attempt


def test_py_eureka_client_and_our_client_find_each_other_through_either_server(
        pair: Pair, py_client: PyEurekaClientProcess, our_client: DiscoveryClient,
        loop: LoopThread) -> None:
    # py-eureka-client's registration, on the server it used and on its peer.
    for server in (pair.a, pair.b):
        instance = wait_for(registered(server, "COMPAT-PY"), timeout=PROPAGATION_TIMEOUT_S,
                            what=f"COMPAT-PY registered on {server.url}")
        assert (instance["hostName"], instance["port"]["$"]) == (PY_CLIENT_HOST, py_client.port)
        assert instance["metadata"]["colour"] == "green"
        assert instance["status"] == "UP"
    # It went to the first server; the second has it by replication.
    assert not any(e["app"] == "COMPAT-PY" for e in pair.a.events("registered")
                   if e["replication"])
    assert any(e["app"] == "COMPAT-PY" for e in pair.b.events("registered")
               if e["replication"])

    # Our client finds it ...
    async def lookup() -> list[Instance]:
        return our_client.instances("compat-py")

    def ours_sees_it() -> tuple[list[Instance] | None, str]:
        found = loop.run(lookup())
        return (found or None), f"instances: {found}"

    [found] = wait_for(ours_sees_it, timeout=PROPAGATION_TIMEOUT_S,
                       what="our client to see COMPAT-PY")
    assert (found.host, found.port, found.metadata["zone"]) == (PY_CLIENT_HOST, 9090, "AZ-b")

    # ... and py-eureka-client, which reads the registry as XML, finds ours.
    def py_sees_ours() -> tuple[list[dict[str, Any]] | None, str]:
        if py_client.process.poll() is not None:
            raise AssertionError(f"py-eureka-client exited with {py_client.process.returncode}")
        seen = py_client.last_seen()
        return (seen or None), f"reported: {py_client.output[-3:]}"

    [theirs] = wait_for(py_sees_ours, timeout=PROPAGATION_TIMEOUT_S,
                        what="py-eureka-client to see OUR-APP")
    assert (theirs["host"], theirs["port"]) == (OUR_CLIENT_HOST, 9091)
    assert theirs["metadata"] == {"colour": "blue", "zone": "AZ-a"}

    for server in (pair.a, pair.b):
        print(f"{server.url}: ready in {server.startup_s:.2f} s, "
              f"RSS {server.rss_kib() / 1024:.1f} MiB with 2 instances registered")


def test_an_instance_that_stops_heartbeating_is_evicted_within_lease_plus_eviction_interval(
        pair: Pair, loop: LoopThread) -> None:
    registration = Registration(app="short-lived", instance_id="short-lived-1",
                                host=OUR_CLIENT_HOST, port=9092,
                                lease_duration_s=LEASE.lease_duration_s)
    eureka = EurekaClient([pair.a.url])

    async def register_and_renew() -> None:
        await eureka.register(registration, last_dirty_ms=1)
        for _ in range(2):
            await asyncio.sleep(0.2)
            assert await eureka.renew(registration.app, registration.instance_id,
                                      last_dirty_ms=1)

    loop.run(register_and_renew())
    last_heartbeat = time.monotonic()  # the server renewed the lease just before this
    loop.run(eureka.aclose())
    lease = wait_for(registered(pair.a, "SHORT-LIVED"), timeout=1.0,
                     what="the lease on the first server")["leaseInfo"]
    assert lease["durationInSecs"] == LEASE.lease_duration_s
    bound_s = lease["durationInSecs"] + EVICTION_INTERVAL_S

    evicted_after: dict[str, float] = {}

    def both_evicted() -> tuple[bool | None, str]:
        for server in (pair.a, pair.b):
            if server.url not in evicted_after and \
                    server.get("/apps/SHORT-LIVED").status_code == 404:
                evicted_after[server.url] = time.monotonic() - last_heartbeat
        done = len(evicted_after) == 2
        return (True if done else None), f"evicted so far: {evicted_after}"

    wait_for(both_evicted, timeout=bound_s + PROPAGATION_TIMEOUT_S,
             what="both servers to evict SHORT-LIVED", interval=POLL_S)
    for url, elapsed in evicted_after.items():
        print(f"{url}: evicted {elapsed:.2f} s after the last heartbeat (bound {bound_s:g} s)")
        assert lease["durationInSecs"] - 0.1 <= elapsed <= bound_s + OBSERVATION_SLACK_S, url
    [event] = pair.a.events("evicted")
    assert event["instance_id"] == "short-lived-1"
    assert 0 <= event["overdue_ms"] <= EVICTION_INTERVAL_S * 1000 + 100


def test_with_the_first_server_stopped_the_second_answers_and_keeps_the_registrations(
        pair: Pair, py_client: PyEurekaClientProcess, our_client: DiscoveryClient) -> None:
    for app in ("COMPAT-PY", "OUR-APP"):
        wait_for(registered(pair.b, app), timeout=PROPAGATION_TIMEOUT_S,
                 what=f"{app} replicated to the second server")
    pair.a.stop()
    stopped_ms = time.time() * 1000
    # Both clients fail over to the second server and keep their leases alive there, beyond
    # a whole lease plus an eviction interval after the first server went away.
    survived_ms = stopped_ms + (LEASE.lease_duration_s + EVICTION_INTERVAL_S) * 1000

    for app in ("COMPAT-PY", "OUR-APP"):
        def renewed_past_the_lease(app: str = app) -> tuple[dict[str, Any] | None, str]:
            instance, seen = registered(pair.b, app)()
            if instance is None:
                raise AssertionError(f"{app} disappeared from the second server: {seen}")
            renewed = instance["leaseInfo"]["lastRenewalTimestamp"]
            return (instance if renewed >= survived_ms else None), \
                f"last renewal {(renewed - stopped_ms) / 1000:.1f} s after the stop"

        instance = wait_for(renewed_past_the_lease,
                            timeout=LEASE.lease_duration_s + EVICTION_INTERVAL_S
                            + PROPAGATION_TIMEOUT_S,
                            what=f"{app} renewed on the second server past a lease")
        assert instance["status"] == "UP"
    whole = pair.b.get("/apps").json()["applications"]
    assert sorted(app["name"] for app in whole["application"]) == ["COMPAT-PY", "OUR-APP"]
