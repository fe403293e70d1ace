"""The COME2US stack, defined once (seed §3-§11).

Host numbers inside each zone's range are the "subnet plan" of the local cloud; the port of a
node is the port its AWS counterpart uses, so `psql -h 127.0.1.11 -p 5432` reads like RDS.
`come2us()` is the whole model; `ENVIRONMENTS` are the AWS environments' overlays on it.
"""

from __future__ import annotations

from functools import cache
from ipaddress import IPv4Network

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
from stack.model.cicd import JenkinsHost, SnapshotSchedule
from stack.model.cloud import CloudLayer, ManagedStores, TaskRuntime
from stack.model.compute import (
    Compute,
    HealthCheck,
    Instance,
    Scaling,
    ScalingMode,
    ServiceSpec,
)
from stack.model.edge import BlueGreen, Edge, WebhookRoute
from stack.model.environment import Environment, Sizes, Usage
from stack.model.load_balancer import LocalLoadBalancer
from stack.model.network import Bastion, Network, SubnetPlan
from stack.model.observability import (
    Alarm,
    BudgetAlerts,
    ErrorRate,
    LagWatch,
    Notifier,
    Observability,
    Subject,
)
from stack.model.placement import Zone, loopback_block, seoul
from stack.model.security import INTERNET, Group, SecurityPolicy, between
from stack.model.tasks import LocalTasks, TaskPool

# Host numbers inside each zone's /24: one per process, the same number in every AZ for the
# same role so that an address tells what runs there.
AWS_ENDPOINT_HOST = 10
POSTGRES_HOST = 11
SESSION_REDIS_HOST = 21
SENTINEL_HOST = 22
CACHE_REDIS_HOST = 31
KAFKA_HOST = 41
DISCOVERY_HOST = 51
CONFIG_HOST = 52
PAYMENT_PROVIDER_HOST = 70  # regional: an external system, outside both AZs
ALB_HOST = 80  # regional: an ALB spans the AZs, so losing one leaves the way in standing
ALB_LISTENER_PORT = 8080  # AWS listens on 80/443; a port below 1024 needs root locally


HEALTH_PATH = "/actuator/health"
# ALB health checks scaled down for the local runtime (AWS defaults: 30 s, 5 s, 5, 2, grace 60 s+).
# Scaled with the machine in mind: on AWS a new colour starts on other hosts, here its six
# processes share two cores with the serving colour, which then answers checks late. A 1.5 s
# timeout and three misses keep the serving tasks in; 45 s of grace lets a whole colour start.
LOCAL_HEALTH = HealthCheck(path=HEALTH_PATH, interval_s=2.0, timeout_s=1.5,
                           healthy_threshold=2, unhealthy_threshold=3, grace_period_s=45.0)
# On AWS: a target is healthy after 3 x 15 s, out after 2 x 15 s; a new task gets 90 s to start
# before failed checks count (§7-3 weighs 60-120 s against Fargate's cold start).
AWS_HEALTH = HealthCheck(path=HEALTH_PATH, interval_s=15.0, timeout_s=5.0,
                         healthy_threshold=3, unhealthy_threshold=2, grace_period_s=90.0)


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


# The payment provider (a PG / card company) is not one of the platform's programs: on AWS it is
# reached over the internet through the NAT. Locally a simulator plays it, as a component in the
# regional range; it is not in `services()`, so the AWS rendering never deploys it.
PAYMENT_PROVIDER = ServiceSpec(
    "payment-provider", "services.payment_provider", 8090, 256, 512,
    HealthCheck(path="/health", interval_s=1.0, timeout_s=0.5, healthy_threshold=2,
                unhealthy_threshold=2, grace_period_s=10.0),
    Scaling(1, 1, ScalingMode.MANUAL, target_cpu_percent=None))


# The Spring Cloud core that every colour shares: a deploy never replaces it (§7-1 switches
# the versions of the entry service and the business services, not the registry or config).
SHARED_CORE = ("discovery", "config")
# Host numbers of each AZ's range that tasks take addresses from (the private subnet's free
# addresses); the shared core and the stores sit below 100.
TASK_HOSTS = range(100, 200)


def local_tasks(specs: tuple[ServiceSpec, ...], edge: Edge,
                zones: tuple[Zone, ...]) -> LocalTasks:
    """What each colour runs as tasks: the ALB's entry service and every business service."""
    business = [s.name for s in specs if s.name not in (*SHARED_CORE, edge.entry_service)]
    return LocalTasks(
        colour_routed=(edge.entry_service, *business),
        pools=tuple(TaskPool(zone.label, TASK_HOSTS) for zone in zones),
    )


