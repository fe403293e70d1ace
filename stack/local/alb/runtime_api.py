"""A small client of HAProxy's runtime API (the admin socket), and parsers of its answers.

One command per connection: HAProxy reads a line, answers, and closes, which is all the ALB
needs and keeps a failed command from leaving a session half-way. HAProxy answers in free text
and says "no" in words ("No such server.", "Already exists a server with the same name…"), so
every command here states what a good answer looks like and anything else is raised as a
`RuntimeApiError` naming the command and HAProxy's own words.

Example::

    api = RuntimeApi(Path(".come2us/run/alb-admin.sock"))
    api.add_server("tg-gateway-blue", "gateway-blue-1", "127.0.1.101", 8080, ("check",))
    for row in api.servers_state("tg-gateway-blue"):
        print(row.server, row.op_state, row.admin)
"""

from __future__ import annotations

import csv
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
TIMEOUT_S = 2.0
SERVERS_STATE_VERSION = "1"


class RuntimeApiError(RuntimeError):
    """HAProxy refused a command, or answered something this client does not understand."""

    def __init__(self, command: str, answer: str) -> None:
        shown = answer.strip() or "(an empty answer)"
        super().__init__(f"HAProxy runtime API: `{command}` -> {shown}")
        self.command = command
        self.answer = answer


class RuntimeApiUnavailable(RuntimeApiError):
    """The admin socket cannot be reached: HAProxy is not running (or not yet)."""


class OpState(IntEnum):
    """``srv_op_state``: what the health checks concluded."""

    STOPPED = 0  # down
    STARTING = 1  # up, warming up (slowstart)
    RUNNING = 2  # up
    STOPPING = 3  # up, but refusing new sessions (e.g. a 404 with disable-on-404)


class AdminState(IntFlag):
    """``srv_admin_state``: what an operator (here: the runtime) asked for."""

    NONE = 0
    FORCED_MAINT = 0x01
    INHERITED_MAINT = 0x02
    CONFIG_MAINT = 0x04
    FORCED_DRAIN = 0x08
    INHERITED_DRAIN = 0x10
    RESOLUTION_MAINT = 0x20
    FQDN_FROM_SOCKET = 0x40

    @property
    def in_maintenance(self) -> bool:
        maint = (AdminState.FORCED_MAINT | AdminState.INHERITED_MAINT | AdminState.CONFIG_MAINT
                 | AdminState.RESOLUTION_MAINT)
        return bool(self & maint)

    @property
    def draining(self) -> bool:
        return bool(self & (AdminState.FORCED_DRAIN | AdminState.INHERITED_DRAIN))


class CheckResult(IntEnum):
    """``srv_check_result``: the last health check's outcome."""

    UNKNOWN = 0
    NEUTRAL = 1
    FAILED = 2
    PASSED = 3
    CONDITIONAL_PASS = 4


@dataclass(frozen=True)
class ServerState:
    """One server (target) as ``show servers state`` reports it."""

    backend: str
    server: str
    address: str
    port: int
    op_state: OpState
    admin: AdminState
    check_result: CheckResult
    check_health: int  # the rise/fall counter: up once it reaches `rise`
    seconds_since_change: int


@dataclass(frozen=True)
class ServerStats:
    """The counters of one server that ``show servers state`` lacks (from ``show stat``)."""

    backend: str
    server: str
    status: str  # "UP", "DOWN 1/2", "DRAIN", "MAINT", …
    current_sessions: int  # requests in flight on this server
    down_transitions: int  # UP -> DOWN transitions since the server was created


def parse_servers_state(answer: str) -> list[ServerState]:
    """Parse ``show servers state``: a version line, a ``#`` header naming columns, rows."""
    lines = [line for line in answer.splitlines() if line.strip()]
    if not lines or lines[0].strip() != SERVERS_STATE_VERSION:
        raise ValueError(f"expected format version {SERVERS_STATE_VERSION}, got "
                         f"{lines[0] if lines else 'nothing'!r}")
    if len(lines) < 2 or not lines[1].startswith("#"):
        raise ValueError("no column header after the version line")
    columns = lines[1].lstrip("#").split()
    rows: list[ServerState] = []
    for line in lines[2:]:
        if line.startswith("#"):
            continue
        values = dict(zip(columns, line.split(), strict=False))
        try:
            rows.append(ServerState(
                backend=values["be_name"],
                server=values["srv_name"],
                address=values["srv_addr"],
                port=int(values["srv_port"]),
                op_state=OpState(int(values["srv_op_state"])),
                admin=AdminState(int(values["srv_admin_state"])),
                check_result=CheckResult(int(values["srv_check_result"])),
                check_health=int(values["srv_check_health"]),
                seconds_since_change=int(values["srv_time_since_last_change"]),
            ))
        except (KeyError, ValueError) as err:
            raise ValueError(f"unreadable server line {line!r}: {err}") from err
    return rows


