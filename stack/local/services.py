"""The platform's programs as components of the local cloud: discovery, config, gateway, ….

Each instance of the model's compute placement is a `python -m services.<name>` process bound
to its node's address. The runtime hands it what ECS would: where discovery and the config
server are, the platform's endpoints (as environment variables and, for Spring-style
configuration, as a generated property source served by the config server), and its secrets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import yaml

from services.common.task import TASK_METADATA_ENV
from services.common.tokens import ISSUER_DEFAULT
from services.gateway.native import ENV as NATIVE_ENV
from services.gateway.native import NATIVE_BUILD, is_current
from stack.come2us import PAYMENT_PROVIDER
from stack.local.backend import Backend, ProcessBackend
from stack.local.clients import registered_instances
from stack.local.component import Component, ComponentError, Health, ProcessSpec
from stack.local.endpoints import endpoints
from stack.local.workspace import PROJECT_ROOT, Workspace
from stack.model import Node, Platform, Timeouts
from stack.model.compute import HealthCheck, Instance, Scaling, ScalingMode, ServiceSpec
from stack.waiting import wait_for

CONFIG_REPO_ENV = "COME2US_CONFIG_REPO"  # a git repository to serve instead of this project
CONFIG_LABEL_ENV = "COME2US_CONFIG_LABEL"
CONFIG_SEARCH_PATH = "config-repo"
CORE = ("discovery", "config", "gateway")  # the Spring Cloud core: no database of their own
JWT_KEY = "jwt"
JWT_ISSUER = ISSUER_DEFAULT
PROFILE = "local"
PROBE_TIMEOUT_S = 0.5
# Not a platform program: it gets no platform wiring, no secrets, and does not wait for Kafka.
PAYMENT_PROVIDER_NAME = PAYMENT_PROVIDER.name


def config_repository() -> tuple[str, str]:
    """(repository, label) the config server serves: the project's checked-out branch.

    As with Spring Cloud Config, only committed files are served; COME2US_CONFIG_REPO and
    COME2US_CONFIG_LABEL point the server elsewhere (the test session uses a scratch copy).
    """
    repo = os.environ.get(CONFIG_REPO_ENV, str(PROJECT_ROOT))
    label = os.environ.get(CONFIG_LABEL_ENV)
    if label is None:
        branch = subprocess.run(["git", "-C", repo, "rev-parse", "--abbrev-ref", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
        label = branch if branch and branch != "HEAD" else "main"
    return repo, label


class ServiceWiring:
    """Where every instance finds the others: the local form of service discovery bootstrap."""

    def __init__(self, model: Platform, workspace: Workspace) -> None:
        self.model = model
        self.workspace = workspace

    def urls(self, service: str, suffix: str = "") -> list[str]:
        return [f"http://{i.node.address}{suffix}"
                for i in self.model.compute.instances_of(service)]

    def discovery_args(self) -> list[str]:
        return [arg for url in self.urls("discovery", "/eureka")
                for arg in ("--discovery-url", url)]

    def config_url(self) -> str:
        urls = self.urls("config")
        if not urls:
            raise ComponentError("the model places no config server instance")
        return urls[0]

    def platform_file(self) -> Path:
        """Write the platform property source the config server serves to every application."""
        data = self.model.data
        timing = self.model.compute.discovery
        _, public_key = self.workspace.keypair(JWT_KEY)
        properties = {
            "come2us": {
                "region": self.model.region.name,
                "aws-endpoint": self.model.aws.url,
                "image-bucket": data.image_bucket.name,
                "session-redis": {
                    "master": data.session_redis.master_name,
                    "sentinels": [n.address for n in data.session_redis.sentinels],
                },
                "cache-redis": {"url": data.cache_redis.url},
                "kafka": {"bootstrap-servers": data.kafka.bootstrap_servers},
                "jwt": {"issuer": JWT_ISSUER},
                **self._payment_provider(),
            },
            "eureka": {
                "instance": {
                    "lease-renewal-interval-in-seconds": timing.renewal_interval_s,
                    "lease-expiration-duration-in-seconds": timing.lease_s,
                },
                "client": {"registry-fetch-interval-seconds": timing.registry_fetch_s},
            },
            "gateway": {"jwt": {"issuer": JWT_ISSUER, "public-key": public_key}},
        }
        path = self.workspace.run / "platform.yml"
        path.write_text(yaml.safe_dump(properties, sort_keys=True))
        return path

    def _payment_provider(self) -> dict[str, dict[str, str]]:
        """The PG's URL: locally the simulator; a service's own YAML overrides it on AWS."""
        urls = self.urls(PAYMENT_PROVIDER_NAME)
        return {"payment-provider": {"url": urls[0]}} if urls else {}

    def environment(self) -> dict[str, str]:
        """What every service process gets in its environment (ECS: environment + secrets)."""
        private_key, public_key = self.workspace.keypair(JWT_KEY)
        env = {e.variable: e.value for e in endpoints(self.model, self.workspace, reveal=True)}
        env.update(
            COME2US_CONFIG_URL=self.config_url() if self.model.compute.instances_of("config")
            else "",
            COME2US_DISCOVERY_URLS=",".join(self.urls("discovery", "/eureka")),
            COME2US_PROFILE=PROFILE,
            COME2US_JWT_ISSUER=JWT_ISSUER,
            COME2US_JWT_PRIVATE_KEY=private_key,
            COME2US_JWT_PUBLIC_KEY=public_key,
            PYTHONUNBUFFERED="1",
        )
        if is_current(NATIVE_BUILD):  # the gateway's compiled forwarding path, when built
            env[NATIVE_ENV] = str(NATIVE_BUILD)
        return env


def _discovery_args(instance: Instance, wiring: ServiceWiring) -> list[str]:
    own = f"http://{instance.node.address}/eureka"
    timing = wiring.model.compute.discovery
    peers = [arg for url in wiring.urls("discovery", "/eureka") if url != own
             for arg in ("--peer", url)]
    return [*peers, "--lease-duration-s", str(timing.lease_s),
            "--renewal-interval-s", str(timing.renewal_interval_s),
            "--eviction-interval-s", str(timing.eviction_interval_s)]


def _config_args(instance: Instance, wiring: ServiceWiring) -> list[str]:
    repo, label = config_repository()
    return ["--repo", repo, "--search-path", CONFIG_SEARCH_PATH, "--default-label", label,
            "--kafka", wiring.model.data.kafka.bootstrap_servers,
            "--platform-file", str(wiring.platform_file())]


def _gateway_args(instance: Instance, wiring: ServiceWiring) -> list[str]:
    group = wiring.model.data.session_redis
    return ["--config-url", wiring.config_url(), *wiring.discovery_args(),
            "--profile", PROFILE,
            "--kafka-bootstrap", wiring.model.data.kafka.bootstrap_servers,
            "--sentinels", ",".join(n.address for n in group.sentinels),
            "--session-master", group.master_name]


def _service_args(instance: Instance, wiring: ServiceWiring) -> list[str]:
    return ["--config-url", wiring.config_url(), *wiring.discovery_args(), "--profile", PROFILE]


def _payment_provider_args(instance: Instance, wiring: ServiceWiring) -> list[str]:
    return []  # an external system: it knows nothing of discovery or configuration


def _echo_args(instance: Instance, wiring: ServiceWiring) -> list[str]:
    timing = wiring.model.compute.discovery
    return [*wiring.discovery_args(), "--meta", f"zone={instance.node.zone.label}",
            "--lease-duration-s", str(timing.lease_s),
            "--renewal-interval-s", str(timing.renewal_interval_s)]


ARGUMENTS: dict[str, Callable[[Instance, ServiceWiring], list[str]]] = {
    "discovery": _discovery_args,
    "config": _config_args,
    "gateway": _gateway_args,
    "echo-service": _echo_args,
    PAYMENT_PROVIDER_NAME: _payment_provider_args,
}

def service_command(instance: Instance, wiring: ServiceWiring) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one instance of a program (a fixed instance or a
    task: the runtime hands both the same wiring)."""
    spec = instance.service
    build = ARGUMENTS.get(spec.name, _service_args)
    argv = [sys.executable, "-m", spec.module, "--host", str(instance.node.host),
            "--port", str(instance.node.port), *build(instance, wiring)]
    env = (wiring.environment() if spec.name != PAYMENT_PROVIDER_NAME
           else {"PYTHONUNBUFFERED": "1"})
    return argv, env


