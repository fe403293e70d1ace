"""The one way to reach the local cloud's AWS API: boto3 clients bound to the model's endpoint.

The emulator's provisioning, the CloudFormation deploy and the tests all get their clients here,
so the endpoint, the region, the dummy credentials, the timeouts and the proxy bypass are decided
once. The credentials are fixed dummies on purpose: the emulator checks none, and a developer's
real AWS credentials (or ``AWS_PROFILE``) must never be sent to, or picked up for, a local call.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, overload

import boto3
import botocore.session
from botocore.config import Config

from stack.model import AwsEndpoint

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - not a secret: the emulator checks no credentials


def region_of(endpoint: AwsEndpoint) -> str:
    """The AWS region the endpoint serves: the name of the regional zone it is placed in."""
    zone = endpoint.node.zone
    if not zone.is_region:
        raise ValueError(
            f"{endpoint.name} is placed in {zone.label}, an Availability Zone; the AWS API is "
            f"regional, so place it in the region's zone in stack/come2us.py"
        )
    return zone.name


def aws_environment(endpoint: AwsEndpoint) -> dict[str, str]:
    """Environment variables that point any AWS SDK (boto3, the CLI, Java) at the emulator."""
    region = region_of(endpoint)
    return {
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
    }


def client_config(endpoint: AwsEndpoint, timeout: float = 5.0) -> Config:
    """Short timeouts and few retries (a local call that is slow is broken), no proxy, path-style
    S3 addressing (the endpoint is an IP address, not a DNS name buckets can be prefixed to)."""
    return Config(
        region_name=region_of(endpoint),
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 2, "mode": "standard"},
        proxies={},
        s3={"addressing_style": "path"},
    )


@overload
def aws_client(
    service: Literal["s3"], endpoint: AwsEndpoint, *, timeout: float = ...
) -> S3Client: ...
@overload
def aws_client(
    service: Literal["dynamodb"], endpoint: AwsEndpoint, *, timeout: float = ...
) -> DynamoDBClient: ...
@overload
def aws_client(service: str, endpoint: AwsEndpoint, *, timeout: float = ...) -> BaseClient: ...
def aws_client(service: str, endpoint: AwsEndpoint, *, timeout: float = 5.0) -> BaseClient:
    """A boto3 client for ``service`` at the local endpoint.

    Each call builds its own session: boto3's default session is shared module state and not
    safe to create clients from in several threads at once. The session reads no AWS config or
    credentials file and ignores ``AWS_PROFILE``: a profile made for real AWS (missing here, or
    with its own endpoint or credential process) must not change or break a local call.
    """
    # A session variable is (config-file key, environment variable, default, conversion):
    # "profile" with no environment variable is a profile that AWS_PROFILE cannot set.
    isolated = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    isolated.set_config_variable("config_file", os.devnull)
    isolated.set_config_variable("credentials_file", os.devnull)
    session = boto3.session.Session(
        botocore_session=isolated,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=region_of(endpoint),
    )
    client: BaseClient = session.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint.url, config=client_config(endpoint, timeout)
    )
    return client
