"""The root of the stack model: one object that describes the whole COME2US deployment.

`region`, `aws`, `data`, `compute` and `load_balancer` are what the local runtime runs; `cloud`
is what only the AWS rendering needs (network, security groups, edge, alarms, CI host). An
environment (`stack.model.environment.Environment`) chooses the sizes and counts on top of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from stack.model.cloud import CloudLayer
from stack.model.compute import Compute
from stack.model.data import AwsEndpoint, DataLayer
from stack.model.load_balancer import LocalLoadBalancer
from stack.model.placement import Node, Region


@dataclass(frozen=True)
class Platform:
    name: str
    region: Region
    aws: AwsEndpoint
    data: DataLayer
    compute: Compute
    cloud: CloudLayer
    load_balancer: LocalLoadBalancer  # the local ALB (HAProxy); AWS renders `cloud.edge`

    def backing_nodes(self) -> tuple[Node, ...]:
        """The AWS endpoint and the data layer: what runs before any program of the platform."""
        data = self.data
        return (
            *self.aws.nodes,
            *data.postgres.nodes,
            *data.session_redis.nodes,
            *data.cache_redis.nodes,
            *data.kafka.nodes,
        )

    def nodes(self) -> tuple[Node, ...]:
        """Every server process of the model: backing services, the ALB, then the platform's
        programs."""
        return (*self.backing_nodes(), self.load_balancer.node,
                *(i.node for i in self.compute.instances))

    def validate(self) -> None:
        """Refuse a model in which two processes would fight over a name or a socket."""
        nodes = self.nodes()
        problems: list[str] = []
        for name, count in Counter(n.name for n in nodes).items():
            if count > 1:
                problems.append(f"node name {name!r} is used {count} times")
        sockets = Counter((n.host, n.port) for n in nodes)
        kafka = self.data.kafka
        sockets[(kafka.broker.host, kafka.controller_port)] += 1
        for (host, port), count in sockets.items():
            if count > 1:
                problems.append(f"{host}:{port} is given to {count} processes")
        for node in nodes:
            if node.host not in node.zone.loopback:
                problems.append(f"{node.name} at {node.host} is outside {node.zone.label}")
        problems.extend(self._cloud_problems())
        problems.extend(self._task_problems())
        if problems:
            raise ValueError("invalid stack model: " + "; ".join(problems))

    def _task_problems(self) -> list[str]:
        """Tasks run services of the model, in AZs of the model, on hosts nobody else has."""
        tasks = self.compute.tasks
        problems: list[str] = []
        services = {spec.name for spec in self.compute.services}
        for name in tasks.colour_routed:
            if name not in services:
                problems.append(f"the colour-routed service {name!r} is not a service")
        if self.cloud.edge.entry_service not in tasks.colour_routed:
            problems.append("the ALB's entry service does not run as coloured tasks")
        zones = {zone.label: zone for zone in self.region.zones}
        for pool in tasks.pools:
            zone = zones.get(pool.zone_label)
            if zone is None:
                problems.append(f"a task pool is placed in {pool.zone_label!r}, not an AZ")
                continue
            for host in (pool.hosts[0], pool.hosts[-1]):
                try:
                    zone.address(host)
                except ValueError as err:
                    problems.append(f"task pool of {pool.zone_label}: {err}")
            base = int(zone.loopback.network_address)
            taken = [n.name for n in self.nodes()
                     if n.zone.label == pool.zone_label and int(n.host) - base in pool.hosts]
            if taken:
                problems.append(f"the task pool of {pool.zone_label} holds the hosts of {taken}")
        for colour_zone in (self.cloud.edge.blue_green.blue_zone,
                            self.cloud.edge.blue_green.green_zone):
            if colour_zone in zones and colour_zone not in {p.zone_label for p in tasks.pools}:
                problems.append(f"{colour_zone} runs a colour but has no task pool")
        return problems

    def _cloud_problems(self) -> list[str]:
        """The AWS layer names services and AZs of the model: they must exist."""
        cloud = self.cloud
        problems: list[str] = []
        services = {spec.name for spec in self.compute.services}
        if cloud.edge.entry_service not in services:
            problems.append(f"the ALB forwards to {cloud.edge.entry_service!r}, "
                            f"which is not a service")
        if self.load_balancer.entry_service != cloud.edge.entry_service:
            problems.append(f"the local ALB forwards to {self.load_balancer.entry_service!r}, "
                            f"the AWS one to {cloud.edge.entry_service!r}")
        zones = {zone.label for zone in self.region.zones}
        blue_green = cloud.edge.blue_green
        placed = {
            "blue": blue_green.blue_zone,
            "green": blue_green.green_zone,
            "the Jenkins host": cloud.ci.zone_label,
            "the bastion": cloud.network.bastion.zone_label,
        }
        for what, label in placed.items():
            if label not in zones:
                problems.append(f"{what} is placed in {label!r}, which is not an AZ")
        if blue_green.blue_zone == blue_green.green_zone:
            problems.append("blue and green share an AZ: a deploy could not switch AZs (§7-1)")
        return problems
