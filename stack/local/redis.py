"""ElastiCache Redis, locally: the session group (primary, replica, three Sentinels) and the cache.

The session group plays an ElastiCache replication group with automatic failover: a primary in
AZ-a, an asynchronous replica in AZ-b, and three Sentinels (one per AZ and a regional arbiter)
that promote the replica when the primary's AZ fails. Sessions are written to an append-only
file so a node that is stopped and started again still has them. The cache node is one bounded
server with LRU eviction and no persistence, as the cost section of the seed (§10) asks.

Every server binds only to its node's loopback address, connects out from that address too
(``bind-source-addr``), and announces it to the others (``replica-announce-ip``,
``sentinel announce-ip``): without the announcements every process would be seen as 127.0.0.1
and the Sentinels could neither find the replica nor tell each other apart.

Replication is asynchronous, as on ElastiCache: a write acknowledged by the primary but not yet
copied when the primary dies is lost by the failover. A client that cannot afford that waits for
the replica (``WAIT 1 <ms>``) and treats a reply of 0 as "not safe" (../shared/NOTES.md).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError
from redis.retry import Retry

from stack.local.backend import Backend
from stack.local.component import Component, ComponentError, Health, ProcessSpec
from stack.local.datadir import DataDir
from stack.local.workspace import Workspace
from stack.model import Node, Platform, RedisCache, RedisSessionGroup
from stack.waiting import DeadlineExceeded, wait_for

Address = tuple[str, int]

PROBE_TIMEOUT_S = 0.5
SENTINEL_CONFIG = "sentinel.conf"
AOF_DIR = "appendonlydir"

# Sentinel directives whose second word is a master name. A Sentinel config must state
# `monitor` before any of the others for the same master, or Sentinel refuses to load it.
PER_MASTER_DIRECTIVES = frozenset({
    "monitor", "down-after-milliseconds", "failover-timeout", "parallel-syncs",
    "notification-script", "client-reconfig-script", "auth-pass", "auth-user",
    "config-epoch", "leader-epoch", "known-replica", "known-slave", "known-sentinel",
    "rename-command", "master-reboot-down-after-period",
})


def address_of(node: Node) -> Address:
    return (str(node.host), node.port)


def _show(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def _client(address: Address) -> redis.Redis:
    """A client that fails fast: probes must answer in well under the ready interval.

    redis-py retries three times by default, which would turn one refused connection into a
    slow probe and hide the failure; ``Retry(NoBackoff(), 0)`` lets us see it at once.
    """
    return redis.Redis(
        host=address[0], port=address[1], socket_timeout=PROBE_TIMEOUT_S,
        socket_connect_timeout=PROBE_TIMEOUT_S, retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def reported_role(address: Address) -> str | None:
    """What a Redis server says it is: "master", "slave", "loading", or None if it is silent."""
    try:
        with _client(address) as client:
            info = cast(dict[str, Any], client.info("replication"))
    except BusyLoadingError:
        return "loading"
    except RedisError:
        return None
    return str(info.get("role"))


# -- command lines --------------------------------------------------------------------------


def _common_args(node: Node, data_dir: Path) -> list[str]:
    """Settings every Redis process of the local cloud shares.

    Protected mode is off because the process is reachable only on its loopback address;
    the log goes to stdout, which the runner writes to the node's log file.
    """
    host = str(node.host)
    return [
        "--port", str(node.port),
        "--bind", host,
        "--bind-source-addr", host,
        "--protected-mode", "no",
        "--daemonize", "no",
        "--logfile", "",
        "--dir", str(data_dir),
    ]


def session_server_argv(group: RedisSessionGroup, node: Node, data_dir: Path,
                        upstream: Address | None) -> tuple[str, ...]:
    """The command line of a session node; ``upstream`` is the master to follow, if any.

    Both session nodes get the same replication settings because either may be the master
    after a failover: diskless sync with no delay (the 5 s default delays every first sync),
    and the node's own address announced so the master's INFO, which the Sentinels read to
    find replicas, names it correctly.
    """
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "everysec"]
        if group.append_only else ["--appendonly", "no"]
    )
    argv = [
        "redis-server", *_common_args(node, data_dir),
        *persistence,
        "--save", "",  # the append-only file is the persistence; snapshots would only add I/O
        "--repl-diskless-sync", "yes",
        "--repl-diskless-sync-delay", "0",
        "--replica-announce-ip", str(node.host),
    ]
    if upstream is not None:
        argv += ["--replicaof", upstream[0], str(upstream[1])]
    return tuple(argv)


def cache_server_argv(cache: RedisCache, data_dir: Path) -> tuple[str, ...]:
    """The cache node: bounded by the model's memory limit and eviction policy, never on disk."""
    return (
        "redis-server", *_common_args(cache.node, data_dir),
        "--appendonly", "no",
        "--save", "",
        "--maxmemory", cache.max_memory,
        "--maxmemory-policy", cache.eviction_policy,
    )


