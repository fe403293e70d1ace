"""Integration tests run real servers, on a loopback block of their own.

Servers started here bind the model's addresses (or free ports beside them). Moving the whole
model to block 200+N keeps them clear of the test session's local cloud (block N) and of a
cloud a developer started, so the suite's order never matters.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from stack.come2us import come2us
from stack.local.backend import ProcessBackend
from stack.local.kafka import KafkaBroker
from stack.local.kafka_jars import ensure_kafka_jars
from stack.local.workspace import Workspace
from stack.model.placement import BLOCK_ENV, loopback_block


@pytest.fixture(scope="module", autouse=True)
def integration_block() -> Iterator[int]:
    block = (loopback_block() + 200) % 255
    with pytest.MonkeyPatch.context() as env:
        env.setenv(BLOCK_ENV, str(block))
        yield block


def free_port(host: IPv4Address) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((str(host), 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker of the module's own, on free ports of the model's broker address."""
    model = come2us().data.kafka
    host = model.broker.host
    cluster = replace(model, broker=replace(model.broker, port=free_port(host)),
                      controller_port=free_port(host))
    workspace = Workspace(Path(tmp_path_factory.mktemp("kafka")) / "come2us")
    workspace.ensure()
    broker = KafkaBroker(cluster, workspace, ProcessBackend(), jars=ensure_kafka_jars())
    try:
        broker.start()
        broker.wait_ready()
        yield cluster.bootstrap_servers
    finally:
        broker.stop()
