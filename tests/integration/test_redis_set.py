"""The Redis servers of the local cloud, run for real: session group with Sentinels, and cache.

Each test brings up its own servers in a temporary workspace at the model's addresses and stops
them again whatever happens, so the tests can run in any order and leave no process behind.
Every threshold comes from the model; waits are conditions with deadlines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from redis.sentinel import Sentinel

from stack.come2us import come2us
from stack.local.backend import ProcessBackend
from stack.local.component import Component
from stack.local.datadir import MARKER, DataDirError
from stack.local.ports import ensure_free
from stack.local.redis import (
    CacheRedisServer,
    RedisSessionSet,
    SessionRedisServer,
    address_of,
    redis_components,
)
from stack.local.workspace import Workspace
from stack.waiting import wait_for

pytestmark = pytest.mark.cloud

MODEL = come2us()
GROUP = MODEL.data.session_redis
CACHE = MODEL.data.cache_redis
FAIL_FAST = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5,
             "retry": Retry(NoBackoff(), 0)}
CLIENT = {**FAIL_FAST, "decode_responses": True}
# Detection (down-after) plus a whole failover attempt, twice over for a loaded 2-core machine.
FAILOVER_DEADLINE_S = 2 * (GROUP.down_after_ms + GROUP.failover_timeout_ms) / 1000
NODE_NAMES = [node.name for node in (*GROUP.nodes, *CACHE.nodes)]  # redis_components' order
C = TypeVar("C", bound=Component)
REDIS_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "k": 1000, "m": 1000**2, "g": 1000**3}


def new_workspace(home: Path) -> Workspace:
    workspace = Workspace(home)
    workspace.ensure()
    return workspace


def stop_all(components: Sequence[Component]) -> None:
    """Stop in reverse start order (Sentinels before the nodes they would fail over)."""
    errors: list[BaseException] = []
    for component in reversed(components):
        try:
            component.stop()
        except Exception as err:  # keep stopping the others; report the first failure
            errors.append(err)
    if errors:
        raise errors[0]


@contextmanager
def running(components: Sequence[Component]) -> Iterator[dict[str, float]]:
    """Start the components in order, each ready before the next; stop them all afterwards.

    Yields the seconds each took from start to ready, for the report.
    """
    took: dict[str, float] = {}
    try:
        for component in components:
            began = time.monotonic()
            component.start()
            component.wait_ready()
            took[component.name] = time.monotonic() - began
        yield took
    finally:
        stop_all(components)


def by_type(components: Sequence[Component], kind: type[C]) -> list[C]:
    return [c for c in components if isinstance(c, kind)]


def session_nodes(
        components: Sequence[Component]) -> tuple[SessionRedisServer, SessionRedisServer]:
    primary, replica = by_type(components, SessionRedisServer)
    assert (primary.node, replica.node) == (GROUP.primary, GROUP.replica)
    return primary, replica


def sentinel_client() -> Sentinel:
    return Sentinel(GROUP.sentinel_addresses(), sentinel_kwargs=dict(FAIL_FAST), **FAIL_FAST)


def redis_bytes(size: str) -> int:
    number = size.rstrip("kmgbKMGB")
    return int(number) * REDIS_UNITS.get(size[len(number):].lower(), 1)


def try_write(master: redis.Redis, key: str, value: str) -> tuple[bool | None, str]:
    try:
        master.set(key, value)
    except RedisError as err:
        return None, f"{type(err).__name__}: {err}"
    return True, "written"


# -- no server needed -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NODE_NAMES)
def test_a_data_dir_of_someone_else_is_refused(tmp_path: Path, name: str) -> None:
    components = redis_components(MODEL, new_workspace(tmp_path / "home"), ProcessBackend())
    assert [c.name for c in components] == NODE_NAMES
    (component,) = [c for c in components if c.name == name]
    component.data_dir.mkdir(parents=True)
    stamp = json.dumps({"node": "someone-else", "kind": "postgres"})
    (component.data_dir / MARKER).write_text(stamp)
    (component.data_dir / "precious").write_text("keep me")
    try:
        with pytest.raises(DataDirError, match="someone-else"):
            component.start()
        assert not component.runner.running()
    finally:
        component.stop()
    assert (component.data_dir / MARKER).read_text() == stamp
    assert (component.data_dir / "precious").read_text() == "keep me"


# -- one running set, several observations ------------------------------------------------


@pytest.fixture(scope="class")
def redis_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Component]]:
    workspace = new_workspace(tmp_path_factory.mktemp("redis-home"))
    components = redis_components(MODEL, workspace, ProcessBackend())
    with running(components) as took:
        print(f"\nstart to ready: {', '.join(f'{k} {v:.2f}s' for k, v in took.items())}")
        yield components


class TestRunningRedis:
    def test_every_node_is_in_its_model_role(self, redis_cloud: list[Component]) -> None:
        primary, replica = session_nodes(redis_cloud)
        assert primary.health().role == "master"
        assert replica.health().role == "replica"
        for sentinel in RedisSessionSet.among(redis_cloud).sentinels:
            health = sentinel.health()
            assert health.ok, health.detail
            assert f"{len(GROUP.sentinels) - 1} other sentinels" in health.detail

    def test_sentinels_agree_on_the_primary(self, redis_cloud: list[Component]) -> None:
        master = RedisSessionSet.among(redis_cloud).wait_converged(timeout=0)
        assert master == address_of(GROUP.primary)

    def test_a_session_written_through_sentinel_is_read_from_the_replica(
            self, redis_cloud: list[Component]) -> None:
        master = sentinel_client().master_for(GROUP.master_name, **CLIENT)
        master.set("session:42", "alice", ex=600)
        _, replica = session_nodes(redis_cloud)
        with replica.client() as client:
            value = wait_for(lambda: (client.get("session:42"), "not replicated yet"),
                             timeout=GROUP.timeouts.ready_s, what="session on the replica")
        assert value == "alice"

    def test_servers_bind_and_connect_only_on_their_own_address(
            self, redis_cloud: list[Component]) -> None:
        servers = [*by_type(redis_cloud, SessionRedisServer),
                   *by_type(redis_cloud, CacheRedisServer)]
        for component in servers:
            with component.client() as client:
                assert client.config_get("bind")["bind"] == str(component.node.host)
        primary, _ = session_nodes(redis_cloud)
        with primary.client() as client:
            links = cast(list[dict[str, Any]], client.client_list(_type="replica"))
        assert [link["addr"].rsplit(":", 1)[0] for link in links] == [str(GROUP.replica.host)]

    def test_cache_evicts_as_the_model_says(self, redis_cloud: list[Component]) -> None:
        (cache,) = by_type(redis_cloud, CacheRedisServer)
        with cache.client() as client:
            config = client.config_get("maxmemory*")
            assert config["maxmemory-policy"] == CACHE.eviction_policy
            assert int(config["maxmemory"]) == redis_bytes(CACHE.max_memory)
            assert client.config_get("appendonly")["appendonly"] == "no"
        health = cache.health()
        assert health.ok and CACHE.eviction_policy in health.detail


# -- lifecycles -----------------------------------------------------------------------------


def test_stop_frees_every_port_and_sessions_survive_a_restart(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path / "home")
    components = redis_components(MODEL, workspace, ProcessBackend())
    with running(components):
        master = sentinel_client().master_for(GROUP.master_name, **CLIENT)
        master.set("session:7", "bob")
        assert master.wait(1, 400) == 1  # on the replica too, before anything stops
    for component in components:
        ensure_free(component.node.host, component.node.port, component.name)

    again = redis_components(MODEL, workspace, ProcessBackend())
    with running(again):
        primary, _ = session_nodes(again)
        with primary.client() as client:
            assert client.get("session:7") == "bob"
    for component in again:
        ensure_free(component.node.host, component.node.port, component.name)


def test_sentinels_promote_the_replica_and_the_old_primary_rejoins_it(tmp_path: Path) -> None:
    components = redis_components(MODEL, new_workspace(tmp_path / "home"), ProcessBackend())
    with running(components) as took:
        timings = fail_over_and_rejoin(components)
    print(f"\nall ready in {sum(took.values()):.2f}s (last sentinel, incl. convergence, "
          f"{took[GROUP.sentinels[-1].name]:.2f}s); " + "; ".join(
              f"{what} {seconds:.2f}s" for what, seconds in timings.items()))


def test_after_a_failover_down_and_up_bring_back_one_master(tmp_path: Path) -> None:
    """The Sentinels' files name the promoted replica, the nodes restart in the model's roles:
    the Sentinels must follow the nodes rather than fail over again, and no session is lost."""
    workspace = new_workspace(tmp_path / "home")
    components = redis_components(MODEL, workspace, ProcessBackend())
    with running(components):
        fail_over_and_rejoin(components)

    again = redis_components(MODEL, workspace, ProcessBackend())
    with running(again):
        primary, replica = session_nodes(again)
        assert (primary.health().role, replica.health().role) == ("master", "replica")
        assert RedisSessionSet.among(again).wait_converged(timeout=0) == address_of(GROUP.primary)
        master = sentinel_client().master_for(GROUP.master_name, **CLIENT)
        assert master.mget("session:before", "session:after") == ["carol", "dave"]


def fail_over_and_rejoin(components: Sequence[Component]) -> dict[str, float]:
    """Kill the primary, see the replica promoted and written to, restart the old primary.

    Returns the measured times, from the kill, for the report.
    """
    session_set = RedisSessionSet.among(components)
    primary, replica = session_nodes(components)
    assert session_set.wait_converged(timeout=0) == address_of(GROUP.primary)
    master = sentinel_client().master_for(GROUP.master_name, **CLIENT)
    master.set("session:before", "carol")
    assert master.wait(1, 400) == 1

    def promoted() -> tuple[bool | None, str]:
        seen = session_set.current_master()
        return (True if seen == address_of(GROUP.replica) else None), f"sentinels say {seen}"

    primary.kill()
    killed = time.monotonic()
    wait_for(promoted, timeout=FAILOVER_DEADLINE_S, what="sentinels promote the replica")
    switched = time.monotonic()
    wait_for(lambda: try_write(master, "session:after", "dave"),
             timeout=FAILOVER_DEADLINE_S, what="a write through Sentinel after failover")
    written = time.monotonic()
    assert replica.health().role == "master"
    with replica.client() as client:
        assert client.get("session:before") == "carol"
    assert master.wait(1, 100) == 0  # nobody left to copy to: the write is not yet safe

    primary.start()
    health = primary.wait_ready()
    rejoined = time.monotonic()
    assert primary.start_role.upstream == address_of(GROUP.replica), primary.start_role
    assert health.role == "replica", health.detail
    assert f"replica of {GROUP.replica.address}" in health.detail
    with primary.client() as client:
        assert client.get("session:after") == "dave"
    assert session_set.wait_converged() == address_of(GROUP.replica)
    return {
        "master switched after kill -9": switched - killed,
        "first write after kill -9": written - killed,
        "old primary back as replica after kill -9": rejoined - killed,
        "sentinels converged again after kill -9": time.monotonic() - killed,
    }