def sentinel_argv(node: Node, config: Path, data_dir: Path) -> tuple[str, ...]:
    """Sentinel needs a config file it can rewrite; the rest is given on the command line."""
    return ("redis-sentinel", str(config), *_common_args(node, data_dir))


# -- which role a session node starts in -----------------------------------------------------


@dataclass(frozen=True)
class MasterView:
    """What one Sentinel answered about the monitored master."""

    sentinel: str
    master: Address
    config_epoch: int
    flags: frozenset[str] = frozenset({"master"})
    last_ok_ping_ms: int = 0

    def settled_on(self, master: Address, down_after_ms: int) -> bool:
        """True once this Sentinel watches ``master`` over a live link, no failover under way.

        Right after it switches master, a Sentinel drops its link and may reconnect only a
        second after its last attempt; until the new master answers its PING it counts the
        silence from the switch, and with down-after at about a second it can declare the
        new master down and fail over again (seen here with Redis 7.0 and down-after 1000).
        """
        return (self.master == master and self.flags == frozenset({"master"})
                and self.last_ok_ping_ms < down_after_ms)


@dataclass(frozen=True)
class StartRole:
    """The role a session node starts in, and why (the reason goes into its log)."""

    upstream: Address | None
    reason: str

    @property
    def is_master(self) -> bool:
        return self.upstream is None

    def __str__(self) -> str:
        role = "master" if self.upstream is None else f"replica of {_show(self.upstream)}"
        return f"{role}: {self.reason}"


def choose_start_role(node: Node, group: RedisSessionGroup, views: Sequence[MasterView],
                      peer_role: str | None) -> StartRole:
    """Decide whether ``node`` starts as master or as a replica of the current master.

    After a failover the model's primary is no longer the master. Restarted as a master, it
    would take writes for the few seconds until the Sentinels turn it into a replica, and
    lose them then. So the Sentinels are asked first; the one with the highest config epoch
    has seen the latest failover. If they name the other node and it does not answer at all,
    the model's primary starts as master anyway: the Sentinels will promote it, as the only
    node left, instead of the group waiting for a master that is gone. Without any Sentinel,
    another node that already answers as master is followed, because two masters would split
    the sessions; otherwise the model's roles hold.

    ``peer_role`` is what the other session node reports ("master", "slave", "loading"), or
    None when it does not answer.
    """
    me = address_of(node)
    if node == group.primary:
        peer = address_of(group.replica)
    elif node == group.replica:
        peer = address_of(group.primary)
    else:
        raise ValueError(f"{node.name} is not a session node of {group.name}")
    members = {me, peer}
    known = [view for view in views if view.master in members]
    if known:
        best = max(known, key=lambda view: view.config_epoch)
        said = f"Sentinel {best.sentinel} (config epoch {best.config_epoch})"
        if best.master == me:
            return StartRole(None, f"{said} names this node the master")
        if peer_role is not None:
            return StartRole(peer, f"{said} names {_show(peer)} the master")
        if node == group.primary:
            return StartRole(None, f"{said} names {_show(peer)} the master, which does not "
                                   f"answer; starting as master for the Sentinels to promote")
        return StartRole(peer, f"{said} names {_show(peer)} the master; it does not answer "
                               f"yet, following it as the model says")
    if node == group.replica:
        return StartRole(peer, f"no Sentinel answered: the model's replica of {_show(peer)}")
    if peer_role == "master":
        return StartRole(peer, f"no Sentinel answered; {_show(peer)} answers as master, so "
                               f"this node follows it rather than become a second master")
    return StartRole(None, "no Sentinel answered and no other master: the model's primary")


