"""What the HTTP overhead benchmarks share: wrk runs read back, waiting for a quiet machine and
for a server to answer, and the processes a benchmark starts (each stopped at the end).

Used by bench/gateway_overhead.py and bench/alb_overhead.py; a script puts the project root on
sys.path and imports ``bench.loadgen``.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 64
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NATIVE_ENV = "COME2US_GATEWAY_NATIVE"
BACKEND_APP = "tests.gateway_backend:app"  # the small FastAPI service both benchmarks ask
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def __str__(self) -> str:
        return (f"{self.rps:9.0f} req/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"
                + (f"  ERRORS {self.errors}" if self.errors else ""))


@dataclass(frozen=True)
class Medians:
    """The medians of one path's rounds: a run's figures are read on these, not on one round."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    @classmethod
    def of(cls, results: Sequence[WrkResult]) -> Medians:
        return cls(statistics.median(r.rps for r in results),
                   statistics.median(r.p50_ms for r in results),
                   statistics.median(r.p99_ms for r in results),
                   sum(r.errors for r in results))


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, patience_s: float) -> None:
    """Wait (at most ``patience_s``) for the 1-minute load average to drop below ``max_load``:
    wrk and the servers share 2 cores with whatever else runs."""
    deadline = time.monotonic() + patience_s
    while load_average() > max_load and time.monotonic() < deadline:
        time.sleep(5)


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def wrk(url: str, duration_s: int, headers: dict[str, str]) -> WrkResult:
    """One wrk run (-t1, CONNECTIONS connections); errors count non-2xx and socket errors."""
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration_s}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    text = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    requests = re.search(r"(\d+) requests in", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if requests is None or rps is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", text)
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return WrkResult(int(requests.group(1)), float(rps.group(1)), _latency_ms(text, "50"),
                     _latency_ms(text, "99"), failed)


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def wait_ready(url: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 20
    last = "nothing yet"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, headers=headers, timeout=1.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready within 20 s; last seen: {last}")


def build_native() -> Path:
    """The gateway's hot modules compiled by mypyc: the runtime's own build
    (``build/gateway-native``, made by the set-up), compiled first only if missing or stale."""
    from services.gateway.native import NATIVE_BUILD

    subprocess.run([sys.executable, "-m", "services.gateway.native", "ensure",
                    str(NATIVE_BUILD)], cwd=ROOT, check=True, capture_output=True)
    return NATIVE_BUILD


def uvicorn_argv(host: str, port: int) -> list[str]:
    """The FastAPI service with one uvicorn worker (uvloop + httptools), no access log."""
    return [sys.executable, "-m", "uvicorn", BACKEND_APP, "--host", host, "--port", str(port),
            "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--log-level",
            "warning", "--no-access-log"]


def gateway_argv(host: str, port: int, settings: Path) -> list[str]:
    return [sys.executable, "-m", "services.gateway", "--host", host, "--port", str(port),
            "--settings-file", str(settings)]


def write_gateway_settings(path: Path, routes: list[dict[str, object]], issuer: str,
                           public_pem: str) -> None:
    """Gateway settings with no public entries: every request's JWT is verified (the token
    cache keeps RSA off the path)."""
    path.write_text(yaml.safe_dump({
        "spring": {"cloud": {"gateway": {"routes": routes}}},
        "gateway": {"jwt": {"issuer": issuer, "public-key": public_pem}},
    }))


class Processes:
    """The processes a benchmark started, each logging to a file of the work directory."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: str,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` from the project root; the gateway's native switch is set only when
        ``env`` says so."""
        plain_env = {k: v for k, v in os.environ.items() if k != NATIVE_ENV}
        with (self.work / log).open("wb") as out:
            process = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env={**plain_env, **(env or {})})
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def processes(work: Path) -> Iterator[Processes]:
    group = Processes(work)
    try:
        yield group
    finally:
        group.stop()
