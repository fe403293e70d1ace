"""The AWS-only part of the model: what the local runtime has no use for, defined once.

`CloudLayer` holds the values every environment shares (ports of managed services, engine
versions, health-check timings on AWS, alarm thresholds, the CI host); an `Environment`
(`stack.model.environment`) adds the few values that differ between dev, stage and prod.
The local runtime reads `Platform.region/data/compute` and ignores this layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.model.cicd import JenkinsHost
from stack.model.compute import HealthCheck
from stack.model.data import Bucket
from stack.model.edge import Edge
from stack.model.network import Network
from stack.model.observability import Observability
from stack.model.security import SecurityPolicy


@dataclass(frozen=True)
class ManagedStores:
    """What the managed services need beyond the data layer's description (`DataLayer`)."""

    postgres_engine_version: str
    postgres_backup_days: int  # §11: automatic snapshots
    redis_engine_version: str
    kafka_version: str
    kafka_tls_port: int  # MSK's TLS listener; locally the broker speaks plaintext
    kafka_monitoring: str  # the level at which MSK publishes consumer-lag metrics
    ecr_keep_images: int  # each repository keeps this many most recent images
    deploy_records: Bucket  # templates and deploy records, the basis of a restore (§11)


@dataclass(frozen=True)
class TaskRuntime:
    """How ECS runs a service on AWS; the local runtime scales these timings down."""

    health: HealthCheck  # the path is each service's; the timings are these
    scale_out_cooldown_s: int
    scale_in_cooldown_s: int
    service_namespace: str  # ECS Service Connect namespace: discovery-blue, config-green, …
    image_bucket_users: tuple[str, ...]  # the services whose task role may use the image bucket


@dataclass(frozen=True)
class CloudLayer:
    network: Network
    security: SecurityPolicy
    edge: Edge
    stores: ManagedStores
    tasks: TaskRuntime
    observability: Observability
    ci: JenkinsHost
