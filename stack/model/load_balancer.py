"""The ALB of the local cloud: one listener, a target group per colour of the entry service.

On AWS the ALB (`stack.model.edge.Edge`) answers 80/443 and forwards to the gateway of the
active colour (§4, §7-1). Locally HAProxy plays it (`stack.local.alb`), with the same shape —
a listener, the two target groups `tg-gateway-blue` and `tg-gateway-green`, health checks,
a deregistration delay, weights and the preview header — and its clocks scaled down like the
rest of the local cloud. It lives in the regional range because an ALB spans the AZs: losing
an AZ leaves the way in standing.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.model.compute import HealthCheck
from stack.model.data import Timeouts
from stack.model.edge import Colour
from stack.model.placement import Node


def target_group_name(service: str, colour: Colour) -> str:
    """``tg-gateway-blue``: the target group of one colour of a service's tasks."""
    return f"tg-{service}-{colour.value}"


@dataclass(frozen=True)
class LocalLoadBalancer:
    node: Node  # the listener's address (AWS: 80 and 443; below 1024 needs root locally)
    entry_service: str  # whose tasks are the targets (Edge.entry_service, the gateway)
    health: HealthCheck  # the target groups' health check: the entry service's local one
    deregistration_delay_s: float  # AWS 30 s in Edge; scaled down so a drain is seen quickly
    idle_timeout_s: float  # ALB's idle timeout: an idle client or target connection is closed
    connect_timeout_s: float  # how long a connection to a target may take to open
    preview_header: str  # Edge.preview_header: names the colour a request wants
    timeouts: Timeouts

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def url(self) -> str:
        return f"http://{self.node.address}"

    def group_of(self, service: str, colour: Colour) -> str:
        """``tg-gateway-blue``; only the entry service has target groups."""
        if service != self.entry_service:
            raise KeyError(f"no target group for {service!r}: the ALB forwards only to "
                           f"{self.entry_service!r}")
        return target_group_name(service, colour)

    @property
    def target_groups(self) -> tuple[str, ...]:
        """One target group per colour, blue first."""
        return tuple(self.group_of(self.entry_service, colour) for colour in Colour)

    def colour_of(self, group: str) -> Colour:
        for colour in Colour:
            if self.group_of(self.entry_service, colour) == group:
                return colour
        raise KeyError(f"no target group {group!r}; known: {list(self.target_groups)}")
