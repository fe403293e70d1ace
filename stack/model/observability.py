"""Watching the platform (seed §8, §10, §11): logs, alarms, the Discord notifier, the budget.

Alarms are descriptions: what to measure, on which kind of thing, and from which value it is a
problem. The AWS target renders one CloudWatch alarm per description and per thing of that
kind (one per ECS service, one for the ALB, …), all sending to one SNS topic whose subscriber
is the notifier Lambda (`services/notifier/handler.py`), which posts to a Discord webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Subject(StrEnum):
    """What kind of thing an alarm watches; each kind has its CloudWatch dimensions."""

    SERVICE = "service"  # every ECS service: ClusterName, ServiceName
    DATABASE = "database"  # the RDS writer: DBInstanceIdentifier
    SESSION_REDIS = "session-redis"  # the session group's primary node: CacheClusterId
    CACHE_REDIS = "cache-redis"  # the cache node: CacheClusterId


@dataclass(frozen=True)
class Alarm:
    name: str
    subject: Subject
    namespace: str
    metric: str
    threshold: float
    why: str
    statistic: str = "Average"
    period_s: int = 60
    evaluation_periods: int = 5


@dataclass(frozen=True)
class ErrorRate:
    """The ALB's 5xx responses (its own and its targets') as a percentage of its requests."""

    name: str
    threshold_percent: float
    period_s: int
    evaluation_periods: int
    why: str


@dataclass(frozen=True)
class LagWatch:
    """A consumer group whose lag on a topic must stay bounded (MSK ``MaxOffsetLag``).
    The names are the ones the order events flow uses (issue 4's order and payment services)."""

    consumer_group: str
    topic: str
    max_offset_lag: int
    evaluation_periods: int


@dataclass(frozen=True)
class Notifier:
    """The Lambda that turns SNS alarm and budget messages into Discord posts.

    Its code is ``services/notifier/handler.py``, shipped inline in the template (so it must
    stay under CloudFormation's 4096-character ZipFile limit and use only the standard library
    and boto3). The webhook URL is in a Secrets Manager secret that an operator creates once;
    the template names the secret and never holds the URL.
    """

    source: str  # path from the repository root
    entry_point: str  # function name inside the handler module
    runtime: str
    memory_mib: int
    timeout_s: int
    reserved_concurrency: int
    discord_webhook: str  # the Secrets Manager name (under come2us/<env>/) of the URL


@dataclass(frozen=True)
class BudgetAlerts:
    """When the monthly budget notifies: at an actual and at a forecast share of the limit."""

    actual_percent: float
    forecast_percent: float


@dataclass(frozen=True)
class Observability:
    log_retention_days: int  # §10: logs are kept 30 days, access logs included
    alarms: tuple[Alarm, ...]
    error_rate: ErrorRate
    lag_watches: tuple[LagWatch, ...]
    notifier: Notifier
    budget: BudgetAlerts
