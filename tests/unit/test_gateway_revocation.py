"""The revocation contract and the gateway's in-memory set, including the watcher's reload
logic against a fake Redis (the real one is in tests/integration/test_gateway_proxy.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.common.tokens import (
    MAX_ACCESS_TOKEN_TTL_S,
    REVOCATION_CHANNEL,
    Revocation,
    parse_key,
    parse_message,
)
from services.gateway.auth import Identity
from services.gateway.revocation import RevocationSet, RevocationWatcher


def identity(sid: str = "s1", jti: str = "j1") -> Identity:
    return Identity({"sub": "1", "roles": [], "sid": sid, "jti": jti, "exp": 0})


def test_contract_names() -> None:
    revocation = Revocation("sid", "abc")
    assert revocation.key == "revoked:sid:abc"
    assert revocation.message == "sid:abc"
    assert parse_message("jti:x:y") == Revocation("jti", "x:y")
    assert parse_key("revoked:sid:abc") == revocation
    assert parse_message("user:1") is None and parse_message("sid:") is None
    assert parse_key("ratelimit:x") is None
    assert REVOCATION_CHANNEL == "revocations" and MAX_ACCESS_TOKEN_TTL_S > 0


def test_set_applies_messages_and_replacements() -> None:
    revoked = RevocationSet()
    assert not revoked.is_revoked(identity())
    assert revoked.apply("sid:s1")
    assert revoked.is_revoked(identity(sid="s1", jti="other"))
    assert revoked.apply("jti:j2")
    assert revoked.is_revoked(identity(sid="other", jti="j2"))
    assert not revoked.apply("nonsense")
    revoked.replace(["revoked:jti:j3", "revoked:sid:s9", "unrelated"])
    assert revoked.loaded
    assert not revoked.is_revoked(identity(sid="s1", jti="j2"))  # the scan is the truth
    assert revoked.is_revoked(identity(sid="s9"))
    assert len(revoked) == 2


class FakePubSub:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def subscribe(self, channel: str) -> None:
        if self.redis.fail_subscribe:
            raise ConnectionError("master down")
        self.redis.subscribers.append(self)

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        if self.redis.broken:
            raise ConnectionError("connection lost")
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def aclose(self) -> None:
        if self in self.redis.subscribers:
            self.redis.subscribers.remove(self)


class FakeRedis:
    """Keys and pub/sub, as much as the watcher uses; messages are lost while not subscribed."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.subscribers: list[FakePubSub] = []
        self.broken = False
        self.fail_subscribe = False

    def pubsub(self, ignore_subscribe_messages: bool = True) -> FakePubSub:
        return FakePubSub(self)

    async def scan_iter(self, match: str, count: int) -> AsyncIterator[str]:
        for key in sorted(self.keys):
            yield key

    def revoke(self, revocation: Revocation) -> None:
        self.keys.add(revocation.key)
        for subscriber in self.subscribers:
            subscriber.queue.put_nowait({"type": "message", "data": revocation.message.encode()})


async def until(condition: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def test_watcher_loads_then_follows_then_reloads_after_a_failure() -> None:
    async def scenario() -> None:
        redis = FakeRedis()
        redis.keys.add("revoked:sid:before-start")
        revoked = RevocationSet()
        watcher = RevocationWatcher(revoked, redis, retry_s=0.01)  # type: ignore[arg-type]
        task = asyncio.create_task(watcher.run())
        try:
            await until(lambda: revoked.loaded)
            assert "before-start" in revoked.sids
            redis.revoke(Revocation("jti", "live"))
            await until(lambda: "live" in revoked.jtis)
            # The connection drops; a revocation published meanwhile is not delivered...
            redis.broken = True
            redis.fail_subscribe = True
            await until(lambda: not redis.subscribers)
            redis.revoke(Revocation("sid", "during-outage"))
            assert "during-outage" not in revoked.sids
            # ...but the reload after reconnecting finds it.
            redis.broken = redis.fail_subscribe = False
            await until(lambda: "during-outage" in revoked.sids)
            assert watcher.reloads >= 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())


def test_watcher_reloads_when_the_master_moves() -> None:
    async def scenario() -> None:
        redis = FakeRedis()
        master = ["127.0.1.21", 6379]
        revoked = RevocationSet()

        async def probe() -> Any:
            return tuple(master)

        watcher = RevocationWatcher(revoked, redis, master_probe=probe,  # type: ignore[arg-type]
                                    retry_s=0.01)
        task = asyncio.create_task(watcher.run())
        try:
            await until(lambda: watcher.reloads == 1)
            master[:] = ["127.0.2.21", 6379]
            await until(lambda: watcher.reloads == 2, timeout=5.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["sid", "jti"])
def test_revoke_helper_writes_key_with_ttl_then_publishes(kind: str) -> None:
    from services.common.tokens import revoke

    calls: list[tuple[str, Any]] = []

    class Pipe:
        def set(self, name: str, value: str, ex: int) -> None:
            calls.append(("set", (name, ex)))

        def publish(self, channel: str, message: str) -> None:
            calls.append(("publish", (channel, message)))

        async def execute(self) -> None:
            calls.append(("exec", None))

        async def __aenter__(self) -> Pipe:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    class Client:
        def pipeline(self, transaction: bool = True) -> Pipe:
            assert transaction
            return Pipe()

    asyncio.run(revoke(Client(), Revocation(kind, "x"), ttl_s=5))  # type: ignore[arg-type]
    assert calls == [("set", (f"revoked:{kind}:x", MAX_ACCESS_TOKEN_TTL_S)),
                     ("publish", ("revocations", f"{kind}:x")), ("exec", None)]
