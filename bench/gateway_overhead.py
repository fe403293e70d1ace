"""What the gateway costs a request (issue 3): throughput, latency and its own CPU per request.

Part 1 — overhead against a Python service. wrk (-t1 -c64) asks a small JSON GET of a FastAPI
service running one uvicorn worker (uvloop + httptools), directly and through the gateway
(protected route: JWT verification, routing, breaker, access log all on; a valid token in the
Authorization header), interleaved ``--rounds`` times for ``--duration`` seconds each. Targets,
on the medians: gateway throughput >= 0.90 of direct; p50 within 0.5 ms of direct; p99 at most
2x direct.

Part 2 — the gateway's own CPU per request, against a native backend (nginx serving a static
JSON) so the backend is not the bottleneck: the gateway process's utime + stime (from /proc)
during the run divided by the requests served. Target <= 30 µs.

Both parts run the gateway as the runtime does: with its hot modules compiled by mypyc
(``services.gateway.native``: the set-up's build, made first if stale; ``--no-native`` skips
it). Part 2 also measures the plain-Python gateway, for comparison.

Prints every figure; exits 1 when a target is missed. The machine has 2 cores and wrk, the
service and the gateway share them: run it when nothing else is busy (the load average is
printed before each run; ``--max-load`` waits for a quieter machine).

    .venv/bin/python bench/gateway_overhead.py [--rounds 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import (  # noqa: E402  (needs ROOT on sys.path)
    CONNECTIONS,
    NATIVE_ENV,
    WrkResult,
    build_native,
    cpu_seconds,
    free_port,
    gateway_argv,
    load_average,
    processes,
    uvicorn_argv,
    wait_for_quiet,
    wait_ready,
    write_gateway_settings,
    wrk,
)
from tests.gateway_tokens import ISSUER, KeyPair  # noqa: E402

THROUGHPUT_RATIO_TARGET = 0.90
P50_ADDED_TARGET_MS = 0.5
P99_FACTOR_TARGET = 2.0
CPU_PER_REQUEST_TARGET_US = 30.0
SERVICE_HOST, NGINX_HOST, GATEWAY_HOST = "127.0.1.181", "127.0.1.182", "127.0.1.183"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
JSON_BODY = '{"id":1,"name":"running shoes","price":89000,"currency":"KRW"}'


@contextmanager
def services(work: Path, token_keys: KeyPair,
             native: Path | None) -> Iterator[dict[str, str]]:
    """The FastAPI service, nginx and the gateway (twice: as built, and plain Python when the
    first is native); yields their base URLs and the gateways' pids."""
    ports = {"service": free_port(SERVICE_HOST), "nginx": free_port(NGINX_HOST),
             "gateway": free_port(GATEWAY_HOST), "plain": free_port(GATEWAY_HOST)}
    service = f"http://{SERVICE_HOST}:{ports['service']}"
    nginx = f"http://{NGINX_HOST}:{ports['nginx']}"
    gateway = f"http://{GATEWAY_HOST}:{ports['gateway']}"
    (work / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  client_body_temp_path {work};
  server {{
    listen {NGINX_HOST}:{ports['nginx']};
    location / {{ default_type application/json; return 200 '{JSON_BODY}'; }}
  }}
}}
""")
    write_gateway_settings(work / "gateway.yml", [
        {"id": "products", "uri": service, "predicates": ["Path=/api/products/**"],
         "filters": ["StripPrefix=2"]},
        {"id": "static", "uri": nginx, "predicates": ["Path=/api/static/**"],
         "filters": ["StripPrefix=2"]},
    ], ISSUER, token_keys.public_pem)
    with processes(work) as started:
        started.start(uvicorn_argv(SERVICE_HOST, ports["service"]), "service.log")
        started.start([NGINX, "-c", str(work / "nginx.conf"), "-p", str(work)], "nginx.log")
        gateway_process = started.start(
            gateway_argv(GATEWAY_HOST, ports["gateway"], work / "gateway.yml"),
            "gateway.log", {NATIVE_ENV: str(native)} if native else None)
        urls = {"service": service, "nginx": nginx, "gateway": gateway,
                "gateway_pid": str(gateway_process.pid)}
        if native is not None:
            plain = started.start(gateway_argv(GATEWAY_HOST, ports["plain"],
                                               work / "gateway.yml"), "gateway-plain.log")
            urls.update(plain=f"http://{GATEWAY_HOST}:{ports['plain']}",
                        plain_pid=str(plain.pid))
        wait_ready(f"{service}/items/1")
        wait_ready(f"{nginx}/items/1")
        wait_ready(f"{gateway}/actuator/health")
        if native is not None:
            wait_ready(f"{urls['plain']}/actuator/health")
            log_text = (work / "gateway.log").read_text()
            if "native build in" not in log_text:
                raise SystemExit(f"the gateway did not load its native build:\n{log_text}")
        yield urls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--max-load", type=float, default=1.0,
                        help="wait (up to --patience s) for a 1-min load average below this")
    parser.add_argument("--patience", type=float, default=120.0)
    parser.add_argument("--only", choices=("overhead", "cpu"), help="run one part only")
    parser.add_argument("--no-native", action="store_true",
                        help="run the gateway as plain Python (no mypyc build)")
    args = parser.parse_args()
    if shutil.which("wrk") is None or not Path(NGINX).exists():
        print("needs wrk and nginx: apt-get install -y wrk nginx", file=sys.stderr)
        return 2
    keys = KeyPair.generate()
    token = keys.token(lifetime_s=3600)
    auth = {"Authorization": f"Bearer {token}"}
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    failures: list[str] = []
    try:
        native = None
        if not args.no_native:
            print("the gateway's native modules (mypyc, build/gateway-native) ...")
            native = build_native()
        with services(work, keys, native) as urls:
            direct_url = f"{urls['service']}/items/1"
            gateway_url = f"{urls['gateway']}/api/products/items/1"
            wait_ready(gateway_url, auth)
            if args.only != "cpu":
                failures += overhead(args, direct_url, gateway_url, auth)
            if args.only != "overhead":
                failures += cpu_cost(args, urls, auth)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


def overhead(args: argparse.Namespace, direct_url: str, gateway_url: str,
             auth: dict[str, str]) -> list[str]:
    """Part 1; returns the targets missed."""
    failures: list[str] = []
    wrk(gateway_url, 2, auth)                 # warm up: pools, token cache
    wrk(direct_url, 2, {})
    direct: list[WrkResult] = []
    through: list[WrkResult] = []
    print(f"part 1: FastAPI service (1 worker), wrk -t1 -c{CONNECTIONS}, "
          f"{args.rounds} x {args.duration} s interleaved")
    for round_number in range(1, args.rounds + 1):
        wait_for_quiet(args.max_load, args.patience)
        direct.append(wrk(direct_url, args.duration, auth))
        through.append(wrk(gateway_url, args.duration, auth))
        print(f"  round {round_number} (load {load_average():.2f})\n"
              f"    direct  {direct[-1]}\n    gateway {through[-1]}  "
              f"ratio {through[-1].rps / direct[-1].rps:.3f}")
    d_rps = statistics.median(r.rps for r in direct)
    g_rps = statistics.median(r.rps for r in through)
    d_p50 = statistics.median(r.p50_ms for r in direct)
    g_p50 = statistics.median(r.p50_ms for r in through)
    d_p99 = statistics.median(r.p99_ms for r in direct)
    g_p99 = statistics.median(r.p99_ms for r in through)
    ratio = g_rps / d_rps
    print(f"  medians: direct {d_rps:.0f} req/s, gateway {g_rps:.0f} req/s, "
          f"ratio {ratio:.3f} (target >= {THROUGHPUT_RATIO_TARGET})")
    print(f"           p50 direct {d_p50:.2f} ms, gateway {g_p50:.2f} ms, added "
          f"{g_p50 - d_p50:+.2f} ms (target <= {P50_ADDED_TARGET_MS} ms)")
    print(f"           p99 direct {d_p99:.2f} ms, gateway {g_p99:.2f} ms, "
          f"x{g_p99 / d_p99:.2f} (target <= x{P99_FACTOR_TARGET})")
    if any(r.errors for r in (*direct, *through)):
        failures.append("wrk saw errors or non-2xx answers")
    if ratio < THROUGHPUT_RATIO_TARGET:
        failures.append(f"throughput ratio {ratio:.3f} < {THROUGHPUT_RATIO_TARGET}")
    if g_p50 - d_p50 > P50_ADDED_TARGET_MS:
        failures.append(f"p50 added {g_p50 - d_p50:.2f} ms > {P50_ADDED_TARGET_MS} ms")
    if g_p99 > P99_FACTOR_TARGET * d_p99:
        failures.append(f"p99 x{g_p99 / d_p99:.2f} > x{P99_FACTOR_TARGET}")
    return failures


def cpu_cost(args: argparse.Namespace, urls: dict[str, str], auth: dict[str, str]) -> list[str]:
    """Part 2; returns the targets missed."""
    failures: list[str] = []
    static_direct = f"{urls['nginx']}/items/1"
    variants = [("gateway", urls["gateway"], int(urls["gateway_pid"]))]
    if "plain" in urls:
        variants.append(("plain Python gateway", urls["plain"], int(urls["plain_pid"])))
    for _, base, _ in variants:
        wrk(f"{base}/api/static/items/1", 2, auth)
    costs: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    print(f"part 2: gateway CPU per request against nginx, {args.rounds} x "
          f"{args.duration} s")
    for round_number in range(1, args.rounds + 1):
        wait_for_quiet(args.max_load, args.patience)
        direct = wrk(static_direct, args.duration, auth)
        print(f"  round {round_number} (load {load_average():.2f}): nginx direct "
              f"{direct.rps:.0f} req/s")
        for name, base, pid in variants:
            before = cpu_seconds(pid)
            result = wrk(f"{base}/api/static/items/1", args.duration, auth)
            cost_us = (cpu_seconds(pid) - before) / result.requests * 1e6
            costs[name].append(cost_us)
            print(f"    {name}: {result}; CPU {cost_us:.1f} µs/request")
            if result.errors:
                failures.append(f"wrk saw errors through the {name} to nginx")
    for name, _, _ in variants[1:]:
        print(f"  median {name} CPU per request: {statistics.median(costs[name]):.1f} µs "
              "(for comparison)")
    cost = statistics.median(costs["gateway"])
    print(f"  median gateway CPU per request: {cost:.1f} µs "
          f"(target <= {CPU_PER_REQUEST_TARGET_US:g} µs)")
    if cost > CPU_PER_REQUEST_TARGET_US:
        failures.append(f"gateway CPU {cost:.1f} µs/request > "
                        f"{CPU_PER_REQUEST_TARGET_US:g} µs")
    return failures


if __name__ == "__main__":
    sys.exit(main())