def ask_sentinels(group: RedisSessionGroup) -> list[MasterView]:
    """The master as each answering Sentinel sees it; silent Sentinels are left out."""
    views: list[MasterView] = []
    for sentinel in group.sentinels:
        try:
            with _client(address_of(sentinel)) as client:
                state = cast(dict[str, Any], client.sentinel_master(group.master_name))
        except RedisError:
            continue
        views.append(MasterView(
            sentinel.name, (str(state["ip"]), int(state["port"])),
            int(state.get("config-epoch", 0)), frozenset(str(state["flags"]).split(",")),
            int(state.get("last-ok-ping-reply", 0)),
        ))
    return views


# -- probes ---------------------------------------------------------------------------------


def session_health(info: dict[str, Any]) -> Health:
    """Health from INFO replication: a master is ready; a replica only once its link is up.

    A replica whose link is down serves stale or no data and cannot be promoted safely, so it
    is not counted as ready.
    """
    role = info.get("role")
    if role == "master":
        replicas = [
            f"{entry['ip']}:{entry['port']} {entry.get('state', '?')}"
            for key, entry in sorted(info.items())
            if key.startswith("slave") and isinstance(entry, dict)
        ]
        return Health(True, f"master; replicas: {', '.join(replicas) or 'none'}", role="master")
    if role == "slave":
        upstream = f"{info.get('master_host')}:{info.get('master_port')}"
        if info.get("master_link_status") == "up":
            return Health(True, f"replica of {upstream}, link up, offset "
                                f"{info.get('slave_repl_offset')}", role="replica")
        syncing = " (sync in progress)" if info.get("master_sync_in_progress") else ""
        return Health(False, f"replica of {upstream}, link down{syncing}",
                      role="replica-link-down")
    return Health(False, f"unexpected role {role!r}")


def cache_health(memory: dict[str, Any]) -> Health:
    """Health of the cache node: it answers; the detail shows how full it is and how it evicts."""
    used = memory.get("used_memory_human", "?")
    limit = memory.get("maxmemory_human", "?")
    policy = memory.get("maxmemory_policy", "?")
    return Health(True, f"used {used} of {limit}, eviction {policy}", role="master")


def sentinel_health(master_name: str, masters: dict[str, Any]) -> Health:
    state = masters.get(master_name)
    if not isinstance(state, dict):
        return Health(False, f"does not monitor {master_name!r} (monitors {sorted(masters)})",
                      role="sentinel")
    return Health(
        True,
        f"{master_name} at {state['ip']}:{state['port']} ({state['flags']}), "
        f"{state['num-other-sentinels']} other sentinels, {state['num-slaves']} replicas",
        role="sentinel",
    )


# -- Sentinel's config file -----------------------------------------------------------------


@dataclass(frozen=True)
class SentinelConfig:
    """A Sentinel config file's text and what was changed to make it match the model."""

    text: str
    changes: tuple[str, ...]


