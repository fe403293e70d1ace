"""The local ALB as a component of the local cloud: HAProxy, run and driven from the model.

HAProxy runs in the foreground as one process (``haproxy -db -f <run>/alb.cfg``), logging its
JSON access log to stdout, i.e. the component's log file. Everything that changes at run time —
targets, the forward action — goes through the admin socket (`RuntimeLoadBalancer`); the
component implements `LoadBalancer` by handing each call to it, so the task runner and
blue/green talk to "the ALB" and never to HAProxy.

Example::

    alb = AlbComponent(model.load_balancer, Workspace.default(), ProcessBackend())
    alb.start()
    alb.wait_ready()          # the listener answers; remembered targets registered again
    alb.register(Target("tg-gateway-blue", "gateway-blue-1", "127.0.1.101", 8080))
    alb.switch(Colour.GREEN)
    alb.stop()                # soft stop: requests in flight finish
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, overload

from stack.local.alb.access_log import AccessLogEntry, read_access_log
from stack.local.alb.balancer import ListenerStore, RuntimeLoadBalancer
from stack.local.alb.config import AlbFiles, render_config
from stack.local.alb.runtime_api import RuntimeApi, RuntimeApiError
from stack.local.alb.targets import Target, TargetHealth
from stack.local.backend import Backend, ProcessBackend
from stack.local.component import Component, ComponentError, Health, ProcessSpec
from stack.model import Platform
from stack.model.edge import Colour
from stack.model.load_balancer import LocalLoadBalancer

if TYPE_CHECKING:
    from stack.local.workspace import Workspace

HAPROXY_FALLBACK = "/usr/sbin/haproxy"  # Debian's path; /usr/sbin is not on every user's PATH
STATE_FILE = "listener.json"


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or (HAPROXY_FALLBACK if Path(HAPROXY_FALLBACK).exists()
                                        else None)
    if found is None:
        raise ComponentError("HAProxy (the local ALB) is not installed: run `make setup`, or "
                             "`apt-get install -y haproxy`")
    return found


class AlbComponent(Component):
    """The ALB node: HAProxy with the model's listener and target groups."""

    kind = "load balancer"

    def __init__(self, lb: LocalLoadBalancer, workspace: Workspace, backend: Backend) -> None:
        super().__init__(lb.node, lb.timeouts, workspace, backend)
        self.lb = lb
        self.files = AlbFiles.in_run_dir(workspace.run, lb.name)
        self.api = RuntimeApi(self.files.admin_socket)
        self.balancer = RuntimeLoadBalancer(lb, self.api,
                                            ListenerStore(self.data_dir / STATE_FILE),
                                            self.files.listener_map)

    # -- Component ------------------------------------------------------------------------

    def process(self) -> ProcessSpec:
        # SIGUSR1 is HAProxy's soft stop: stop listening, let requests in flight finish
        # (bounded by hard-stop-after in the configuration).
        return ProcessSpec(argv=(haproxy_binary(), "-db", "-f", str(self.files.config)),
                           stop_signal=signal.SIGUSR1)

    def prepare(self) -> None:
        """Render haproxy.cfg and the listener map, and have HAProxy check them first, so a
        bad configuration fails here with HAProxy's own words."""
        self.files.config.parent.mkdir(parents=True, exist_ok=True)
        self.balancer.prepare_start()
        self.files.config.write_text(render_config(self.lb, self.files))
        check = subprocess.run([haproxy_binary(), "-c", "-q", "-f", str(self.files.config)],
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise ComponentError(f"HAProxy refuses {self.files.config}:\n"
                                 f"{(check.stdout + check.stderr).strip()}")

    def probe(self) -> Health:
        try:
            info = self.api.info()
            colour = self.balancer.active_colour()
            counts = {group: self.balancer.health(group) for group in self.lb.target_groups}
        except (RuntimeApiError, ValueError) as err:
            return Health(False, str(err))
        groups = ", ".join(
            f"{group} {sum(h is TargetHealth.HEALTHY for h in health.values())}/{len(health)}"
            " healthy" for group, health in counts.items())
        weights = self.balancer.weights()
        split = "" if 0 in weights.values() else " (weights " + "/".join(
            f"{c.value} {w}" for c, w in weights.items()) + ")"
        return Health(True, f"HAProxy {info.get('Version', '?')}, forwarding to "
                            f"{colour.value}{split}; {groups}",
                      role=f"load balancer ({colour.value})")

    def after_ready(self) -> None:
        """Targets registered before a restart come back (the task runner may register them
        again too: registering is idempotent)."""
        self.balancer.restore()

    @property
    def url(self) -> str:
        return self.lb.url

    def access_log(self) -> list[AccessLogEntry]:
        """Every request the listener has logged, oldest first."""
        return read_access_log(self.log_file)

    # -- LoadBalancer ---------------------------------------------------------------------

    def register(self, target: Target) -> None:
        self.balancer.register(target)

    def deregister(self, target: Target) -> None:
        self.balancer.deregister(target)

    @overload
    def health(self) -> Health: ...

    @overload
    def health(self, group: str) -> dict[str, TargetHealth]: ...

    def health(self, group: str | None = None) -> Health | dict[str, TargetHealth]:
        """Without a group, the lifecycle's question (is HAProxy up?); with one,
        DescribeTargetHealth for that target group (`LoadBalancer.health`)."""
        if group is None:
            return super().health()
        return self.balancer.health(group)

    def active_colour(self) -> Colour:
        return self.balancer.active_colour()

    def switch(self, colour: Colour) -> None:
        self.balancer.switch(colour)

    def set_weights(self, weights: Mapping[Colour, int]) -> None:
        self.balancer.set_weights(weights)

    def weights(self) -> dict[Colour, int]:
        return self.balancer.weights()

    def group_of(self, service: str, colour: Colour) -> str:
        return self.balancer.group_of(service, colour)

    def registered(self) -> list[Target]:
        return self.balancer.registered()


def alb_components(model: Platform, workspace: Workspace, backend: Backend) -> list[Component]:
    """The ALB runs as a local process whatever runs the backing services (HAProxy is a
    Debian package here, not part of docker-compose.localstack.yml)."""
    processes = backend if backend.runs_local_processes else ProcessBackend()
    return [AlbComponent(model.load_balancer, workspace, processes)]
