"""Is a socket free, and if not, who holds it? Read from /proc so the answer names a process."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

PROC = Path("/proc")
TCP_LISTEN = "0A"


class PortInUseError(RuntimeError):
    """The address a node must bind to is taken; the message names the holder."""


@dataclass(frozen=True)
class SocketOwner:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"{self.command} (pid {self.pid})"


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket as the kernel reports it."""

    host: IPv4Address | IPv6Address
    port: int
    inode: str


def _parse_host(hex_host: str) -> IPv4Address | IPv6Address:
    raw = bytes.fromhex(hex_host)
    if len(raw) == 4:
        return IPv4Address(raw[::-1])
    # tcp6 stores four little-endian 32-bit words; an IPv4-mapped address becomes IPv4.
    address = IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return address.ipv4_mapped or address


def listeners() -> list[Listener]:
    """Every listening TCP socket of the machine, IPv4 and IPv6."""
    found: list[Listener] = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == TCP_LISTEN:
                hex_host, hex_port = fields[1].split(":")
                found.append(Listener(_parse_host(hex_host), int(hex_port, 16), fields[9]))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            target = str(fd.readlink())
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:
        pass  # the process ended, or is not ours to inspect
    return inodes


def listening_sockets(pid: int) -> list[Listener]:
    """The listening sockets process ``pid`` holds."""
    inodes = _socket_inodes(pid)
    return [listener for listener in listeners() if listener.inode in inodes]


def _covers(listener: Listener, host: IPv4Address, port: int) -> bool:
    return listener.port == port and (
        listener.host == host or listener.host.is_unspecified
    )


def owner_of(host: IPv4Address, port: int) -> SocketOwner | None:
    inodes = {item.inode for item in listeners() if _covers(item, host, port)}
    if not inodes:
        return None
    for pid_dir in PROC.iterdir():
        if pid_dir.name.isdigit() and _socket_inodes(int(pid_dir.name)) & inodes:
            try:
                command = (pid_dir / "comm").read_text().strip()
            except OSError:
                continue
            return SocketOwner(int(pid_dir.name), command)
    return None


def bindable(host: IPv4Address, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((str(host), port))
            return True
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
    return False


def ensure_free(host: IPv4Address, port: int, wanted_by: str) -> None:
    """Raise PortInUseError naming the holder when ``host:port`` cannot be bound."""
    if bindable(host, port):
        return
    owner = owner_of(host, port)
    holder = f"by {owner}" if owner else "by a process this user cannot see"
    raise PortInUseError(
        f"{host}:{port} is needed by {wanted_by} but is already in use {holder}. "
        f"Stop that process, or change the port of {wanted_by} in stack/come2us.py."
    )
