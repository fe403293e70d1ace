"""The user service's session store against a real Redis primary and replica.

What the unit tests take from a fake is checked here on the real server: the rotation script
is atomic (of many concurrent rotations with one token exactly one wins), keys carry the
session's lifetime, and ending a session deletes it, writes the revocation of the gateway
contract, announces it, and WAITs for the replica — returning 0 when the replica cannot
confirm. The two servers are private to this module (127.0.0.1, free ports), so the test runs
beside any local cloud.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from services.common.tokens import MAX_ACCESS_TOKEN_TTL_S, REVOCATION_CHANNEL
from services.user.domain.sessions import Presented, Rotation, digest
from services.user.session_store import (
    RedisSessionStore,
    member_key,
    refresh_key,
    session_key,
)
from stack.waiting import wait_for

pytestmark = pytest.mark.cloud  # real servers (its own, not the local cloud's)

HOST = "127.0.0.1"
TTL_S = 60
READY_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Pair:
    primary_port: int
    replica_port: int
    replica: subprocess.Popen[bytes]


def start_redis(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    process = subprocess.Popen(
        ["redis-server", "--bind", HOST, "--port", str(port), "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = redis.Redis(host=HOST, port=port, socket_timeout=0.5)

    def answering() -> tuple[bool | None, str]:
        try:
            return bool(client.ping()) or None, "pong"
        except redis.RedisError as error:
            return None, str(error)

    wait_for(answering, timeout=READY_S, what=f"redis-server on {port}")
    return process


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    home = tmp_path_factory.mktemp("session-store")
    primary_port, replica_port = free_port(), free_port()
    primary = start_redis(home / "primary", primary_port)
    replica = start_redis(home / "replica", replica_port, "--replicaof", HOST, str(primary_port))
    client = redis.Redis(host=HOST, port=replica_port, decode_responses=True)

    def linked() -> tuple[bool | None, str]:
        status = client.info("replication").get("master_link_status")
        return (True if status == "up" else None), f"link {status}"

    try:
        wait_for(linked, timeout=READY_S, what="replica linked")
        yield Pair(primary_port, replica_port, replica)
    finally:
        for process in (replica, primary):
            os.killpg(process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(timeout=10)


@asynccontextmanager
async def store(pair: Pair) -> AsyncIterator[tuple[RedisSessionStore, Redis]]:
    client = Redis(host=HOST, port=pair.primary_port, decode_responses=True,
                   socket_timeout=2.0)
    try:
        yield RedisSessionStore(client), client
    finally:
        await client.aclose()


def test_a_session_is_found_by_its_refresh_token_and_lives_its_lifetime(pair: Pair) -> None:
    async def run() -> None:
        async with store(pair) as (sessions, client):
            await sessions.open("sid-open", "member-1", digest("r1"), TTL_S)
            assert await sessions.find(digest("r1")) == Presented("sid-open", "member-1")
            assert await sessions.find(digest("never")) is None
            assert await client.hget(session_key("sid-open"), "current") == digest("r1")
            for key in (session_key("sid-open"), refresh_key(digest("r1")),
                        member_key("member-1")):
                assert TTL_S * 1000 - 2000 < await client.pttl(key) <= TTL_S * 1000
            assert await sessions.sessions_of("member-1") == ["sid-open"]

    asyncio.run(run())


def test_rotation_swaps_the_current_token_and_a_consumed_one_is_stale(pair: Pair) -> None:
    async def run() -> None:
        async with store(pair) as (sessions, client):
            await sessions.open("sid-rot", "member-2", digest("a"), TTL_S)
            await client.pexpire(session_key("sid-rot"), 5_000)  # renewed by the rotation
            presented = Presented("sid-rot", "member-2")
            assert await sessions.rotate(presented, digest("a"), digest("b"), TTL_S) \
                is Rotation.ROTATED
            assert await client.pttl(session_key("sid-rot")) > 5_000
            assert await sessions.find(digest("b")) == presented
            assert await sessions.find(digest("a")) == presented  # kept to recognise reuse
            assert await sessions.rotate(presented, digest("a"), digest("c"), TTL_S) \
                is Rotation.STALE
            await client.delete(session_key("sid-rot"))
            assert await sessions.rotate(presented, digest("b"), digest("d"), TTL_S) \
                is Rotation.ENDED

    asyncio.run(run())


def test_of_many_concurrent_rotations_with_one_token_exactly_one_wins(pair: Pair) -> None:
    async def run() -> list[Rotation]:
        async with store(pair) as (sessions, _):
            await sessions.open("sid-race", "member-3", digest("t0"), TTL_S)
            presented = Presented("sid-race", "member-3")
            return await asyncio.gather(*(
                sessions.rotate(presented, digest("t0"), digest(f"t1-{i}"), TTL_S)
                for i in range(20)))

    outcomes = asyncio.run(run())
    assert outcomes.count(Rotation.ROTATED) == 1
    assert outcomes.count(Rotation.STALE) == 19


def test_ending_a_session_revokes_its_sid_and_waits_for_the_replica(pair: Pair) -> None:
    async def run() -> tuple[int, list[str]]:
        async with store(pair) as (sessions, client):
            await sessions.open("sid-end", "member-4", digest("e"), TTL_S)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(REVOCATION_CHANNEL)
            replicas = await sessions.end("sid-end", "member-4", replica_wait_ms=1_000)
            heard = []
            deadline = time.monotonic() + 2
            while not heard and time.monotonic() < deadline:
                message = await pubsub.get_message(timeout=0.2)
                if message:
                    heard.append(message["data"])
            await pubsub.aclose()
            assert not await client.exists(session_key("sid-end"))
            assert await sessions.sessions_of("member-4") == []
            assert await client.ttl("revoked:sid:sid-end") > MAX_ACCESS_TOKEN_TTL_S - 5
            return replicas, heard

    replicas, heard = asyncio.run(run())
    assert replicas == 1
    assert heard == ["sid:sid-end"]
    replica = redis.Redis(host=HOST, port=pair.replica_port, decode_responses=True)
    assert replica.exists("revoked:sid:sid-end")  # on the replica before the answer
    assert not replica.exists(session_key("sid-end"))


def test_a_revocation_the_replica_cannot_confirm_returns_0_after_the_wait(pair: Pair) -> None:
    async def run() -> tuple[int, float]:
        async with store(pair) as (sessions, _):
            await sessions.open("sid-lag", "member-5", digest("l"), TTL_S)
            os.killpg(pair.replica.pid, signal.SIGSTOP)  # a replica that cannot acknowledge
            try:
                began = time.monotonic()
                replicas = await sessions.end("sid-lag", "member-5", replica_wait_ms=200)
                return replicas, time.monotonic() - began
            finally:
                os.killpg(pair.replica.pid, signal.SIGCONT)

    replicas, took = asyncio.run(run())
    assert replicas == 0
    assert 0.2 <= took < 2.0

