"""The control plane's compute side: the task runner, its loop, the releases, the listener.

`TaskPlane` is what the control plane's API calls for everything about tasks and colours:
bring the first colour up (`bring_up`, the end of `come2us up`), deploy, scale, replace or
retire a colour's tasks, switch the ALB's listener, and report it all for `come2us status`.
The runner's decisions are in `runner`; this module wires it to real processes, HAProxy and
discovery, and runs it every `LocalTasks.reconcile_interval_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stack.local.alb.targets import LoadBalancer
from stack.local.ports import bindable
from stack.local.processes import ProcessRecords
from stack.local.release_trees import refuse_early_contract
from stack.local.services import ServiceWiring
from stack.local.tasks.health import ContainerChecks
from stack.local.tasks.launch import ServiceLauncher
from stack.local.tasks.placement import Placement
from stack.local.tasks.registry import EurekaRegistry
from stack.local.tasks.releases import ReleaseBook, checkout_label
from stack.local.tasks.runner import ColourHealth, TaskRunner
from stack.local.tasks.task import Release, TaskState
from stack.local.workspace import Workspace
from stack.model import Platform
from stack.model.edge import Colour
from stack.waiting import DeadlineExceeded, wait_for

OnEvent = Callable[[str, str], None]
RETIRE_MARGIN_S = 10.0  # on top of the drains and the stop timeout, for a loaded machine


class TaskPlane:
    def __init__(self, model: Platform, workspace: Workspace, balancer: LoadBalancer,
                 on_event: OnEvent) -> None:
        self.model = model
        self.facts = model.compute.tasks
        self.balancer = balancer
        self.on_event = on_event
        self.releases = ReleaseBook(workspace.run / "releases.json")
        self.checks = ContainerChecks()
        discovery = [i.node for i in model.compute.instances_of("discovery")]
        self.runner = TaskRunner(
            model,
            launcher=ServiceLauncher(ServiceWiring(model, workspace), workspace,
                                     ProcessRecords(workspace.processes_file)),
            balancer=balancer, checks=self.checks, registry=EurekaRegistry(discovery),
            placement=Placement(model.region, self.facts, model.cloud.edge.blue_green,
                                bindable),
            deregistration_delay_s=model.load_balancer.deregistration_delay_s,
            on_event=on_event)
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the container checks and the reconcile loop (idempotent)."""
        if self._loop is not None:
            return
        self.checks.start()
        self._loop = threading.Thread(target=self._run, name="task-runner", daemon=True)
        self._loop.start()

    def _run(self) -> None:
        while not self._stop.wait(self.facts.reconcile_interval_s):
            try:
                self.runner.reconcile()
            except Exception as err:  # never let one bad round stop the scheduler
                self.on_event("task-runner", f"reconcile failed: {type(err).__name__}: {err}")

    def shutdown(self) -> None:
        """Stop every task (the local cloud goes down) and the loop."""
        self._stop.set()
        if self._loop is not None:
            self._loop.join(timeout=5.0)
        self.runner.shutdown()
        self.checks.close()

    def bring_up(self) -> ColourHealth:
        """The end of `come2us up`: with nothing deployed, blue at the checkout's release
        serves; then wait until the serving colour is healthy and routable."""
        self.start()
        if not self.runner.colours():
            release = self.releases.record(checkout_label())
            self.runner.deploy(Colour.BLUE, release)
            self.switch(Colour.BLUE)
        return self.wait_healthy(self.balancer.active_colour(), self.facts.healthy_timeout_s,
                                 routable=True)

    # -- colours --------------------------------------------------------------------------

    def record_release(self, label: str, directory: Path | None,
                       faults: tuple[str, ...]) -> Release:
        return self.releases.record(label, directory, faults)

    def deploy(self, colour: Colour, release: Release) -> None:
        """② Refused (`ContractTooEarly`, a 400) when the release contracts the shared
        schema while the other colour runs a release without the expansion it finishes."""
        others = {f"{c} (release {r.label})": r.directory
                  for c, r in self.runner.colours().items() if c is not colour}
        refuse_early_contract(release.directory, others)
        self.runner.deploy(colour, release)

    def switch(self, colour: Colour) -> None:
        before = self.balancer.active_colour()
        self.balancer.switch(colour)
        self.on_event("alb", f"switch: the listener forwards to {colour} (was {before})")

    def retire(self, colour: Colour, wait: bool = True) -> None:
        """Every task of ``colour`` drains and stops; with ``wait``, return once they have."""
        self.runner.retire(colour)
        if not wait:
            return
        bound = (self.model.load_balancer.deregistration_delay_s + self.facts.discovery_drain_s
                 + 2 * self.facts.stop_timeout_s + RETIRE_MARGIN_S)
        wait_for(lambda: (True if not self.runner.colour_tasks(colour) else None,
                          f"{len(self.runner.colour_tasks(colour))} task(s) of {colour} left"),
                 timeout=bound, what=f"{colour}'s tasks stopped", interval=0.2)

    def wait_healthy(self, colour: Colour, timeout: float, routable: bool = False
                     ) -> ColourHealth:
        """Wait until ``colour`` is healthy (`TaskRunner.colour_health`), or the deploy's
        circuit breaker opens; with ``routable``, one registry fetch more, by which time every
        gateway's copy of the registry lists the tasks too."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.runner.colour_health(colour)
            if health.healthy:
                if routable:
                    time.sleep(self.model.compute.discovery.registry_fetch_s)
                return health
            if health.failed_tasks >= self.facts.circuit_breaker_failures:
                return ColourHealth(False, f"{health.failed_tasks} task(s) of {colour} failed "
                                           f"their health checks (circuit breaker); last seen: "
                                           f"{health.detail}", health.failed_tasks)
            if time.monotonic() >= deadline:
                return ColourHealth(False, f"not healthy within {timeout:g} s: {health.detail}",
                                    health.failed_tasks)
            time.sleep(0.25)

    def replace(self, service: str, colour: Colour | None = None) -> list[str]:
        """Replace every task of ``service`` in ``colour`` (default: the serving colour) and
        wait until the colour is healthy and routable again ("restart the service")."""
        colour = colour or self.balancer.active_colour()
        replaced = self.runner.replace(service, colour, "replaced on request")
        try:
            wait_for(lambda: (True if not any(t.task_id in replaced
                                              and t.state is not TaskState.STOPPED
                                              for t in self.runner.colour_tasks(colour))
                              else None, f"{replaced} still stopping"),
                     timeout=self.facts.healthy_timeout_s, what=f"{replaced} stopped")
        except DeadlineExceeded as err:
            raise RuntimeError(str(err)) from err
        health = self.wait_healthy(colour, self.facts.healthy_timeout_s, routable=True)
        if not health.healthy:
            raise RuntimeError(f"{service} of {colour} did not come back: {health.detail}")
        return replaced

    # -- reporting ------------------------------------------------------------------------

    def deployment(self) -> dict[str, Any]:
        """What blue/green needs: the serving colour and each deployed colour's release."""
        return {"active": str(self.balancer.active_colour()),
                "colours": {str(c): r.label for c, r in self.runner.colours().items()}}

    def status(self) -> dict[str, Any]:
        rows = self.runner.desired()
        active = self.balancer.active_colour()
        serving = [r for r in rows if r["colour"] == active]
        short = [f"{r['service']} {r['healthy']}/{r['desired']}" for r in serving
                 if r["healthy"] < r["desired"]]
        groups = {}
        for colour in Colour:
            group = self.balancer.group_of(self.model.cloud.edge.entry_service, colour)
            try:
                groups[group] = {tid: str(h) for tid, h in self.balancer.health(group).items()}
            except Exception as err:  # the ALB restarting: say so, report the rest
                groups[group] = {"(unavailable)": str(err)}
        return {
            "tasks": self.runner.tasks(),
            "services": rows,
            "listener": {"url": self.model.load_balancer.url, "active": str(active),
                         "target_groups": groups},
            "releases": [r.view() for r in self.releases.all()],
            "platform": {
                "ready": bool(serving) and not short,
                "detail": (f"{active} serves: " + (", ".join(short) if short else
                                                   "every task healthy")) if serving
                else f"{active} serves, but nothing of {active} is deployed",
            },
        }
