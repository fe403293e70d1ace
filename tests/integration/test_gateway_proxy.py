"""The gateway as a real process between real HTTP clients, two FastAPI services and Redis.

Everything runs on free ports of AZ-a's range above the hosts the model uses (127.0.1.171-174):
two backends (``tests/gateway_backend.py``, instances "a" and "b"), a redis-server of our own
(revocations and shared rate limits), and ``python -m services.gateway`` with static settings
and static instances — the same engine the platform runs with config and discovery. A port
nothing listens on plays a dead instance. Waits are conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from redis.asyncio import Redis

from services.common.tokens import Revocation, revoke
from stack.waiting import wait_for
from tests.gateway_backend import pattern
from tests.gateway_tokens import ISSUER, KeyPair, tamper

ROOT = Path(__file__).resolve().parents[2]
BACKEND_A, BACKEND_B, REDIS_HOST, GATEWAY_HOST = (
    "127.0.1.171", "127.0.1.172", "127.0.1.173", "127.0.1.174")
READY_TIMEOUT_S = 20.0
# Pub/sub delivery is milliseconds; the bound leaves room for a loaded CI machine.
REVOCATION_BOUND_S = 1.0
BREAKER_OPEN_WAIT_S = 1.0
RESPONSE_TIMEOUT_MS = 300


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    url: str
    keys: KeyPair
    redis_url: str
    backend_a: str
    backend_b: str
    dead: str
    logs: Path

    def token(self, **claims: Any) -> str:
        return self.keys.token(**claims)


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def wait_http(url: str, what: str) -> None:
    def attempt() -> tuple[bool | None, str]:
        try:
            response = httpx.get(url, timeout=1.0)
            return (True if response.status_code == 200 else None), str(response.status_code)
        except httpx.HTTPError as error:
            return None, repr(error)
    wait_for(attempt, timeout=READY_TIMEOUT_S, what=what)


def settings(stack_ports: dict[str, int], keys: KeyPair, dead: str) -> dict[str, Any]:
    a = f"http://{BACKEND_A}:{stack_ports['a']}"
    return {
        "spring": {"cloud": {"gateway": {
            "httpclient": {"connect-timeout": 500, "response-timeout": "5s"},
            "routes": [
                {"id": "plain", "uri": a, "predicates": ["Path=/plain/**"],
                 "filters": ["StripPrefix=1"]},
                {"id": "balanced", "uri": "lb://backend", "predicates": ["Path=/lb/**"],
                 "filters": ["StripPrefix=1"]},
                {"id": "half-dead", "uri": "lb://half-dead", "predicates": ["Path=/hd/**"],
                 "filters": ["StripPrefix=1"]},
                {"id": "nobody", "uri": "lb://nobody", "predicates": ["Path=/nobody/**"]},
                {"id": "all-dead", "uri": f"http://{dead}", "predicates": ["Path=/dead/**"]},
                {"id": "limited", "uri": a, "predicates": ["Path=/limited/**"],
                 "filters": ["StripPrefix=1",
                             {"name": "RequestRateLimiter",
                              "args": {"redis-rate-limiter.replenishRate": 1,
                                       "redis-rate-limiter.burstCapacity": 3}}]},
                {"id": "slow", "uri": a, "predicates": ["Path=/slow/**"],
                 "filters": ["StripPrefix=1"],
                 "metadata": {"response-timeout": RESPONSE_TIMEOUT_MS}},
                {"id": "fragile", "uri": a, "predicates": ["Path=/fragile/**"],
                 "filters": ["StripPrefix=1"]},
                {"id": "secure", "uri": a, "predicates": ["Path=/secure/**"],
                 "filters": ["StripPrefix=1"]},
            ]}}},
        "gateway": {
            "public": ["/plain/**", "/lb/**", "/hd/**", "/nobody/**", "/dead/**", "/limited/**",
                       "/slow/**", "/fragile/**"],
            "jwt": {"issuer": ISSUER, "public-key": keys.public_pem},
            "circuit-breaker": {"window-size": 20, "minimum-calls": 20,
                                "consecutive-failures": 3,
                                "open-wait": f"{BREAKER_OPEN_WAIT_S}s", "half-open-calls": 1},
            "eject": "30s",
        },
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("gateway")
    keys = KeyPair.generate()
    ports = {"a": free_port(BACKEND_A), "b": free_port(BACKEND_B),
             "redis": free_port(REDIS_HOST), "gateway": free_port(GATEWAY_HOST),
             "dead": free_port(BACKEND_B)}
    dead = f"{BACKEND_B}:{ports['dead']}"
    (work / "gateway.yml").write_text(yaml.safe_dump(settings(ports, keys, dead)))
    redis_url = f"redis://{REDIS_HOST}:{ports['redis']}/0"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(start(["redis-server", "--bind", REDIS_HOST, "--port",
                                str(ports["redis"]), "--save", "", "--appendonly", "no"],
                               work / "redis.log"))
        for name, host in (("a", BACKEND_A), ("b", BACKEND_B)):
            processes.append(start(
                [sys.executable, "-m", "uvicorn", "tests.gateway_backend:app", "--host", host,
                 "--port", str(ports[name]), "--log-level", "warning"],
                work / f"backend-{name}.log", {"BACKEND_NAME": name}))
        processes.append(start(
            [sys.executable, "-m", "services.gateway", "--host", GATEWAY_HOST,
             "--port", str(ports["gateway"]), "--settings-file", str(work / "gateway.yml"),
             "--instance", f"backend={BACKEND_A}:{ports['a']}",
             "--instance", f"backend={BACKEND_B}:{ports['b']}",
             "--instance", f"half-dead={dead}",
             "--instance", f"half-dead={BACKEND_B}:{ports['b']}",
             "--redis-url", redis_url],
            work / "gateway.log"))
        url = f"http://{GATEWAY_HOST}:{ports['gateway']}"
        wait_http(f"http://{BACKEND_A}:{ports['a']}/health", "backend a ready")
        wait_http(f"http://{BACKEND_B}:{ports['b']}/health", "backend b ready")
        wait_http(f"{url}/actuator/health", "gateway ready (revocations loaded)")
        yield Stack(url, keys, redis_url, f"{BACKEND_A}:{ports['a']}",
                    f"{BACKEND_B}:{ports['b']}", dead, work)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=10.0) as http:
        yield http


def assert_error(response: httpx.Response, status: int, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "error", "message", "requestId", "path"}
    assert body["status"] == status and body["path"] == path
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def test_get_and_post_through_plain_and_balanced_routes(client: httpx.Client) -> None:
    response = client.get("/plain/echo/x", params={"q": "shoes"})
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["path"] == "/echo/x" and echoed["query"] == "q=shoes"
    assert echoed["headers"]["x-request-id"] == response.headers["x-request-id"]
    assert echoed["headers"]["x-forwarded-for"]
    seen = {client.post("/lb/echo/y", content=b"body").json()["instance"] for _ in range(6)}
    assert seen == {"a", "b"}                          # round robin over both instances


def test_request_id_is_kept_when_the_client_sends_one(client: httpx.Client) -> None:
    response = client.get("/plain/whoami", headers={"X-Request-Id": "trace-me-42"})
    assert response.headers["x-request-id"] == "trace-me-42"
    assert response.json()["request_id"] == "trace-me-42"


def test_bodies_stream_both_ways(client: httpx.Client) -> None:
    big = pattern(8 * 1024 * 1024 + 13)
    sized = client.post("/plain/upload", content=big).json()
    assert sized["length"] == len(big)
    assert sized["sha256"] == hashlib.sha256(big).hexdigest()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 256 * 1024):
            yield big[start:start + 256 * 1024]

    chunked = client.post("/plain/upload", content=chunks()).json()
    assert chunked["transfer_encoding"] == "chunked"
    assert chunked["sha256"] == sized["sha256"]
    with client.stream("GET", "/plain/download", params={"size": len(big)}) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        digest = hashlib.sha256()
        for part in response.iter_bytes():
            digest.update(part)
    assert digest.hexdigest() == sized["sha256"]


def test_connections_are_kept_alive_both_sides(client: httpx.Client) -> None:
    ports = {client.get("/plain/conn").json()["port"] for _ in range(20)}
    assert len(ports) == 1                             # one pooled upstream connection reused


def test_unknown_route_404(client: httpx.Client) -> None:
    body = assert_error(client.get("/no/such/route"), 404, "/no/such/route")
    assert body["error"] == "Not Found"


@pytest.mark.parametrize("case", ["missing", "garbage", "expired", "tampered", "wrong-issuer",
                                  "other-key"])
def test_bad_tokens_401(client: httpx.Client, stack: Stack, case: str) -> None:
    tokens = {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": stack.token(lifetime_s=-600),
        "tampered": tamper(stack.token()),
        "wrong-issuer": stack.token(issuer="evil"),
        "other-key": KeyPair.generate().token(),
    }
    token = tokens[case]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/secure/whoami", headers=headers)
    assert_error(response, 401, "/secure/whoami")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_good_token_identity_reaches_the_service(client: httpx.Client, stack: Stack) -> None:
    token = stack.token(sub="1001", roles=["USER", "SELLER"])
    response = client.get("/secure/whoami", headers={"Authorization": f"Bearer {token}",
                                                     "X-User-Id": "forged"})
    assert response.status_code == 200
    assert response.json()["user"] == "1001" and response.json()["roles"] == "USER,SELLER"


def test_revoked_session_rejected_within_bound(client: httpx.Client, stack: Stack) -> None:
    token = stack.token(sid="session-to-revoke")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/secure/whoami", headers=headers).status_code == 200

    async def publish() -> None:
        redis = Redis.from_url(stack.redis_url)
        try:
            await revoke(redis, Revocation("sid", "session-to-revoke"))
        finally:
            await redis.aclose()

    published = time.monotonic()
    asyncio.run(publish())

    def attempt() -> tuple[httpx.Response | None, str]:
        response = client.get("/secure/whoami", headers=headers)
        return (response if response.status_code == 401 else None), str(response.status_code)

    response = wait_for(attempt, timeout=REVOCATION_BOUND_S, what="revoked token refused",
                        interval=0.01)
    took = time.monotonic() - published
    assert assert_error(response, 401, "/secure/whoami")["message"] == "token revoked"
    print(f"revocation enforced {took * 1000:.0f} ms after publishing")


def test_rate_limit_429_with_headers(client: httpx.Client) -> None:
    statuses = []
    for _ in range(6):
        response = client.get("/limited/health")
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
    assert_error(response, 429, "/limited/health")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-replenish-rate"] == "1"
    assert response.headers["x-ratelimit-burst-capacity"] == "3"
    assert response.headers["x-ratelimit-requested-tokens"] == "1"


def test_no_instance_503(client: httpx.Client) -> None:
    body = assert_error(client.get("/nobody/x"), 503, "/nobody/x")
    assert "nobody" in body["message"]


def test_refused_static_upstream_503(client: httpx.Client) -> None:
    body = assert_error(client.get("/dead/x"), 503, "/dead/x")
    assert "refused" in body["message"]


def test_upstream_timeout_504(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.get("/slow/slow", params={"seconds": 3})
    took = time.monotonic() - started
    assert_error(response, 504, "/slow/slow")
    assert RESPONSE_TIMEOUT_MS / 1000 <= took < RESPONSE_TIMEOUT_MS / 1000 + 1.0


def test_refusing_instance_is_ejected_and_traffic_moves(client: httpx.Client,
                                                         stack: Stack) -> None:
    answers = [client.get("/hd/conn") for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 6   # retried on the live instance
    assert {r.json()["instance"] for r in answers} == {"b"}
    health = client.get("/actuator/health").json()
    assert stack.dead in health["components"]["discovery"]["ejected"]


def test_circuit_opens_after_failures_and_half_opens(client: httpx.Client) -> None:
    for _ in range(3):
        assert client.get("/fragile/status/503").json()["instance"] == "a"  # the service's 503
    response = client.get("/fragile/health")
    body = assert_error(response, 503, "/fragile/health")
    assert "circuit open" in body["message"] and int(response.headers["retry-after"]) >= 1
    opened = time.monotonic()

    def attempt() -> tuple[httpx.Response | None, str]:
        answer = client.get("/fragile/health")
        return (answer if answer.status_code == 200 else None), answer.text

    wait_for(attempt, timeout=BREAKER_OPEN_WAIT_S + 2.0, what="breaker half-open lets a trial")
    assert time.monotonic() - opened >= BREAKER_OPEN_WAIT_S * 0.9
    assert client.get("/fragile/health").status_code == 200   # closed again


def test_access_log_lines(client: httpx.Client, stack: Stack) -> None:
    request_id = "log-check-1"
    client.get("/plain/health", headers={"X-Request-Id": request_id})

    def attempt() -> tuple[dict[str, Any] | None, str]:
        for line in (stack.logs / "gateway.log").read_text().splitlines():
            if request_id in line:
                return json.loads(line), line
        return None, "not logged yet"

    entry = wait_for(attempt, timeout=5.0, what="access log line")
    assert entry["request_id"] == request_id and entry["status"] == 200
    assert entry["route"] == "plain" and entry["upstream"] == stack.backend_a
    assert entry["method"] == "GET" and entry["path"] == "/plain/health"
    assert entry["duration_ms"] >= 0 and entry["bytes"] > 0 and entry["client"]