def parse_server_stats(answer: str) -> list[ServerStats]:
    """Parse ``show stat`` (CSV, header line starting ``# pxname``); servers only."""
    lines = answer.splitlines()
    if not lines or not lines[0].startswith("# pxname"):
        raise ValueError(f"expected a '# pxname' CSV header, got {lines[0] if lines else ''!r}")
    reader = csv.DictReader([lines[0][2:], *(line for line in lines[1:] if line.strip())])
    stats: list[ServerStats] = []
    for row in reader:
        if row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        try:
            stats.append(ServerStats(
                backend=row["pxname"],
                server=row["svname"],
                status=row["status"],
                current_sessions=int(row["scur"] or 0),
                down_transitions=int(row["chkdown"] or 0),
            ))
        except (KeyError, ValueError) as err:
            raise ValueError(f"unreadable stat row {row!r}: {err}") from err
    return stats


def parse_info(answer: str) -> dict[str, str]:
    """Parse ``show info``: ``Name: value`` lines."""
    info: dict[str, str] = {}
    for line in answer.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            info[name.strip()] = value.strip()
    return info


def parse_map_value(answer: str) -> str | None:
    """Parse ``get map``: ``… found=yes, … value="blue", …``; None when the key is absent."""
    if "found=no" in answer:
        return None
    if "found=yes" not in answer:
        raise ValueError("neither found=yes nor found=no")
    marker = ' value="'
    start = answer.find(marker)
    if start < 0:
        raise ValueError(f"no value in {answer.strip()!r}")
    start += len(marker)
    end = answer.find('"', start)
    return answer[start:end]


Acceptor = Callable[[str], bool]


def empty(answer: str) -> bool:
    return not answer.strip()


def starts_with(prefix: str) -> Acceptor:
    return lambda answer: answer.strip().startswith(prefix)


class RuntimeApi:
    """HAProxy's admin socket, one command per connection."""

    def __init__(self, socket_path: Path, timeout_s: float = TIMEOUT_S) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s

    def execute(self, command: str) -> str:
        """Send one command, return HAProxy's whole answer (unchecked)."""
        if "\n" in command or ";" in command:
            raise ValueError(f"one command at a time: {command!r}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self.timeout_s)
                conn.connect(str(self.socket_path))
                conn.sendall(command.encode() + b"\n")
                chunks: list[bytes] = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as err:
            raise RuntimeApiUnavailable(
                command, f"cannot reach the admin socket {self.socket_path}: {err}") from err
        return b"".join(chunks).decode(errors="replace")

    def run(self, command: str, accept: Acceptor = empty) -> str:
        """Send one command; raise `RuntimeApiError` unless ``accept`` likes the answer."""
        answer = self.execute(command)
        if not accept(answer):
            raise RuntimeApiError(command, answer)
        return answer

    def query(self, command: str, parse: Callable[[str], T]) -> T:
        """Send one command and parse the answer; an unparseable one is a `RuntimeApiError`."""
        answer = self.execute(command)
        try:
            return parse(answer)
        except ValueError as err:
            raise RuntimeApiError(command, f"{answer.strip()} ({err})") from err

    # -- reading --------------------------------------------------------------------------

    def info(self) -> dict[str, str]:
        command = "show info"
        info = parse_info(self.execute(command))
        if "Pid" not in info:
            raise RuntimeApiError(command, "no Pid in the answer")
        return info

    def servers_state(self, backend: str) -> list[ServerState]:
        return self.query(f"show servers state {backend}", parse_servers_state)

    def server_stats(self, backend: str) -> list[ServerStats]:
        # type 4 = servers only, -1 = every server of the backend
        return self.query(f"show stat {backend} 4 -1", parse_server_stats)

    def get_map(self, map_path: Path, key: str) -> str | None:
        return self.query(f"get map {map_path} {key}", parse_map_value)

    # -- changing -------------------------------------------------------------------------

    def set_map(self, map_path: Path, key: str, value: str) -> None:
        """Replace one entry's value: one atomic step for every request that reads it."""
        self.run(f"set map {map_path} {key} {value}")

    def add_server(self, backend: str, server: str, host: str, port: int,
                   options: Sequence[str]) -> None:
        self.run(f"add server {backend}/{server} {host}:{port} {' '.join(options)}".rstrip(),
                 starts_with("New server registered."))

    def enable_health(self, backend: str, server: str) -> None:
        self.run(f"enable health {backend}/{server}")

    def set_server_state(self, backend: str, server: str, state: str) -> None:
        """``ready``, ``drain`` or ``maint`` (the operator's admin state)."""
        self.run(f"set server {backend}/{server} state {state}")

    def set_server_health(self, backend: str, server: str, health: str) -> None:
        """``up``, ``stopping`` or ``down``: override what the checks concluded until the next
        checks change it (``down`` then needs `rise` passing checks)."""
        self.run(f"set server {backend}/{server} health {health}")

    def shutdown_sessions(self, backend: str, server: str) -> None:
        self.run(f"shutdown sessions server {backend}/{server}")

    def del_server(self, backend: str, server: str) -> None:
        self.run(f"del server {backend}/{server}", starts_with("Server deleted."))
