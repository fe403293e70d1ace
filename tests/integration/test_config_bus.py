"""The config server process, a real Kafka and two service instances: a committed change reaches
every running instance through ``busrefresh``, and a targeted refresh reaches only its target.

The server runs as ``python -m services.config`` (the way the runtime starts it) on a free port
of 127.0.1.151 — AZ-a's range, above the hosts the model gives its components — against a
scratch git repository. The two instances are a `BusListener` and `RefreshableSettings` each,
on one event loop in a thread of the test process, as they would run in a service's lifespan.
Kafka is a broker of this module's own (tests/integration/conftest.py); each test publishes on a
topic of its own, so one test's bus never reaches another's instances.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel

from services.common.bus import BusListener
from services.common.settings import RefreshableSettings
from stack.waiting import wait_for
from tests.scratch_git import ScratchRepo

T = TypeVar("T")

CONFIG_HOST = IPv4Address("127.0.1.151")
SERVER_READY_TIMEOUT_S = 20.0
SUBSCRIBE_TIMEOUT_S = 20.0
# From POST busrefresh to every instance holding the new value: Kafka delivery plus one
# config-server fetch per instance; measured at ~0.05 s, bounded generously for slow CI.
PROPAGATION_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
APPLICATION = "demo"


class Cache(BaseModel):
    ttl_seconds: int


class DemoSettings(BaseModel):
    greeting: str
    cache: Cache


def demo_yaml(greeting: str, ttl: int) -> str:
    return f"greeting: {greeting}\ncache:\n  ttl-seconds: {ttl}\n"


def free_port(host: IPv4Address) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((str(host), 0))
        return int(probe.getsockname()[1])


class LoopThread:
    """An asyncio loop in a thread: the instances' home while the test thread waits on them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="instances",
                                        daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(STOP_TIMEOUT_S)
        self.loop.close()


@dataclass
class Instance:
    settings: RefreshableSettings[DemoSettings]
    listener: BusListener


@dataclass
class ConfigServer:
    url: str
    started_in_s: float


@pytest.fixture
def config_repo(tmp_path: Path) -> ScratchRepo:
    repo = ScratchRepo(tmp_path / "config")
    repo.commit({
        "config-repo/application.yml": "logging:\n  level:\n    root: INFO\n",
        f"config-repo/{APPLICATION}.yml": demo_yaml("hello", 60),
    }, "first settings")
    return repo


@pytest.fixture
def bus_topic() -> str:
    return f"springCloudBus.test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kafka(kafka_bootstrap: str) -> str:
    return kafka_bootstrap


