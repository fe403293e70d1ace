"""The publishing side of the refresh bus: ``busrefresh`` becomes an event on the Kafka topic.

The producer connects on the first refresh, not at start: serving configuration must not depend
on Kafka (services need their settings to start even while Kafka, in AZ-a, is down), and a
refresh while Kafka is unreachable fails that one request with a clear 503 and is retried
fresh by the next one.

Messages carry the event JSON only, no headers: Spring Cloud Stream consumers take a message
without a ``contentType`` header as ``application/json``, which it is.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from services.common.bus import RemoteEvent, ensure_topic

log = logging.getLogger("come2us.config.bus")

PUBLISH_TIMEOUT_S = 5.0


class BusUnavailable(RuntimeError):
    """The event could not be published; the message names the bootstrap servers and topic."""


class BusPublisher:
    """Publishes Spring Cloud Bus events on one topic, connecting lazily."""

    def __init__(self, bootstrap: str, topic: str, origin_service: str,
                 timeout_s: float = PUBLISH_TIMEOUT_S) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.origin_service = origin_service
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def publish_refresh(self, destination: str | None = None) -> RemoteEvent:
        """Publish a RefreshRemoteApplicationEvent for ``destination`` (None: everyone)."""
        event = RemoteEvent.refresh(self.origin_service, destination)
        async with self._lock:
            try:
                producer = await asyncio.wait_for(self._connected(), self.timeout_s)
                await asyncio.wait_for(producer.send_and_wait(self.topic, event.to_json()),
                                       self.timeout_s)
            except Exception as error:
                await self._drop_producer()
                raise BusUnavailable(
                    f"cannot publish on topic {self.topic} at {self.bootstrap}: "
                    f"{type(error).__name__}: {error or 'timed out'}"
                ) from error
        log.info("published %s %s for %s", event.type, event.id, event.destination_service)
        return event

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is None:
            await ensure_topic(self.bootstrap, self.topic,
                               request_timeout_ms=int(self.timeout_s * 1000))
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                        request_timeout_ms=int(self.timeout_s * 1000))
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as error:  # already broken; nothing more to release
                log.debug("stopping a failed producer: %s", error)

    async def close(self) -> None:
        async with self._lock:
            await self._drop_producer()