def _words(line: str) -> list[str] | None:
    """The words of a config line (Redis quotes values much as a shell does), or None."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    try:
        return shlex.split(stripped)
    except ValueError:
        return None


def _kept_or_new(original: str | None, wanted: list[str]) -> str:
    """Keep the file's own spelling of a line when it already says what we want.

    Sentinel quotes some values when it rewrites the file; keeping its spelling means a file
    that is already right is not rewritten on every start.
    """
    if original is not None and _words(original) == wanted:
        return original
    return " ".join(wanted)


def fix_sentinel_config(text: str, group: RedisSessionGroup, sentinel: Node,
                        observed_master: Address | None = None) -> SentinelConfig:
    """Make a Sentinel config file agree with the model, keeping what Sentinel learned.

    Sentinel rewrites its file as it learns: the current master after a failover, its own id,
    the epochs, the replicas and other Sentinels it met. That is kept, in place, so a restarted
    Sentinel still knows where the master is and a file that is already right is left as it
    is. What the model owns is enforced: the master's name, the quorum, down-after and
    failover timeouts, the announced address and hostname resolution. Entries for any other
    master name, and replicas or Sentinels at addresses the model does not have, are dropped:
    they would make the Sentinel count peers that cannot exist.

    The monitored address is the file's if it is one of the model's session nodes, else the
    model's primary; ``observed_master`` (the one node that reports itself master, when no
    running Sentinel names another) overrides both, because a Sentinel started on a stale
    master would see a replica where it expects the master and fail over needlessly.
    """
    name = group.master_name
    members = {address_of(group.primary), address_of(group.replica)}
    peers = {address_of(node) for node in group.sentinels if node != sentinel}
    globals_wanted = {
        "resolve-hostnames": ["sentinel", "resolve-hostnames", "no"],
        "announce-ip": ["sentinel", "announce-ip", str(sentinel.host)],
    }
    lines = text.splitlines()
    parsed = [_words(line) for line in lines]
    changes: list[str] = []

    # What the file says about the model's master: the monitor line and the two timeouts.
    own: dict[str, str] = {}
    own_at: set[int] = set()
    for index, (line, words) in enumerate(zip(lines, parsed, strict=True)):
        directive = _master_directive(words, name)
        if directive in ("monitor", "down-after-milliseconds", "failover-timeout"):
            if directive not in own:
                own_at.add(index)
            own.setdefault(directive, line)
    remembered: Address | None = None
    monitor_words = _words(own["monitor"]) if "monitor" in own else None
    if monitor_words and len(monitor_words) == 6:
        remembered = _address_words(monitor_words[3:5])
        if remembered is not None and remembered not in members:
            changes.append(f"the file monitored {_show(remembered)}, which is not a session "
                           f"node of the model; monitoring the model's primary instead")
            remembered = None
        if monitor_words[5] != str(group.quorum):
            changes.append(f"quorum {monitor_words[5]} -> {group.quorum}")
    master = observed_master or remembered or address_of(group.primary)
    if remembered is not None and master != remembered:
        changes.append(f"monitored master {_show(remembered)} -> {_show(master)}, the node "
                       f"that reports itself master")
    if "monitor" not in own and text.strip():
        changes.append(f"added the monitor of {name!r} at {_show(master)}")

    block = [_kept_or_new(own.get("monitor"), [
        "sentinel", "monitor", name, master[0], str(master[1]), str(group.quorum)])]
    for directive, value in (("down-after-milliseconds", group.down_after_ms),
                             ("failover-timeout", group.failover_timeout_ms)):
        old = own.get(directive)
        new = _kept_or_new(old, ["sentinel", directive, name, str(value)])
        if old is None and text.strip():
            changes.append(f"added {new!r}")
        elif old is not None and new != old:
            changes.append(f"{old.strip()!r} -> {new!r}")
        block.append(new)

    # Rewrite in place. Sentinel refuses a file in which another line of a master comes
    # before its monitor line, so the monitor and timeouts go where the master's first line was.
    out: list[str] = []
    block_at: int | None = None
    global_seen: set[str] = set()
    for index, (line, words) in enumerate(zip(lines, parsed, strict=True)):
        if words is None or len(words) < 2 or words[0].lower() != "sentinel":
            out.append(line)
            continue
        directive = words[1].lower()
        if directive in globals_wanted:
            if directive in global_seen:
                changes.append(f"dropped a repeated line {line.strip()!r}")
                continue
            global_seen.add(directive)
            fixed = _kept_or_new(line, globals_wanted[directive])
            if fixed != line:
                changes.append(f"{line.strip()!r} -> {fixed!r}")
            out.append(fixed)
            continue
        if directive not in PER_MASTER_DIRECTIVES or len(words) < 3:
            out.append(line)
            continue
        if words[2] != name:
            changes.append(f"dropped {line.strip()!r}: the model's master is named {name!r}")
            continue
        if block_at is None:
            block_at = len(out)
            out.extend(block)
        if directive in ("monitor", "down-after-milliseconds", "failover-timeout"):
            if index not in own_at:
                changes.append(f"dropped a repeated line {line.strip()!r}")
            continue
        seen = _address_words(words[3:5])
        if directive in ("known-replica", "known-slave") and (
                seen not in members or seen == master):
            changes.append(f"dropped {line.strip()!r}: not a replica in the model")
            continue
        if directive == "known-sentinel" and seen not in peers:
            changes.append(f"dropped {line.strip()!r}: not a Sentinel in the model")
            continue
        out.append(line)

    if block_at is None:
        block_at = len(out)
        out.extend(block)
    missing = [" ".join(words) for key, words in globals_wanted.items() if key not in global_seen]
    if text.strip():
        changes.extend(f"added {line!r}" for line in missing)
    out[block_at:block_at] = missing
    return SentinelConfig("\n".join(out) + "\n", tuple(changes))


def _master_directive(words: list[str] | None, name: str) -> str | None:
    """The directive of a Sentinel line about master ``name``, else None."""
    if (words is None or len(words) < 3 or words[0].lower() != "sentinel"
            or words[1].lower() not in PER_MASTER_DIRECTIVES or words[2] != name):
        return None
    return words[1].lower()


def _address_words(words: list[str]) -> Address | None:
    if len(words) == 2 and words[1].isdigit():
        return (words[0], int(words[1]))
    return None


def new_sentinel_config(group: RedisSessionGroup, sentinel: Node) -> str:
    header = (
        f"# Sentinel {sentinel.name} of {group.name}, written by come2us on first start.\n"
        "# Sentinel rewrites this file as it learns (current master, epochs, peers); come2us\n"
        "# keeps those lines and re-applies the model's settings on every start.\n"
    )
    return header + fix_sentinel_config("", group, sentinel).text


# -- components -----------------------------------------------------------------------------


def _note(component: Component, text: str) -> None:
    """Write a line of our own into the node's log, just before the server's own output."""
    component.log_file.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with component.log_file.open("a") as log:
        log.write(f"{stamp} come2us: {text}\n")


def _write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".come2us-tmp")
    scratch.write_text(text)
    scratch.replace(path)


class RedisServer(Component):
    """What every Redis data node shares: its data directory and a fast PING probe."""

    kind = "redis"

    def prepare(self) -> None:
        DataDir(self.data_dir, self.name, self.kind).claim(lambda scratch: None,
                                                           self.check_data_dir)

    def check_data_dir(self, path: Path) -> str | None:
        """A kind-specific test of an existing data directory; None when it looks sound."""
        return None

    def info(self, section: str) -> dict[str, Any]:
        with _client(address_of(self.node)) as client:
            client.ping()
            return cast(dict[str, Any], client.info(section))

    def client(self) -> redis.Redis:
        """A fail-fast client of this node (the caller closes it)."""
        return _client(address_of(self.node))


class SessionRedisServer(RedisServer):
    """The session primary or replica; which one it is at start is asked of the Sentinels."""

    def __init__(self, node: Node, group: RedisSessionGroup, workspace: Workspace,
                 backend: Backend) -> None:
        super().__init__(node, group.timeouts, workspace, backend)
        self.group = group
        self.start_role = choose_start_role(node, group, (), None)

    @property
    def peer(self) -> Node:
        return self.group.replica if self.node == self.group.primary else self.group.primary

    @property
    def depends_on(self) -> tuple[str, ...]:
        # The model's start order: the replica's first sync needs the primary. After a
        # failover the roles are swapped, but starting the model's primary first still works:
        # choose_start_role makes it follow whichever node the Sentinels name.
        return () if self.node == self.group.primary else (self.group.primary.name,)

    def start(self) -> None:
        if not self.runner.running():
            self.start_role = self._decide_start_role()
            _note(self, f"starting {self.name} as {self.start_role}")
        super().start()

    def _decide_start_role(self) -> StartRole:
        """Ask the Sentinels and the peer; join a newly promoted master only once they settle.

        A node that rejoins as a replica becomes a candidate for promotion. Offered while a
        Sentinel has not yet reached the master it just switched to, it would be promoted
        back in a second, needless failover; so the node waits, at most one failover timeout,
        until every answering Sentinel watches the master over a live link, then decides again.
        """
        views = ask_sentinels(self.group)
        role = choose_start_role(self.node, self.group, views,
                                 reported_role(address_of(self.peer)))
        upstream = role.upstream
        if upstream is None or not any(view.master == upstream for view in views):
            return role  # not following a master the Sentinels chose: nothing to settle

        def settled() -> tuple[bool | None, str]:
            unsettled = [
                f"{v.sentinel} sees {_show(v.master)} ({','.join(sorted(v.flags))}, last ok "
                f"PING {v.last_ok_ping_ms} ms ago)"
                for v in ask_sentinels(self.group)
                if not v.settled_on(upstream, self.group.down_after_ms)
            ]
            return (None if unsettled else True), "; ".join(unsettled)

        try:
            wait_for(settled, timeout=self.group.failover_timeout_ms / 1000,
                     what=f"sentinels settled on {_show(upstream)}")
        except DeadlineExceeded as err:
            _note(self, f"{err}; starting anyway")
        return choose_start_role(self.node, self.group, ask_sentinels(self.group),
                                 reported_role(address_of(self.peer)))

    def process(self) -> ProcessSpec:
        return ProcessSpec(session_server_argv(self.group, self.node, self.data_dir,
                                               self.start_role.upstream))

    def check_data_dir(self, path: Path) -> str | None:
        aof = path / AOF_DIR
        if self.group.append_only and aof.exists() and not any(aof.glob("*.manifest")):
            return (f"{AOF_DIR}/ has no manifest, so Redis would start empty and the sessions "
                    f"in it would be lost")
        return None

    def probe(self) -> Health:
        try:
            return session_health(self.info("replication"))
        except RedisError as err:
            return Health(False, _first_line(err))


class CacheRedisServer(RedisServer):
    """The product cache: one node, bounded memory, evicts by the model's policy."""

    def __init__(self, cache: RedisCache, workspace: Workspace, backend: Backend) -> None:
        super().__init__(cache.node, cache.timeouts, workspace, backend)
        self.cache = cache

    def process(self) -> ProcessSpec:
        return ProcessSpec(cache_server_argv(self.cache, self.data_dir))

    def probe(self) -> Health:
        try:
            return cache_health(self.info("memory"))
        except RedisError as err:
            return Health(False, _first_line(err))


