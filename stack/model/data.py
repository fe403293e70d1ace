"""The data layer of the seed (§5): what each store is, where its nodes live, how it behaves.

These are descriptions, not running things: the local runtime (`stack.local`) starts processes
from them and, later, the AWS target renders them to CloudFormation. Every port, placement,
threshold and timeout that a store has is written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from stack.model.placement import Node


@dataclass(frozen=True)
class Timeouts:
    """How long the runtime waits for a node; generous enough for a loaded 2-core machine."""

    ready_s: float = 30.0
    stop_s: float = 10.0


@dataclass(frozen=True)
class PostgresCluster:
    """RDS PostgreSQL Multi-AZ: a writer, a synchronous hot standby that also serves reads.

    The reader endpoint prefers the standby and falls back to the writer, which is what a
    Multi-AZ DB cluster's reader endpoint does; the writer endpoint lists both hosts and asks
    for a read-write session, so a client reconnecting after a failover finds the new writer.
    """

    name: str
    writer: Node
    standby: Node
    database: str
    admin_user: str
    replication_user: str
    synchronous_commit: bool
    max_connections: int
    timeouts: Timeouts

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.writer, self.standby)

    @property
    def slot(self) -> str:
        """The physical replication slot (and application_name) the standby streams through."""
        return self.standby.name.replace("-", "_")

    def _conninfo(self, nodes: tuple[Node, ...], attrs: str, password: str | None) -> str:
        hosts = ",".join(node.address for node in nodes)
        secret = f":{quote(password, safe='')}" if password else ""
        return (
            f"postgresql://{self.admin_user}{secret}@{hosts}/{self.database}"
            f"?target_session_attrs={attrs}&connect_timeout=2"
        )

    def writer_url(self, password: str | None = None) -> str:
        return self._conninfo((self.writer, self.standby), "read-write", password)

    def reader_url(self, password: str | None = None) -> str:
        return self._conninfo((self.standby, self.writer), "prefer-standby", password)


@dataclass(frozen=True)
class RedisSessionGroup:
    """ElastiCache replication group for sessions: primary, replica, automatic failover.

    Three Sentinels play the managed failover: one per AZ and one regional arbiter, so that
    losing either AZ still leaves a majority (quorum) to elect the new primary.
    """

    name: str
    master_name: str
    primary: Node
    replica: Node
    sentinels: tuple[Node, ...]
    quorum: int
    down_after_ms: int
    failover_timeout_ms: int
    append_only: bool
    timeouts: Timeouts

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.primary, self.replica, *self.sentinels)

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(str(node.host), node.port) for node in self.sentinels]


@dataclass(frozen=True)
class RedisCache:
    """ElastiCache cache node, cluster mode disabled (§10): one node, bounded, LRU eviction."""

    name: str
    node: Node
    max_memory: str
    eviction_policy: str
    timeouts: Timeouts

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.node,)

    @property
    def url(self) -> str:
        return f"redis://{self.node.address}/0"


@dataclass(frozen=True)
class KafkaCluster:
    """MSK in KRaft mode: one combined broker and controller, enough for order events locally."""

    name: str
    broker: Node
    controller_port: int
    node_id: int
    default_partitions: int
    heap: str
    # A restarted broker is refused as a duplicate until the dead one's session times out.
    heartbeat_ms: int
    session_timeout_ms: int
    timeouts: Timeouts

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.broker,)

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.address


@dataclass(frozen=True)
class LifecycleRule:
    name: str
    noncurrent_expiry_days: int
    abort_multipart_days: int


@dataclass(frozen=True)
class Bucket:
    """The S3 bucket for product images (CloudFront origin): versioned, with a lifecycle."""

    name: str
    versioned: bool
    lifecycle: tuple[LifecycleRule, ...]


@dataclass(frozen=True)
class LockTable:
    """The DynamoDB table that serialises deploys (the IaC state lock of §6)."""

    name: str
    partition_key: str


@dataclass(frozen=True)
class AwsEndpoint:
    """The AWS API: moto locally, reached by every AWS SDK through AWS_ENDPOINT_URL."""

    name: str
    node: Node
    timeouts: Timeouts

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.node,)

    @property
    def url(self) -> str:
        return f"http://{self.node.address}"


@dataclass(frozen=True)
class DataLayer:
    postgres: PostgresCluster
    session_redis: RedisSessionGroup
    cache_redis: RedisCache
    kafka: KafkaCluster
    image_bucket: Bucket
    lock_table: LockTable
