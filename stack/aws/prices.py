"""On-demand prices for ap-northeast-2 (Seoul), in USD, for `come2us cost`.

Compiled on 2026-11-25 from the public AWS pricing pages for the Asia Pacific (Seoul) region:
aws.amazon.com/{fargate,elasticloadbalancing,vpc,ec2,ebs,rds/postgresql,elasticache,msk,
cloudwatch,kms,secrets-manager,s3,cloudfront,ecr}/pricing. The figures were transcribed, not
fetched by API: before budgeting with them, refresh them with the AWS Pricing Calculator or
``aws pricing get-products --region us-east-1 --service-code …``. A price missing here is an
error in `come2us cost`, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PriceTable:
    region: str
    as_of: str
    source: str
    hours_per_month: float
    fargate_vcpu_hour: float  # Linux/x86
    fargate_gb_hour: float
    alb_hour: float
    alb_lcu_hour: float
    nat_hour: float
    nat_gb: float  # data processed
    public_ipv4_hour: float
    ec2_hour: Mapping[str, float]
    ebs_gp3_gb_month: float
    ebs_snapshot_gb_month: float
    rds_postgres_hour: Mapping[str, float]  # single-AZ; Multi-AZ (one standby) is twice
    rds_gp3_gb_month: float  # single-AZ; Multi-AZ is twice
    elasticache_hour: Mapping[str, float]
    msk_broker_hour: Mapping[str, float]
    msk_storage_gb_month: float
    logs_ingested_gb: float
    logs_stored_gb_month: float
    alarm_metric_month: float  # a standard-resolution alarm, per metric it evaluates
    kms_key_month: float
    secret_month: float
    s3_gb_month: float
    cloudfront_gb: float  # data out, Asia Pacific edges (Korea)
    ecr_gb_month: float

    def hourly(self, table: Mapping[str, float], kind: str, what: str) -> float:
        try:
            return table[kind]
        except KeyError:
            raise KeyError(f"no {self.region} price for {what} {kind!r} in stack/aws/prices.py; "
                           f"known: {', '.join(sorted(table))}") from None


PRICES = PriceTable(
    region="ap-northeast-2",
    as_of="2026-11-25",
    source="AWS public pricing pages, Asia Pacific (Seoul), on-demand; transcribed, see "
           "stack/aws/prices.py",
    hours_per_month=730.0,
    fargate_vcpu_hour=0.04656,
    fargate_gb_hour=0.00511,
    alb_hour=0.0225,
    alb_lcu_hour=0.008,
    nat_hour=0.059,
    nat_gb=0.059,
    public_ipv4_hour=0.005,
    ec2_hour={"t3.nano": 0.0065, "t3.micro": 0.013, "t3.small": 0.026, "t3.medium": 0.052,
              "t3.large": 0.104},
    ebs_gp3_gb_month=0.0912,
    ebs_snapshot_gb_month=0.05,
    rds_postgres_hour={"db.t4g.micro": 0.025, "db.t4g.small": 0.051, "db.t4g.medium": 0.101,
                       "db.t4g.large": 0.202, "db.r6g.large": 0.287, "db.r6g.xlarge": 0.574},
    rds_gp3_gb_month=0.131,
    elasticache_hour={"cache.t4g.micro": 0.025, "cache.t4g.small": 0.049,
                      "cache.t4g.medium": 0.098, "cache.r6g.large": 0.274},
    msk_broker_hour={"kafka.t3.small": 0.0544, "kafka.m5.large": 0.252},
    msk_storage_gb_month=0.12,
    logs_ingested_gb=0.76,
    logs_stored_gb_month=0.0314,
    alarm_metric_month=0.10,
    kms_key_month=1.0,
    secret_month=0.40,
    s3_gb_month=0.025,
    cloudfront_gb=0.120,
    ecr_gb_month=0.10,
)