class RedisSentinel(Component):
    """One of the three Sentinels that decide and carry out a failover of the session group."""

    kind = "redis-sentinel"

    def __init__(self, node: Node, session_set: RedisSessionSet, workspace: Workspace,
                 backend: Backend) -> None:
        super().__init__(node, session_set.group.timeouts, workspace, backend)
        self.session_set = session_set
        self.group = session_set.group

    @property
    def config_file(self) -> Path:
        return self.data_dir / SENTINEL_CONFIG

    @property
    def depends_on(self) -> tuple[str, ...]:
        return (self.group.primary.name, self.group.replica.name)

    def prepare(self) -> None:
        DataDir(self.data_dir, self.name, self.kind).claim(self._first_config,
                                                           _check_sentinel_dir)
        current = self.config_file.read_text()
        fixed = fix_sentinel_config(current, self.group, self.node, self._observed_master())
        if fixed.text != current:
            _write_atomically(self.config_file, fixed.text)
            what = "; ".join(fixed.changes) or "moved the master's settings next to its monitor"
            _note(self, f"fixed {self.config_file.name} to match the model: {what}")

    def _first_config(self, scratch: Path) -> None:
        (scratch / SENTINEL_CONFIG).write_text(new_sentinel_config(self.group, self.node))

    def _observed_master(self) -> Address | None:
        """The one session node that reports itself master, unless a running peer disagrees.

        After a failover and a full stop, the nodes come back in the model's roles while the
        Sentinels' files still name the promoted replica; a Sentinel that trusted its file
        would see "the master" report itself a replica and fail over for nothing. The nodes'
        own roles are the better witness then. A running peer that names another master is
        in the middle of a failover or knows a newer epoch, and its hello messages will bring
        this Sentinel up to date, so the file is left alone in that case.
        """
        masters = [address_of(node) for node in (self.group.primary, self.group.replica)
                   if reported_role(address_of(node)) == "master"]
        if len(masters) != 1:
            return None
        peers = [view for view in ask_sentinels(self.group) if view.sentinel != self.name]
        if any(view.master != masters[0] for view in peers):
            return None
        return masters[0]

    def process(self) -> ProcessSpec:
        return ProcessSpec(sentinel_argv(self.node, self.config_file, self.data_dir))

    def probe(self) -> Health:
        try:
            with _client(address_of(self.node)) as client:
                masters = cast(dict[str, Any], client.sentinel_masters())
        except RedisError as err:
            return Health(False, _first_line(err), role="sentinel")
        return sentinel_health(self.group.master_name, masters)

    def after_ready(self) -> None:
        """Once every Sentinel of the group runs, wait until they can carry out a failover.

        A Sentinel answers as soon as it has read its file, but it can vote only once it has
        met the others through the master's hello channel (about 2 s, NOTES). Waiting here,
        when the last Sentinel comes up, makes "ready" mean "a failover would work" for any
        supervisor that just starts components in order, and costs one wait, not three.
        A Sentinel restarted while a peer is down does not wait for the peer.
        """
        if not all(s.runner.running() for s in self.session_set.sentinels):
            return
        try:
            self.session_set.wait_converged()
        except DeadlineExceeded as err:
            raise ComponentError(f"{self.name}: {err}") from err


