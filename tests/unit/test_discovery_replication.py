"""Two (and three) discovery servers in process, replicating to each other over httpx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from services.common.eureka import EurekaClient, Registration
from services.discovery.app import create_app
from services.discovery.models import InstanceStatus
from services.discovery.registry import Registry
from services.discovery.replication import REPLICATION_HEADER, PeerAwareRegistry
from services.discovery.settings import DiscoverySettings

A, B, C = "discovery-a", "discovery-b", "discovery-c"
PORT = 18761

USER = Registration(app="user-service", instance_id="u1", host="127.0.1.61", port=8081,
                    metadata={"zone": "AZ-a"})


def url(host: str) -> str:
    return f"http://{host}:{PORT}/eureka"


@dataclass
class Cluster:
    """Servers by host name, one httpx transport that reaches them all, and a request log."""

    nodes: dict[str, PeerAwareRegistry] = field(default_factory=dict)
    transports: dict[str, httpx.ASGITransport] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    calls: list[tuple[str, str, str, bool]] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.calls.append((host, request.method, request.url.path,
                           request.headers.get(REPLICATION_HEADER) == "true"))
        if host in self.down or host not in self.transports:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.transports[host].handle_async_request(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def add(self, host: str, peers: list[str]) -> PeerAwareRegistry:
        settings = DiscoverySettings(host=host, port=PORT, peers=tuple(url(p) for p in peers))
        app = create_app(settings, http=self.client())
        self.transports[host] = httpx.ASGITransport(app=app)
        node: PeerAwareRegistry = app.state.node
        self.nodes[host] = node
        return node

    def registry(self, host: str) -> Registry:
        return self.nodes[host].registry

    async def settle(self) -> None:
        """Wait until every queued replication has been sent (and answered)."""
        for _ in range(3):  # a 404 or 409 answer can queue nothing, but may call again
            for node in self.nodes.values():
                for peer in node.peers:
                    await peer.drain()


@contextlib.asynccontextmanager
async def running(cluster: Cluster) -> AsyncIterator[None]:
    senders = [asyncio.create_task(node.run()) for node in cluster.nodes.values()]
    try:
        yield
    finally:
        for sender in senders:
            sender.cancel()
        await asyncio.gather(*senders, return_exceptions=True)


def pair() -> Cluster:
    cluster = Cluster()
    cluster.add(A, [B])
    cluster.add(B, [A])
    return cluster


def test_registrations_heartbeats_status_and_cancels_reach_the_peer() -> None:
    async def scenario() -> None:
        cluster = pair()
        async with running(cluster):
            eureka = EurekaClient([url(A)], http=cluster.client())
            await eureka.register(USER, last_dirty_ms=1000)
            await cluster.settle()
            copy = cluster.registry(B).instance("USER-SERVICE", "u1")
            assert copy is not None and copy.metadata == {"zone": "AZ-a"}
            # B applied it as a replica and did not send it back to A.
            assert (A, "POST", "/eureka/apps/USER-SERVICE", True) not in cluster.calls
            assert (B, "POST", "/eureka/apps/USER-SERVICE", True) in cluster.calls

            assert await eureka.renew("user-service", "u1", last_dirty_ms=1000)
            await cluster.settle()
            assert (B, "PUT", "/eureka/apps/USER-SERVICE/u1", True) in cluster.calls

            assert cluster.nodes[A].update_status("USER-SERVICE", "u1",
                                                  InstanceStatus.OUT_OF_SERVICE, None,
                                                  replication=False)
            await cluster.settle()
            copy = cluster.registry(B).instance("USER-SERVICE", "u1")
            assert copy is not None and copy.status is InstanceStatus.OUT_OF_SERVICE

            assert await eureka.cancel("user-service", "u1")
            await cluster.settle()
            assert cluster.registry(B).instance("USER-SERVICE", "u1") is None

    asyncio.run(scenario())


def test_a_peer_that_lost_an_instance_gets_it_back_on_the_next_heartbeat() -> None:
    async def scenario() -> None:
        cluster = pair()
        async with running(cluster):
            eureka = EurekaClient([url(A)], http=cluster.client())
            await eureka.register(USER, last_dirty_ms=1000)
            await cluster.settle()
            cluster.registry(B).cancel("USER-SERVICE", "u1", replication=True)  # B restarted
            assert await eureka.renew("user-service", "u1", last_dirty_ms=1000)
            await cluster.settle()
            assert cluster.registry(B).instance("USER-SERVICE", "u1") is not None

    asyncio.run(scenario())


def test_a_peer_with_a_newer_copy_wins() -> None:
    async def scenario() -> None:
        cluster = pair()
        async with running(cluster):
            eureka = EurekaClient([url(A)], http=cluster.client())
            await eureka.register(USER, last_dirty_ms=1000)
            await cluster.settle()
            # The instance re-registered on B as DOWN with a newer copy (e.g. A was unreachable).
            newer = cluster.registry(B).instance("USER-SERVICE", "u1")
            assert newer is not None
            newer.last_dirty_ts, newer.status = 2000, InstanceStatus.DOWN
            cluster.registry(B).register(newer, replication=True)
            # A's heartbeat replicates the older copy; B answers 409 with its own; A adopts it.
            assert await eureka.renew("user-service", "u1", last_dirty_ms=1000)
            await cluster.settle()
            adopted = cluster.registry(A).instance("USER-SERVICE", "u1")
            assert adopted is not None
            assert (adopted.last_dirty_ts, adopted.status) == (2000, InstanceStatus.DOWN)

    asyncio.run(scenario())


def test_a_starting_server_copies_the_registry_of_the_first_peer_that_answers() -> None:
    async def scenario() -> None:
        cluster = pair()
        async with running(cluster):
            eureka = EurekaClient([url(A)], http=cluster.client())
            await eureka.register(USER, last_dirty_ms=1000)
            await cluster.settle()
            cluster.nodes[A].update_status("USER-SERVICE", "u1", InstanceStatus.OUT_OF_SERVICE,
                                           None, replication=False)
            await cluster.settle()
            cluster.down.add(A)
            newcomer = cluster.add(C, [A, B])
            before = len(cluster.calls)
            assert await newcomer.sync_from_peers() == 1
            copy = newcomer.registry.instance("USER-SERVICE", "u1")
            assert copy is not None
            # the override travels with the copy, and the copy is not sent on again
            assert copy.overridden_status is InstanceStatus.OUT_OF_SERVICE
            assert copy.status is InstanceStatus.OUT_OF_SERVICE
            assert [(host, method) for host, method, _, _ in cluster.calls[before:]] == [
                (A, "GET"), (B, "GET")]

    asyncio.run(scenario())


def test_an_unreachable_peer_does_not_fail_the_client() -> None:
    async def scenario() -> None:
        cluster = pair()
        cluster.down.add(B)
        async with running(cluster):
            eureka = EurekaClient([url(A)], http=cluster.client())
            await eureka.register(USER, last_dirty_ms=1000)
            assert await eureka.renew("user-service", "u1", last_dirty_ms=1000)
            await cluster.settle()
            assert cluster.registry(A).instance("USER-SERVICE", "u1") is not None
            # once B is back, the next heartbeat repairs it (404 -> registration)
            cluster.down.discard(B)
            assert await eureka.renew("user-service", "u1", last_dirty_ms=1000)
            await cluster.settle()
            assert cluster.registry(B).instance("USER-SERVICE", "u1") is not None

    asyncio.run(scenario())


def test_a_server_listed_among_its_own_peers_skips_itself() -> None:
    settings = DiscoverySettings(host="127.0.1.151", port=8761, peers=(
        "http://127.0.1.151:8761/eureka/", "http://127.0.2.151:8761"))
    assert settings.peers == ("http://127.0.2.151:8761/eureka",)
