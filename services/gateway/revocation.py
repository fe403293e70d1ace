"""The revoked sessions and tokens, held in memory so no request waits on Redis.

Contract in :mod:`services.common.tokens`. The watcher keeps :class:`RevocationSet` current:

1. subscribe to the ``revocations`` channel (through Sentinel's current master);
2. only then SCAN ``revoked:*`` and replace the set with what it finds — a revocation written
   between the two steps is seen by the scan or arrives as a message, never lost;
3. apply each message as it arrives;
4. on any error (the master died, a failover, a timeout) start again at 1, so messages
   published while the subscription was down are recovered by the scan. A periodic re-check of
   Sentinel's master address catches a failover that left the old connection open, and a full
   rescan every ``resync`` seconds bounds staleness whatever happens.

Freshness: a revocation is enforced by every gateway as soon as its message arrives
(milliseconds on a healthy Redis). During a failover the writer cannot write either; after it,
the gateway's reload picks up everything the new master has. What the new master never got
(asynchronous replication) is lost for the gateway too — the user service should ``WAIT`` for
the replica after writing a revocation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis

from services.common.tokens import REVOCATION_CHANNEL, REVOKED_KEY_PATTERN, parse_key, parse_message
from services.gateway.auth import Identity

log = logging.getLogger(__name__)


class RevocationSet:
    """Revoked session ids and token ids; ``loaded`` once a full load has succeeded."""

    __slots__ = ("jtis", "loaded", "loaded_at", "sids")

    def __init__(self) -> None:
        self.sids: set[str] = set()
        self.jtis: set[str] = set()
        self.loaded = False
        self.loaded_at = 0.0

    def is_revoked(self, identity: Identity) -> bool:
        return identity.sid in self.sids or identity.jti in self.jtis

    def apply(self, message: str) -> bool:
        """Add the revocation a channel message announces; False if it was not one."""
        revocation = parse_message(message)
        if revocation is None:
            return False
        (self.sids if revocation.kind == "sid" else self.jtis).add(revocation.value)
        return True

    def replace(self, keys: Iterable[str]) -> None:
        """Swap in the full set from the ``revoked:*`` keys of a scan."""
        sids: set[str] = set()
        jtis: set[str] = set()
        for key in keys:
            revocation = parse_key(key)
            if revocation is not None:
                (sids if revocation.kind == "sid" else jtis).add(revocation.value)
        self.sids, self.jtis = sids, jtis
        self.loaded = True
        self.loaded_at = time.time()

    def __len__(self) -> int:
        return len(self.sids) + len(self.jtis)


# How often Sentinel is asked where the master is, to catch a failover that left us connected.
PROBE_INTERVAL_S = 1.0

MasterProbe = Callable[[], Awaitable[Any]]


class RevocationWatcher:
    """Keeps a RevocationSet in step with the session Redis (see the module docstring)."""

    def __init__(self, revoked: RevocationSet, redis: Redis, *,
                 master_probe: MasterProbe | None = None, resync_s: float = 30.0,
                 retry_s: float = 0.5) -> None:
        self.revoked = revoked
        self.redis = redis
        self.master_probe = master_probe
        self.resync_s = resync_s
        self.retry_s = retry_s
        self.reloads = 0  # full loads done: observable by tests and the health endpoint

    async def run(self) -> None:
        """Watch forever; every failure ends in a fresh subscription and a full reload."""
        failing = False
        while True:
            try:
                await self._watch_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failing:
                    log.warning("revocations: subscription lost (%s); reconnecting", error)
                failing = True
                await asyncio.sleep(self.retry_s)
                continue
            failing = False

    async def _watch_once(self) -> None:
        master = await self.master_probe() if self.master_probe else None
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(REVOCATION_CHANNEL)
            await self.reload()
            loaded = probed = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    self.revoked.apply(data.decode() if isinstance(data, bytes) else str(data))
                now = time.monotonic()
                if now - loaded >= self.resync_s:
                    return  # the caller loops: a fresh subscription and a full reload
                if self.master_probe is not None and now - probed >= PROBE_INTERVAL_S:
                    probed = now
                    if await self.master_probe() != master:
                        log.info("revocations: session master moved; reloading")
                        return
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def reload(self) -> None:
        keys = [key.decode() if isinstance(key, bytes) else str(key)
                async for key in self.redis.scan_iter(match=REVOKED_KEY_PATTERN, count=1000)]
        self.revoked.replace(keys)
        self.reloads += 1