def _check_sentinel_dir(path: Path) -> str | None:
    if not (path / SENTINEL_CONFIG).is_file():
        return f"{SENTINEL_CONFIG} is missing, so the Sentinel's memory of the master is gone"
    return None


class RedisSessionSet:
    """The session replication group as one unit: its two nodes, its Sentinels, convergence.

    It exists because "ready for a failover" is a property of the whole group, not of one
    process: every Sentinel must know the other two and the replica. The group builds its
    components so each Sentinel can reach its peers to wait on that.
    """

    def __init__(self, group: RedisSessionGroup, workspace: Workspace,
                 backend: Backend) -> None:
        self.group = group
        self.primary = SessionRedisServer(group.primary, group, workspace, backend)
        self.replica = SessionRedisServer(group.replica, group, workspace, backend)
        self.sentinels = tuple(RedisSentinel(node, self, workspace, backend)
                               for node in group.sentinels)

    @property
    def components(self) -> tuple[Component, ...]:
        """In start order: the primary, the replica that syncs from it, then the Sentinels."""
        return (self.primary, self.replica, *self.sentinels)

    @classmethod
    def among(cls, components: Sequence[Component]) -> RedisSessionSet:
        """The session group the given components belong to (as built by redis_components)."""
        for component in components:
            if isinstance(component, RedisSentinel):
                return component.session_set
        raise LookupError("no Redis Sentinel among the components")

    def current_master(self) -> Address | None:
        """The master as the Sentinel with the newest config epoch sees it."""
        views = ask_sentinels(self.group)
        return max(views, key=lambda v: v.config_epoch).master if views else None

    def observe_convergence(self) -> tuple[Address | None, str]:
        """The master once every Sentinel agrees on it and knows its peers and the replica.

        Returns (master, observation) when converged, (None, observation) otherwise; the
        observation says what each Sentinel saw, so a timeout explains itself. A session node
        this set has not started (its AZ is down, say) is not expected as a replica.
        """
        group = self.group
        members = (address_of(group.primary), address_of(group.replica))
        running = {address_of(c.node) for c in (self.primary, self.replica)
                   if c.runner.running()}
        masters: set[Address] = set()
        problems: list[str] = []
        seen: list[str] = []
        for sentinel in group.sentinels:
            try:
                with _client(address_of(sentinel)) as client:
                    state = cast(dict[str, Any], client.sentinel_master(group.master_name))
                    replicas = cast(list[dict[str, Any]],
                                    client.sentinel_slaves(group.master_name))
            except RedisError as err:
                problems.append(f"{sentinel.name}: {_first_line(err)}")
                continue
            master = (str(state["ip"]), int(state["port"]))
            masters.add(master)
            others = int(state["num-other-sentinels"])
            healthy = {(str(r["ip"]), int(r["port"])) for r in replicas
                       if not (r["is_sdown"] or r["is_odown"] or r["is_disconnected"])}
            seen.append(f"{sentinel.name}: master {_show(master)} ({state['flags']}), "
                        f"{others} other sentinels, healthy replicas "
                        f"{sorted(_show(a) for a in healthy)}")
            if state["is_sdown"] or state["is_odown"]:
                problems.append(f"{sentinel.name} sees the master down")
            if others != len(group.sentinels) - 1:
                problems.append(f"{sentinel.name} knows {others} other sentinels")
            for replica in members:
                if replica != master and replica in running and replica not in healthy:
                    problems.append(f"{sentinel.name} does not see replica {_show(replica)}")
        if len(masters) > 1:
            problems.append(f"sentinels disagree on the master: {sorted(masters)}")
        agreed = next(iter(masters)) if len(masters) == 1 else None
        if agreed is not None and agreed not in members:
            problems.append(f"{_show(agreed)} is not a session node of the model")
        observation = "; ".join(problems + seen) or "no sentinel answered"
        if problems or agreed is None:
            return None, observation
        return agreed, observation

    def wait_converged(self, timeout: float | None = None) -> Address:
        """Wait until the Sentinels could carry out a failover; returns the master they agree on."""
        limit = self.group.timeouts.ready_s if timeout is None else timeout
        return wait_for(self.observe_convergence, timeout=limit,
                        what=f"{self.group.name} sentinels converged", interval=0.1)


def redis_components(model: Platform, workspace: Workspace, backend: Backend) -> list[Component]:
    """The Redis servers of the local cloud, in start order: session group first, then cache."""
    session = RedisSessionSet(model.data.session_redis, workspace, backend)
    cache = CacheRedisServer(model.data.cache_redis, workspace, backend)
    return [*session.components, cache]
