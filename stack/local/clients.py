"""Clients of the local cloud's stores, connected the way a service connects.

Steps, benchmarks and services open connections here, so each store is reached through its
endpoint (the writer/reader endpoints, Sentinel, the bootstrap servers, the AWS endpoint) and
never through a hard-coded address.
"""

from __future__ import annotations

from typing import Any

import psycopg
import redis
from confluent_kafka import Consumer, Producer
from redis.sentinel import Sentinel

from stack.deploy_lock import DeployLock
from stack.local.aws_clients import aws_client
from stack.local.postgres import ADMIN_SECRET
from stack.local.workspace import Workspace
from stack.model import Platform

SOCKET_TIMEOUT_S = 2.0


def postgres_writer(model: Platform, workspace: Workspace) -> psycopg.Connection[Any]:
    url = model.data.postgres.writer_url(workspace.secret(ADMIN_SECRET))
    return psycopg.connect(url, autocommit=True)


def postgres_reader(model: Platform, workspace: Workspace) -> psycopg.Connection[Any]:
    url = model.data.postgres.reader_url(workspace.secret(ADMIN_SECRET))
    return psycopg.connect(url, autocommit=True)


def session_sentinel(model: Platform) -> Sentinel:
    return Sentinel(  # type: ignore[no-untyped-call]
        model.data.session_redis.sentinel_addresses(), socket_timeout=SOCKET_TIMEOUT_S)


def session_master(model: Platform) -> redis.Redis:
    group = model.data.session_redis
    master: redis.Redis = session_sentinel(model).master_for(  # type: ignore[no-untyped-call]
        group.master_name, socket_timeout=SOCKET_TIMEOUT_S, decode_responses=True)
    return master


def redis_at(host: str, port: int) -> redis.Redis:
    return redis.Redis(host=host, port=port, socket_timeout=SOCKET_TIMEOUT_S,
                       decode_responses=True)


def cache_redis(model: Platform) -> redis.Redis:
    return redis.Redis.from_url(model.data.cache_redis.url, socket_timeout=SOCKET_TIMEOUT_S,
                                decode_responses=True)


def kafka_producer(model: Platform) -> Producer:
    return Producer({"bootstrap.servers": model.data.kafka.bootstrap_servers, "acks": "all",
                     "enable.idempotence": True})


def kafka_consumer(model: Platform, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": model.data.kafka.bootstrap_servers,
                     "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})


def deploy_lock(model: Platform) -> DeployLock:
    table = model.data.lock_table
    return DeployLock(aws_client("dynamodb", model.aws), table.name, table.partition_key)
