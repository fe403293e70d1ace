"""Header handling and framing of the forwarding path, with fake transports instead of sockets:
what the service receives, what the client receives, byte for byte."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.gateway.gateway import Gateway
from services.gateway.instances import StaticInstances
from services.gateway.proxy import ClientConnection
from services.gateway.settings import from_config
from services.gateway.upstream import UpstreamConnection
from tests.gateway_tokens import ISSUER, KeyPair

UPSTREAM = ("127.0.1.161", 9301)


class FakeTransport:
    def __init__(self, peer: tuple[str, int] = ("127.0.1.9", 50000)) -> None:
        self.peer = peer
        self.written: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def data(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data

    def get_extra_info(self, name: str) -> Any:
        return self.peer if name == "peername" else None

    def is_closing(self) -> bool:
        return self.closed

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair.generate()


class Harness:
    """A gateway with one route to UPSTREAM, a client connection and a pooled upstream one."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.client = ClientConnection(gateway)
        self.client_transport = FakeTransport()
        self.client.connection_made(self.client_transport)  # type: ignore[arg-type]
        self.pool = gateway.pools.get(*UPSTREAM)
        self.upstream = UpstreamConnection(self.pool)
        self.upstream_transport = FakeTransport()
        self.upstream.connection_made(self.upstream_transport)  # type: ignore[arg-type]
        self.pool.release(self.upstream)

    def send(self, data: bytes) -> None:
        self.client.data_received(data)

    def turn(self) -> None:
        """One turn of the event loop (what is scheduled with call_soon runs)."""
        self.gateway.loop.run_until_complete(asyncio.sleep(0))

    def respond(self, data: bytes) -> None:
        self.upstream.data_received(data)

    def forwarded(self) -> tuple[str, dict[str, list[str]], bytes]:
        """The request line, headers (lower-case names) and body the upstream received."""
        return parse(self.upstream_transport.data())

    def answered(self) -> tuple[str, dict[str, list[str]], bytes]:
        return parse(self.client_transport.data())


