"""The root of the stack model: one object that describes the whole COME2US deployment."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from stack.model.compute import Compute
from stack.model.data import AwsEndpoint, DataLayer
from stack.model.placement import Node, Region


@dataclass(frozen=True)
class Platform:
    name: str
    region: Region
    aws: AwsEndpoint
    data: DataLayer
    compute: Compute

    def nodes(self) -> tuple[Node, ...]:
        """Every server process of the model, in no particular order."""
        data = self.data
        return (
            *self.aws.nodes,
            *data.postgres.nodes,
            *data.session_redis.nodes,
            *data.cache_redis.nodes,
            *data.kafka.nodes,
            *(instance.node for instance in self.compute.instances),
        )

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
        if problems:
            raise ValueError("invalid stack model: " + "; ".join(problems))
