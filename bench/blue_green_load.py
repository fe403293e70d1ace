"""The highest constant load at which a blue/green deploy still loses no request (issue 6).

On a running local cloud (`come2us up`), for each load level (requests per second, lowest
first): a constant open-loop load of signed-in clients reads the catalogue through the ALB
(``/api/products?size=1``; `stack.local.load`), and while it runs the next release is deployed
to the idle colour, switched to and the old colour retired — the code path of
`come2us deploy --target local` (`stack.bluegreen.promote` over `LocalColours`). A level
passes when the deploy is promoted, every request issued was answered 2xx, and the generator
really issued at least 95 % of the asked rate: it shares the machine's cores with the cloud
it loads, so its achieved rate is printed beside the asked one and a level it could not drive
proves nothing.

Prints one row per level and the highest passing level; writes each level's evidence to
reports/evidence/blue_green/bench-<rate>.{json,md,svg}. Stops at the first failing level
unless ``--keep-going``. Exits 1 when the lowest level (100 req/s by default) does not pass,
2 when no local cloud runs.

    COME2US_HOME=… COME2US_LOOPBACK_BLOCK=… .venv/bin/python bench/blue_green_load.py \\
        [--rates 100,200,300,400] [--settle 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stack import bluegreen  # noqa: E402  (needs ROOT on sys.path)
from stack.cli_deploy import local_deploy_lock  # noqa: E402
from stack.come2us import come2us  # noqa: E402
from stack.local.bluegreen import LocalColours  # noqa: E402
from stack.local.controlplane import ControlPlaneClient  # noqa: E402
from stack.local.load import (  # noqa: E402
    BackgroundLoad,
    HttpExchange,
    LoadPlan,
    LoadRun,
    client_tokens,
    clients_needed,
    served_rate_limit,
)
from stack.local.load_evidence import (  # noqa: E402
    Marker,
    events_between,
    switch_instants,
    write_evidence,
)
from stack.local.workspace import Workspace  # noqa: E402

CATALOGUE = "/api/products?size=1"
ACHIEVED_SHARE = 0.95  # of the asked rate, or the level proves nothing
LOAD_BOUND_S = 300.0  # a level's load never runs longer, whatever the deploy does
MAX_RATE = 2000  # bound on what may be asked at all


@dataclass
class Level:
    rate: int
    run: LoadRun
    outcome: str
    deploy_s: float

    @property
    def lossless(self) -> bool:
        return not self.run.failures

    @property
    def driven(self) -> bool:
        return self.run.achieved_rate >= ACHIEVED_SHARE * self.rate

    @property
    def passed(self) -> bool:
        return self.lossless and self.driven and self.outcome == str(bluegreen.Outcome.PROMOTED)

    def row(self) -> str:
        run, summary = self.run, self.run.summary()
        verdict = "pass" if self.passed else ("LOST REQUESTS" if not self.lossless else
                                              "not driven" if not self.driven else self.outcome)
        return (f"{self.rate:>6} {run.achieved_rate:>9.1f} {run.sent:>7} "
                f"{len(run.failures):>7} {len(run.missing):>7} "
                f"{summary['retried_on_closed_keepalive']:>7} "
                f"{summary['latency_ms']['p50']:>7.1f} {summary['latency_ms']['p99']:>8.1f} "
                f"{summary['latency_ms']['max']:>8.1f} {self.deploy_s:>7.1f}  {self.outcome:<12}"
                f" {verdict}")


HEADER = (f"{'asked':>6} {'achieved':>9} {'sent':>7} {'not2xx':>7} {'noansw':>7} "
          f"{'retried':>7} {'p50ms':>7} {'p99ms':>8} {'maxms':>8} {'deploy':>7}  "
          f"{'outcome':<12} verdict")


def one_level(client: ControlPlaneClient, workspace: Workspace, rate: int,
              settle_s: float) -> Level:
    model = come2us()
    url = model.load_balancer.url + CATALOGUE
    headers = client_tokens(workspace, clients_needed(rate, served_rate_limit(model, CATALOGUE)),
                            prefix=f"bench-{uuid.uuid4().hex[:6]}")
    plan = LoadPlan(url, rate=rate, duration_s=LOAD_BOUND_S, connections=256)
    load = BackgroundLoad(plan, lambda: HttpExchange(url, headers, connections=256))
    release = f"bench-{rate}-{uuid.uuid4().hex[:6]}"
    markers: list[Marker] = []
    load.start()
    try:
        time.sleep(settle_s)  # a baseline before the deploy, for the evidence and the reader
        began = time.time()
        markers.append(Marker(began, f"deploy {release} started"))
        with local_deploy_lock(workspace.run / "deploy.lock"):
            result = bluegreen.promote(LocalColours(client, model), release)
        ended = time.time()
        markers.append(Marker(ended, f"deploy ended: {result.outcome}"))
        time.sleep(settle_s)  # the new colour alone under the same load
    finally:
        run = load.stop()
    events = events_between(workspace, run.started, run.ended)
    write_evidence(run, "blue_green", f"bench {rate}", markers=markers + switch_instants(events),
                   events=events, facts={"release": release, "outcome": str(result.outcome),
                                         "reason": result.reason, "clients": len(headers)})
    return Level(rate, run, str(result.outcome), ended - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,200,300,400",
                        help="load levels in requests per second, lowest first")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds of load before and after each deploy")
    parser.add_argument("--keep-going", action="store_true",
                        help="try every level, even after one failed")
    args = parser.parse_args()
    rates = sorted(int(r) for r in args.rates.split(","))
    if not rates or rates[0] <= 0 or rates[-1] > MAX_RATE:
        parser.error(f"rates must be between 1 and {MAX_RATE}")
    workspace = Workspace.default()
    with ControlPlaneClient(workspace, timeout=120.0) as client:
        if not client.is_running():
            print(f"no local cloud runs for {workspace.home}: start it with `come2us up`",
                  file=sys.stderr)
            return 2
        print(f"local cloud {workspace.home}; ALB {come2us().load_balancer.url}; "
              f"GET {CATALOGUE}; a level passes when promoted with every request 2xx and "
              f">= {ACHIEVED_SHARE:.0%} of the asked rate issued")
        print(HEADER)
        levels: list[Level] = []
        for rate in rates:
            print(f"# load average {os.getloadavg()[0]:.1f}: {rate} req/s ...", flush=True)
            level = one_level(client, workspace, rate, args.settle)
            levels.append(level)
            print(level.row(), flush=True)
            if not level.passed and not args.keep_going:
                break
    passing = 0
    for level in levels:  # the highest level below which every level passed
        if not level.passed:
            break
        passing = level.rate
    if passing:
        best = next(level for level in levels if level.rate == passing)
        print(f"highest constant load with a lossless blue/green deploy: {passing} req/s asked, "
              f"{best.run.achieved_rate:.1f} req/s issued ({best.run.sent} requests, "
              f"deploy {best.deploy_s:.1f} s)")
    else:
        first = levels[0]
        print(f"no level passed: even {first.rate} req/s failed: deploy {first.outcome}; "
              f"{first.run.describe()}")
    return 0 if levels and levels[0].passed else 1


if __name__ == "__main__":
    sys.exit(main())
