"""The runtime-API client: parsers on answers captured from HAProxy 2.6, and one command per
connection over a real Unix socket (a tiny in-process server stands in for HAProxy)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.local.alb.runtime_api import (
    AdminState,
    CheckResult,
    OpState,
    RuntimeApi,
    RuntimeApiError,
    RuntimeApiUnavailable,
    parse_info,
    parse_map_value,
    parse_server_stats,
    parse_servers_state,
    starts_with,
)
from tests.unit.alb_fakes import SERVERS_STATE_HEADER

# `show servers state tg-gateway-blue`: t1 passed its checks, t2 (nothing listening) failed.
SERVERS_STATE = (
    f"1\n{SERVERS_STATE_HEADER}\n"
    "3 tg-gateway-blue 1 t1 127.6.1.10 2 0 1 1 0 15 3 3 6 0 0 0 - 33365 - 0 0 - - 0\n"
    "3 tg-gateway-blue 2 t2 127.6.1.11 0 8 1 1 2 8 2 0 6 0 0 0 - 9 - 0 0 - - 0\n\n")
# `show stat tg-gateway-blue 4 -1`, cut after the columns that matter (the rest is unread).
SHOW_STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime\n"
    "tg-gateway-blue,t1,0,0,3,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,1,0,2\n"
    "tg-gateway-blue,t2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,0,2,2,2\n"
    "tg-gateway-blue,BACKEND,0,0,3,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,,0,2,0\n\n")


def test_servers_state_rows_are_read_by_column_name() -> None:
    t1, t2 = parse_servers_state(SERVERS_STATE)
    assert (t1.backend, t1.server, t1.address, t1.port) == \
        ("tg-gateway-blue", "t1", "127.6.1.10", 33365)
    assert (t1.op_state, t1.admin, t1.check_result, t1.check_health) == \
        (OpState.RUNNING, AdminState.NONE, CheckResult.PASSED, 3)
    assert (t2.op_state, t2.check_result, t2.seconds_since_change) == \
        (OpState.STOPPED, CheckResult.FAILED, 2)
    assert t2.admin.draining and not t2.admin.in_maintenance


def test_an_empty_backend_has_no_rows() -> None:
    assert parse_servers_state(f"1\n{SERVERS_STATE_HEADER}\n\n") == []


@pytest.mark.parametrize("answer", ["", "Can't find backend.\n", "2\n# be_id\n",
                                    "1\nno header\n",
                                    f"1\n{SERVERS_STATE_HEADER}\n3 tg 1 t1 addr x 0\n"])
def test_servers_state_that_cannot_be_read_is_an_error(answer: str) -> None:
    with pytest.raises(ValueError):
        parse_servers_state(answer)


def test_server_stats_skip_the_backend_row() -> None:
    t1, t2 = parse_server_stats(SHOW_STAT)
    assert (t1.server, t1.status, t1.current_sessions, t1.down_transitions) == ("t1", "UP", 3, 1)
    assert (t2.server, t2.status, t2.down_transitions) == ("t2", "DOWN", 2)
    with pytest.raises(ValueError, match="pxname"):
        parse_server_stats("No such backend.\n")


def test_info_and_map_answers() -> None:
    info = parse_info("Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 22890\nUptime: 0d 0h\n")
    assert info["Pid"] == "22890" and info["Uptime"] == "0d 0h"
    found = ('type=str, case=sensitive, found=yes, idx=tree, key="active", value="blue:0", '
             'type="str"\n\n')
    assert parse_map_value(found) == "blue:0"
    assert parse_map_value("type=str, case=sensitive, found=no\n\n") is None
    with pytest.raises(ValueError):
        parse_map_value("Unknown map identifier. Please use #<id> or <file>.\n")


class Scripted(socketserver.StreamRequestHandler):
    """Answers each command line from the server's script, then closes, as HAProxy does."""

    def handle(self) -> None:
        command = self.rfile.readline().decode().rstrip("\n")
        server: ScriptedSocket = self.server  # type: ignore[assignment]
        server.received.append(command)
        self.wfile.write(server.script.get(command, "Unknown command.\n").encode())


class ScriptedSocket(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, script: dict[str, str]) -> None:
        super().__init__(str(path), Scripted)
        self.script = script
        self.received: list[str] = []


@pytest.fixture
def admin_socket(tmp_path: Path) -> Iterator[ScriptedSocket]:
    server = ScriptedSocket(tmp_path / "admin.sock", {
        "show info": "Name: HAProxy\nPid: 77\n",
        "add server tg/t1 127.0.0.1:9 check": "New server registered.\n",
        "add server tg/t2 127.0.0.1:9 check": "Already exists a server with the same name.\n",
        "set server tg/t1 state drain": "\n",
        "show servers state tg": SERVERS_STATE.replace("tg-gateway-blue", "tg"),
        "show servers state garbled": "1\nno header\n",
    })
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_one_command_per_connection_and_haproxy_words_on_refusal(
        admin_socket: ScriptedSocket) -> None:
    api = RuntimeApi(Path(admin_socket.server_address))  # type: ignore[arg-type]
    assert api.info()["Pid"] == "77"
    api.add_server("tg", "t1", "127.0.0.1", 9, ("check",))
    api.set_server_state("tg", "t1", "drain")
    assert [row.server for row in api.servers_state("tg")] == ["t1", "t2"]
    with pytest.raises(RuntimeApiError, match="Already exists") as refused:
        api.add_server("tg", "t2", "127.0.0.1", 9, ("check",))
    assert refused.value.command == "add server tg/t2 127.0.0.1:9 check"
    with pytest.raises(RuntimeApiError, match="Unknown command"):
        api.set_server_state("tg", "t9", "ready")  # not an empty answer: refused
    with pytest.raises(RuntimeApiError, match="no column header"):
        api.servers_state("garbled")
    assert admin_socket.received[:3] == ["show info", "add server tg/t1 127.0.0.1:9 check",
                                         "set server tg/t1 state drain"]


def test_a_missing_socket_says_haproxy_is_not_running(tmp_path: Path) -> None:
    api = RuntimeApi(tmp_path / "none.sock", timeout_s=0.5)
    with pytest.raises(RuntimeApiUnavailable, match="cannot reach the admin socket"):
        api.info()


@pytest.mark.parametrize("command", ["show info\nshow stat", "show info; show stat"])
def test_only_one_command_is_sent_at_a_time(tmp_path: Path, command: str) -> None:
    with pytest.raises(ValueError, match="one command at a time"):
        RuntimeApi(tmp_path / "none.sock").execute(command)


def test_acceptors() -> None:
    assert starts_with("Server deleted.")("Server deleted.\n")
    assert not starts_with("Server deleted.")("No such server.\n")
