"""The Redis command lines, start-role decision and Sentinel config, built from the model.

No server runs here: these are the pure functions behind stack.local.redis, checked against
the model so that a change to stack/come2us.py shows up as a failing expectation, not as a
server that silently listens somewhere else.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stack.come2us import come2us
from stack.local.redis import (
    MasterView,
    address_of,
    cache_server_argv,
    choose_start_role,
    fix_sentinel_config,
    new_sentinel_config,
    sentinel_argv,
    session_health,
    session_server_argv,
)
from stack.model import Node

MODEL = come2us()
GROUP = MODEL.data.session_redis
CACHE = MODEL.data.cache_redis
PRIMARY = address_of(GROUP.primary)
REPLICA = address_of(GROUP.replica)
DATA = Path("/srv/come2us/data/node")


def options(argv: tuple[str, ...]) -> dict[str, list[str]]:
    """``--name value ...`` pairs of a redis-server command line, as redis-server reads them."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for word in argv[1:]:
        if word.startswith("--"):
            current = found.setdefault(word[2:], [])
        elif current is not None:
            current.append(word)
    return found


def config_lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line and not line.startswith("#")]


# -- command lines --------------------------------------------------------------------------


@pytest.mark.parametrize("node", [GROUP.primary, GROUP.replica], ids=lambda n: n.name)
def test_session_node_binds_only_to_its_own_address(node: Node) -> None:
    opts = options(session_server_argv(GROUP, node, DATA, None))
    host = str(node.host)
    assert opts["bind"] == [host]
    assert opts["bind-source-addr"] == [host]
    assert opts["replica-announce-ip"] == [host]
    assert opts["port"] == [str(GROUP.primary.port)]
    assert opts["dir"] == [str(DATA)]
    assert opts["daemonize"] == ["no"]
    assert opts["logfile"] == [""]


def test_session_nodes_live_in_the_zones_the_model_gives_them() -> None:
    for node in (GROUP.primary, GROUP.replica, *GROUP.sentinels, CACHE.node):
        assert node.host in node.zone.loopback
    assert GROUP.primary.zone != GROUP.replica.zone


def test_session_node_persists_sessions_when_the_model_says_append_only() -> None:
    assert GROUP.append_only
    opts = options(session_server_argv(GROUP, GROUP.primary, DATA, None))
    assert opts["appendonly"] == ["yes"]
    assert opts["appendfsync"] == ["everysec"]
    assert opts["save"] == [""]


def test_session_node_without_append_only_keeps_nothing_on_disk() -> None:
    volatile = dataclasses.replace(GROUP, append_only=False)
    opts = options(session_server_argv(volatile, volatile.primary, DATA, None))
    assert opts["appendonly"] == ["no"]
    assert opts["save"] == [""]


def test_both_session_nodes_sync_a_replica_at_once() -> None:
    # Either may be the master after a failover, so both carry the master-side setting.
    for node in (GROUP.primary, GROUP.replica):
        opts = options(session_server_argv(GROUP, node, DATA, None))
        assert opts["repl-diskless-sync-delay"] == ["0"]


def test_replica_follows_the_upstream_it_is_given() -> None:
    opts = options(session_server_argv(GROUP, GROUP.replica, DATA, PRIMARY))
    assert opts["replicaof"] == [PRIMARY[0], str(PRIMARY[1])]
    assert "replicaof" not in options(session_server_argv(GROUP, GROUP.primary, DATA, None))


def test_cache_is_bounded_by_the_model_and_never_persists() -> None:
    argv = cache_server_argv(CACHE, DATA)
    opts = options(argv)
    assert argv[0] == "redis-server"
    assert opts["bind"] == [str(CACHE.node.host)]
    assert opts["port"] == [str(CACHE.node.port)]
    assert opts["maxmemory"] == [CACHE.max_memory]
    assert opts["maxmemory-policy"] == [CACHE.eviction_policy]
    assert opts["appendonly"] == ["no"]
    assert opts["save"] == [""]


@pytest.mark.parametrize("sentinel", GROUP.sentinels, ids=lambda n: n.name)
def test_sentinel_runs_from_its_own_config_file_on_its_own_address(sentinel: Node) -> None:
    config = DATA / "sentinel.conf"
    argv = sentinel_argv(sentinel, config, DATA)
    assert argv[:2] == ("redis-sentinel", str(config))
    opts = options(argv)
    assert opts["bind"] == [str(sentinel.host)]
    assert opts["bind-source-addr"] == [str(sentinel.host)]
    assert opts["port"] == [str(sentinel.port)]


