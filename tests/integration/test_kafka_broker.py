"""The real Kafka broker, run from Maven's jars: events are delivered, kept across a restart, and
a data directory that is not this node's is refused before the JVM starts.

Each test has its own workspace and its own free ports on the broker's loopback address, so it
runs beside a local cloud that is already up, and beside another test session.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, KafkaError, Message, Producer

from stack.come2us import come2us
from stack.local.backend import ProcessBackend
from stack.local.datadir import MARKER, DataDirError
from stack.local.kafka import ROLE, KafkaBroker
from stack.local.kafka_jars import ensure_kafka_jars
from stack.local.workspace import Workspace
from stack.model import KafkaCluster
from stack.waiting import wait_for

pytestmark = pytest.mark.cloud

DELIVERY_TIMEOUT_S = 20.0


def _free_port(host: IPv4Address) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((str(host), 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def jars() -> Path:
    return ensure_kafka_jars()


@pytest.fixture
def cluster() -> KafkaCluster:
    model = come2us().data.kafka
    host = model.broker.host
    return replace(model, broker=replace(model.broker, port=_free_port(host)),
                   controller_port=_free_port(host))


@pytest.fixture
def broker(tmp_path: Path, cluster: KafkaCluster, jars: Path) -> Iterator[KafkaBroker]:
    workspace = Workspace(tmp_path / "come2us")
    workspace.ensure()
    broker = KafkaBroker(cluster, workspace, ProcessBackend(), jars=jars)
    try:
        yield broker
    finally:
        broker.stop()  # SIGTERM, then SIGKILL after the model's stop timeout; no-op if not started


def produce(bootstrap: str, topic: str, value: bytes) -> None:
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True})
    producer.produce(topic, value, on_delivery=delivered)
    assert producer.flush(DELIVERY_TIMEOUT_S) == 0, "message not delivered in time"
    assert errors == []


def consume_from_beginning(bootstrap: str, topic: str, count: int) -> list[bytes]:
    """Read ``count`` messages as a new consumer group, starting at the earliest offset."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    received: list[bytes] = []

    def attempt() -> tuple[list[bytes] | None, str]:
        message = consumer.poll(0.2)
        if message is not None:
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                return None, f"consumer error: {error}"
            value = message.value()
            if error is None and value is not None:
                received.append(value)
        return (received if len(received) >= count else None), f"received {received}"

    consumer.subscribe([topic])
    try:
        return wait_for(attempt, timeout=DELIVERY_TIMEOUT_S, what=f"{count} messages of {topic}")
    finally:
        consumer.close()


def test_messages_survive_a_restart(broker: KafkaBroker) -> None:
    bootstrap = broker.cluster.bootstrap_servers
    broker.start()
    health = broker.wait_ready()
    assert health.ok and health.role == ROLE
    cluster_id = broker.cluster_id
    assert cluster_id is not None and cluster_id in health.detail

    produce(bootstrap, "orders.created", b"order-1")
    assert consume_from_beginning(bootstrap, "orders.created", 1) == [b"order-1"]

    broker.stop()
    assert not broker.runner.running()
    broker.start()
    health = broker.wait_ready()
    assert broker.cluster_id == cluster_id, "the data directory was formatted again"
    assert "user topics: 1" in health.detail
    assert consume_from_beginning(bootstrap, "orders.created", 1) == [b"order-1"]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda text: text.replace("node.id=1", "node.id=9"), "belongs to node.id '9'"),
        (lambda text: text[: len(text) // 3], "meta.properties"),
        (lambda text: "", "version None"),
    ],
    ids=["other-node", "truncated", "emptied"],
)
def test_damaged_meta_properties_is_refused(
    broker: KafkaBroker, damage: Callable[[str], str], expected: str
) -> None:
    broker.prepare()  # formats the data directory as a first start does, without the broker
    meta = broker.data_dir / "meta.properties"
    meta.write_text(damage(meta.read_text()))
    with pytest.raises(DataDirError, match="looks damaged") as refused:
        broker.start()
    assert expected in str(refused.value)
    assert not broker.runner.running()


def test_a_foreign_directory_is_refused(broker: KafkaBroker) -> None:
    broker.data_dir.mkdir(parents=True)
    (broker.data_dir / "meta.properties").write_text("node.id=1\n")
    with pytest.raises(DataDirError, match=MARKER):
        broker.start()
    assert not broker.runner.running()
    assert (broker.data_dir / "meta.properties").read_text() == "node.id=1\n"  # left untouched


def test_aiokafka_produces_and_consumes(broker: KafkaBroker) -> None:
    """The services' asyncio client against a Kafka 4 broker (which dropped old protocol
    versions): idempotent produce, group consume and commit, and a transaction."""
    bootstrap = broker.cluster.bootstrap_servers
    broker.start()
    broker.wait_ready()

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait("orders.paid", b"order-2", key=b"order-2")
        finally:
            await producer.stop()
        transactional = AIOKafkaProducer(bootstrap_servers=bootstrap,
                                         transactional_id="test-tx")
        await transactional.start()
        try:
            async with transactional.transaction():
                await transactional.send("orders.paid", b"order-3", key=b"order-3")
        finally:
            await transactional.stop()
        consumer = AIOKafkaConsumer("orders.paid", bootstrap_servers=bootstrap,
                                    group_id="payments", auto_offset_reset="earliest",
                                    enable_auto_commit=False, isolation_level="read_committed")
        await consumer.start()
        try:
            values: list[bytes] = []
            while len(values) < 2:
                message = await asyncio.wait_for(consumer.getone(), DELIVERY_TIMEOUT_S)
                assert message.value is not None
                values.append(message.value)
            await consumer.commit()
        finally:
            await consumer.stop()
        return values

    assert sorted(asyncio.run(round_trip())) == [b"order-2", b"order-3"]
