"""Process records: what the control plane started, so that nothing it started outlives it.

Every process here is a tiny sleeper started by the test in a session of its own and always
stopped (and reaped) by the `spawn` fixture, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stack.local.processes import ProcessRecords, alive, process_start_time
from stack.waiting import wait_for

SLEEPER = "import time; time.sleep(30)"
# Ignores SIGTERM, starts a grandchild in its own process group, and says both are set up.
STUBBORN_PARENT = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(30)\n"
)

Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start `python -c CODE` in a new session; every group started is killed and reaped."""
    started: list[subprocess.Popen[str]] = []

    def start(code: str = SLEEPER) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                   text=True, start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def gone(pid: int) -> tuple[bool | None, str]:
    return (True if process_start_time(pid) is None else None), f"pid {pid} still running"


def absent_pid() -> int:
    """A pid no process can have: above the kernel's maximum."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def test_process_start_time_of_a_live_process_is_its_kernel_start_time(spawn: Spawn) -> None:
    process = spawn()
    stat = Path(f"/proc/{process.pid}/stat").read_text()

    started = process_start_time(process.pid)

    assert started == int(stat[stat.rindex(")") + 2:].split()[19])
    assert started >= (process_start_time(os.getpid()) or 0), "it started after the test process"


def test_process_start_time_of_a_zombie_is_none(spawn: Spawn) -> None:
    process = spawn("pass")

    def zombie() -> tuple[bool | None, str]:
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return (True if state == "Z" else None), f"state {state}"

    wait_for(zombie, timeout=5, what="child exited, not yet reaped", interval=0.01)
    assert process_start_time(process.pid) is None
    assert not alive(process.pid)


def test_process_start_time_of_an_absent_pid_is_none() -> None:
    assert process_start_time(absent_pid()) is None


def test_records_add_remove_and_survivors(tmp_path: Path, spawn: Spawn) -> None:
    first, second = spawn(), spawn()
    records = ProcessRecords(tmp_path / "run" / "processes.json")

    records.add("cache-redis", first.pid)
    records.add("kafka-1", second.pid)
    records.add("never-started", absent_pid())

    assert records.survivors() == {"cache-redis": first.pid, "kafka-1": second.pid}
    assert ProcessRecords(records.path).survivors() == records.survivors(), "kept on disk"

    records.remove("kafka-1")
    records.remove("not-recorded")

    assert records.survivors() == {"cache-redis": first.pid}


def test_a_recorded_process_that_ended_is_no_survivor(tmp_path: Path, spawn: Spawn) -> None:
    process = spawn()
    records = ProcessRecords(tmp_path / "processes.json")
    records.add("cache-redis", process.pid)

    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)

    assert records.survivors() == {}


def test_a_recycled_pid_is_not_ours(tmp_path: Path, spawn: Spawn) -> None:
    stranger = spawn()
    started = process_start_time(stranger.pid)
    assert started is not None
    records = ProcessRecords(tmp_path / "processes.json")
    # What the file holds when our process died and the kernel gave its pid to another one.
    records.path.write_text(json.dumps(
        {"cache-redis": {"pid": stranger.pid, "start_time": started - 1}}))

    assert records.survivors() == {}
    assert records.stop_survivors({}, grace_s=1) == []
    assert alive(stranger.pid, started), "a stranger's process was signalled"


def test_unreadable_records_mean_no_survivors(tmp_path: Path) -> None:
    records = ProcessRecords(tmp_path / "processes.json")
    records.path.write_text("{truncated")

    assert records.survivors() == {}


def test_stop_survivors_stops_a_recorded_group_and_says_what_it_stopped(
        tmp_path: Path, spawn: Spawn) -> None:
    process = spawn()
    records = ProcessRecords(tmp_path / "processes.json")
    records.add("cache-redis", process.pid)

    stopped = records.stop_survivors({"cache-redis": signal.SIGTERM}, grace_s=5)

    assert stopped == [("cache-redis", process.pid)]
    assert process.wait(timeout=5) == -signal.SIGTERM
    assert records.survivors() == {}
    assert json.loads(records.path.read_text()) == {}


def test_stop_survivors_kills_the_whole_group_when_the_grace_period_ends(
        tmp_path: Path, spawn: Spawn) -> None:
    parent = spawn(STUBBORN_PARENT)
    assert parent.stdout is not None
    grandchild = int(parent.stdout.readline())
    records = ProcessRecords(tmp_path / "processes.json")
    records.add("kafka-1", parent.pid)

    stopped = records.stop_survivors({"kafka-1": signal.SIGTERM}, grace_s=0.3)

    assert stopped == [("kafka-1", parent.pid)]
    assert parent.wait(timeout=5) == -signal.SIGKILL
    wait_for(lambda: gone(grandchild), timeout=5, what="grandchild stopped", interval=0.01)
