"""The refresh bus without Kafka: Spring's event JSON, destinations, and what a listener does
with each message it is handed."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from services.common.bus import (
    BusListener,
    RemoteEvent,
    destination_path,
    matches,
)
from services.common.settings import ConfigUnavailable, RefreshableSettings


class Flag(BaseModel):
    enabled: bool = False


class CountingSettings(RefreshableSettings[Flag]):
    """Settings whose reload flips the flag and counts; `fail` plays the config server down."""

    def __init__(self) -> None:
        super().__init__(Flag(), self._reload, name="demo")
        self.reloads = 0
        self.fail = False

    def _reload(self) -> Flag:
        self.reloads += 1
        if self.fail:
            raise ConfigUnavailable("config server http://x is unavailable")
        return Flag(enabled=not self.value.enabled)


@pytest.mark.parametrize(("given", "expected"), [
    (None, "**"),
    ("", "**"),
    ("**", "**"),
    ("gateway", "gateway:**"),
    ("gateway:**", "gateway:**"),
    ("gateway:8080", "gateway:8080:**"),
    ("gateway:127.0.1.61:8080", "gateway:127.0.1.61:8080"),
])
def test_destinations_are_normalised_as_springs_path_destination(given: str | None,
                                                                 expected: str) -> None:
    assert destination_path(given) == expected


@pytest.mark.parametrize(("pattern", "bus_id", "expected"), [
    ("**", "gateway:127.0.1.61:8080", True),
    ("gateway:**", "gateway:127.0.1.61:8080", True),
    ("gateway:**", "gateway", True),
    ("gateway:**", "product-service:127.0.1.71:8080", False),
    ("gateway:127.0.1.61:8080", "gateway:127.0.1.61:8080", True),
    ("gateway:127.0.1.61:8080", "gateway:127.0.1.62:8080", False),
    ("gateway:*:8080", "gateway:127.0.1.62:8080", True),
    ("*-service:**", "product-service:a", True),
    ("gateway:8080:**", "gateway:8080:3f2a", True),
])
def test_destination_matching(pattern: str, bus_id: str, expected: bool) -> None:
    assert matches(pattern, bus_id) is expected


def test_refresh_event_json_is_spring_cloud_bus_shaped() -> None:
    event = RemoteEvent.refresh("config-server:8888:abc", "gateway")
    body = json.loads(event.to_json())
    assert body["type"] == "RefreshRemoteApplicationEvent"
    assert body["originService"] == "config-server:8888:abc"
    assert body["destinationService"] == "gateway:**"
    assert len(body["id"]) == 36
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_700_000_000_000
    assert RemoteEvent.from_json(event.to_json()) == event


def test_events_written_by_java_are_read() -> None:
    raw = (b'{"type":"RefreshRemoteApplicationEvent","timestamp":1732500000000,'
           b'"originService":"config-server:8888:x","destinationService":"gateway:**",'
           b'"id":"5b0c","extra":"ignored"}')
    event = RemoteEvent.from_json(raw)
    assert (event.type, event.destination_service, event.id) == (
        "RefreshRemoteApplicationEvent", "gateway:**", "5b0c")


def listener_with(settings: CountingSettings, instance: str = "127.0.1.61:8080") -> BusListener:
    return BusListener("127.0.0.1:1", "gateway", instance, [settings])


def test_a_listener_refreshes_on_events_addressed_to_it() -> None:
    settings = CountingSettings()
    listener = listener_with(settings)
    assert listener.bus_id == "gateway:127.0.1.61:8080"
    for_all = RemoteEvent.refresh("cs", None).to_json()
    for_gateway = RemoteEvent.refresh("cs", "gateway:**").to_json()
    for_me = RemoteEvent.refresh("cs", "gateway:127.0.1.61:8080").to_json()
    for_other = RemoteEvent.refresh("cs", "gateway:127.0.1.62:8080").to_json()
    for_products = RemoteEvent.refresh("cs", "product-service").to_json()

    async def feed() -> list[bool]:
        return [await listener.handle(raw) for raw in
                (for_all, for_gateway, for_me, for_other, for_products)]

    assert asyncio.run(feed()) == [True, True, True, False, False]
    assert settings.reloads == 3
    assert listener.refreshes == 3


def test_a_listener_ignores_noise_and_repeats() -> None:
    settings = CountingSettings()
    listener = listener_with(settings)
    event = RemoteEvent.refresh("cs").to_json()
    ack = json.dumps({"type": "AckRemoteApplicationEvent", "destinationService": "**",
                      "id": "1", "timestamp": 1}).encode()

    async def feed() -> list[bool]:
        return [await listener.handle(raw) for raw in
                (b"not json", b"[]", b'{"type": 1}', None, ack, event, event)]

    assert asyncio.run(feed()) == [False] * 5 + [True, False]
    assert settings.reloads == 1  # the redelivered event is dropped


def test_a_failed_reload_keeps_the_listener_going() -> None:
    settings = CountingSettings()
    settings.fail = True
    listener = listener_with(settings)

    async def feed() -> bool:
        return await listener.handle(RemoteEvent.refresh("cs").to_json())

    assert asyncio.run(feed()) is True
    assert settings.value == Flag()  # unchanged


def test_wait_ready_names_the_bus_when_kafka_is_unreachable() -> None:
    listener = listener_with(CountingSettings())
    listener.retry_interval_s = 0.05

    async def attempt() -> None:
        await listener.start()
        try:
            await listener.wait_ready(0.5)
        finally:
            await listener.stop()

    with pytest.raises(TimeoutError, match=r"not subscribed to springCloudBus at 127\.0\.0\.1:1"):
        asyncio.run(attempt())