# A stand-in for a business service whose own behaviour is not under test (services/echo):
# features start instances of it on demand, in the task pool of an AZ's addresses (on a port
# no task uses).
ECHO = ServiceSpec("echo-service", "services.echo", 9100, 256, 512,
                   HealthCheck(path="/actuator/health", interval_s=1.0, timeout_s=0.5,
                               healthy_threshold=2, unhealthy_threshold=2, grace_period_s=10.0),
                   Scaling(1, 4, ScalingMode.MANUAL, target_cpu_percent=None))


def on_demand_instance(model: Platform, spec: ServiceSpec, zone_label: str,
                       index: int) -> Instance:
    """An instance of ``spec`` outside the model's fixed placement (e.g. for a feature)."""
    zone = model.region.zone(zone_label)
    host = model.compute.tasks.pool(zone_label).hosts[index]
    name = f"{spec.name}-{zone.label.removeprefix('AZ-').lower()}{index}"
    return Instance(spec, Node(name, zone, zone.address(host), spec.port, spec.name))


class ServiceProcess(Component):
    """One instance of a platform program, as a Python process on its node."""

    kind = "service"

    @property
    def instance_id(self) -> str:
        """The id it registers under in discovery (``app:host:port``)."""
        return f"{self.instance.service.name}:{self.node.host}:{self.node.port}"

    def __init__(self, instance: Instance, wiring: ServiceWiring, workspace: Workspace,
                 backend: Backend, *, await_routable: bool = True,
                 env: Mapping[str, str] | None = None) -> None:
        self.instance = instance
        self.wiring = wiring
        self.await_routable = await_routable
        self.extra_env = dict(env or {})
        super().__init__(instance.node, _timeouts(instance), workspace, backend)

    @property
    def depends_on(self) -> tuple[str, ...]:
        model = self.wiring.model
        needed = [i.node.name for name in self.instance.service.depends_on
                  for i in model.compute.instances_of(name)]
        # Programs reach the data layer through the addresses the config server serves; each
        # waits for the stores it uses at start (the core needs only Kafka for its bus).
        name = self.instance.service.name
        data = model.data
        if name not in ("discovery", PAYMENT_PROVIDER_NAME):
            needed.append(data.kafka.broker.name)
        if name == "gateway" or name not in (*CORE, PAYMENT_PROVIDER_NAME):
            needed += [n.name for n in data.session_redis.sentinels]
        if name not in CORE and name != PAYMENT_PROVIDER_NAME:
            needed += [n.name for n in (*data.postgres.nodes, *data.cache_redis.nodes)]
        return tuple(needed)

    def process(self) -> ProcessSpec:
        argv, env = service_command(self.instance, self.wiring)
        return ProcessSpec(tuple(argv), env={**env, **self.extra_env}, cwd=PROJECT_ROOT)

    def probe(self) -> Health:
        url = f"http://{self.node.address}{self.instance.service.health.path}"
        try:
            response = httpx.get(url, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as err:
            return Health(False, f"{url}: {type(err).__name__}")
        try:
            status = response.json().get("status", "?")
        except ValueError:
            status = response.text[:80]
        return Health(response.status_code == 200, f"health {response.status_code} {status}",
                      role=self.instance.service.name)


    @property
    def registers(self) -> bool:
        """Whether the program registers with discovery (the core's servers and the external
        payment simulator do not)."""
        return self.instance.service.name not in ("discovery", "config", PAYMENT_PROVIDER_NAME)

    def after_ready(self) -> None:
        """Ready means routable: listed UP by every discovery server that answers, and one
        registry fetch interval later, by which time every caller's copy of the registry
        (the gateway's included) has it."""
        if not (self.registers and self.await_routable):
            return
        model = self.wiring.model
        servers = [i.node for i in model.compute.instances_of("discovery")]
        app = self.instance.service.name

        def listed() -> tuple[bool | None, str]:
            answering, missing = 0, []
            for server in servers:
                try:
                    found = registered_instances(server, app)
                except httpx.HTTPError:
                    continue
                answering += 1
                if found.get(self.instance_id) != "UP":
                    missing.append(server.name)
            done = answering > 0 and not missing
            return (True if done else None), f"not listed UP by {missing or 'any server'}"

        wait_for(listed, timeout=self.timeouts.ready_s, what=f"{self.instance_id} registered")
        time.sleep(model.compute.discovery.registry_fetch_s)


def _timeouts(instance: Instance) -> Timeouts:
    grace = instance.service.health.grace_period_s
    return Timeouts(ready_s=max(30.0, grace * 2), stop_s=10.0)


def service_components(model: Platform, workspace: Workspace,
                       backend: Backend) -> list[Component]:
    """The platform's programs run as local processes whatever runs the backing services:
    the Docker path containerises only what docker-compose.localstack.yml describes."""
    wiring = ServiceWiring(model, workspace)
    processes = backend if backend.runs_local_processes else ProcessBackend()
    return [ServiceProcess(instance, wiring, workspace, processes)
            for instance in model.compute.instances]



class OnDemandInstances:
    """Instances of one service started outside the model's placement, stopped together.

    Each gets the next free host number of its AZ's task pool and registers with discovery
    like any instance — with ``colour`` in its metadata when given, so that the gateways of
    that colour route to it (the runtime's task metadata, `services.common.runtime`);
    `stop_all` (or `kill` on one) ends them.
    """

    def __init__(self, spec: ServiceSpec, model: Platform, workspace: Workspace,
                 colour: str | None = None) -> None:
        self.spec = spec
        self.wiring = ServiceWiring(model, workspace)
        self.workspace = workspace
        self.env = {TASK_METADATA_ENV["colour"]: colour} if colour else {}
        self.started: list[ServiceProcess] = []

    def start(self, zone_label: str, *, routable: bool = True) -> ServiceProcess:
        """Start one in ``zone_label``; with ``routable``, return once callers can reach it
        (see `ServiceProcess.after_ready`), else as soon as it answers its health check."""
        index = sum(1 for p in self.started if p.node.zone.label == zone_label)
        instance = on_demand_instance(self.wiring.model, self.spec, zone_label, index)
        process = ServiceProcess(instance, self.wiring, self.workspace, ProcessBackend(),
                                 await_routable=routable, env=self.env)
        self.started.append(process)
        process.start()
        process.wait_ready()
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
        self.started.clear()
