"""Clients of the local cloud's stores, connected the way a service connects.

Steps, benchmarks and services open connections here, so each store is reached through its
endpoint (the writer/reader endpoints, Sentinel, the bootstrap servers, the AWS endpoint) and
never through a hard-coded address.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import redis
from confluent_kafka import Consumer, Producer
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from services.common.tokens import Revocation
from services.common.tokens import revoke as revoke_token
from stack.deploy_lock import DeployLock
from stack.local.aws_clients import aws_client
from stack.local.postgres import ADMIN_SECRET
from stack.local.workspace import Workspace
from stack.model import Node, Platform

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


def gateway(model: Platform, timeout: float = 5.0) -> httpx.Client:
    """An HTTP client of the platform as a person's browser calls it: through the ALB, which
    forwards to the gateways of the serving colour."""
    return httpx.Client(base_url=model.load_balancer.url, timeout=timeout)


def registered_instances(discovery: Node, app: str) -> dict[str, str]:
    """Instance id -> status of ``app`` as one discovery server lists it (empty when unknown)."""
    response = httpx.get(f"http://{discovery.address}/eureka/apps/{app.upper()}",
                         headers={"Accept": "application/json"}, timeout=SOCKET_TIMEOUT_S)
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    instances = response.json()["application"]["instance"]
    return {item["instanceId"]: item["status"] for item in instances}


def revoke(model: Platform, revocation: Revocation) -> None:
    """Revoke a session or a token the way the user service does (tokens.revoke)."""
    group = model.data.session_redis

    async def run() -> None:
        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
            group.sentinel_addresses(), socket_timeout=SOCKET_TIMEOUT_S)
        master = sentinel.master_for(group.master_name, socket_timeout=SOCKET_TIMEOUT_S)
        try:
            await revoke_token(master, revocation)
        finally:
            await master.aclose()

    asyncio.run(run())


def deploy_lock(model: Platform) -> DeployLock:
    table = model.data.lock_table
    return DeployLock(aws_client("dynamodb", model.aws), table.name, table.partition_key)
