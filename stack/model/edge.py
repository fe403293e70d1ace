"""The way in (seed §3, §4, §6, §7-1): DNS name, certificate, ALB listeners, blue and green.

Client → Route53 → ALB → gateway. The ALB answers HTTPS with an ACM certificate and turns
HTTP into a redirect to HTTPS; its HTTPS listener forwards to the target group of the active
colour. Blue lives in AZ-a and green in AZ-b (§7-1). The GitHub webhook reaches Jenkins
through the same HTTPS listener, on one host and path only (§6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Colour(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Colour:
        return Colour.GREEN if self is Colour.BLUE else Colour.BLUE


@dataclass(frozen=True)
class BlueGreen:
    """Which AZ each colour's tasks run in: the seed switches deployments between AZs."""

    blue_zone: str
    green_zone: str

    def zone_of(self, colour: Colour) -> str:
        return self.blue_zone if colour is Colour.BLUE else self.green_zone


@dataclass(frozen=True)
class WebhookRoute:
    """The one door to Jenkins: ``https://<host_label>.<domain><path>`` on the ALB."""

    host_label: str
    path: str
    priority: int


@dataclass(frozen=True)
class Edge:
    apex_domain: str
    entry_service: str  # the colour-routed service the listener forwards to (§4: the gateway)
    https_port: int
    http_port: int
    ssl_policy: str
    deregistration_delay_s: int
    idle_timeout_s: int
    blue_green: BlueGreen
    webhook: WebhookRoute
    # A request carrying this header with a colour goes to that colour's targets: the new
    # colour can be tried through the real listener before the switch (§7-1 ③).
    preview_header: str
    preview_priority: int  # blue's rule; green's is the next one

    def domain(self, subdomain: str | None) -> str:
        """``dev.<apex>`` for an environment with a subdomain, the apex for production."""
        return f"{subdomain}.{self.apex_domain}" if subdomain else self.apex_domain

    def webhook_host(self, subdomain: str | None) -> str:
        return f"{self.webhook.host_label}.{self.domain(subdomain)}"
