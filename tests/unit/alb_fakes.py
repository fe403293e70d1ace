"""A fake HAProxy behind the runtime API, for unit tests of `RuntimeLoadBalancer`.

`FakeHaproxy` is a `RuntimeApi` whose `execute` answers the commands the balancer sends the way
HAProxy 2.6 does — same texts, same ``show servers state`` / ``show stat`` layouts (the headers
below were captured from Debian's haproxy 2.6.12) — so the real parsers and the balancer's
reading of the answers are exercised, not bypassed. What HAProxy's health checks would conclude
is said by the test (`checks_pass`, `checks_fail`): nothing changes by itself and nothing waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stack.local.alb.runtime_api import (
    AdminState,
    CheckResult,
    OpState,
    RuntimeApi,
    RuntimeApiUnavailable,
)

SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port")
# `show stat`'s first columns, as far as the balancer reads (pxname … chkdown), then the status
# HAProxy would show; the real header goes on for ~100 more columns that nobody reads here.
STAT_HEADER = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,"
               "eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,")
DEL_BUSY = "Server still has connections attached to it, cannot remove it."
FAKE_PID = 4242


@dataclass
class FakeServer:
    host: str
    port: int
    options: tuple[str, ...]
    op_state: OpState = OpState.STOPPED
    admin: AdminState = AdminState.FORCED_MAINT  # dynamic servers start in maintenance
    check_result: CheckResult = CheckResult.UNKNOWN
    health_checks: bool = False
    down_transitions: int = 0
    sessions: int = 0


@dataclass
class FakeHaproxy(RuntimeApi):
    """HAProxy's admin socket in memory: backends of dynamic servers, and map files."""

    backends: dict[str, dict[str, FakeServer]] = field(default_factory=dict)
    maps: dict[str, dict[str, str]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    running: bool = True
    busy_deletes: int = 0  # how many `del server` to refuse, as while connections linger
    refuse: dict[str, str] = field(default_factory=dict)  # command prefix -> HAProxy's words

    def __post_init__(self) -> None:
        super().__init__(Path("/nonexistent/fake-haproxy.sock"))

    @classmethod
    def with_groups(cls, groups: tuple[str, ...]) -> FakeHaproxy:
        return cls(backends={group: {} for group in groups})

    def load_map(self, path: Path) -> None:
        """What HAProxy does with a map file at start: read its ``key value`` lines."""
        entries = (line.split(None, 1) for line in path.read_text().splitlines() if line)
        self.maps[str(path)] = {key: value for key, value in entries}

    # -- what the test says HAProxy's checks concluded -------------------------------------

    def server(self, group: str, name: str) -> FakeServer:
        return self.backends[group][name]

    def checks_pass(self, group: str, name: str) -> None:
        """`rise` checks in a row passed: the server is UP."""
        server = self.server(group, name)
        server.op_state, server.check_result = OpState.RUNNING, CheckResult.PASSED

    def checks_fail(self, group: str, name: str) -> None:
        """`fall` checks in a row failed: the server is DOWN."""
        server = self.server(group, name)
        if server.op_state is not OpState.STOPPED:
            server.down_transitions += 1
        server.op_state, server.check_result = OpState.STOPPED, CheckResult.FAILED

    # -- the socket ------------------------------------------------------------------------

    def execute(self, command: str) -> str:
        if not self.running:
            raise RuntimeApiUnavailable(command, "cannot reach the admin socket (fake: stopped)")
        self.commands.append(command)
        for prefix, refusal in self.refuse.items():
            if command.startswith(prefix):
                return refusal + "\n"
        words = command.split()
        if command == "show info":
            return f"Name: HAProxy\nVersion: 2.6-fake\nPid: {FAKE_PID}\n"
        if words[:3] == ["show", "servers", "state"]:
            return self._servers_state(words[3])
        if words[:2] == ["show", "stat"]:
            return self._stat(words[2])
        if words[:2] == ["get", "map"]:
            entries = self.maps.get(words[2])
            if entries is None:
                return "Unknown map identifier. Please use #<id> or <file>.\n"
            value = entries.get(words[3])
            if value is None:
                return "type=str, case=sensitive, found=no\n\n"
            return (f'type=str, case=sensitive, found=yes, idx=tree, key="{words[3]}", '
                    f'value="{value}", type="str"\n\n')
        if words[:2] == ["set", "map"]:
            entries = self.maps.get(words[2])
            if entries is None or words[3] not in entries:
                return "entry not found.\n"
            entries[words[3]] = words[4]
            return "\n"
        if words[:2] == ["add", "server"]:
            return self._add(words[2], words[3], tuple(words[4:]))
        group, _, name = (words[-1] if words[0] != "set" else words[2]).partition("/")
        if group not in self.backends:
            return "No such backend.\n"
        server = self.backends[group].get(name)
        if server is None:
            return "No such server.\n"
        if words[:2] == ["enable", "health"]:
            server.health_checks = True
            return "\n"
        if words[:2] == ["set", "server"] and words[3] == "state":
            return self._set_state(server, words[4])
        if words[:2] == ["set", "server"] and words[3] == "health":
            if words[4] == "down":
                if server.op_state is not OpState.STOPPED:
                    server.down_transitions += 1
                server.op_state = OpState.STOPPED
            else:
                server.op_state = OpState.RUNNING
            return "\n"
        if words[:3] == ["shutdown", "sessions", "server"]:
            server.sessions = 0
            return "\n"
        if words[:2] == ["del", "server"]:
            if not server.admin.in_maintenance:
                return "Only servers in maintenance mode can be deleted.\n"
            if self.busy_deletes:
                self.busy_deletes -= 1
                return DEL_BUSY + "\n"
            del self.backends[group][name]
            return "Server deleted.\n"
        return "Unknown command.\n"

    def _add(self, key: str, address: str, options: tuple[str, ...]) -> str:
        group, _, name = key.partition("/")
        if group not in self.backends:
            return "No such backend.\n"
        if name in self.backends[group]:
            return "Already exists a server with the same name in backend.\n\n"
        host, _, port = address.rpartition(":")
        self.backends[group][name] = FakeServer(host, int(port), options)
        return "New server registered.\n"

    @staticmethod
    def _set_state(server: FakeServer, state: str) -> str:
        leaving_maintenance = server.admin.in_maintenance and state != "maint"
        server.admin = {"ready": AdminState.NONE, "drain": AdminState.FORCED_DRAIN,
                        "maint": AdminState.FORCED_MAINT}[state]
        if leaving_maintenance and server.op_state is OpState.STOPPED \
                and server.check_result is CheckResult.UNKNOWN:
            server.op_state = OpState.RUNNING  # HAProxy: up before any check has run
        return "\n"

    def _servers_state(self, group: str) -> str:
        if group not in self.backends:
            return "Can't find backend.\n"
        rows = [f"3 {group} {number} {name} {s.host} {int(s.op_state)} {int(s.admin)} 1 1 0 "
                f"1 {int(s.check_result)} 0 6 0 0 0 - {s.port} - 0 0 - - 0"
                for number, (name, s) in enumerate(self.backends[group].items(), start=1)]
        return "\n".join(["1", SERVERS_STATE_HEADER, *rows]) + "\n\n"

    def _stat(self, group: str) -> str:
        rows = [f"{group},{name},0,0,{s.sessions},0,,0,0,0,,0,,0,0,0,0,"
                f"{'UP' if s.op_state is OpState.RUNNING else 'DOWN'},1,1,0,0,"
                f"{s.down_transitions},0,"
                for name, s in self.backends.get(group, {}).items()]
        return "\n".join([STAT_HEADER, *rows]) + "\n\n"