# -- which role a session node starts in -----------------------------------------------------


def test_without_sentinels_the_model_roles_hold() -> None:
    assert choose_start_role(GROUP.primary, GROUP, [], None).is_master
    assert choose_start_role(GROUP.replica, GROUP, [], None).upstream == PRIMARY
    assert choose_start_role(GROUP.replica, GROUP, [], "master").upstream == PRIMARY


def test_without_sentinels_the_primary_never_becomes_a_second_master() -> None:
    role = choose_start_role(GROUP.primary, GROUP, [], "master")
    assert role.upstream == REPLICA
    assert "second master" in role.reason


def test_old_primary_rejoins_the_master_the_sentinels_name() -> None:
    views = [MasterView("sentinel-b", REPLICA, 1), MasterView("sentinel-region", REPLICA, 1)]
    role = choose_start_role(GROUP.primary, GROUP, views, "master")
    assert role.upstream == REPLICA
    assert "sentinel-b" in role.reason


def test_promoted_replica_restarts_as_master() -> None:
    views = [MasterView("sentinel-a", REPLICA, 1)]
    assert choose_start_role(GROUP.replica, GROUP, views, "slave").is_master


def test_the_newest_config_epoch_wins_when_sentinels_disagree() -> None:
    views = [MasterView("sentinel-a", PRIMARY, 0), MasterView("sentinel-b", REPLICA, 3),
             MasterView("sentinel-region", PRIMARY, 2)]
    assert choose_start_role(GROUP.primary, GROUP, views, "master").upstream == REPLICA
    assert choose_start_role(GROUP.replica, GROUP, views, "slave").is_master


def test_primary_leads_when_the_named_master_is_gone() -> None:
    # Both nodes were down; the Sentinels still name the replica. The primary starts as master
    # for the Sentinels to promote rather than wait for a master that does not answer.
    views = [MasterView("sentinel-region", REPLICA, 1)]
    assert choose_start_role(GROUP.primary, GROUP, views, None).is_master
    views = [MasterView("sentinel-region", PRIMARY, 0)]
    assert choose_start_role(GROUP.replica, GROUP, views, None).upstream == PRIMARY


def test_a_master_outside_the_model_is_not_followed() -> None:
    views = [MasterView("sentinel-a", ("127.0.9.9", 6379), 7)]
    assert choose_start_role(GROUP.primary, GROUP, views, None).is_master
    assert choose_start_role(GROUP.replica, GROUP, views, None).upstream == PRIMARY


def test_a_sentinel_is_settled_only_on_a_live_link_to_the_new_master() -> None:
    def view(master: tuple[str, int], flags: str, last_ok_ms: int) -> MasterView:
        return MasterView("sentinel-b", master, 1, frozenset(flags.split(",")), last_ok_ms)

    down_after = GROUP.down_after_ms
    assert view(REPLICA, "master", 120).settled_on(REPLICA, down_after)
    assert not view(REPLICA, "master,disconnected", 20).settled_on(REPLICA, down_after)
    assert not view(REPLICA, "master,s_down", 20).settled_on(REPLICA, down_after)
    assert not view(PRIMARY, "master", 20).settled_on(REPLICA, down_after)
    assert not view(REPLICA, "master", down_after).settled_on(REPLICA, down_after)


def test_only_session_nodes_have_a_start_role() -> None:
    with pytest.raises(ValueError, match=CACHE.node.name):
        choose_start_role(CACHE.node, GROUP, [], None)


# -- probes ---------------------------------------------------------------------------------


def test_replica_is_ready_only_with_its_link_up() -> None:
    up = session_health({"role": "slave", "master_host": PRIMARY[0], "master_port": 6379,
                         "master_link_status": "up", "slave_repl_offset": 42})
    down = session_health({"role": "slave", "master_host": PRIMARY[0], "master_port": 6379,
                           "master_link_status": "down", "master_sync_in_progress": 1})
    assert (up.ok, up.role) == (True, "replica")
    assert (down.ok, down.role) == (False, "replica-link-down")
    assert "sync in progress" in down.detail


