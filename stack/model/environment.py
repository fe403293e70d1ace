"""Environments (dev, stage, prod): the few values in which one AWS deployment differs.

An `Environment` is an overlay on the one model: it chooses the VPC range, how many NAT
gateways (§10: one in dev/stage, one per AZ in prod), instance sizes and counts, the DNS name
and the monthly budget. Everything else — services, min/max tasks, ports, security rules,
thresholds, retention — comes from `Platform` and is the same in every environment.
`Sizes()` holds the small sizes; an environment names only what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network

from stack.model.network import Network, VpcLayout
from stack.model.placement import Region


@dataclass(frozen=True)
class Sizes:
    """Instance classes, counts and volumes; the defaults are the small, dev-sized ones."""

    database_class: str = "db.t4g.medium"
    database_storage_gib: int = 20
    read_replicas: int = 1
    session_redis_node: str = "cache.t4g.small"
    cache_redis_node: str = "cache.t4g.micro"
    kafka_broker: str = "kafka.t3.small"
    kafka_brokers_per_zone: int = 1
    kafka_storage_gib: int = 20
    ci_instance: str = "t3.medium"
    ci_root_gib: int = 30  # the OS, and Docker's layers of the images Jenkins builds
    ci_home_gib: int = 50
    bastion_instance: str = "t3.nano"
    bastion_root_gib: int = 8


@dataclass(frozen=True)
class Usage:
    """Assumed monthly usage, for `come2us cost` only: the charges that depend on traffic."""

    nat_processed_gb: float = 50.0
    log_ingested_gb: float = 10.0
    alb_lcu: float = 1.0  # average load-balancer capacity units
    cloudfront_gb: float = 20.0
    image_storage_gb: float = 5.0
    ecr_storage_gb: float = 8.0
    deploy_hours: float = 4.0  # hours per month during which both colours run (§10: 2x)


@dataclass(frozen=True)
class Environment:
    name: str
    subdomain: str | None  # None: the apex domain (production)
    vpc_cidr: IPv4Network
    nat_gateways: int
    monthly_budget_usd: int
    deletion_protection: bool = False
    sizes: Sizes = field(default_factory=Sizes)
    usage: Usage = field(default_factory=Usage)

    @property
    def stack_name(self) -> str:
        return f"come2us-{self.name}"

    def physical(self, name: str) -> str:
        """A model name scoped to this environment: ``come2us-db`` → ``come2us-dev-db``,
        ``session-redis`` → ``come2us-dev-session-redis``."""
        return f"{self.stack_name}-{name.removeprefix('come2us-')}"

    def layout(self, network: Network, region: Region) -> VpcLayout:
        """The model's subnet plan applied to this environment's range and NAT count."""
        subnets = network.subnets(self.vpc_cidr, region.zones)
        return VpcLayout(cidr=self.vpc_cidr, subnets=subnets, nat_gateways=self.nat_gateways)
