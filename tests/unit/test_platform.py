"""`Platform.validate`: a model where processes would fight is refused, every problem at once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stack.come2us import come2us
from stack.model import Platform


def test_the_come2us_model_is_valid() -> None:
    come2us().validate()


def test_every_node_of_the_model_is_counted_once() -> None:
    model = come2us()
    names = [node.name for node in model.nodes()]
    programs = [instance.node.name for instance in model.compute.instances]

    assert len(names) == len(set(names))
    assert names == ([node.name for node in model.backing_nodes()]
                     + [model.load_balancer.node.name] + programs)


def broken_model() -> Platform:
    """Three mistakes: a reused name, the Kafka controller's socket reused, a node out of zone."""
    model = come2us()
    data = model.data
    kafka = data.kafka
    az_a = model.region.zones[0]
    cache = replace(data.cache_redis.node, name="rds-writer", host=kafka.broker.host,
                    port=kafka.controller_port)
    standby = replace(data.postgres.standby, zone=az_a)  # still at 127.0.2.11
    return replace(model, data=replace(
        data,
        cache_redis=replace(data.cache_redis, node=cache),
        postgres=replace(data.postgres, standby=standby),
    ))


def test_every_problem_is_reported_in_one_message() -> None:
    with pytest.raises(ValueError) as refused:
        broken_model().validate()

    message = str(refused.value)
    assert message.startswith("invalid stack model: ")
    assert "node name 'rds-writer' is used 2 times" in message
    assert "127.0.1.41:9093 is given to 2 processes" in message
    assert "rds-standby at 127.0.2.11 is outside AZ-a" in message


def test_two_nodes_on_one_socket_are_refused() -> None:
    model = come2us()
    data = model.data
    replica = replace(data.session_redis.replica, host=data.cache_redis.node.host,
                      zone=data.cache_redis.node.zone)
    twin = replace(model, data=replace(
        data, session_redis=replace(data.session_redis, replica=replica)))

    with pytest.raises(ValueError, match=r"127\.0\.1\.31:6379 is given to 2 processes"):
        twin.validate()
