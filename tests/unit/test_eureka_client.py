"""Our Eureka client against the discovery server in process (httpx routed to the ASGI app)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from services.common.eureka import (
    OUT_OF_SERVICE,
    DiscoveryClient,
    DiscoveryUnavailable,
    EurekaClient,
    Instance,
    Registration,
)
from services.discovery.app import create_app
from services.discovery.codec import parse_instance
from services.discovery.models import InstanceStatus
from services.discovery.registry import Registry
from services.discovery.settings import DiscoverySettings
from stack.waiting import wait_for

UP_URL = "http://discovery-a/eureka"
DOWN_URL = "http://discovery-down/eureka"
FAILING_URL = "http://discovery-failing/eureka"

USER = Registration(app="user-service", instance_id="user-service:127.0.1.61:8081",
                    host="127.0.1.61", port=8081, metadata={"colour": "blue", "zone": "AZ-a"},
                    renewal_interval_s=0.05, lease_duration_s=5)


class Network:
    """Routes requests by host: to the in-process server, a refused connection, or a 503."""

    def __init__(self) -> None:
        self.app = create_app(DiscoverySettings(port=18761))
        self.registry: Registry = self.app.state.registry
        self._server = httpx.ASGITransport(app=self.app)
        self.calls: list[tuple[str, str, str]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.url.host, request.method, request.url.path))
        if request.url.host == "discovery-down":
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.host == "discovery-failing":
            return httpx.Response(503, request=request)
        return await self._server.handle_async_request(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def register_directly(self, app: str, instance_id: str, status: str = "UP") -> None:
        """Another service registering on its own (not through the client under test)."""
        registration = Registration(app=app, instance_id=instance_id, host="127.0.2.71",
                                    port=8083, status=status)
        self.registry.register(parse_instance(
            json.dumps(registration.document(1)).encode(), "application/json"))


def run(scenario: Callable[[Network], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario(Network()))


async def eventually(condition: Callable[[], tuple[bool | None, str]], what: str) -> None:
    """Wait (off the event loop, so the client's tasks keep running) until ``condition``."""
    await asyncio.to_thread(wait_for, condition, timeout=3.0, what=what, interval=0.02)


def test_register_renew_cancel_and_fetch() -> None:
    async def scenario(net: Network) -> None:
        eureka = EurekaClient([UP_URL], http=net.client())
        await eureka.register(USER, last_dirty_ms=1000)
        held = net.registry.instance("USER-SERVICE", USER.instance_id)
        assert held is not None
        assert held.metadata == {"colour": "blue", "zone": "AZ-a"}
        assert held.health_check_url == "http://127.0.1.61:8081/health"
        assert held.lease.duration_s == 5 and held.last_dirty_ts == 1000
        assert await eureka.renew("user-service", USER.instance_id, last_dirty_ms=1000)
        assert not await eureka.renew("user-service", "ghost")
        snapshot = await eureka.fetch_registry()
        assert snapshot.apps == {"USER-SERVICE": (Instance(
            "USER-SERVICE", USER.instance_id, "127.0.1.61", 8081, "UP",
            {"colour": "blue", "zone": "AZ-a"}),)}
        assert snapshot.hashcode == "UP_1_"
        assert await eureka.cancel("user-service", USER.instance_id)
        assert not await eureka.cancel("user-service", USER.instance_id)
        delta = await eureka.fetch_registry(delta=True)
        assert [i.instance_id for i in delta.deleted] == [USER.instance_id]
        assert delta.apps == {} and delta.hashcode == ""
        await eureka.aclose()

    run(scenario)


def test_each_url_is_tried_in_turn_and_the_one_that_answered_is_kept() -> None:
    async def scenario(net: Network) -> None:
        eureka = EurekaClient([DOWN_URL, FAILING_URL, UP_URL], http=net.client())
        await eureka.register(USER, last_dirty_ms=1)
        assert [host for host, _, _ in net.calls] == [
            "discovery-down", "discovery-failing", "discovery-a"]
        net.calls.clear()
        assert await eureka.renew("user-service", USER.instance_id)
        assert [host for host, _, _ in net.calls] == ["discovery-a"]

    run(scenario)


def test_no_server_answering_names_every_url() -> None:
    async def scenario(net: Network) -> None:
        eureka = EurekaClient([DOWN_URL, FAILING_URL], http=net.client())
        with pytest.raises(DiscoveryUnavailable) as raised:
            await eureka.fetch_registry()
        assert DOWN_URL in str(raised.value) and "HTTP 503" in str(raised.value)

    run(scenario)


def test_discovery_client_registers_heartbeats_and_cancels_on_stop() -> None:
    async def scenario(net: Network) -> None:
        discovery = DiscoveryClient([DOWN_URL, UP_URL], USER, refresh_interval_s=0.05,
                                    http=net.client())
        await discovery.start()
        assert discovery.registered
        assert [i.instance_id for i in discovery.instances("USER-SERVICE")] == [USER.instance_id]

        def renewed() -> tuple[bool | None, str]:
            renewals = [c for c in net.calls if c[1] == "PUT" and c[0] == "discovery-a"]
            return (True if len(renewals) >= 3 else None), f"{len(renewals)} heartbeats"

        await eventually(renewed, "three heartbeats")
        await discovery.stop()
        assert net.registry.instance("USER-SERVICE", USER.instance_id) is None
        assert not discovery.registered

    run(scenario)


def test_discovery_client_registers_again_when_the_server_forgot_it() -> None:
    async def scenario(net: Network) -> None:
        async with DiscoveryClient([UP_URL], USER, http=net.client()):
            net.registry.cancel("USER-SERVICE", USER.instance_id)  # e.g. a restarted server

            def back() -> tuple[bool | None, str]:
                held = net.registry.instance("USER-SERVICE", USER.instance_id)
                return (True if held else None), f"registered: {held is not None}"

            await eventually(back, "the client to register again after a 404")

    run(scenario)


def test_the_local_copy_follows_the_registry_with_up_instances_only() -> None:
    async def scenario(net: Network) -> None:
        changes: list[int] = []
        discovery = DiscoveryClient([UP_URL], None, refresh_interval_s=0.02,
                                    http=net.client(), on_change=lambda: changes.append(1))
        await discovery.start()
        assert discovery.instances("order-service") == []
        net.register_directly("order-service", "order-1")
        net.register_directly("order-service", "order-2", status=OUT_OF_SERVICE)

        def seen(expected: list[str]) -> Callable[[], tuple[bool | None, str]]:
            def attempt() -> tuple[bool | None, str]:
                ids = [i.instance_id for i in discovery.instances("Order-Service")]
                return (True if ids == expected else None), f"UP instances: {ids}"
            return attempt

        await eventually(seen(["order-1"]), "order-1 in the local copy")
        net.registry.update_status("ORDER-SERVICE", "order-2", InstanceStatus.UP)
        await eventually(seen(["order-1", "order-2"]), "order-2 once it is UP")
        net.registry.cancel("ORDER-SERVICE", "order-1")
        await eventually(seen(["order-2"]), "order-1 gone after its cancel")
        assert changes, "on_change was never called"
        # After the first full fetch, refreshes use the delta.
        assert any(path.endswith("/apps/delta") for _, _, path in net.calls)
        await discovery.stop()

    run(scenario)


def test_a_failed_discovery_does_not_stop_the_service() -> None:
    async def scenario(net: Network) -> None:
        discovery = DiscoveryClient([DOWN_URL], USER, refresh_interval_s=0.02,
                                    http=net.client())
        await discovery.start()  # no exception: the loops keep trying
        assert not discovery.registered
        assert discovery.instances("USER-SERVICE") == []
        await asyncio.sleep(0.1)
        await discovery.stop()

    run(scenario)


def test_update_status_registers_the_new_status() -> None:
    async def scenario(net: Network) -> None:
        async with DiscoveryClient([UP_URL], USER, http=net.client()) as discovery:
            await discovery.update_status("DOWN")
            held = net.registry.instance("USER-SERVICE", USER.instance_id)
            assert held is not None and held.status is InstanceStatus.DOWN

    run(scenario)


@pytest.mark.parametrize(("changes", "message"), [
    ({"port": 0}, "port"),
    ({"status": "SLEEPY"}, "status"),
    ({"renewal_interval_s": 5.0, "lease_duration_s": 5}, "shorter than the lease"),
])
def test_registrations_refuse_nonsense(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"app": "a", "instance_id": "i", "host": "h", "port": 1, **changes}
    with pytest.raises(ValueError, match=message):
        Registration(**fields)


def test_instances_hash_and_build_urls() -> None:
    instance = Instance("A", "a-1", "127.0.1.61", 8081, "UP", {"zone": "AZ-a"})
    assert instance.url == "http://127.0.1.61:8081"
    assert {instance, instance} == {instance}