def test_master_health_lists_its_replicas() -> None:
    health = session_health({"role": "master", "connected_slaves": 1,
                             "slave0": {"ip": REPLICA[0], "port": 6379, "state": "online"}})
    assert (health.ok, health.role) == (True, "master")
    assert f"{REPLICA[0]}:6379 online" in health.detail


# -- Sentinel config ------------------------------------------------------------------------

SENTINEL = GROUP.sentinels[0]
OTHER_SENTINELS = GROUP.sentinels[1:]


def rewritten_after_failover() -> str:
    """A file as Sentinel leaves it after promoting the replica (shape taken from Redis 7.0)."""
    peers = "\n".join(
        f"sentinel known-sentinel {GROUP.master_name} {n.host} {n.port} {i:040d}"
        for i, n in enumerate(OTHER_SENTINELS, start=1)
    )
    return (
        new_sentinel_config(GROUP, SENTINEL)
        .replace(f"announce-ip {SENTINEL.host}", f'announce-ip "{SENTINEL.host}"')
        .replace(f"{PRIMARY[0]} {PRIMARY[1]}", f"{REPLICA[0]} {REPLICA[1]}")
        + "\n# Generated by CONFIG REWRITE\n"
        f'dir "/srv/come2us/data/{SENTINEL.name}"\n'
        f"port {SENTINEL.port}\n"
        f"sentinel myid {'f' * 40}\n"
        f"sentinel config-epoch {GROUP.master_name} 1\n"
        f"sentinel leader-epoch {GROUP.master_name} 1\n"
        "sentinel current-epoch 1\n\n"
        f"sentinel known-replica {GROUP.master_name} {PRIMARY[0]} {PRIMARY[1]}\n\n"
        f"{peers}\n"
    )


def monitor_of(text: str) -> list[str]:
    return next(words for words in config_lines(text) if words[:2] == ["sentinel", "monitor"])


def test_first_config_monitors_the_model_primary_with_the_model_thresholds() -> None:
    lines = config_lines(new_sentinel_config(GROUP, SENTINEL))
    name = GROUP.master_name
    assert lines == [
        ["sentinel", "resolve-hostnames", "no"],
        ["sentinel", "announce-ip", str(SENTINEL.host)],
        ["sentinel", "monitor", name, PRIMARY[0], str(PRIMARY[1]), str(GROUP.quorum)],
        ["sentinel", "down-after-milliseconds", name, str(GROUP.down_after_ms)],
        ["sentinel", "failover-timeout", name, str(GROUP.failover_timeout_ms)],
    ]


def test_each_sentinel_announces_its_own_address() -> None:
    announced = {
        next(w[2] for w in config_lines(new_sentinel_config(GROUP, node)) if w[1] == "announce-ip")
        for node in GROUP.sentinels
    }
    assert announced == {str(node.host) for node in GROUP.sentinels}


def test_what_sentinel_learned_is_kept_untouched() -> None:
    text = rewritten_after_failover()
    fixed = fix_sentinel_config(text, GROUP, SENTINEL)
    assert fixed.changes == ()
    assert fixed.text == text
    assert monitor_of(fixed.text)[3] == REPLICA[0]


def test_model_thresholds_are_restored_but_the_current_master_is_kept() -> None:
    name = GROUP.master_name
    text = (rewritten_after_failover()
            .replace(f"{REPLICA[1]} {GROUP.quorum}\n", f"{REPLICA[1]} 3\n")
            .replace(f"down-after-milliseconds {name} {GROUP.down_after_ms}",
                     f"down-after-milliseconds {name} 30000")
            .replace(f"failover-timeout {name} {GROUP.failover_timeout_ms}\n", "")
            .replace(f'announce-ip "{SENTINEL.host}"', "announce-ip 10.0.0.5"))
    fixed = fix_sentinel_config(text, GROUP, SENTINEL)
    lines = config_lines(fixed.text)
    assert monitor_of(fixed.text) == ["sentinel", "monitor", name, REPLICA[0], str(REPLICA[1]),
                                      str(GROUP.quorum)]
    assert ["sentinel", "down-after-milliseconds", name, str(GROUP.down_after_ms)] in lines
    assert ["sentinel", "failover-timeout", name, str(GROUP.failover_timeout_ms)] in lines
    assert ["sentinel", "announce-ip", str(SENTINEL.host)] in lines
    assert [w for w in lines if w[:2] == ["sentinel", "myid"]] == [["sentinel", "myid", "f" * 40]]
    assert len(fixed.changes) == 4, fixed.changes  # quorum, down-after, timeout, announce-ip
    assert fix_sentinel_config(fixed.text, GROUP, SENTINEL).changes == ()


