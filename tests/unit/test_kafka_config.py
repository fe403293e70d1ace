"""The Kafka broker's configuration and data-directory checks, derived from the model (no JVM)."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest

from stack.come2us import come2us
from stack.local.backend import ProcessBackend
from stack.local.kafka import (
    BROKER_MAIN,
    KafkaBroker,
    check_meta_properties,
    kafka_components,
    new_cluster_id,
    parse_properties,
    render_properties,
    server_properties,
)
from stack.local.workspace import Workspace
from stack.model import KafkaCluster


@pytest.fixture
def cluster() -> KafkaCluster:
    return come2us().data.kafka


def test_listeners_bind_only_the_nodes_loopback_address(cluster: KafkaCluster) -> None:
    props = server_properties(cluster, Path("/data/kafka-1"))
    host = str(cluster.broker.host)
    assert host.startswith("127.")
    assert props["listeners"] == (
        f"PLAINTEXT://{host}:{cluster.broker.port},CONTROLLER://{host}:{cluster.controller_port}"
    )
    assert props["advertised.listeners"] == props["listeners"]
    bound = {url.split("//")[1].rsplit(":", 1)[0] for url in props["listeners"].split(",")}
    assert bound == {host}  # never the wildcard address
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_single_node_kraft_quorum_from_the_model(cluster: KafkaCluster) -> None:
    props = server_properties(cluster, Path("/data/kafka-1"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == str(cluster.node_id)
    assert props["controller.quorum.bootstrap.servers"] == (
        f"{cluster.broker.host}:{cluster.controller_port}"
    )
    assert "controller.quorum.voters" not in props  # the voter set is formatted into the data


def test_storage_and_topic_defaults(cluster: KafkaCluster) -> None:
    props = server_properties(cluster, Path("/data/kafka-1"))
    assert props["log.dirs"] == "/data/kafka-1"
    assert props["num.partitions"] == str(cluster.default_partitions)
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "default.replication.factor"):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"
    assert int(props["broker.heartbeat.interval.ms"]) < int(props["broker.session.timeout.ms"])


def test_a_changed_model_changes_the_configuration(cluster: KafkaCluster) -> None:
    moved = replace(cluster, broker=replace(cluster.broker, port=19092), controller_port=19093,
                    node_id=7, default_partitions=6)
    props = server_properties(moved, Path("/d"))
    assert ":19092," in props["listeners"] and props["listeners"].endswith(":19093")
    assert props["node.id"] == "7"
    assert props["num.partitions"] == "6"


def test_properties_render_and_parse_back(cluster: KafkaCluster) -> None:
    props = server_properties(cluster, Path("/data/kafka-1"))
    assert parse_properties(render_properties(props)) == props
    with pytest.raises(ValueError, match="line breaks"):
        render_properties({"log.dirs": "/a\nnode.id=2"})


def test_cluster_ids_have_kafkas_form() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def _formatted(path: Path, **meta: str) -> Path:
    values = {"node.id": "1", "directory.id": "sLjFPQq2QY6Iye4B5S1TcQ", "version": "1",
              "cluster.id": "6gMtPQQSR6GtSoBD1p1nQQ", **meta}
    (path / "__cluster_metadata-0").mkdir(parents=True)
    (path / "meta.properties").write_text(
        "#\n#Wed Nov 25 08:41:16 UTC 2026\n" + render_properties(values))
    return path


def test_meta_properties_of_this_node_passes(tmp_path: Path) -> None:
    assert check_meta_properties(_formatted(tmp_path), node_id=1) is None


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ({"node.id": "2"}, "belongs to node.id '2'"),
        ({"version": "0"}, "version '0'"),
        ({"cluster.id": "not-a-uuid"}, "no valid cluster.id"),
    ],
)
def test_meta_properties_of_another_node_or_format_is_refused(
    tmp_path: Path, meta: dict[str, str], problem: str
) -> None:
    found = check_meta_properties(_formatted(tmp_path, **meta), node_id=1)
    assert found is not None and problem in found


def test_missing_or_garbled_meta_properties_is_refused(tmp_path: Path) -> None:
    assert "missing" in (check_meta_properties(tmp_path, node_id=1) or "")
    (tmp_path / "meta.properties").write_bytes(b"\x00\xff garbage without separator")
    assert "unreadable" in (check_meta_properties(tmp_path, node_id=1) or "")


def test_missing_metadata_log_is_refused(tmp_path: Path) -> None:
    _formatted(tmp_path)
    (tmp_path / "__cluster_metadata-0").rmdir()
    assert "__cluster_metadata-0" in (check_meta_properties(tmp_path, node_id=1) or "")


def test_command_line_uses_the_models_heap_and_the_fetched_jars(
    tmp_path: Path, cluster: KafkaCluster
) -> None:
    broker = KafkaBroker(cluster, Workspace(tmp_path), ProcessBackend(), jars=tmp_path / "jars")
    argv = broker.process().argv
    assert argv[0] == "java"
    for flag in cluster.heap.split():
        assert flag in argv
    assert argv[argv.index("-cp") + 1] == f"{tmp_path / 'jars'}/*"
    assert argv[-2:] == (BROKER_MAIN, str(broker.server_config))
    assert f"-Dlog4j2.configurationFile={broker.log_config}" in argv


def test_components_of_the_model(tmp_path: Path) -> None:
    (broker,) = kafka_components(come2us(), Workspace(tmp_path), ProcessBackend())
    assert isinstance(broker, KafkaBroker)
    assert broker.name == "kafka-1" and broker.kind == "kafka"
    assert broker.data_dir == tmp_path / "data" / "kafka-1"
