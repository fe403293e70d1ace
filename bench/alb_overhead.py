"""What the local ALB costs a request (issue 6): throughput and latency through HAProxy.

wrk (-t1 -c64) asks the same small JSON GET of a FastAPI service running one uvicorn worker
(uvloop + httptools) three ways, interleaved ``--rounds`` times for ``--duration`` seconds each:

  direct        wrk -> the task
  alb           wrk -> the ALB (HAProxy from AlbComponent, the model's configuration: health
                checks, forward action map, JSON access log) -> the task, registered as a target
                of tg-gateway-blue
  alb+gateway   wrk -> the ALB -> the gateway (JWT verified on every request, as in
                bench/gateway_overhead.py) -> the task; the gateway is the target of
                tg-gateway-green, reached with the preview header (X-Come2us-Colour: green)

Targets, on the medians: alb >= 0.90 of direct throughput and p99 at most 2x direct;
alb+gateway >= 0.85 of direct throughput. Also printed (no target): HAProxy's CPU per request.
The gateway runs with its mypyc build as the runtime runs it (``--no-native``: plain Python).

Prints every figure; exits 1 when a target is missed. The machine has 2 cores and wrk, HAProxy,
the gateway and the service share them: the load average is printed before each round and
``--max-load`` waits for a quieter machine.

    .venv/bin/python bench/alb_overhead.py [--rounds 3] [--duration 10] [--max-load 1.0]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import (  # noqa: E402  (needs ROOT on sys.path)
    CONNECTIONS,
    NATIVE_ENV,
    Medians,
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
from stack.come2us import come2us  # noqa: E402
from stack.local.alb.access_log import log_size, read_access_log  # noqa: E402
from stack.local.alb.component import AlbComponent  # noqa: E402
from stack.local.alb.targets import Target, TargetHealth  # noqa: E402
from stack.local.backend import ProcessBackend  # noqa: E402
from stack.local.workspace import Workspace  # noqa: E402
from stack.model.edge import Colour  # noqa: E402
from stack.waiting import wait_for  # noqa: E402
from tests.gateway_tokens import ISSUER, KeyPair  # noqa: E402

ALB_RATIO_TARGET = 0.90
ALB_P99_FACTOR_TARGET = 2.0
TWO_HOPS_RATIO_TARGET = 0.85
# Hosts in AZ-a of the model's loopback block (COME2US_LOOPBACK_BLOCK), clear of task addresses.
SERVICE_HOST_NUMBER, GATEWAY_HOST_NUMBER = 191, 192
PATHS = ("direct", "alb", "alb+gateway")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--max-load", type=float, default=1.0,
                        help="wait (up to --patience s) for a 1-min load average below this")
    parser.add_argument("--patience", type=float, default=120.0)
    parser.add_argument("--no-native", action="store_true",
                        help="run the gateway as plain Python (no mypyc build)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    model = come2us()
    zone = model.region.zones[0]
    service_host = str(zone.address(SERVICE_HOST_NUMBER))
    gateway_host = str(zone.address(GATEWAY_HOST_NUMBER))
    lb = replace(model.load_balancer, node=replace(
        model.load_balancer.node, port=free_port(str(model.load_balancer.node.host))))
    keys = KeyPair.generate()
    auth = {"Authorization": f"Bearer {keys.token(lifetime_s=3600)}"}
    work = Path(tempfile.mkdtemp(prefix="alb-bench-"))
    try:
        native = None
        if not args.no_native:
            print("the gateway's native modules (mypyc, build/gateway-native) ...")
            native = build_native()
        ports = {"service": free_port(service_host), "gateway": free_port(gateway_host)}
        service = f"http://{service_host}:{ports['service']}"
        write_gateway_settings(work / "gateway.yml", [
            {"id": "products", "uri": service, "predicates": ["Path=/api/products/**"],
             "filters": ["StripPrefix=2"]}], ISSUER, keys.public_pem)
        with processes(work) as started:
            started.start(uvicorn_argv(service_host, ports["service"]), "service.log")
            started.start(gateway_argv(gateway_host, ports["gateway"], work / "gateway.yml"),
                          "gateway.log", {NATIVE_ENV: str(native)} if native else None)
            wait_ready(f"{service}/items/1")
            wait_ready(f"http://{gateway_host}:{ports['gateway']}/actuator/health")
            workspace = Workspace(work / "come2us")
            workspace.ensure()
            alb = AlbComponent(lb, workspace, ProcessBackend())
            alb.start()
            try:
                alb.wait_ready()
                register(alb, Target(alb.group_of("gateway", Colour.BLUE), "service-1",
                                     service_host, ports["service"]))
                register(alb, Target(alb.group_of("gateway", Colour.GREEN), "gateway-1",
                                     gateway_host, ports["gateway"]))
                urls = {
                    "direct": (f"{service}/items/1", auth),
                    "alb": (f"{alb.url}/items/1", auth),
                    "alb+gateway": (f"{alb.url}/api/products/items/1",
                                    {**auth, lb.preview_header: Colour.GREEN.value}),
                }
                for url, headers in urls.values():
                    wait_ready(url, headers)
                failures = compare(args, urls, alb)
            finally:
                alb.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


def register(alb: AlbComponent, target: Target) -> None:
    """Register and wait for the healthy threshold, as a task behind the ALB would."""
    alb.register(target)

    def healthy() -> tuple[bool | None, str]:
        seen = alb.health(target.group).get(target.target_id)
        return (True if seen is TargetHealth.HEALTHY else None), f"{target.target_id}: {seen}"

    wait_for(healthy, timeout=30, what=f"{target.target_id} healthy behind the ALB")


def answers_since(alb: AlbComponent, mark: int) -> str:
    """Status and termination state counts in the access log (why requests failed: e.g. 503
    when the target's health checks timed out under the load)."""
    counts = Counter((e.status, e.termination) for e in read_access_log(alb.log_file, mark))
    return ", ".join(f"{status} {state} x{n}" for (status, state), n in counts.most_common(5))


def compare(args: argparse.Namespace, urls: dict[str, tuple[str, dict[str, str]]],
            alb: AlbComponent) -> list[str]:
    """The interleaved rounds; returns the targets missed."""
    for url, headers in urls.values():
        wrk(url, 2, headers)  # warm up: connection pools, the gateway's token cache
    results: dict[str, list[WrkResult]] = {path: [] for path in PATHS}
    haproxy_us: list[float] = []
    haproxy_pid = alb.runner.pid
    assert haproxy_pid is not None
    print(f"FastAPI service (1 uvicorn worker), wrk -t1 -c{CONNECTIONS}, "
          f"{args.rounds} x {args.duration} s interleaved")
    for round_number in range(1, args.rounds + 1):
        wait_for_quiet(args.max_load, args.patience)
        print(f"  round {round_number} (load {load_average():.2f})")
        for path in PATHS:
            url, headers = urls[path]
            before, log_mark = cpu_seconds(haproxy_pid), log_size(alb.log_file)
            result = wrk(url, args.duration, headers)
            results[path].append(result)
            line = f"    {path:<12}{result}  ratio {result.rps / results['direct'][-1].rps:.3f}"
            if path == "alb":
                haproxy_us.append((cpu_seconds(haproxy_pid) - before) / result.requests * 1e6)
                line += f"  HAProxy CPU {haproxy_us[-1]:.1f} µs/request"
            print(line)
            if result.errors and path != "direct":
                print(f"      the ALB's answers: {answers_since(alb, log_mark)}")
    medians = {path: Medians.of(results[path]) for path in PATHS}
    direct, alb_m, two = medians["direct"], medians["alb"], medians["alb+gateway"]
    alb_ratio, two_ratio = alb_m.rps / direct.rps, two.rps / direct.rps
    p99_factor = alb_m.p99_ms / direct.p99_ms
    print("  medians:")
    for path in PATHS:
        m = medians[path]
        print(f"    {path:<12}{m.rps:9.0f} req/s  p50 {m.p50_ms:6.2f} ms  "
              f"p99 {m.p99_ms:6.2f} ms  ratio {m.rps / direct.rps:.3f}")
    print(f"  alb: throughput ratio {alb_ratio:.3f} (target >= {ALB_RATIO_TARGET}), "
          f"p99 x{p99_factor:.2f} (target <= x{ALB_P99_FACTOR_TARGET}), "
          f"p50 added {alb_m.p50_ms - direct.p50_ms:+.2f} ms, HAProxy CPU "
          f"{sorted(haproxy_us)[len(haproxy_us) // 2]:.1f} µs/request")
    print(f"  alb+gateway: throughput ratio {two_ratio:.3f} "
          f"(target >= {TWO_HOPS_RATIO_TARGET}), p99 x{two.p99_ms / direct.p99_ms:.2f}")
    failures: list[str] = []
    if any(m.errors for m in medians.values()):
        failures.append("wrk saw errors or non-2xx answers: "
                        + ", ".join(f"{p} {m.errors}" for p, m in medians.items()))
    if alb_ratio < ALB_RATIO_TARGET:
        failures.append(f"alb throughput ratio {alb_ratio:.3f} < {ALB_RATIO_TARGET}")
    if p99_factor > ALB_P99_FACTOR_TARGET:
        failures.append(f"alb p99 x{p99_factor:.2f} > x{ALB_P99_FACTOR_TARGET}")
    if two_ratio < TWO_HOPS_RATIO_TARGET:
        failures.append(f"alb+gateway throughput ratio {two_ratio:.3f} < "
                        f"{TWO_HOPS_RATIO_TARGET}")
    return failures


if __name__ == "__main__":
    started_at = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started_at:.0f} s)")
    sys.exit(code)
