"""The session Redis as the gateway reaches it: through Sentinel's master, or one plain URL.

Both the revocation watcher and the rate limiter's sync use this one client. Through Sentinel,
every new connection asks the Sentinels for the current master, so after a failover the next
command (or the watcher's resubscription) lands on the new master; ``master_probe`` lets the
watcher notice a failover even while its old connection still looks healthy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.gateway.settings import RedisSettings

MasterProbe = Callable[[], Awaitable[Any]]


def connect(settings: RedisSettings) -> tuple[Redis, MasterProbe | None]:
    """A client for the session Redis, and (with Sentinel) a probe of the master's address.

    No client-side retries: callers have their own (the watcher reconnects, the rate limiter
    falls back to local buckets), and a hidden retry would only delay them.
    """
    options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.sentinels:
        sentinel = Sentinel(list(settings.sentinels), sentinel_kwargs={  # type: ignore[no-untyped-call]
            "socket_timeout": settings.socket_timeout_s,
            "socket_connect_timeout": settings.socket_timeout_s}, **options)
        client = sentinel.master_for(settings.master, **options)

        async def probe() -> Any:
            return await sentinel.discover_master(settings.master)

        return client, probe
    if settings.url is None:
        raise ValueError("session Redis: neither sentinels nor url configured")
    return Redis.from_url(settings.url, **options), None
