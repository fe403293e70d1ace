"""How long `come2us up` and `come2us down` take on a warm machine (issue 2: <= 30 s, <= 10 s).

Runs the real commands in a scratch workspace: one cold `up` that creates the data
directories, then warm down/up cycles that reuse them. Prints every figure, exits 1 when the
median warm `up` or `down` misses its target.

    .venv/bin/python bench/up_down.py [--cycles 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UP_TARGET_S = 30.0
DOWN_TARGET_S = 10.0
COME2US = str(Path(sys.executable).with_name("come2us"))


def timed(*argv: str, env: dict[str, str]) -> float:
    began = time.monotonic()
    result = subprocess.run([COME2US, *argv], env=env, capture_output=True, text=True,
                            check=False)
    elapsed = time.monotonic() - began
    if result.returncode != 0:
        raise SystemExit(f"`come2us {' '.join(argv)}` failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="come2us-bench-"))
    home.chmod(0o755)
    env = {**os.environ, "COME2US_HOME": str(home)}
    try:
        cold = timed("up", env=env)
        print(f"cold up (creates data directories): {cold:6.2f} s")
        ups, downs = [], []
        for cycle in range(1, args.cycles + 1):
            downs.append(timed("down", env=env))
            ups.append(timed("up", env=env))
            print(f"cycle {cycle}: down {downs[-1]:5.2f} s, warm up {ups[-1]:5.2f} s")
        downs.append(timed("down", env=env))
    finally:
        subprocess.run([COME2US, "down"], env=env, capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
    up_median, down_median = statistics.median(ups), statistics.median(downs)
    print(f"warm up:  median {up_median:5.2f} s, max {max(ups):5.2f} s "
          f"(target <= {UP_TARGET_S:g} s)")
    print(f"down:     median {down_median:5.2f} s, max {max(downs):5.2f} s "
          f"(target <= {DOWN_TARGET_S:g} s)")
    missed = up_median > UP_TARGET_S or down_median > DOWN_TARGET_S
    print("MISSED" if missed else "OK")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
