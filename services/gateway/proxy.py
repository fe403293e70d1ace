"""The forwarding path: a plain asyncio Protocol with httptools parsers, no framework.

A framework (ASGI app + HTTP client) costs 100 µs to 2 ms per request; this path costs about
twenty (see ``bench/gateway_overhead.py`` and the field notes). One :class:`ClientConnection`
per client connection parses requests; each request becomes an :class:`Exchange` that decides
(route, token, rate limit, breaker) synchronously, then streams the request to a pooled
upstream connection and the response back, chunk by chunk, never buffering a whole body:

- **Framing.** Bodies keep the framing they came with: Content-Length bodies pass through as is,
  chunked ones are re-chunked (httptools hands over de-chunked data; trailers are dropped). A
  response delimited by closing the connection is re-chunked for HTTP/1.1 clients.
- **Backpressure.** When the upstream's write buffer is full, the client is no longer read; when
  the client's is full, the upstream is no longer read. A request body that arrives before an
  upstream connection exists is held up to ``PENDING_LIMIT``, then the client waits.
- **Keep-alive and pipelining.** Both sides stay open between requests. Pipelined requests are
  parsed, queued, and served one after the other (their bodies held), in order.
- **Headers.** Hop-by-hop headers (and those named in ``Connection``) are dropped both ways;
  ``Host`` becomes the instance's address; ``X-Forwarded-For/-Proto/-Host`` are added or
  extended; client-sent identity headers are dropped and the verified identity added; the
  request id (the client's, if it is sane, else a new one) goes upstream and back on every
  response, errors included.
- **Failures.** Connection refused or failed: the instance is ejected and the request retried on
  another (any method: nothing was sent). Connection closed before any response byte: retried
  only for idempotent methods whose body was small enough to keep (a stale pooled connection
  is retried on a fresh connection). No response head within the route's response timeout: 504.
  After the response head has been sent the only honest signal left is closing the client
  connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade, HttpRequestParser

from services.gateway.access_log import format_line
from services.gateway.auth import AuthError, Identity
from services.gateway.breaker import State
from services.gateway.errors import error_response, reason
from services.gateway.upstream import (
    BLOCK_UPSTREAM,
    CHUNKED_BODY,
    UpstreamConnection,
    UpstreamPool,
)

if TYPE_CHECKING:
    from services.gateway.breaker import CircuitBreaker
    from services.gateway.gateway import Gateway
    from services.gateway.instances import Instance
    from services.gateway.routes import Route

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
REPLAY_LIMIT = 64 * 1024      # an idempotent request body kept for a retry, at most
PENDING_LIMIT = 256 * 1024    # body held while no upstream connection exists, before pausing
BLOCK_PENDING = 2
BLOCK_PIPELINE = 4
ACTUATOR_PREFIX = "/actuator/"
WWW_AUTHENTICATE = b'www-authenticate: Bearer error="invalid_token"\r\n'
WWW_AUTHENTICATE_MISSING = b'www-authenticate: Bearer\r\n'
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

# What the request-header loop does with a header (anything not listed is forwarded as is).
_KEEP_AUTH, _HOST, _REQUEST_ID, _XFF, _XFP, _XFH, _CONNECTION, _TE, _EXPECT, _DROP = range(10)
_REQUEST_HEADERS: dict[bytes, int] = {
    b"authorization": _KEEP_AUTH,
    b"host": _HOST,
    b"x-request-id": _REQUEST_ID,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"x-forwarded-host": _XFH,
    b"connection": _CONNECTION,
    b"transfer-encoding": _TE,
    b"expect": _EXPECT,
    # hop-by-hop (RFC 9110 7.6.1) and identity headers only the gateway may set
    b"keep-alive": _DROP, b"proxy-connection": _DROP, b"te": _DROP, b"trailer": _DROP,
    b"upgrade": _DROP, b"proxy-authorization": _DROP,
    b"x-user-id": _DROP, b"x-user-roles": _DROP, b"x-user-session": _DROP,
}

# The upstream's reason phrase is not parsed (one callback less per response): the standard
# phrase for the code is sent, as HTTP/2 has none at all.
_STATUS_LINES = {int(code): b"HTTP/1.1 %d %b\r\n" % (code, code.phrase.encode())
                 for code in HTTPStatus}

_CLOSED = State.CLOSED  # a module global: an Enum member lookup per request costs more

# Response body modes towards the client.
_NO_BODY, _RAW, _CHUNKED = 0, 1, CHUNKED_BODY


class ClientConnection(asyncio.Protocol):
    """One client connection: parses requests and serves them in order."""

    __slots__ = ("active", "blocked", "close_after_active", "closed", "gateway", "lines",
                 "parser", "parsing", "peer", "peer_bytes", "queue", "special", "transport",
                 "upgrade", "url", "write_blocked")

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.parser = HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.peer = "-"
        self.peer_bytes = b"-"
        self.url = b""
        self.lines: list[bytes] = []                          # forwarded header lines
        self.special: list[tuple[int, bytes, bytes]] = []     # (code, name, value)
        self.parsing: Exchange | None = None
        self.active: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.blocked = 0
        self.write_blocked = False
        self.closed = False
        self.close_after_active = False
        self.upgrade = False

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = peer[0]
            self.peer_bytes = self.peer.encode("latin-1")
        self.gateway.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gateway.clients.discard(self)
        active, self.active = self.active, None
        if active is not None:
            active.client_gone()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            self.reject(501, "protocol upgrades (WebSocket, CONNECT) are not supported")
        except HttpParserCallbackError:
            log.exception("gateway: internal error while handling a request")
            self.reject(500, "internal gateway error")
        except HttpParserError as error:
            self.reject(400, f"malformed HTTP request: {error}")

    def pause_writing(self) -> None:
        self.write_blocked = True
        active = self.active
        if active is not None and active.conn is not None and active.conn.transport is not None:
            active.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_blocked = False
        active = self.active
        if active is not None and active.conn is not None and active.conn.transport is not None:
            active.conn.transport.resume_reading()

    # -- httptools callbacks ----------------------------------------------------------------
    # No on_message_begin: the state it would reset is reset when the head is consumed
    # (one Python call less per request).
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Sorted here, as the parser hands each header over: most are forwarded as they are,
        # the few that matter are kept aside for the exchange (see _REQUEST_HEADERS).
        code = _REQUEST_HEADERS.get(name.lower())
        if code is None:
            self.lines.append(name + b": " + value + b"\r\n")
            return
        self.special.append((code, name, value))
        if code == _KEEP_AUTH:
            self.lines.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        parser = self.parser
        if parser.should_upgrade():
            self.upgrade = True  # refused when the parser raises HttpParserUpgrade
            self.parsing = None
            self.lines = []
            self.special = []
            return
        exchange = Exchange(self, parser.get_method(), self.url, self.lines, self.special,
                            parser.get_http_version(), parser.should_keep_alive())
        self.url = b""
        self.lines = []
        self.special = []
        self.parsing = exchange
        if self.active is None:
            self.active = exchange
            exchange.dispatch()
        else:
            self.queue.append(exchange)
            self.block_reading(BLOCK_PIPELINE)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.on_request_body(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is None:
            return
        if exchange.req_chunked:
            exchange.on_request_complete()
            return
        exchange.request_done = True  # on_request_complete(), written out for the usual case
        if exchange.response_done:
            self.exchange_done(exchange)

    # -- flow control -----------------------------------------------------------------------
    def block_reading(self, reason: int) -> None:
        if not self.blocked and not self.closed:
            self.transport.pause_reading()
        self.blocked |= reason

    def unblock_reading(self, reason: int) -> None:
        if self.blocked & reason:
            self.blocked &= ~reason
            if not self.blocked and not self.closed:
                self.transport.resume_reading()

    def exchange_done(self, exchange: Exchange) -> None:
        """The exchange has its whole request read and its whole response written."""
        if self.active is not exchange:
            return
        self.active = None
        if self.blocked:
            self.unblock_reading(BLOCK_UPSTREAM | BLOCK_PENDING)
        if not exchange.keep_alive or self.close_after_active:
            self.transport.close()
            return
        if self.queue:
            following = self.queue.popleft()
            if not self.queue:
                self.unblock_reading(BLOCK_PIPELINE)
            self.active = following
            # On the next loop turn, not from here: a burst of pipelined requests that are
            # answered at once (404s) would otherwise recurse once per request.
            self.gateway.loop.call_soon(following.dispatch_queued)

    def reject(self, status: int, message: str) -> None:
        """Answer a request the parser refused, then close (the stream cannot be trusted)."""
        if self.active is not None:
            # A response is under way; it must finish first, and nothing after it is read.
            self.close_after_active = True
            self.block_reading(BLOCK_PIPELINE)
            return
        path = self.url.partition(b"?")[0].decode("latin-1")
        request_id = self.gateway.new_request_id()
        self.transport.write(error_response(status, message, request_id, path, keep_alive=False))
        self.gateway.log_rejection(self.peer, request_id, path, status)
        self.transport.close()


class Exchange:
    """One request/response through the gateway."""

    # Defaults live on the class: a request sets only what it uses (an attribute write each
    # for ~40 fields was a measurable share of the per-request cost).
    path = ""
    route: Route | None = None
    identity: Identity | None = None
    breaker: CircuitBreaker | None = None
    breaker_open = False       # took a breaker slot whose outcome is not recorded yet
    instance: Instance | None = None
    conn: UpstreamConnection | None = None
    tried: list[Instance] | None = None
    attempts = 0
    deadline = 0.0             # response head due by then (clock()), see Gateway.sweep_timeouts
    pending: list[bytes] | None = None   # body received before an upstream connection existed
    pending_bytes = 0
    replay_bytes = 0
    request_done = False
    response_started = False
    response_done = False
    done = False               # answered completely or abandoned: nothing more to send
    status = 0
    resp_bytes = 0
    body_mode = _NO_BODY
    until_close = False
    rate_headers = b""
    request_line = b""

    def __init__(self, client: ClientConnection, method: bytes, url: bytes, lines: list[bytes],
                 special: list[tuple[int, bytes, bytes]], version: str,
                 keep_alive: bool) -> None:
        """``lines``: the header lines to forward as they are; ``special``: the headers the
        gateway acts on, as (code, name, value) — sorted by ClientConnection.on_header."""
        gateway = client.gateway
        self.client = client
        self.gateway = gateway
        self.method = method
        self.url = url
        self.version = version
        self.keep_alive = keep_alive
        self.started = gateway.clock()
        self.replay: list[bytes] | None = [] if method in IDEMPOTENT else None
        self.out: list[bytes] = []  # response bytes for the client, written once per read

        request_id = auth = xff = proto = fhost = None
        host = b""
        chunked = expect = False
        connection_tokens: list[bytes] | None = None
        for code, _name, value in special:
            if code == _KEEP_AUTH:
                auth = value
            elif code == _HOST:
                host = value
            elif code == _REQUEST_ID:
                request_id = value
            elif code == _XFF:
                xff = value if xff is None else xff + b", " + value
            elif code == _XFP:
                proto = value
            elif code == _XFH:
                fhost = value
            elif code == _CONNECTION:
                tokens = [t.strip().lower() for t in value.split(b",")]
                extra = [t for t in tokens if t not in (b"close", b"keep-alive", b"upgrade", b"")]
                if extra:
                    connection_tokens = (connection_tokens or []) + extra
            elif code == _TE:
                chunked = b"chunked" in value.lower()
            elif code == _EXPECT:
                expect = value.lower() == b"100-continue"
        if connection_tokens:  # rare: headers the client declared hop-by-hop
            lines = [line for line in lines
                     if line.split(b":", 1)[0].lower() not in connection_tokens]
        self.auth = auth
        self.req_chunked = chunked
        self.expect_continue = expect
        self.xff = xff
        if request_id is not None and _SANE_REQUEST_ID.fullmatch(request_id):
            self.request_id = request_id.decode("ascii")
        else:
            self.request_id = gateway.new_request_id()
        self.rid_line = rid_line = b"x-request-id: %b\r\n" % self.request_id.encode("ascii")
        peer = client.peer_bytes
        lines.append(rid_line)
        lines.append(b"x-forwarded-for: %b\r\nx-forwarded-proto: %b\r\nx-forwarded-host: %b\r\n"
                     % (xff + b", " + peer if xff else peer, proto or b"http", fhost or host))
        if chunked:
            lines.append(b"transfer-encoding: chunked\r\n")
        self.head_tail = b"".join(lines)

    # -- deciding ---------------------------------------------------------------------------
    def client_address(self) -> str:
        """The client for rate limiting: the peer, or the X-Forwarded-For entry added by the
        outermost trusted proxy (``trusted-proxy-hops``)."""
        hops = self.gateway.settings.trusted_proxy_hops
        if hops and self.xff:
            entries = [entry.strip() for entry in self.xff.split(b",")]
            return entries[-hops if hops <= len(entries) else 0].decode("latin-1")
        return self.client.peer

    def dispatch_queued(self) -> None:
        """Dispatch a pipelined request whose turn has come, unless its client has gone."""
        if not self.client.closed and self.client.active is self and not self.done:
            self.dispatch()

    def dispatch(self) -> None:
        gateway = self.gateway
        method = self.method
        path_bytes, has_query, query = self.url.partition(b"?")
        if not path_bytes.startswith(b"/"):
            if path_bytes.startswith((b"http://", b"https://")):  # absolute-form target
                path_bytes = b"/" + path_bytes.split(b"/", 3)[3] if path_bytes.count(b"/") > 2 \
                    else b"/"
            else:
                self.path = path_bytes.decode("latin-1")
                self.fail(400, "request target must be an absolute path")
                return
        path = self.path = path_bytes.decode("latin-1")
        if b"/." in path_bytes or (b"%" in path_bytes and b"%2e" in path_bytes.lower()):
            self.fail(400, "dot segments are not allowed in the path")
            return
        if path.startswith(ACTUATOR_PREFIX):
            self.respond_actuator(path)
            return
        table = gateway.table
        route = table.match(method, path)
        if route is None:
            self.fail(404, f"no route for {method.decode('latin-1')} {path}")
            return
        self.route = route

        verifier = gateway.verifier
        auth = self.auth  # bearer_token(), written out
        token = (auth[7:].strip() or None) if auth is not None and auth[:7].lower() == b"bearer " \
            else None
        identity: Identity | None = None
        if not (table.public and table.is_public(method, path)):
            if verifier is None:
                self.fail(401, "token verification is not configured",
                          WWW_AUTHENTICATE_MISSING)
                return
            if token is None:
                self.fail(401, "bearer token required", WWW_AUTHENTICATE_MISSING)
                return
            identity = verifier.valid.get(token)  # the cache hit, written out; expiry below
            if identity is None or identity.exp + verifier.leeway_s <= verifier.clock():
                try:
                    identity = verifier.verify(token)
                except AuthError as error:
                    self.fail(401, str(error), WWW_AUTHENTICATE)
                    return
            revoked = gateway.revoked
            if identity.sid in revoked.sids or identity.jti in revoked.jtis:
                self.fail(401, "token revoked", WWW_AUTHENTICATE)
                return
            self.identity = identity
        elif token is not None and verifier is not None:
            # Public route: a good token still identifies the caller; a bad one is ignored.
            try:
                identity = verifier.verify(token)
                if gateway.revoked.is_revoked(identity):
                    identity = None
                else:
                    self.identity = identity
            except AuthError:
                identity = None

        limit = route.rate_limit
        if limit is not None:
            client = identity.sub if identity is not None else self.client_address()
            allowed, remaining, retry_after = gateway.limiter.acquire(
                route.id + "\x00" + client, limit, self.started)
            self.rate_headers = (b"x-ratelimit-remaining: %d\r\n" % remaining) \
                + route.rate_limit_lines
            if not allowed:
                self.fail(429, "rate limit exceeded",
                          self.rate_headers + b"retry-after: %d\r\n" % retry_after)
                return

        breaker = gateway.breakers[route.id]
        if breaker.state is not _CLOSED and not breaker.allow():
            wait = max(1, int(breaker.retry_after_s() + 0.999))
            self.fail(503, f"circuit open for route {route.id}", b"retry-after: %d\r\n" % wait)
            return
        self.breaker = breaker
        self.breaker_open = True

        strip = route.strip  # strip_prefix(), written out
        if strip:
            pieces = path_bytes.split(b"/", strip + 1)
            target = b"/" + pieces[strip + 1] if len(pieces) > strip + 1 else b"/"
        else:
            target = path_bytes
        if has_query:
            target += b"?" + query
        self.request_line = method + b" " + target + b" HTTP/1.1\r\n"
        self.head_tail = (identity.headers + self.head_tail + b"\r\n" if identity is not None
                          else self.head_tail + b"\r\n")
        if self.expect_continue and not self.request_done:
            self.client.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.forward()

    # -- upstream ---------------------------------------------------------------------------
    def forward(self) -> None:
        """Send the request to the next instance: a pooled connection, or a new one."""
        route = self.route
        assert route is not None
        instance = route.target.instance
        if instance is None:
            assert route.target.app is not None
            instance = self.gateway.balancer.pick(route.target.app, self.tried or ())
            if instance is None and not self.tried:
                # Nothing is registered: not an upstream failing, so not the breaker's business
                # (counting it would open the circuit on a service that is only starting).
                if self.breaker_open and self.breaker is not None:
                    self.breaker_open = False
                    self.breaker.abandon()
                self.fail(503, f"no available instance of {route.target.app.lower()}")
                return
            if instance is None:
                self.fail_upstream(503, f"no instance of {route.target.app.lower()} accepted "
                                   "the connection")
                return
        elif self.tried:
            self.fail_upstream(503, f"upstream {instance.instance_id} refused the connection")
            return
        self.instance = instance
        self.attempts += 1
        pool = route.pool if route.target.instance is not None else None
        if pool is None:
            pool = self.gateway.pools.get(instance.host, instance.port)
            if route.target.instance is not None:
                route.pool = pool
        idle = pool.idle  # pool.acquire(), written out
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.transport.is_closing():  # type: ignore[union-attr]
                self.attach(conn, pool)
                return
        self.gateway.start_task(self.connect(pool, instance))

    async def connect(self, pool: UpstreamPool, instance: Instance) -> None:
        route = self.route
        assert route is not None
        try:
            conn = await pool.connect(route.connect_timeout_s)
        except (OSError, TimeoutError) as error:
            if not self.done:
                self.connect_failed(instance, error)
            return
        if self.done:
            pool.release(conn)
            return
        self.attach(conn, pool)

    def connect_failed(self, instance: Instance, error: BaseException) -> None:
        route = self.route
        assert route is not None
        if route.target.app is not None:
            self.gateway.balancer.eject(instance)
        self.tried = [*(self.tried or ()), instance]
        if self.attempts <= route.retries:
            self.forward()
            return
        if isinstance(error, TimeoutError):
            self.fail_upstream(504, f"connecting to {instance.instance_id} timed out")
        else:
            self.fail_upstream(503, f"upstream {instance.instance_id} refused the connection")

    def attach(self, conn: UpstreamConnection, pool: UpstreamPool) -> None:
        self.conn = conn
        conn.exchange = self
        conn.received = False
        route = self.route
        assert route is not None
        data = self.request_line + pool.host_line + self.head_tail
        if self.pending:
            data += b"".join(self.pending)
            self.pending = None
            self.pending_bytes = 0
            self.client.unblock_reading(BLOCK_PENDING)
        conn.transport.write(data)  # type: ignore[union-attr]  # connected: has a transport
        if self.client.write_blocked and conn.transport is not None:
            conn.transport.pause_reading()
        self.deadline = self.gateway.clock() + route.response_timeout_s

    def on_request_body(self, body: bytes) -> None:
        if self.done or (self.response_done and not self.request_done):
            return  # already answered: the rest of the body is read and dropped
        data = b"%x\r\n%b\r\n" % (len(body), body) if self.req_chunked else body
        replay = self.replay
        if replay is not None:
            replay.append(data)
            self.replay_bytes += len(data)
            if self.replay_bytes > REPLAY_LIMIT:
                self.replay = None
        conn = self.conn
        if conn is not None:
            conn.write(data)
        else:
            if self.pending is None:
                self.pending = []
            self.pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > PENDING_LIMIT:
                self.client.block_reading(BLOCK_PENDING)

    def on_request_complete(self) -> None:
        if self.req_chunked and not self.done:
            self.on_request_body(b"")  # the last chunk: "0\r\n\r\n"
        self.request_done = True
        if self.response_done:
            self.client.exchange_done(self)

    def on_timeout(self) -> None:
        if self.response_started or self.done:
            return
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.exchange = None
            conn.close()
        route = self.route
        assert route is not None
        self.fail_upstream(504, f"upstream did not answer within {route.response_timeout_s:g} s")

    def upstream_lost(self, conn: UpstreamConnection, exc: Exception | None) -> None:
        """The upstream connection closed while serving this exchange."""
        self.conn = None
        if self.done:
            return
        if self.response_started:
            if self.until_close and exc is None:
                self.on_response_complete(conn)  # the body was delimited by the close
            else:
                self.abort("upstream closed the connection mid-response")
            return
        if not conn.received and self.replay is not None:
            if conn.uses:  # a stale pooled connection: its siblings are likely stale too
                conn.pool.close_idle()
                self.attempts -= 1
            else:
                self.tried = [*(self.tried or ()), *([self.instance] if self.instance else [])]
            route = self.route
            assert route is not None
            if self.attempts <= route.retries:
                self.pending = list(self.replay)
                self.pending_bytes = sum(map(len, self.pending))
                self.forward()
                return
        self.fail_upstream(502, "upstream closed the connection before answering")

    def upstream_broken(self, conn: UpstreamConnection, message: str) -> None:
        self.conn = None
        if self.response_started:
            self.abort(message)
        else:
                self.fail_upstream(502, message)

    def on_response_head(self, conn: UpstreamConnection, status: int, lines: list[bytes],
                         has_length: bool, chunked: bool) -> None:
        """``lines``: the header lines to forward (UpstreamConnection.on_header sorted them)."""
        self.status = status
        self.response_started = True
        route = self.route
        assert route is not None
        breaker = self.breaker
        if self.breaker_open and breaker is not None:
            self.breaker_open = False
            failure = status in route.breaker.failure_statuses
            if failure or not breaker.steady:
                breaker.record(failure)
        status_line = _STATUS_LINES.get(status)
        if status_line is None:
            status_line = b"HTTP/1.1 %d %b\r\n" % (status, reason(status).encode())
        lines.insert(0, status_line)
        head_request = self.method == b"HEAD"
        if head_request or status in (204, 304):
            mode = _NO_BODY
        elif has_length and not chunked:
            mode = _RAW
        elif self.version == "1.1":
            mode = _CHUNKED
            lines.append(b"transfer-encoding: chunked\r\n")
            self.until_close = not chunked
        else:  # an HTTP/1.0 client cannot take chunks: the close delimits the body
            mode = _RAW
            self.until_close = not chunked
            self.keep_alive = False
        self.body_mode = mode
        lines.append(self.rid_line)
        lines.append(self.gateway.task_headers)
        if self.rate_headers:
            lines.append(self.rate_headers)
        if not self.keep_alive:
            lines.append(b"connection: close\r\n")
        elif self.version == "1.0":
            lines.append(b"connection: keep-alive\r\n")
        lines.append(b"\r\n")
        self.out.append(b"".join(lines))
        if head_request:
            # httptools cannot be told a HEAD response has no body: end here, drop the connection.
            conn.exchange = None
            self.conn = None
            conn.close()
            self.on_response_complete(conn)

    def on_response_body(self, body: bytes) -> None:
        self.resp_bytes += len(body)
        if self.body_mode == _CHUNKED:
            self.out.append(b"%x\r\n%b\r\n" % (len(body), body))
        else:
            self.out.append(body)

    def flush(self) -> None:
        """Write what the last upstream read produced in one go: one syscall, not three."""
        out = self.out
        if out:
            self.client.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def on_response_complete(self, conn: UpstreamConnection) -> None:
        out = self.out
        if self.body_mode == _CHUNKED:
            out.append(b"0\r\n\r\n")
        if out:  # flush(), written out
            self.client.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if self.conn is conn:
            self.conn = None
            if self.request_done and conn.parser.should_keep_alive() and not self.until_close:
                conn.release()
            else:
                conn.exchange = None
                conn.close()
        self.response_done = True
        self.done = True
        self.write_log()
        if self.request_done:
            self.client.exchange_done(self)

    # -- endings ----------------------------------------------------------------------------
    def fail_upstream(self, status: int, message: str) -> None:
        if self.breaker_open and self.breaker is not None:
            self.breaker_open = False
            self.breaker.record(True)
        self.fail(status, message)

    def fail(self, status: int, message: str, headers: bytes = b"") -> None:
        """Answer with the JSON error shape; the rest of the request body is dropped."""
        if self.done:
            return
        self.status = status
        self.response_started = self.response_done = self.done = True
        if self.expect_continue and not self.request_done:
            self.keep_alive = False  # the client will not send the body it announced
        self.client.transport.write(error_response(
            status, message, self.request_id, self.path,
            headers=headers + self.gateway.task_headers,
            keep_alive=self.keep_alive, head_only=self.method == b"HEAD"))
        self.write_log()
        if self.request_done:
            self.client.exchange_done(self)

    def respond_actuator(self, path: str) -> None:
        """The gateway's own endpoints: health and the route table; never proxied."""
        gateway = self.gateway
        if path == "/actuator/health":
            health = gateway.health()
            status = 200 if health["status"] == "UP" else 503
        elif path == "/actuator/gateway/routes":
            health = {"routes": [{"route_id": r.id, "uri": r.uri, "order": i}
                                 for i, r in enumerate(gateway.table.routes)]}
            status = 200
        else:
            self.fail(404, f"no actuator endpoint {path}")
            return
        body = json.dumps(health, separators=(",", ":")).encode()
        self.status = status
        self.resp_bytes = len(body)
        self.response_started = self.response_done = self.done = True
        head = (b"HTTP/1.1 %d %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"x-request-id: %b\r\n%b\r\n" % (
                    status, b"OK" if status == 200 else b"Service Unavailable", len(body),
                    self.request_id.encode("ascii"),
                    b"" if self.keep_alive else b"connection: close\r\n"))
        self.client.transport.write(head + (b"" if self.method == b"HEAD" else body))
        self.write_log()
        if self.request_done:
            self.client.exchange_done(self)

    def abort(self, why: str) -> None:
        """The response cannot be completed: cut the client connection (the only signal left)."""
        if self.done:
            return
        log.warning("gateway: request %s aborted: %s", self.request_id, why)
        self.done = True
        self.write_log()
        self.client.transport.abort()

    def client_gone(self) -> None:
        if self.done:
            return
        self.done = True
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.exchange = None
            conn.close()
        if self.breaker_open and self.breaker is not None:
            self.breaker_open = False
            self.breaker.abandon()
        if not self.response_done:
            self.status = 499  # nginx's "client closed request"
        self.write_log()

    def write_log(self) -> None:
        gateway = self.gateway
        access_log = gateway.access_log
        if not access_log.enabled:
            return
        now = gateway.clock()
        route = self.route
        instance = self.instance
        access_log.batch.append(format_line(
            gateway.wall_offset + self.started, self.request_id, self.method.decode("latin-1"),
            self.path, route.id if route is not None else "-",
            instance.instance_id if instance is not None else "-", self.status,
            self.resp_bytes, (now - self.started) * 1000.0, self.client.peer))
