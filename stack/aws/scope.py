"""What one rendering is about: the model, the environment overlay, and the rollout step."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from stack.aws.rollout import Rollout
from stack.model import Platform
from stack.model.cloud import CloudLayer
from stack.model.compute import ServiceSpec
from stack.model.edge import Colour
from stack.model.environment import Environment
from stack.model.network import VpcLayout


@dataclass(frozen=True)
class Scope:
    platform: Platform
    env: Environment
    rollout: Rollout
    layout: VpcLayout = field(init=False)

    def __post_init__(self) -> None:
        layout = self.env.layout(self.platform.cloud.network, self.platform.region)
        object.__setattr__(self, "layout", layout)

    @property
    def cloud(self) -> CloudLayer:
        return self.platform.cloud

    def physical(self, name: str) -> str:
        return self.env.physical(name)

    def zone_name(self, label: str) -> str:
        """The AWS name of an AZ (``ap-northeast-2a``) from its model label (``AZ-a``)."""
        return self.platform.region.zone(label).name

    def deployed(self) -> Iterator[tuple[ServiceSpec, Colour]]:
        """Every (service, colour) this rollout step runs, in model then colour order."""
        for colour in self.rollout.colours:
            for spec in self.platform.compute.services:
                yield spec, colour

    @staticmethod
    def service_name(spec: ServiceSpec, colour: Colour) -> str:
        """The ECS service's name, also its Service Connect name: ``user-service-blue``."""
        return f"{spec.name}-{colour}"

    @property
    def tags(self) -> dict[str, str]:
        return {"Project": self.platform.name, "Environment": self.env.name}
