"""The gateway as one object: its state, its background tasks, and settings refresh.

Everything the forwarding path reads per request hangs off :class:`Gateway` as plain
attributes (``table``, ``verifier``, ``revoked``, ``limiter``, ``breakers``, ``balancer``,
``pools``), so a request never awaits anything before it is forwarded. Background tasks keep
them current: discovery refresh, the rate limiter's batch sync, the revocation watcher, the
idle-connection sweeper and the access-log flusher.

A settings refresh compiles a whole new route table first and swaps it in with one assignment;
settings that do not compile are refused and the running table stays. Requests already routed
finish on the route they matched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis

from services.gateway.access_log import AccessLog
from services.gateway.auth import TokenVerifier
from services.gateway.balancer import Balancer
from services.gateway.breaker import CircuitBreaker, State
from services.gateway.instances import InstanceCatalog, InstanceSource
from services.gateway.proxy import ClientConnection
from services.gateway.ratelimit import RateLimiter, RedisBucketStore
from services.gateway.revocation import MasterProbe, RevocationSet, RevocationWatcher
from services.gateway.routes import RouteTable, compile_routes
from services.gateway.settings import GatewaySettings, JwtSettings, SettingsError
from services.gateway.upstream import Pools

log = logging.getLogger(__name__)

TIMEOUT_TICK_S = 0.05


def _verifier(jwt: JwtSettings | None) -> TokenVerifier | None:
    if jwt is None:
        return None
    return TokenVerifier(jwt.issuer, jwt.public_key_pem, leeway_s=jwt.leeway_s,
                         cache_size=jwt.cache_size)


class Gateway:
    """Create inside a running event loop; ``await start(host, port)``; ``await close()``."""

    def __init__(self, settings: GatewaySettings, instances: InstanceSource, *,
                 redis: Redis | None = None, master_probe: MasterProbe | None = None,
                 access_log: AccessLog | None = None, task_headers: bytes = b"",
                 fail_health: bool = False) -> None:
        """``task_headers``: raw header lines added to every response (which colour and
        release answered); ``fail_health``: report DOWN whatever else holds (a testing hook
        of a release, see ``__main__``)."""
        self.loop = asyncio.get_running_loop()
        # uvloop's loop.time() ticks in whole milliseconds: too coarse for request durations.
        self.clock = time.monotonic
        self.settings = settings
        self.table: RouteTable = compile_routes(settings)
        self.verifier = _verifier(settings.jwt)
        self.redis = redis
        self.master_probe = master_probe
        self.revoked = RevocationSet()
        self.limiter = RateLimiter(RedisBucketStore(redis) if redis is not None else None,
                                   clock=self.clock)
        self.catalog = InstanceCatalog(instances, settings.colour)
        self.balancer = Balancer(self.catalog, settings.eject_s, self.clock)
        self.pools = Pools(self.loop, max_idle=settings.pool_max_idle,
                           idle_timeout_s=settings.pool_idle_timeout_s)
        self.breakers: dict[str, CircuitBreaker] = {}
        self._sync_breakers()
        self.access_log = access_log or AccessLog(enabled=settings.access_log)
        self.clients: set[ClientConnection] = set()
        # Wall-clock time of clock() 0: the access log's timestamps without a syscall each.
        self.wall_offset = time.time() - self.clock()
        self._request_prefix = secrets.token_hex(6)
        self._request_counter = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._connecting: set[asyncio.Task[Any]] = set()
        self.watcher: RevocationWatcher | None = None
        self.refreshes = 0
        self.task_headers = task_headers
        self.fail_health = fail_health

    # -- per request ------------------------------------------------------------------------
    def new_request_id(self) -> str:
        """Unique without randomness per request: a random per-process prefix and a counter."""
        return f"{self._request_prefix}-{next(self._request_counter):08x}"

    def log_rejection(self, client: str, request_id: str, path: str, status: int) -> None:
        self.access_log.record((time.time(), request_id, "-", path, "-", "-", status, 0, 0.0,
                                client))

    def health(self) -> dict[str, Any]:
        """UP once it can enforce revocations (loaded at least once, when Redis is set)."""
        revocations_up = self.redis is None or self.revoked.loaded
        open_circuits = sorted(route_id for route_id, breaker in self.breakers.items()
                               if breaker.state is not State.CLOSED)
        health: dict[str, Any] = {
            "status": "UP" if revocations_up and not self.fail_health else "DOWN",
            "components": {
                "routes": {"status": "UP", "count": len(self.table.routes)},
                "revocations": {"status": "UP" if revocations_up else "DOWN",
                                "revoked": len(self.revoked)},
                "discovery": {"status": "UP", "instances": {
                    app.lower(): len(self.catalog.get(app)) for app in sorted(self.table.apps)},
                    "ejected": self.balancer.ejected()},
                "circuitBreakers": {"status": "UP", "notClosed": open_circuits},
            },
        }
        if self.fail_health:
            health["components"]["fault"] = {"status": "DOWN",
                                             "detail": "failing on purpose (release fault hook)"}
        return health

    def sweep_timeouts(self) -> None:
        """Answer 504 for every exchange whose response head is overdue.

        Every TIMEOUT_TICK_S the active exchange of each client connection is looked at: no
        timer (or registry entry) per request, at the price of a timeout firing up to one tick
        late.
        """
        now = self.clock()
        late = [client.active for client in self.clients
                if client.active is not None and client.active.conn is not None
                and not client.active.response_started and client.active.deadline <= now]
        for exchange in late:
            if exchange is not None:
                exchange.on_timeout()

    async def _run_timeouts(self) -> None:
        while True:
            await asyncio.sleep(TIMEOUT_TICK_S)
            self.sweep_timeouts()

    # -- settings ---------------------------------------------------------------------------
    def apply_settings(self, settings: GatewaySettings) -> bool:
        """Switch to new settings atomically; False (and the old ones kept) if they are bad."""
        try:
            table = compile_routes(settings)
            verifier = (self.verifier if settings.jwt == self.settings.jwt
                        else _verifier(settings.jwt))
        except (SettingsError, ValueError) as error:
            log.error("gateway: refused new settings, keeping the running ones: %s", error)
            return False
        self.settings = settings
        self.verifier = verifier
        self.catalog.colour = settings.colour
        self.balancer.eject_s = settings.eject_s
        self.pools.reconfigure(max_idle=settings.pool_max_idle,
                               idle_timeout_s=settings.pool_idle_timeout_s)
        self.access_log.enabled = settings.access_log
        new_apps = table.apps - self.table.apps
        self.table = table
        self._sync_breakers()
        self.refreshes += 1
        log.info("gateway: settings applied: %d routes", len(table.routes))
        if new_apps:
            self._spawn(self.catalog.refresh(table.apps))
        return True

    def _sync_breakers(self) -> None:
        breakers: dict[str, CircuitBreaker] = {}
        for route in self.table.routes:
            breaker = self.breakers.get(route.id)
            if breaker is None:
                breaker = CircuitBreaker(route.breaker, self.clock)
            else:
                breaker.reconfigure(route.breaker)
            breakers[route.id] = breaker
        self.breakers = breakers

    # -- lifecycle --------------------------------------------------------------------------
    def start_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` (a connection attempt) holding a reference until it ends, as asyncio
        asks: the loop itself keeps only weak ones."""
        task = self.loop.create_task(coro)
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway: background task failed", exc_info=task.exception())

    async def start(self, host: str, port: int) -> None:
        """Listen, after one discovery refresh so the first requests find instances."""
        try:
            await asyncio.wait_for(self.catalog.refresh(self.table.apps),
                                   max(1.0, self.settings.discovery_refresh_s))
        except TimeoutError:
            log.warning("gateway: discovery did not answer in time; starting without instances")
        self._spawn(self.catalog.run(lambda: self.table.apps,
                                     lambda: self.settings.discovery_refresh_s))
        self._spawn(self.limiter.run(lambda: self.settings.rate_limit_sync_s))
        self._spawn(self.pools.run_sweeper())
        self._spawn(self._run_timeouts())
        self._spawn(self.access_log.run())
        if self.redis is not None:
            self.watcher = RevocationWatcher(self.revoked, self.redis,
                                             master_probe=self.master_probe,
                                             resync_s=self.settings.revocation_resync_s)
            self._spawn(self.watcher.run())
        self._server = await self.loop.create_server(
            lambda: ClientConnection(self), host, port, backlog=2048, reuse_address=True)
        log.info("gateway: listening on %s:%d with %d routes", host, port,
                 len(self.table.routes))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.transport.close()
        tasks, self._tasks = list(self._tasks), []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self.pools.close()
        self.access_log.flush()
        if self.redis is not None:
            await self.redis.aclose()
