"""moto's server on a free loopback port, as an AwsEndpoint of the model, for the deploy tests.

The emulator target talks to an endpoint URL (as it does to the local cloud's), so these tests
run moto's real server in a thread rather than the in-process ``mock_aws``.
"""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Iterator
from ipaddress import IPv4Address

import httpx
from moto.server import ThreadedMotoServer

from stack.come2us import come2us
from stack.model import AwsEndpoint, Node, Timeouts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def moto_endpoint() -> Iterator[AwsEndpoint]:
    """Start a server; yield the endpoint; stop it. Use as a (module-scoped) fixture body."""
    # moto warns once per resource type its CloudFormation skips: known, and what the gap
    # module is for.
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    logging.getLogger("moto").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    regional = come2us().region.regional
    endpoint = AwsEndpoint("aws", Node("aws-endpoint", regional, IPv4Address("127.0.0.1"), port,
                                       "aws api"), Timeouts())
    try:
        yield endpoint
    finally:
        server.stop()


def reset(endpoint: AwsEndpoint) -> None:
    httpx.post(endpoint.url + "/moto-api/reset", timeout=10, trust_env=False).raise_for_status()
