"""Memory of the whole local cloud at idle, per component and in total (target <= 2 GiB).

Brings a cloud up in a scratch workspace (or measures the running one with --reuse), lets it
settle, then sums RSS and PSS over every process of each component (the server and everything
below it: PostgreSQL's backends, …), of each task of the serving colour, and of the control
plane. Exits 1 over the target.

    .venv/bin/python bench/idle_memory.py [--settle 20] [--reuse]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from stack.local.session import CloudSession
from stack.local.workspace import Workspace

TARGET_BYTES = 2 * 1024**3
PROC = Path("/proc")


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (PostgreSQL backends leave the postmaster's group)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB, from smaps_rollup."""
    rss = pss = 0
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def measure(session: CloudSession) -> int:
    report = session.client.status()
    rows = [(row["name"], row["zone"], row["pid"]) for row in report["components"]]
    # The serving colour's tasks (gateway and business services) run beside the components.
    rows += [(task["id"], task["zone"], task["pid"]) for task in report.get("tasks", [])
             if task["pid"] is not None and task["state"] != "stopped"]
    rows.append(("control plane", "-", report["pid"]))
    total_rss = total_pss = 0
    print(f"{'component / task':<24}{'AZ':<8}{'procs':>6}{'RSS MiB':>10}{'PSS MiB':>10}")
    for name, zone, pid in rows:
        members = descendants(pid) if name != "control plane" else [pid]
        rss = sum(memory_kib(p)[0] for p in members)
        pss = sum(memory_kib(p)[1] for p in members)
        total_rss, total_pss = total_rss + rss, total_pss + pss
        print(f"{name:<24}{zone:<8}{len(members):>6}{rss / 1024:>10.1f}{pss / 1024:>10.1f}")
    print(f"{'total':<24}{'':<8}{'':>6}{total_rss / 1024:>10.1f}{total_pss / 1024:>10.1f}")
    print(f"target: total RSS <= {TARGET_BYTES / 1024**2:.0f} MiB")
    return total_rss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=20.0, help="idle seconds before measuring")
    parser.add_argument("--reuse", action="store_true", help="measure the running local cloud")
    args = parser.parse_args()
    if args.reuse:
        session = CloudSession(Workspace.default())
        session.attach()
        home = None
    else:
        home = Path(tempfile.mkdtemp(prefix="come2us-bench-"))
        home.chmod(0o755)
        session = CloudSession(Workspace(home))
        session.start()
    try:
        time.sleep(args.settle)  # idle on purpose: this measures the cloud at rest
        total = measure(session)
    finally:
        session.close()
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
    missed = total > TARGET_BYTES
    print("MISSED" if missed else "OK")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