def test_a_foreign_master_is_replaced_by_the_model_master() -> None:
    text = (
        "port 26379\n"
        "sentinel monitor mymaster 10.1.1.1 6379 1\n"
        "sentinel down-after-milliseconds mymaster 60000\n"
        "sentinel known-replica mymaster 10.1.1.2 6379\n"
        "sentinel myid " + "a" * 40 + "\n"
    )
    fixed = fix_sentinel_config(text, GROUP, SENTINEL)
    lines = config_lines(fixed.text)
    assert not any("mymaster" in words for words in lines)
    assert monitor_of(fixed.text)[2:5] == [GROUP.master_name, PRIMARY[0], str(PRIMARY[1])]
    assert ["port", "26379"] in lines
    assert ["sentinel", "myid", "a" * 40] in lines
    assert any("mymaster" in change for change in fixed.changes)


def test_monitor_comes_before_every_other_line_of_its_master() -> None:
    name = GROUP.master_name
    text = (f"sentinel known-replica {name} {REPLICA[0]} {REPLICA[1]}\n"
            f"sentinel config-epoch {name} 4\n"
            f"sentinel monitor {name} {PRIMARY[0]} {PRIMARY[1]} {GROUP.quorum}\n")
    lines = config_lines(fix_sentinel_config(text, GROUP, SENTINEL).text)
    per_master = [i for i, w in enumerate(lines) if len(w) > 2 and w[2] == name]
    assert lines[per_master[0]][1] == "monitor"
    assert ["sentinel", "config-epoch", name, "4"] in lines


def test_a_monitored_address_outside_the_model_falls_back_to_the_primary() -> None:
    text = rewritten_after_failover().replace(f"monitor {GROUP.master_name} {REPLICA[0]}",
                                              f"monitor {GROUP.master_name} 127.0.9.9")
    fixed = fix_sentinel_config(text, GROUP, SENTINEL)
    assert monitor_of(fixed.text)[3:5] == [PRIMARY[0], str(PRIMARY[1])]


def test_the_node_that_reports_master_wins_when_no_peer_can_say() -> None:
    fixed = fix_sentinel_config(rewritten_after_failover(), GROUP, SENTINEL,
                                observed_master=PRIMARY)
    assert monitor_of(fixed.text)[3:5] == [PRIMARY[0], str(PRIMARY[1])]
    lines = config_lines(fixed.text)
    # The new master cannot also be a known replica of itself.
    assert not any(w[1] == "known-replica" and w[3] == PRIMARY[0] for w in lines)


def test_peers_and_replicas_the_model_does_not_have_are_forgotten() -> None:
    name = GROUP.master_name
    text = (rewritten_after_failover()
            + f"sentinel known-sentinel {name} 127.0.9.22 26379 {'9' * 40}\n"
            + f"sentinel known-replica {name} 127.0.9.21 6379\n")
    lines = config_lines(fix_sentinel_config(text, GROUP, SENTINEL).text)
    assert not any("127.0.9.22" in w or "127.0.9.21" in w for w in lines)
    known = [w for w in lines if w[1] == "known-sentinel"]
    assert {w[3] for w in known} == {str(n.host) for n in OTHER_SENTINELS}


def test_repeated_lines_of_the_master_are_dropped() -> None:
    name = GROUP.master_name
    text = (new_sentinel_config(GROUP, SENTINEL)
            + f"sentinel monitor {name} {REPLICA[0]} {REPLICA[1]} 1\n"
            + f"sentinel down-after-milliseconds {name} 5\n")
    fixed = fix_sentinel_config(text, GROUP, SENTINEL)
    assert fixed.text == new_sentinel_config(GROUP, SENTINEL)
    assert len(fixed.changes) == 2


@pytest.mark.parametrize("text", [
    "",
    "port 26379\n",
    "sentinel monitor other 1.2.3.4 6379 1\n",
    "sentinel resolve-hostnames yes\nsentinel resolve-hostnames no\n",
])
def test_fixing_is_idempotent(text: str) -> None:
    once = fix_sentinel_config(text, GROUP, SENTINEL)
    twice = fix_sentinel_config(once.text, GROUP, SENTINEL)
    assert twice.text == once.text
    assert twice.changes == ()
