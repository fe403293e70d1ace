"""How to reach each part of the local cloud, as the environment variables clients read.

The same names are printed by `come2us up`, exported by `come2us env`, and handed to services,
so a person, a test and a service all connect the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from stack.local.aws_clients import aws_environment
from stack.local.postgres import ADMIN_SECRET
from stack.local.workspace import Workspace
from stack.model import Platform

MASK = "****"


@dataclass(frozen=True)
class Endpoint:
    variable: str
    value: str
    what: str


def endpoints(model: Platform, workspace: Workspace, reveal: bool = False) -> list[Endpoint]:
    data = model.data
    password = workspace.secret(ADMIN_SECRET)

    def shown(url: str) -> str:
        # Only the userinfo's password: the same text may also be the user, database or a port.
        secret = f":{quote(password, safe='')}@"
        return url if reveal else url.replace(secret, f":{MASK}@", 1)

    sentinels = ",".join(node.address for node in data.session_redis.sentinels)
    aws = {
        "AWS_ENDPOINT_URL": "AWS API (moto): S3, DynamoDB, CloudFormation, …",
        "AWS_REGION": "region the emulator serves",
        "AWS_DEFAULT_REGION": "region the emulator serves",
        "AWS_ACCESS_KEY_ID": "emulator credentials (checked by nobody)",
        "AWS_SECRET_ACCESS_KEY": "emulator credentials (checked by nobody)",
    }
    return [
        Endpoint("COME2US_URL", model.load_balancer.url,
                 "the platform, through the ALB (the serving colour's gateways)"),
        *(Endpoint(k, v, aws[k]) for k, v in aws_environment(model.aws).items()),
        Endpoint("COME2US_DATABASE_URL", shown(data.postgres.writer_url(password)),
                 "PostgreSQL writer endpoint"),
        Endpoint("COME2US_DATABASE_READER_URL", shown(data.postgres.reader_url(password)),
                 "PostgreSQL reader endpoint"),
        Endpoint("COME2US_SESSION_SENTINELS", sentinels, "session Redis, through Sentinel"),
        Endpoint("COME2US_SESSION_MASTER", data.session_redis.master_name,
                 "Sentinel master name of the session Redis"),
        Endpoint("COME2US_CACHE_REDIS_URL", data.cache_redis.url, "cache Redis"),
        Endpoint("COME2US_KAFKA_BOOTSTRAP", data.kafka.bootstrap_servers, "Kafka bootstrap"),
        Endpoint("COME2US_IMAGE_BUCKET", data.image_bucket.name, "S3 bucket for images"),
        Endpoint("COME2US_LOCK_TABLE", data.lock_table.name, "DynamoDB deploy-lock table"),
    ]