def parse(raw: bytes) -> tuple[str, dict[str, list[str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return first, headers, body


@pytest.fixture
def harness(keys: KeyPair) -> Iterator[Callable[..., Harness]]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def make(public: list[str] | None = None, **gateway: Any) -> Harness:
        settings = from_config({
            "spring": {"cloud": {"gateway": {"routes": [
                {"id": "svc", "uri": f"http://{UPSTREAM[0]}:{UPSTREAM[1]}",
                 "predicates": ["Path=/api/svc/**"], "filters": ["StripPrefix=2"]}]}}},
            "gateway": {"public": public if public is not None else ["/**"],
                        "jwt": {"issuer": ISSUER, "public-key": keys.public_pem},
                        "access-log": False, **gateway}})

        async def build() -> Gateway:
            return Gateway(settings, StaticInstances())

        return Harness(loop.run_until_complete(build()))

    yield make
    loop.close()
    asyncio.set_event_loop(None)


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


def test_request_headers_are_rewritten(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"GET /api/svc/items/1?q=shoes HTTP/1.1\r\n"
           b"Host: shop.example.com\r\n"
           b"Connection: keep-alive, X-Hop\r\n"
           b"X-Hop: secret\r\n"
           b"Keep-Alive: timeout=5\r\n"
           b"Proxy-Connection: keep-alive\r\n"
           b"TE: trailers\r\n"
           b"X-Forwarded-For: 203.0.113.7\r\n"
           b"X-Forwarded-Proto: https\r\n"
           b"X-User-Id: 1\r\nX-User-Roles: ADMIN\r\n"
           b"X-Request-Id: abc-123\r\n"
           b"Accept: application/json\r\n\r\n")
    line, headers, _ = h.forwarded()
    assert line == "GET /items/1?q=shoes HTTP/1.1"
    assert headers["host"] == [f"{UPSTREAM[0]}:{UPSTREAM[1]}"]
    for hop in ("connection", "x-hop", "keep-alive", "proxy-connection", "te",
                "x-user-id", "x-user-roles"):
        assert hop not in headers, hop
    assert headers["x-forwarded-for"] == ["203.0.113.7, 127.0.1.9"]
    assert headers["x-forwarded-proto"] == ["https"]
    assert headers["x-forwarded-host"] == ["shop.example.com"]
    assert headers["x-request-id"] == ["abc-123"]
    assert headers["accept"] == ["application/json"]
    h.respond(OK)
    status, response_headers, body = h.answered()
    assert status == "HTTP/1.1 200 OK" and body == b"ok"
    assert response_headers["x-request-id"] == ["abc-123"]


def test_insane_request_id_is_replaced(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"GET /api/svc/x HTTP/1.1\r\nHost: a\r\nX-Request-Id: {\"inject\": 1}\r\n\r\n")
    _, headers, _ = h.forwarded()
    generated = headers["x-request-id"][0]
    assert generated != '{"inject": 1}' and len(generated) > 8
    h.respond(b"HTTP/1.1 204 No Content\r\nx-request-id: other\r\n\r\n")
    _, response_headers, _ = h.answered()
    assert response_headers["x-request-id"] == [generated]


def test_identity_of_a_verified_token_is_forwarded(harness: Callable[..., Harness],
                                                    keys: KeyPair) -> None:
    h = harness(public=[])
    token = keys.token(sub="7", roles=["USER", "SELLER"], sid="s1")
    h.send(b"GET /api/svc/me HTTP/1.1\r\nHost: a\r\nX-User-Id: 999\r\n"
           b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
    _, headers, _ = h.forwarded()
    assert headers["x-user-id"] == ["7"]
    assert headers["x-user-roles"] == ["USER,SELLER"]
    assert headers["x-user-session"] == ["s1"]
    assert headers["authorization"] == [f"Bearer {token}"]


def test_response_hop_headers_dropped_and_chunks_reencoded(
        harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"GET /api/svc/stream HTTP/1.1\r\nHost: a\r\n\r\n")
    h.forwarded()
    h.respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
              b"Keep-Alive: timeout=5\r\nContent-Type: text/plain\r\n\r\n"
              b"5\r\nhello\r\n")
    h.respond(b"6\r\n world\r\n0\r\n\r\n")
    _status, headers, body = h.answered()
    assert "connection" not in headers and "keep-alive" not in headers
    assert headers["transfer-encoding"] == ["chunked"]
    assert body == b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    assert len(h.pool) == 1                            # back in the pool


def test_chunked_request_body_is_streamed_as_chunks(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"POST /api/svc/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n")
    _line, headers, body = h.forwarded()
    assert headers["transfer-encoding"] == ["chunked"]
    assert body == b"3\r\nabc\r\n"
    h.send(b"2\r\nde\r\n0\r\n\r\n")
    assert h.upstream_transport.data() == b"2\r\nde\r\n0\r\n\r\n"


def test_sized_body_passes_through(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"PUT /api/svc/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
    _, headers, body = h.forwarded()
    assert headers["content-length"] == ["10"] and body == b"01234"
    h.send(b"56789")
    assert h.upstream_transport.data() == b"56789"


def test_pipelined_requests_are_answered_in_order(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"GET /api/svc/a HTTP/1.1\r\nHost: a\r\n\r\nGET /api/svc/b HTTP/1.1\r\nHost: a\r\n\r\n")
    line, _, _ = h.forwarded()
    assert line == "GET /a HTTP/1.1"
    assert not h.client_transport.reading              # held back until /a is answered
    h.respond(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nA")
    assert h.answered()[2] == b"A"
    h.turn()                                           # /b is dispatched on the next turn
    line, _, _ = h.forwarded()
    assert line == "GET /b HTTP/1.1"                   # the same pooled connection
    h.respond(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nB")
    assert h.answered()[2] == b"B"
    assert h.client_transport.reading


def test_errors_are_json_with_request_id(harness: Callable[..., Harness]) -> None:
    h = harness(public=[])
    h.send(b"GET /nowhere HTTP/1.1\r\nHost: a\r\nX-Request-Id: r-404\r\n\r\n")
    status, headers, body = h.answered()
    assert status == "HTTP/1.1 404 Not Found"
    assert headers["x-request-id"] == ["r-404"]
    assert json.loads(body) == {"status": 404, "error": "Not Found",
                                "message": "no route for GET /nowhere", "requestId": "r-404",
                                "path": "/nowhere"}
    h.send(b"GET /api/svc/x HTTP/1.1\r\nHost: a\r\n\r\n")
    status, headers, body = h.answered()
    assert status.startswith("HTTP/1.1 401") and headers["www-authenticate"] == ["Bearer"]
    assert json.loads(body)["requestId"] == headers["x-request-id"][0]
    h.send(b"GET /api/svc/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer nope\r\n\r\n")
    status, headers, _ = h.answered()
    assert headers["www-authenticate"] == ['Bearer error="invalid_token"']


def test_malformed_request_gets_400_and_close(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"GARBAGE\x00\r\n\r\n")
    status, headers, body = h.answered()
    assert status == "HTTP/1.1 400 Bad Request"
    assert json.loads(body)["status"] == 400 and "x-request-id" in headers
    assert h.client_transport.closed


def test_dot_segments_refused(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"GET /api/svc/../admin HTTP/1.1\r\nHost: a\r\n\r\n")
    assert h.answered()[0] == "HTTP/1.1 400 Bad Request"


def test_expect_continue_is_answered_by_the_gateway(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"POST /api/svc/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
           b"Expect: 100-continue\r\n\r\n")
    assert h.client_transport.data() == b"HTTP/1.1 100 Continue\r\n\r\n"
    _, headers, _ = h.forwarded()
    assert "expect" not in headers


def test_head_response_ends_without_body(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"HEAD /api/svc/x HTTP/1.1\r\nHost: a\r\n\r\n")
    h.forwarded()
    h.respond(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
    _status, headers, body = h.answered()
    assert headers["content-length"] == ["100"] and body == b""
    assert not h.client_transport.closed               # the client connection goes on
    assert h.upstream_transport.closed                 # the upstream one cannot be reused


def test_health_is_answered_locally(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.send(b"GET /actuator/health HTTP/1.1\r\nHost: a\r\n\r\n")
    status, _, body = h.answered()
    assert status == "HTTP/1.1 200 OK" and json.loads(body)["status"] == "UP"
    assert h.upstream_transport.data() == b""


def test_a_burst_of_pipelined_errors_does_not_recurse(harness: Callable[..., Harness]) -> None:
    h = harness(public=[])
    burst = b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n" * 3000
    h.send(burst)
    for _ in range(3000):
        h.turn()
        if h.client.active is None:
            break
    answered = h.client_transport.data()
    assert answered.count(b"HTTP/1.1 404 Not Found") == 3000
