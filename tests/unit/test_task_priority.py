"""A task's processes start nicer and are raised to normal priority once healthy (real
processes: the kernel decides whether raising is allowed)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.local.processes import ProcessRecords
from stack.local.tasks.launch import PopenTask
from stack.waiting import wait_for


@pytest.fixture
def nice_task(tmp_path: Path) -> Iterator[PopenTask]:
    popen = subprocess.Popen(["nice", "-n", "10", "sleep", "30"], start_new_session=True)
    records = ProcessRecords(tmp_path / "processes.json")
    records.add("sleeper", popen.pid)
    task = PopenTask(popen, "sleeper", records)

    def execed() -> tuple[bool | None, str]:  # nice(1) has set the niceness and exec'd
        comm = Path(f"/proc/{popen.pid}/comm").read_text().strip()
        return (True if comm == "sleep" else None), f"still {comm}"

    wait_for(execed, timeout=5.0, what="nice to exec sleep", interval=0.01)
    yield task
    task.signal(signal.SIGKILL)
    popen.wait(timeout=5)


def test_a_task_started_nicer_runs_at_that_niceness(nice_task: PopenTask) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)

    assert os.getpriority(os.PRIO_PROCESS, nice_task.pid) == min(base + 10, 19)


def test_raising_its_priority_gives_it_ours_or_says_why_not(nice_task: PopenTask) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)

    refused = nice_task.raise_priority()

    if os.geteuid() == 0:  # root may raise a priority; others may not (RLIMIT_NICE aside)
        assert refused is None
        assert os.getpriority(os.PRIO_PROCESS, nice_task.pid) == base
    else:
        assert refused is not None and "CAP_SYS_NICE" in refused
