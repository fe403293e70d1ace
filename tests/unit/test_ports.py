"""Who holds a socket: the refusal names the address, the holder and the file to change.

Listeners are opened on 127.0.9.x (and ::1), which the model does not use, so these tests run
beside a running local cloud. The kernel's tables are also parsed from crafted /proc files.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from stack.local import ports
from stack.local.ports import (
    Listener,
    PortInUseError,
    SocketOwner,
    ensure_free,
    listeners,
    listening_sockets,
    owner_of,
)

HOST = IPv4Address("127.0.9.2")
OTHER_HOST = IPv4Address("127.0.9.3")


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


# Where ::1 cannot be bound (IPv6 disabled), only IPv4 is checked live; the crafted tcp6
# table below still covers the IPv6 parsing.
LIVE_HOSTS = ["127.0.9.2", *(["::1"] if ipv6_loopback_works() else [])]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on HOST with a port the kernel picks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((str(HOST), 0))
        sock.listen()
        yield sock


def inode_of(sock: socket.socket) -> str:
    return str(os.fstat(sock.fileno()).st_ino)


def test_ensure_free_passes_on_a_free_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((str(HOST), 0))
        port = sock.getsockname()[1]  # picked by the kernel, then released

    ensure_free(HOST, port, "cache-redis")


def test_a_listener_on_another_loopback_address_leaves_the_port_free(
        listener: socket.socket) -> None:
    ensure_free(OTHER_HOST, listener.getsockname()[1], "cache-redis")


def test_a_taken_port_is_refused_naming_the_holder_and_the_file_to_change(
        listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    command = Path("/proc/self/comm").read_text().strip()

    with pytest.raises(PortInUseError) as refused:
        ensure_free(HOST, port, "cache-redis")

    assert str(refused.value) == (
        f"127.0.9.2:{port} is needed by cache-redis but is already in use by {command} "
        f"(pid {os.getpid()}). Stop that process, or change the port of cache-redis in "
        f"stack/come2us.py."
    )


@pytest.mark.parametrize("host", LIVE_HOSTS)
def test_listeners_and_listening_sockets_see_our_listener(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen()
        mine = Listener(ip_address(host), sock.getsockname()[1], inode_of(sock))

        assert mine in listeners()
        assert mine in listening_sockets(os.getpid())


def test_a_bound_socket_that_does_not_listen_is_not_a_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((str(HOST), 0))
        assert inode_of(sock) not in {item.inode for item in listeners()}


def test_listening_sockets_of_a_pid_that_does_not_exist_is_empty() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert listening_sockets(pid_max + 1) == []


TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
              "   uid  timeout inode\n")
TCP6_HEADER = ("  sl  local_address                         remote_address                    "
               "    st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")


def proc_line(local: str, state: str, inode: int) -> str:
    remote = "0" * (len(local.split(":")[0])) + ":0000"
    return (f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0"
            f"        0 {inode} 1 0000000000000000 100 0 0 10 0\n")


def test_listeners_parses_ipv4_ipv6_and_ipv4_mapped_entries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(
        TCP_HEADER
        + proc_line("0B09007F:18EB", "0A", 101)  # 127.0.9.11:6379, listening
        + proc_line("0B09007F:C350", "01", 102)  # an established connection: not a listener
    )
    (tmp_path / "net" / "tcp6").write_text(
        TCP6_HEADER
        + proc_line("00000000000000000000000001000000:1538", "0A", 201)  # [::1]:5432
        # ::ffff:127.0.9.12, as a dual-stack server bound to the IPv4-mapped address shows it
        + proc_line("0000000000000000FFFF00000C09007F:2384", "0A", 202)
    )
    monkeypatch.setattr(ports, "PROC", tmp_path)

    assert listeners() == [
        Listener(IPv4Address("127.0.9.11"), 6379, "101"),
        Listener(IPv6Address("::1"), 5432, "201"),
        Listener(IPv4Address("127.0.9.12"), 9092, "202"),
    ]


def test_listeners_without_an_ipv6_table_reads_the_ipv4_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP_HEADER + proc_line("0B09007F:18EB", "0A", 101))
    monkeypatch.setattr(ports, "PROC", tmp_path)

    assert listeners() == [Listener(IPv4Address("127.0.9.11"), 6379, "101")]


def test_owner_of_finds_the_process_holding_a_wildcard_listener(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(
        TCP_HEADER + proc_line("00000000:18EB", "0A", 301))  # 0.0.0.0:6379
    holder = tmp_path / "4242"
    (holder / "fd").mkdir(parents=True)
    (holder / "fd" / "0").symlink_to("/dev/null")
    (holder / "fd" / "7").symlink_to("socket:[301]")
    (holder / "comm").write_text("redis-server\n")
    (tmp_path / "self").mkdir()  # not a pid: skipped
    monkeypatch.setattr(ports, "PROC", tmp_path)

    assert owner_of(IPv4Address("127.0.9.11"), 6379) == SocketOwner(4242, "redis-server")
    assert str(owner_of(IPv4Address("127.0.9.11"), 6379)) == "redis-server (pid 4242)"
    assert owner_of(IPv4Address("127.0.9.11"), 6380) is None