def compute(az_a: Zone, az_b: Zone, regional: Zone) -> Compute:
    """The programs, and where the shared core's long-lived instances run locally.

    Discovery runs in both AZs (seed: 1 to 2 tasks) and replicates, so either AZ can be lost;
    the config server starts in AZ-a. The gateway and the business services are not placed
    here: each colour runs them as tasks in its AZ (`local_tasks`, `stack.local.tasks`). The
    payment provider simulator stands in the regional range for the PG outside the VPC.
    """
    specs = services()
    by_name = {spec.name: spec for spec in specs}

    def place(service: str, zone: Zone, host: int) -> Instance:
        spec = by_name[service]
        suffix = zone.label.removeprefix("AZ-")
        return Instance(spec, Node(f"{service}-{suffix}", zone, zone.address(host), spec.port,
                                   service))

    return Compute(
        services=specs,
        instances=(
            place("discovery", az_a, DISCOVERY_HOST),
            place("discovery", az_b, DISCOVERY_HOST),
            place("config", az_a, CONFIG_HOST),
            Instance(PAYMENT_PROVIDER, Node("payment-provider", regional,
                                            regional.address(PAYMENT_PROVIDER_HOST),
                                            PAYMENT_PROVIDER.port, "payment provider simulator")),
        ),
        tasks=local_tasks(specs, edge_of_the_platform(), (az_a, az_b)),
    )


def local_load_balancer(regional: Zone, edge: Edge) -> LocalLoadBalancer:
    """The ALB of the local cloud: the AWS edge's listener and target groups, scaled down.

    Its targets are the entry service's tasks, checked with that service's local health check;
    a deregistered target drains for 3 s (AWS: `edge.deregistration_delay_s`).
    """
    entry = next(spec for spec in services() if spec.name == edge.entry_service)
    return LocalLoadBalancer(
        node=Node("alb", regional, regional.address(ALB_HOST), ALB_LISTENER_PORT,
                  "load balancer"),
        entry_service=entry.name,
        health=entry.health,
        deregistration_delay_s=3.0,
        idle_timeout_s=float(edge.idle_timeout_s),
        connect_timeout_s=1.0,
        preview_header=edge.preview_header,
        timeouts=Timeouts(ready_s=10.0, stop_s=5.0),
    )


def come2us() -> Platform:
    """The model, on the loopback block this process was told to use (0 by default)."""
    return come2us_on_block(loopback_block())


@cache
def come2us_on_block(block: int) -> Platform:
    """The model with the local cloud on 127.<block>.x.x; files that show addresses use 0."""
    region = seoul(block)
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
    cloud = cloud_layer(postgres, session_redis, cache_redis)
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
        compute=compute(az_a, az_b, regional),
        cloud=cloud,
        load_balancer=local_load_balancer(regional, cloud.edge),
    )
    platform.validate()
    return platform


def edge_of_the_platform() -> Edge:
    """The way in: the ALB forwards to the gateway of the active colour (§4, §7-1)."""
    return Edge(
        apex_domain="come2us.example.com",  # the customer's domain; its hosted zone exists
        entry_service="gateway",
        https_port=443,
        http_port=80,
        ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        deregistration_delay_s=30,
        idle_timeout_s=60,
        blue_green=BlueGreen(blue_zone="AZ-a", green_zone="AZ-b"),
        webhook=WebhookRoute(host_label="ci", path="/github-webhook/*", priority=10),
        preview_header="X-Come2us-Colour",
        preview_priority=20,
    )


