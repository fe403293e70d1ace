"""A record of the processes the control plane started, so none outlives a control plane crash.

Servers run in sessions of their own so that a signal reaches a whole node; the price is that
they survive their parent. Each start is written down with the pid and the kernel's start time
of that pid (so a recycled pid is never mistaken for ours), and a new control plane stops any
survivor before it starts anything.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path

PROC = Path("/proc")


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None for a gone/zombie pid."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces.
    fields = stat[stat.rindex(")") + 2:].split()
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else int(start)


def alive(pid: int, start_time: int | None = None) -> bool:
    current = process_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


class ProcessRecords:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, int]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, records: dict[str, dict[str, int]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=2))
        tmp.replace(self.path)

    def add(self, name: str, pid: int) -> None:
        started = process_start_time(pid)
        if started is None:
            return
        with self._lock:
            records = self._read()
            records[name] = {"pid": pid, "start_time": started}
            self._write(records)

    def remove(self, name: str) -> None:
        with self._lock:
            records = self._read()
            if records.pop(name, None) is not None:
                self._write(records)

    def survivors(self) -> dict[str, int]:
        return {
            name: entry["pid"]
            for name, entry in self._read().items()
            if alive(entry["pid"], entry.get("start_time"))
        }

    def stop_survivors(self, stop_signals: Mapping[str, int],
                       grace_s: float = 10.0) -> list[tuple[str, int]]:
        """Signal every recorded live process group, kill what is left after the grace period."""
        with self._lock:
            records = self._read()
            live = {n: e for n, e in records.items() if alive(e["pid"], e.get("start_time"))}
            for name, entry in live.items():
                _signal_group(entry["pid"], stop_signals.get(name, signal.SIGTERM))
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and any(
                alive(e["pid"], e.get("start_time")) for e in live.values()
            ):
                time.sleep(0.1)
            for entry in live.values():
                if alive(entry["pid"], entry.get("start_time")):
                    _signal_group(entry["pid"], signal.SIGKILL)
            self._write({})
        return [(name, entry["pid"]) for name, entry in live.items()]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
