"""How to reach each part of the local cloud, as the environment variables clients read.

The same names are printed by `come2us up`, exported by `come2us env`, and handed to services,
so a person, a test and a service all connect the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.local.postgres import ADMIN_SECRET
from stack.local.workspace import Workspace
from stack.model import Platform

# moto accepts any credentials; fixed ones keep every client of the emulator in one account.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
MASK = "****"


@dataclass(frozen=True)
class Endpoint:
    variable: str
    value: str
    what: str


def endpoints(model: Platform, workspace: Workspace, reveal: bool = False) -> list[Endpoint]:
    data = model.data
    password = workspace.secret(ADMIN_SECRET) if reveal else MASK
    sentinels = ",".join(node.address for node in data.session_redis.sentinels)
    return [
        Endpoint("AWS_ENDPOINT_URL", model.aws.url, "AWS API (moto): S3, DynamoDB, …"),
        Endpoint("AWS_DEFAULT_REGION", model.region.name, "region of the emulator"),
        *(Endpoint(k, v, "emulator credentials") for k, v in EMULATOR_CREDENTIALS.items()),
        Endpoint("COME2US_DATABASE_URL", data.postgres.writer_url(password),
                 "PostgreSQL writer endpoint"),
        Endpoint("COME2US_DATABASE_READER_URL", data.postgres.reader_url(password),
                 "PostgreSQL reader endpoint"),
        Endpoint("COME2US_SESSION_SENTINELS", sentinels, "session Redis, through Sentinel"),
        Endpoint("COME2US_SESSION_MASTER", data.session_redis.master_name,
                 "Sentinel master name of the session Redis"),
        Endpoint("COME2US_CACHE_REDIS_URL", data.cache_redis.url, "cache Redis"),
        Endpoint("COME2US_KAFKA_BOOTSTRAP", data.kafka.bootstrap_servers, "Kafka bootstrap"),
        Endpoint("COME2US_IMAGE_BUCKET", data.image_bucket.name, "S3 bucket for images"),
        Endpoint("COME2US_LOCK_TABLE", data.lock_table.name, "DynamoDB deploy-lock table"),
    ]
