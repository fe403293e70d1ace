"""Typed description of the COME2US deployment: placement, data layer, later network, compute."""

from stack.model.data import (
    AwsEndpoint,
    Bucket,
    DataLayer,
    KafkaCluster,
    LifecycleRule,
    LockTable,
    PostgresCluster,
    RedisCache,
    RedisSessionGroup,
    Timeouts,
)
from stack.model.placement import Node, Region, Zone
from stack.model.platform import Platform

__all__ = [
    "AwsEndpoint",
    "Bucket",
    "DataLayer",
    "KafkaCluster",
    "LifecycleRule",
    "LockTable",
    "Node",
    "Platform",
    "PostgresCluster",
    "RedisCache",
    "RedisSessionGroup",
    "Region",
    "Timeouts",
    "Zone",
]
