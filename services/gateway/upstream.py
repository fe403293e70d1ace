"""Keep-alive connections to service instances, pooled per instance.

Opening a TCP connection per request would cost more than the forwarding itself (and leave
TIME_WAIT sockets behind at tens of thousands of requests a second). Each instance address has
a pool of idle HTTP/1.1 connections; a request takes one (or connects), the response's end puts
it back. Idle connections are closed after ``idle_timeout_s`` — shorter than uvicorn's 5 s
keep-alive, so it is the gateway that closes an idle connection and a request is not written
into a connection the service is closing at that moment.

:class:`UpstreamConnection` parses responses with httptools and hands every event to the
exchange it is serving (``services.gateway.proxy``); it knows nothing about clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from httptools import HttpParserError, HttpResponseParser

if TYPE_CHECKING:
    from services.gateway.proxy import Exchange


class UpstreamConnection(asyncio.Protocol):
    """One connection to an instance; serves one exchange at a time."""

    __slots__ = ("chunked", "closed", "exchange", "has_length", "idle_since", "interim",
                 "lines", "parser", "pool", "received", "transport", "uses")

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.lines: list[bytes] = []   # the response head's header lines, as forwarded
        self.has_length = False
        self.chunked = False
        self.interim = False
        self.received = False   # any byte of the current response seen
        self.closed = False
        self.idle_since = 0.0
        self.uses = 0

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # nothing was asked: a broken or confused server
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
            if exchange.out:
                exchange.flush()  # a partial response: pass on what this read brought
        except HttpParserError as error:
            exchange = self.exchange
            self.close()
            if exchange is not None:
                self.exchange = None
                exchange.upstream_broken(self, f"invalid response from upstream: {error}")

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.upstream_lost(self, exc)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.block_reading(BLOCK_UPSTREAM)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.unblock_reading(BLOCK_UPSTREAM)

    # -- httptools callbacks ----------------------------------------------------------------
    # (No on_message_begin / on_status: one Python call each per response; the header list is
    # reset when consumed and the reason phrase is not forwarded.)
    def on_header(self, name: bytes, value: bytes) -> None:
        # Sorted as the parser hands each header over: hop-by-hop ones (and the request id,
        # which the gateway sets) are dropped, the framing noted, the rest kept as lines.
        lname = name.lower()
        if lname in RESPONSE_DROP:
            if lname == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            return
        if lname == b"content-length":
            self.has_length = True
        self.lines.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        lines, self.lines = self.lines, []
        has_length, chunked = self.has_length, self.chunked
        self.has_length = self.chunked = False
        if status < 200 and status != 101:
            self.interim = True  # 100 Continue / 103 Early Hints: not forwarded
            return
        exchange = self.exchange
        if exchange is not None:
            exchange.on_response_head(self, status, lines, has_length, chunked)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is not None and not self.interim:
            exchange.resp_bytes += len(body)  # exchange.on_response_body(), written out
            chunked = exchange.body_mode == CHUNKED_BODY
            exchange.out.append(b"%x\r\n%b\r\n" % (len(body), body) if chunked else body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        exchange = self.exchange
        if exchange is not None:
            exchange.on_response_complete(self)

    # -- lifecycle ---------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        """Close now (abort: a half-read response must not be reused)."""
        if not self.closed:
            self.closed = True
            self.pool.discard(self)
            if self.transport is not None:
                self.transport.abort()

    def release(self) -> None:
        """Back to the pool after a complete response on a keep-alive connection."""
        self.exchange = None
        self.received = False
        transport = self.transport
        if transport is not None and not transport.is_reading():
            transport.resume_reading()
        pool = self.pool
        if self.closed:
            return
        idle = pool.idle
        if len(idle) >= pool.max_idle:
            self.close()
            return
        self.uses += 1
        self.idle_since = pool.loop.time()
        idle.append(self)


BLOCK_UPSTREAM = 1  # client reading blocked because the upstream's write buffer is full
CHUNKED_BODY = 2    # Exchange.body_mode: the response is re-chunked towards the client
# Response headers the gateway does not forward: hop-by-hop (RFC 9110 7.6.1), and the request
# id, which it sets itself.
RESPONSE_DROP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te",
                           b"trailer", b"transfer-encoding", b"upgrade", b"x-request-id",
                           b"proxy-authenticate"})


class UpstreamPool:
    """Idle keep-alive connections to one instance address (most recently used first)."""

    __slots__ = (
        "connects",
        "host",
        "host_line",
        "idle",
        "idle_timeout_s",
        "loop",
        "max_idle",
        "port",
    )

    def __init__(self, host: str, port: int, *, max_idle: int, idle_timeout_s: float,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.host = host
        self.port = port
        self.host_line = f"host: {host}:{port}\r\n".encode("latin-1")
        self.max_idle = max_idle
        self.idle_timeout_s = idle_timeout_s
        self.loop = loop
        self.idle: list[UpstreamConnection] = []
        self.connects = 0  # connections opened: tests use it to see reuse

    def acquire(self) -> UpstreamConnection | None:
        """An idle connection that is still open, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None \
                    and not conn.transport.is_closing():
                return conn
        return None

    async def connect(self, timeout_s: float) -> UpstreamConnection:
        """A new connection; raises OSError (refused, unreachable) or TimeoutError."""
        self.connects += 1
        _, conn = await asyncio.wait_for(
            self.loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
            timeout_s)
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        if conn.closed:
            return
        if len(self.idle) >= self.max_idle:
            conn.close()
            return
        conn.uses += 1
        conn.idle_since = self.loop.time()
        self.idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def close_idle(self, older_than: float | None = None) -> None:
        """Close idle connections unused since ``older_than`` (loop time); all when None."""
        keep: list[UpstreamConnection] = []
        for conn in self.idle:
            if older_than is None or conn.idle_since < older_than:
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.close()
            else:
                keep.append(conn)
        self.idle = keep

    def __len__(self) -> int:
        return len(self.idle)


class Pools:
    """The pool of every instance address the gateway has talked to."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, max_idle: int,
                 idle_timeout_s: float) -> None:
        self.loop = loop
        self.max_idle = max_idle
        self.idle_timeout_s = idle_timeout_s
        self._pools: dict[tuple[str, int], UpstreamPool] = {}

    def get(self, host: str, port: int) -> UpstreamPool:
        pool = self._pools.get((host, port))
        if pool is None:
            pool = self._pools[(host, port)] = UpstreamPool(
                host, port, max_idle=self.max_idle, idle_timeout_s=self.idle_timeout_s,
                loop=self.loop)
        return pool

    def reconfigure(self, *, max_idle: int, idle_timeout_s: float) -> None:
        self.max_idle = max_idle
        self.idle_timeout_s = idle_timeout_s
        for pool in self._pools.values():
            pool.max_idle = max_idle
            pool.idle_timeout_s = idle_timeout_s

    def sweep(self) -> None:
        """Close connections idle longer than the idle timeout."""
        now = self.loop.time()
        for pool in self._pools.values():
            pool.close_idle(now - pool.idle_timeout_s)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close_idle()

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(max(0.2, self.idle_timeout_s / 4))
            self.sweep()

    def __iter__(self) -> Iterator[UpstreamPool]:
        return iter(self._pools.values())
