"""The COME2US stack, defined once (seed §3-§5).

Host numbers inside each zone's range are the "subnet plan" of the local cloud; the port of a
node is the port its AWS counterpart uses, so `psql -h 127.0.1.11 -p 5432` reads like RDS.
"""

from __future__ import annotations

from functools import cache

from stack.model import (
    AwsEndpoint,
    Bucket,
    DataLayer,
    KafkaCluster,
    LifecycleRule,
    LockTable,
    Node,
    Platform,
    PostgresCluster,
    RedisCache,
    RedisSessionGroup,
    Timeouts,
)
from stack.model.compute import (
    Compute,
    HealthCheck,
    Scaling,
    ScalingMode,
    ServiceSpec,
)
from stack.model.placement import seoul

# Host numbers inside each zone's /24: one per process, the same number in every AZ for the
# same role so that an address tells what runs there.
AWS_ENDPOINT_HOST = 10
POSTGRES_HOST = 11
SESSION_REDIS_HOST = 21
SENTINEL_HOST = 22
CACHE_REDIS_HOST = 31
KAFKA_HOST = 41


# ALB health checks scaled down for the local runtime (AWS defaults: 30 s, 5 s, 5, 2, grace 60 s+).
LOCAL_HEALTH = HealthCheck(path="/actuator/health", interval_s=1.0, timeout_s=0.5,
                           healthy_threshold=2, unhealthy_threshold=2, grace_period_s=15.0)


def services() -> tuple[ServiceSpec, ...]:
    """The programs of §2/§4 with the seed's min/max tasks (§7-2)."""
    fixed, auto = ScalingMode.FIXED_MINIMUM, ScalingMode.AUTO
    core = ("discovery", "config")
    return (
        ServiceSpec("discovery", "services.discovery", 8761, 256, 512, LOCAL_HEALTH,
                    Scaling(1, 2, fixed)),
        ServiceSpec("config", "services.config", 8888, 256, 512, LOCAL_HEALTH,
                    Scaling(1, 2, fixed), depends_on=("discovery",)),
        ServiceSpec("gateway", "services.gateway", 8080, 512, 1024, LOCAL_HEALTH,
                    Scaling(1, 2, fixed), depends_on=core),
        ServiceSpec("user-service", "services.user", 8081, 256, 512, LOCAL_HEALTH,
                    Scaling(1, 4, auto), depends_on=core),
        ServiceSpec("product-service", "services.product", 8082, 512, 1024, LOCAL_HEALTH,
                    Scaling(1, 6, auto), depends_on=core),
        ServiceSpec("order-service", "services.order", 8083, 256, 512, LOCAL_HEALTH,
                    Scaling(1, 4, auto), depends_on=core),
        ServiceSpec("payment-service", "services.payment", 8084, 256, 512, LOCAL_HEALTH,
                    Scaling(1, 3, ScalingMode.LIMITED), depends_on=core),
        ServiceSpec("ai-service", "services.ai", 8085, 1024, 2048, LOCAL_HEALTH,
                    Scaling(1, 2, ScalingMode.MANUAL, target_cpu_percent=None),
                    depends_on=core),
    )


@cache
def come2us() -> Platform:
    region = seoul()
    az_a, az_b = region.zones
    regional = region.regional

    postgres = PostgresCluster(
        name="come2us-db",
        writer=Node("rds-writer", az_a, az_a.address(POSTGRES_HOST), 5432, "writer"),
        standby=Node("rds-standby", az_b, az_b.address(POSTGRES_HOST), 5432, "standby"),
        database="come2us",
        admin_user="come2us",
        replication_user="replicator",
        synchronous_commit=True,
        max_connections=200,
        timeouts=Timeouts(ready_s=60.0, stop_s=15.0),
    )
    session_redis = RedisSessionGroup(
        name="session-redis",
        master_name="session",
        primary=Node("session-redis-a", az_a, az_a.address(SESSION_REDIS_HOST), 6379, "primary"),
        replica=Node("session-redis-b", az_b, az_b.address(SESSION_REDIS_HOST), 6379, "replica"),
        sentinels=tuple(
            Node(f"sentinel-{zone.label.removeprefix('AZ-')}", zone, zone.address(SENTINEL_HOST),
                 26379, "sentinel")
            for zone in (az_a, az_b, regional)
        ),
        quorum=2,
        # 1 s let a Sentinel declare a freshly promoted master down before it reconnected
        # (it reconnects at most once a second), causing a second, unwanted failover.
        down_after_ms=2000,
        failover_timeout_ms=5000,
        append_only=True,
        timeouts=Timeouts(),
    )
    cache_redis = RedisCache(
        name="cache-redis",
        node=Node("cache-redis", az_a, az_a.address(CACHE_REDIS_HOST), 6379, "cache"),
        max_memory="128mb",
        eviction_policy="allkeys-lru",
        timeouts=Timeouts(),
    )
    kafka = KafkaCluster(
        name="come2us-msk",
        broker=Node("kafka-1", az_a, az_a.address(KAFKA_HOST), 9092, "broker+controller"),
        controller_port=9093,
        node_id=1,
        default_partitions=3,
        heap="-Xms256m -Xmx512m",
        heartbeat_ms=1000,
        session_timeout_ms=4000,
        timeouts=Timeouts(ready_s=90.0, stop_s=20.0),
    )
    aws = AwsEndpoint(
        name="aws",
        node=Node("aws-endpoint", regional, regional.address(AWS_ENDPOINT_HOST), 4566, "aws api"),
        timeouts=Timeouts(),
    )
    platform = Platform(
        name="come2us",
        region=region,
        aws=aws,
        data=DataLayer(
            postgres=postgres,
            session_redis=session_redis,
            cache_redis=cache_redis,
            kafka=kafka,
            image_bucket=Bucket(
                name="come2us-product-images",
                versioned=True,
                lifecycle=(
                    LifecycleRule("expire-old-image-versions", noncurrent_expiry_days=30,
                                  abort_multipart_days=7),
                ),
            ),
            lock_table=LockTable(name="come2us-deploy-lock", partition_key="LockID"),
        ),
        compute=Compute(services=services(), instances=()),
    )
    platform.validate()
    return platform
