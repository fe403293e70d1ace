"""Is a socket free, and if not, who holds it? Read from /proc so the answer names a process."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address
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


def _listening_inodes(host: IPv4Address, port: int) -> set[str]:
    """Inodes of IPv4 sockets listening on ``port`` at ``host`` or at the wildcard address."""
    wanted = {_proc_address(host, port), _proc_address(IPv4Address("0.0.0.0"), port)}
    inodes: set[str] = set()
    try:
        lines = (PROC / "net" / "tcp").read_text().splitlines()[1:]
    except OSError:
        return inodes
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[3] == TCP_LISTEN and fields[1] in wanted:
            inodes.add(fields[9])
    return inodes


def _proc_address(host: IPv4Address, port: int) -> str:
    """The hex form /proc/net/tcp uses: little-endian address, big-endian port."""
    return f"{int.from_bytes(host.packed, 'little'):08X}:{port:04X}"


def owner_of(host: IPv4Address, port: int) -> SocketOwner | None:
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(host, port)}
    if not inodes:
        return None
    for pid_dir in PROC.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    command = (pid_dir / "comm").read_text().strip()
                    return SocketOwner(int(pid_dir.name), command)
        except OSError:
            continue  # the process ended, or is not ours to inspect
    return None


def ensure_free(host: IPv4Address, port: int, wanted_by: str) -> None:
    """Raise PortInUseError naming the holder when ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((str(host), port))
            return
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
    owner = owner_of(host, port)
    holder = f"by {owner}" if owner else "by a process this user cannot see"
    raise PortInUseError(
        f"{host}:{port} is needed by {wanted_by} but is already in use {holder}. "
        f"Stop that process, or change the port of {wanted_by} in stack/come2us.py."
    )
