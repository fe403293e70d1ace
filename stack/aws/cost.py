"""`come2us cost`: what an environment costs a month, from the model and the price table.

Steady state follows the seed (§10): one colour runs at its min tasks ("평상시 단일 AZ
운영"); during a blue/green deploy both colours run, so ECS costs twice as much for those
hours — priced per hour of deploy and, with the environment's assumed deploy hours, per month.
Traffic-dependent charges use the environment's `Usage` assumptions, stated in each line.
Not estimated: data transfer out of the ALB, Container Insights metrics, requests to Lambda,
SNS, SQS and DynamoDB (within or near the free tier at this scale), the existing hosted zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.aws.prices import PriceTable
from stack.model import Platform
from stack.model.compute import ServiceSpec
from stack.model.environment import Environment
from stack.model.observability import Subject

SECRETS = 3  # database, Redis AUTH (the template's), the Discord webhook (the operator's)
ALB_ADDRESSES_PER_ZONE = 1


@dataclass(frozen=True)
class Line:
    item: str
    quantity: str
    monthly_usd: float
    note: str = ""


@dataclass(frozen=True)
class Estimate:
    lines: tuple[Line, ...]
    ecs_steady: float  # per month, one colour at min tasks
    ecs_at_max: float  # per month, one colour at max tasks
    deploy_extra_per_hour: float  # the second colour during a deploy (§10: 2x)
    deploy_hours: float

    @property
    def total(self) -> float:
        return round(sum(line.monthly_usd for line in self.lines), 2)

    @property
    def deploy_extra_monthly(self) -> float:
        return self.deploy_extra_per_hour * self.deploy_hours

    def line(self, item_prefix: str) -> Line:
        for line in self.lines:
            if line.item.startswith(item_prefix):
                return line
        raise KeyError(item_prefix)


def task_hourly(spec: ServiceSpec, prices: PriceTable) -> float:
    return (spec.cpu / 1024 * prices.fargate_vcpu_hour
            + spec.memory_mib / 1024 * prices.fargate_gb_hour)


def estimate(platform: Platform, env: Environment, prices: PriceTable) -> Estimate:
    hours = prices.hours_per_month
    sizes, usage = env.sizes, env.usage
    cloud = platform.cloud
    layout = env.layout(cloud.network, platform.region)
    zones = len(layout.zones)
    lines: list[Line] = []

    services = platform.compute.services
    for spec in services:
        lines.append(Line(f"ECS {spec.name}",
                          f"{spec.scaling.min_tasks} x {spec.cpu / 1024:g} vCPU / "
                          f"{spec.memory_mib / 1024:g} GB",
                          spec.scaling.min_tasks * task_hourly(spec, prices) * hours,
                          "one colour, min tasks: single AZ outside deploys (§10)"))
    steady_hourly = sum(s.scaling.min_tasks * task_hourly(s, prices) for s in services)
    max_hourly = sum(s.scaling.max_tasks * task_hourly(s, prices) for s in services)
    lines.append(Line("ECS blue/green overlap", f"{usage.deploy_hours:g} h x both colours",
                      steady_hourly * usage.deploy_hours,
                      "2x ECS while a deploy runs both colours (§10)"))

    lines.append(Line("ALB", f"1 + {usage.alb_lcu:g} LCU",
                      (prices.alb_hour + usage.alb_lcu * prices.alb_lcu_hour) * hours))
    lines.append(Line("NAT gateways", f"{layout.nat_gateways} + {usage.nat_processed_gb:g} GB",
                      layout.nat_gateways * prices.nat_hour * hours
                      + usage.nat_processed_gb * prices.nat_gb,
                      "one NAT in dev/stage, one per AZ in prod (§10)"))
    addresses = layout.nat_gateways + 1 + zones * ALB_ADDRESSES_PER_ZONE  # NATs, bastion, ALB
    lines.append(Line("Public IPv4 addresses", f"{addresses}",
                      addresses * prices.public_ipv4_hour * hours))

    db_hour = prices.hourly(prices.rds_postgres_hour, sizes.database_class, "RDS class")
    lines.append(Line("RDS writer, Multi-AZ", f"{sizes.database_class} x 2, "
                      f"{sizes.database_storage_gib} GB x 2",
                      2 * (db_hour * hours + sizes.database_storage_gib
                           * prices.rds_gp3_gb_month),
                      "writer AZ-a, standby AZ-b (§5)"))
    if sizes.read_replicas:
        lines.append(Line("RDS read replicas", f"{sizes.read_replicas} x {sizes.database_class}",
                          sizes.read_replicas * (db_hour * hours + sizes.database_storage_gib
                                                 * prices.rds_gp3_gb_month),
                          "reader in AZ-b, single-AZ"))
    session = prices.hourly(prices.elasticache_hour, sizes.session_redis_node, "node type")
    lines.append(Line("Session Redis", f"2 x {sizes.session_redis_node}", 2 * session * hours,
                      "primary + replica, automatic failover (§9)"))
    cache = prices.hourly(prices.elasticache_hour, sizes.cache_redis_node, "node type")
    lines.append(Line("Cache Redis", f"1 x {sizes.cache_redis_node}", cache * hours,
                      "single node, cluster mode disabled (§10)"))
    brokers = sizes.kafka_brokers_per_zone * zones
    broker = prices.hourly(prices.msk_broker_hour, sizes.kafka_broker, "MSK broker")
    lines.append(Line("MSK", f"{brokers} x {sizes.kafka_broker}, {sizes.kafka_storage_gib} GB",
                      brokers * (broker * hours
                                 + sizes.kafka_storage_gib * prices.msk_storage_gb_month)))

    ci = prices.hourly(prices.ec2_hour, sizes.ci_instance, "EC2 type")
    lines.append(Line("Jenkins host", f"{sizes.ci_instance}, {sizes.ci_home_gib} GB home",
                      ci * hours + (sizes.ci_home_gib + sizes.ci_root_gib)
                      * prices.ebs_gp3_gb_month
                      + sizes.ci_home_gib * prices.ebs_snapshot_gb_month,
                      f"snapshots kept {cloud.ci.snapshots.keep} (incremental, ~1x the home)"))
    bastion = prices.hourly(prices.ec2_hour, sizes.bastion_instance, "EC2 type")
    lines.append(Line("Bastion", sizes.bastion_instance,
                      bastion * hours + sizes.bastion_root_gib * prices.ebs_gp3_gb_month))

    observability = cloud.observability
    lines.append(Line("CloudWatch Logs", f"{usage.log_ingested_gb:g} GB/month",
                      usage.log_ingested_gb * (prices.logs_ingested_gb
                                               + prices.logs_stored_gb_month),
                      f"kept {observability.log_retention_days} days (§10)"))
    per_service = sum(1 for a in observability.alarms if a.subject is Subject.SERVICE)
    metrics = (per_service * len(services)
               + sum(1 for a in observability.alarms if a.subject is not Subject.SERVICE)
               + 3  # the 5xx rate evaluates three metrics
               + len(observability.lag_watches))
    lines.append(Line("CloudWatch alarms", f"{metrics} metrics",
                      metrics * prices.alarm_metric_month))
    lines.append(Line("KMS key + secrets", f"1 key, {SECRETS} secrets",
                      prices.kms_key_month + SECRETS * prices.secret_month))
    lines.append(Line("S3 + CloudFront", f"{usage.image_storage_gb:g} GB, "
                      f"{usage.cloudfront_gb:g} GB out",
                      usage.image_storage_gb * prices.s3_gb_month
                      + usage.cloudfront_gb * prices.cloudfront_gb))
    lines.append(Line("ECR", f"{usage.ecr_storage_gb:g} GB",
                      usage.ecr_storage_gb * prices.ecr_gb_month,
                      f"keeps {cloud.stores.ecr_keep_images} images per service"))

    rounded = tuple(Line(line.item, line.quantity, round(line.monthly_usd, 2), line.note)
                    for line in lines)
    return Estimate(lines=rounded, ecs_steady=steady_hourly * hours,
                    ecs_at_max=max_hourly * hours, deploy_extra_per_hour=steady_hourly,
                    deploy_hours=usage.deploy_hours)