def start_config_server(repo: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port(CONFIG_HOST)
    command = [sys.executable, "-m", "services.config", "--host", str(CONFIG_HOST),
               "--port", str(port), "--repo", str(repo), "--search-path", "config-repo", *extra]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    return process, f"http://{CONFIG_HOST}:{port}"


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def config_server(config_repo: ScratchRepo, kafka: str, bus_topic: str,
                  tmp_path: Path) -> Iterator[ConfigServer]:
    log = tmp_path / "config-server.log"
    began = time.monotonic()
    process, url = start_config_server(config_repo.path, log, "--kafka", kafka,
                                       "--bus-topic", bus_topic)
    try:
        def healthy() -> tuple[bool | None, str]:
            if process.poll() is not None:
                raise AssertionError(f"config server exited {process.returncode}: "
                                     f"{log.read_text()}")
            try:
                response = httpx.get(f"{url}/actuator/health", timeout=1.0)
            except httpx.TransportError as error:
                return None, repr(error)
            return (True if response.status_code == 200 else None), response.text

        wait_for(healthy, timeout=SERVER_READY_TIMEOUT_S, what="config server health")
        yield ConfigServer(url, time.monotonic() - began)
    finally:
        stop(process)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture
def instances(config_server: ConfigServer, kafka: str, bus_topic: str,
              loop: LoopThread) -> Iterator[dict[str, Instance]]:
    """Two instances of one application, each loaded from the server and listening."""
    started: dict[str, Instance] = {}
    try:
        for name in ("127.0.1.161:8080", "127.0.1.162:8080"):
            settings = RefreshableSettings.load(DemoSettings, APPLICATION, "local",
                                                config_server.url, attempts=3)
            listener = BusListener(kafka, APPLICATION, name, [settings], topic=bus_topic)
            started[name] = Instance(settings, listener)
            loop.run(listener.start(), SUBSCRIBE_TIMEOUT_S)
        for instance in started.values():
            loop.run(instance.listener.wait_ready(SUBSCRIBE_TIMEOUT_S), SUBSCRIBE_TIMEOUT_S + 1)
        yield started
    finally:
        for instance in started.values():
            loop.run(instance.listener.stop(), STOP_TIMEOUT_S)


def wait_until(predicate: Callable[[], bool], seen: Callable[[], str], what: str) -> float:
    """Seconds until ``predicate`` holds; fails with what was last seen after the deadline."""
    began = time.monotonic()
    wait_for(lambda: (True if predicate() else None, seen()), timeout=PROPAGATION_TIMEOUT_S,
             what=what, interval=0.01)
    return time.monotonic() - began


def values(instances: dict[str, Instance]) -> str:
    return ", ".join(f"{name}: {instance.settings.value!r} (events {instance.listener.events}, "
                     f"refreshes {instance.listener.refreshes})"
                     for name, instance in instances.items())


@pytest.mark.cloud
def test_busrefresh_reaches_every_instance(config_server: ConfigServer,
                                           config_repo: ScratchRepo,
                                           instances: dict[str, Instance]) -> None:
    assert all(i.settings.value.greeting == "hello" for i in instances.values())
    config_repo.commit({f"config-repo/{APPLICATION}.yml": demo_yaml("hello again", 5)})

    changes: list[tuple[str, int, int]] = []
    for name, instance in instances.items():
        instance.settings.on_change(lambda old, new, name=name: changes.append(
            (name, old.cache.ttl_seconds, new.cache.ttl_seconds)))
    response = httpx.post(f"{config_server.url}/actuator/busrefresh", timeout=10.0)
    assert response.status_code == 204

    took = wait_until(
        lambda: all(i.settings.value.greeting == "hello again" for i in instances.values()),
        lambda: values(instances), "every instance sees the committed greeting")
    assert all(i.settings.value.cache.ttl_seconds == 5 for i in instances.values())
    assert sorted(changes) == [(name, 60, 5) for name in sorted(instances)]
    print(f"config server ready in {config_server.started_in_s:.2f} s; "
          f"refresh reached both instances {took * 1000:.0f} ms after busrefresh answered")


@pytest.mark.cloud
def test_a_targeted_refresh_reaches_only_its_target(config_server: ConfigServer,
                                                    config_repo: ScratchRepo,
                                                    instances: dict[str, Instance]) -> None:
    target, other = instances["127.0.1.161:8080"], instances["127.0.1.162:8080"]
    config_repo.commit({f"config-repo/{APPLICATION}.yml": demo_yaml("only you", 60)})

    response = httpx.post(
        f"{config_server.url}/actuator/busrefresh/{APPLICATION}:127.0.1.161:8080", timeout=10.0)
    assert response.status_code == 204
    wait_until(lambda: target.settings.value.greeting == "only you",
               lambda: values(instances), "the target sees the new greeting")
    # The other instance received the very same event and let it pass.
    wait_until(lambda: other.listener.events >= 1, lambda: values(instances),
               "the other instance receives the event")
    assert other.settings.value.greeting == "hello"
    assert other.listener.refreshes == 0

    # Addressed by application, every instance of it refreshes.
    response = httpx.post(f"{config_server.url}/actuator/busrefresh/{APPLICATION}", timeout=10.0)
    assert response.status_code == 204
    wait_until(lambda: other.settings.value.greeting == "only you",
               lambda: values(instances), "the application-wide refresh reaches the other")


def test_config_server_refuses_a_path_that_is_not_a_repository(tmp_path: Path) -> None:
    process, _url = start_config_server(tmp_path, tmp_path / "server.log")
    try:
        assert process.wait(SERVER_READY_TIMEOUT_S) == 2
    finally:
        stop(process)
    output = (tmp_path / "server.log").read_text()
    assert f"config-server: cannot serve {tmp_path}" in output
    assert "not a git repository" in output


def test_a_service_fails_clearly_when_the_config_server_is_down() -> None:
    """What ``python -m services.x`` prints and exits with when no config server answers."""
    url = f"http://{CONFIG_HOST}:{free_port(CONFIG_HOST)}"
    script = (
        "from pydantic import BaseModel\n"
        "from services.common.settings import Backoff, load_or_exit, load_settings\n"
        "class S(BaseModel):\n    greeting: str\n"
        f"load_or_exit(lambda: load_settings(S, 'demo', 'local', {url!r}, attempts=3,\n"
        "              backoff=Backoff(initial_s=0.05)), program='demo')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 78
    last_line = done.stderr.strip().splitlines()[-1]  # warnings of each attempt come before
    assert last_line.startswith(f"demo: cannot start: config server {url} is unavailable: "
                                f"GET {url}/demo/local failed 3 times")
    assert "last error: ConnectError" in last_line