def cloud_layer(postgres: PostgresCluster, session_redis: RedisSessionGroup,
                cache_redis: RedisCache) -> CloudLayer:
    """The AWS-only part of the model (§3, §6, §8-§11), the same in every environment."""
    specs = services()
    edge = edge_of_the_platform()
    stores = ManagedStores(
        postgres_engine_version="15.15",
        postgres_backup_days=7,
        redis_engine_version="7.0",
        kafka_version="3.9.x",
        kafka_tls_port=9094,
        kafka_monitoring="DEFAULT",
        ecr_keep_images=20,
        deploy_records=Bucket(
            name="come2us-deploy-records",
            versioned=True,
            lifecycle=(LifecycleRule("expire-old-record-versions", noncurrent_expiry_days=90,
                                     abort_multipart_days=7),),
        ),
    )
    jenkins = JenkinsHost(
        zone_label="AZ-a",
        port=8080,
        health_path="/login",
        ami_parameter="/come2us/jenkins/ami-id",
        home_device="/dev/sdf",
        snapshots=SnapshotSchedule(every_hours=24, at="18:00", keep=7),  # 03:00 KST
        deploy_role="come2us-cloudformation-deploy",
    )
    network = Network(plan=SubnetPlan(public_prefix=24, private_prefix=20),
                      bastion=Bastion(zone_label="AZ-a", ssh_port=22))
    entry = next(spec for spec in specs if spec.name == edge.entry_service)
    redis_ports = (session_redis.primary.port, cache_redis.node.port)
    security = SecurityPolicy(rules=(
        *between(INTERNET, Group.ALB, (edge.http_port, edge.https_port),
                 "clients; plain HTTP only to be redirected to HTTPS"),
        *between(Group.ALB, Group.TASKS, (entry.port,), "the HTTPS listener's targets"),
        *between(Group.TASKS, Group.TASKS, (spec.port for spec in specs),
                 "services call each other: discovery, config, the gateway's routes"),
        *between(Group.TASKS, Group.DATABASE, (postgres.writer.port,), "RDS, writer and reader"),
        *between(Group.TASKS, Group.REDIS, redis_ports, "session and cache Redis"),
        *between(Group.TASKS, Group.KAFKA, (stores.kafka_tls_port,), "MSK over TLS"),
        *between(Group.ALB, Group.CI, (jenkins.port,), "the GitHub webhook (HTTPS listener)"),
        *between(Group.BASTION, Group.CI, (network.bastion.ssh_port,), "operators' SSH"),
        *between(Group.TASKS, INTERNET, (443,),
                 "ECR pulls, Secrets Manager, CloudWatch Logs, payment APIs: via the NAT"),
        *between(Group.CI, INTERNET, (443,), "GitHub, ECR pushes, CloudFormation: via the NAT"),
        *between(Group.BASTION, INTERNET, (443,), "SSM Session Manager"),
    ))
    observability = Observability(
        log_retention_days=30,
        alarms=(
            Alarm("cpu-high", Subject.SERVICE, "AWS/ECS", "CPUUtilization", 85.0,
                  "tasks are saturated beyond what scaling absorbs"),
            Alarm("memory-high", Subject.SERVICE, "AWS/ECS", "MemoryUtilization", 85.0,
                  "tasks are close to being killed for memory"),
            Alarm("connections-high", Subject.DATABASE, "AWS/RDS", "DatabaseConnections",
                  0.8 * postgres.max_connections, "80% of max_connections are in use"),
            Alarm("cpu-high", Subject.SESSION_REDIS, "AWS/ElastiCache", "EngineCPUUtilization",
                  75.0, "the session store's single Redis thread is saturated"),
            Alarm("memory-high", Subject.SESSION_REDIS, "AWS/ElastiCache",
                  "DatabaseMemoryUsagePercentage", 80.0, "sessions will soon be evicted"),
            Alarm("cpu-high", Subject.CACHE_REDIS, "AWS/ElastiCache", "EngineCPUUtilization",
                  75.0, "the cache node is saturated"),
        ),
        error_rate=ErrorRate("5xx-rate", threshold_percent=5.0, period_s=60,
                             evaluation_periods=3, why="more than 5% of requests fail"),
        lag_watches=(LagWatch(consumer_group="payment-service", topic="order-events",
                              max_offset_lag=1000, evaluation_periods=5),),
        notifier=Notifier(source="services/notifier/handler.py", entry_point="handle",
                          runtime="python3.12", memory_mib=128, timeout_s=10,
                          reserved_concurrency=2, discord_webhook="discord-webhook"),
        budget=BudgetAlerts(actual_percent=80.0, forecast_percent=100.0),
    )
    return CloudLayer(
        network=network,
        security=security,
        edge=edge,
        stores=stores,
        tasks=TaskRuntime(health=AWS_HEALTH, scale_out_cooldown_s=60, scale_in_cooldown_s=300,
                          service_namespace="come2us.internal",
                          image_bucket_users=("product-service",)),
        observability=observability,
        ci=jenkins,
    )


# The AWS environments: each states only where it differs from `Sizes()` / `Usage()`.
ENVIRONMENTS: dict[str, Environment] = {
    env.name: env for env in (
        Environment("dev", subdomain="dev", vpc_cidr=IPv4Network("10.10.0.0/16"),
                    nat_gateways=1, monthly_budget_usd=900),
        Environment("stage", subdomain="stage", vpc_cidr=IPv4Network("10.20.0.0/16"),
                    nat_gateways=1, monthly_budget_usd=1000),
        Environment("prod", subdomain=None, vpc_cidr=IPv4Network("10.30.0.0/16"),
                    nat_gateways=2, monthly_budget_usd=2500, deletion_protection=True,
                    sizes=Sizes(database_class="db.r6g.large", database_storage_gib=100,
                                session_redis_node="cache.r6g.large",
                                cache_redis_node="cache.t4g.medium",
                                kafka_broker="kafka.m5.large", kafka_storage_gib=100),
                    usage=Usage(nat_processed_gb=500.0, log_ingested_gb=60.0, alb_lcu=5.0,
                                cloudfront_gb=500.0, image_storage_gb=50.0)),
    )
}


def environment(name: str) -> Environment:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise KeyError(f"no environment {name!r}; known: {', '.join(ENVIRONMENTS)}") from None
