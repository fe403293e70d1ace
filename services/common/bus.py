"""The refresh bus: Spring Cloud Bus's events on a Kafka topic, and the listener services run.

The config server's ``POST /actuator/busrefresh`` publishes a ``RefreshRemoteApplicationEvent``
as Spring Cloud Bus writes it (Jackson, type name in ``type``)::

    {"type": "RefreshRemoteApplicationEvent", "timestamp": 1732500000000,
     "originService": "config-server:8888:3f2a…", "destinationService": "gateway:**",
     "id": "5b0c…"}

Every service instance runs a `BusListener`. It consumes the topic in a consumer group of its
own (as Spring Cloud Stream's anonymous groups do), so every instance gets every event; it
keeps the events addressed to it — ``destinationService`` is an Ant-style pattern over the
instance's bus id ``{application}:{instance}`` with ``:`` as separator (``**``, ``gateway:**``,
``gateway:127.0.1.61:8080``) — and reloads its `RefreshableSettings` from the config server.

The listener never keeps a service from starting: it connects in the background, retries while
Kafka is down, and `wait_ready` says when it is subscribed. Events published while an instance
is not subscribed are not replayed (each group starts at the end of the topic): a refresh is a
nudge to re-read the config server, and a restarted instance reads it at start anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from services.common.settings import ConfigError, RefreshableSettings

log = logging.getLogger("come2us.bus")

DEFAULT_TOPIC = "springCloudBus"  # Spring Cloud Bus's spring.cloud.bus.destination default
REFRESH_EVENT = "RefreshRemoteApplicationEvent"
ALL = "**"
# Kafka error codes create_topics may answer with that mean "nothing to do".
_TOPIC_ALREADY_EXISTS = 36
_MAX_REPLICATION = 3
RETRY_INTERVAL_S = 2.0
POLL_TIMEOUT_MS = 500
# Event ids remembered to drop a redelivered event (a refresh is idempotent, but costs a fetch).
_REMEMBERED_EVENTS = 256


def destination_path(destination: str | None) -> str:
    """A destination as Spring's ``PathDestination`` normalises it.

    None means everyone (``**``); a bare application or ``app:index`` reaches all of its
    instances (``gateway`` -> ``gateway:**``); anything longer or ending in ``:**`` is kept.
    """
    path = destination or ALL
    if path != ALL and path.count(":") <= 1 and not path.lower().endswith(":**"):
        path += ":**"
    return path


def matches(pattern: str, bus_id: str) -> bool:
    """Spring's ``AntPathMatcher`` with ``:`` as separator: ``*`` in a segment, ``**`` spans."""
    if pattern == ALL:
        return True
    return _match_segments(pattern.split(":"), bus_id.split(":"))


def _match_segments(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == ALL:
        return any(_match_segments(rest, parts[skip:]) for skip in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match_segments(rest, parts[1:])


@dataclass(frozen=True)
class RemoteEvent:
    """A Spring Cloud Bus ``RemoteApplicationEvent`` (type, origin, destination, id, time)."""

    type: str
    origin_service: str | None
    destination_service: str
    id: str
    timestamp: int

    @classmethod
    def refresh(cls, origin_service: str, destination: str | None = None) -> RemoteEvent:
        """A new ``RefreshRemoteApplicationEvent`` addressed as Spring would address it."""
        return cls(REFRESH_EVENT, origin_service, destination_path(destination),
                   str(uuid.uuid4()), int(time.time() * 1000))

    def to_json(self) -> bytes:
        return json.dumps({
            "type": self.type,
            "timestamp": self.timestamp,
            "originService": self.origin_service,
            "destinationService": self.destination_service,
            "id": self.id,
        }).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RemoteEvent:
        """Parse an event; raises ValueError for anything that is not a bus event."""
        body = json.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise ValueError("not a Spring Cloud Bus event: no type")
        return cls(
            type=body["type"],
            origin_service=body.get("originService"),
            destination_service=str(body.get("destinationService") or ALL),
            id=str(body.get("id") or ""),
            timestamp=int(body.get("timestamp") or 0),
        )

    def is_for(self, bus_id: str) -> bool:
        return matches(self.destination_service, bus_id)


async def ensure_topic(bootstrap: str, topic: str, *, request_timeout_ms: int = 5000) -> None:
    """Create the bus topic (one partition, replicated up to 3 times) unless it exists.

    Spring Cloud Stream's binder creates its topics; doing the same means a listener that
    subscribes before anything was published is assigned the partition at once, instead of
    finding the topic only at its next metadata refresh (five minutes by default). The
    replication factor follows the cluster (1 locally, 3 on a three-broker MSK), since
    aiokafka cannot ask for "the broker's default".
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                request_timeout_ms=request_timeout_ms)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        replicas = max(1, min(_MAX_REPLICATION, len(cluster.get("brokers") or [])))
        response = await admin.create_topics([NewTopic(topic, 1, replicas)])
    finally:
        await admin.close()
    for entry in response.topic_errors:
        code = entry[1]
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise KafkaError(f"cannot create topic {topic}: error {code} {entry[2:]}")


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the listener when the group has given it the topic's partitions."""

    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.assigned.clear()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        if list(assigned):
            self.assigned.set()


class BusListener:
    """One service instance's ear on the bus: refreshes its settings when addressed.

    In an app's lifespan::

        listener = BusListener(bootstrap, "gateway", "127.0.1.61:8080", [settings])
        await listener.start()
        try:
            yield
        finally:
            await listener.stop()
    """

    def __init__(
        self,
        bootstrap: str,
        application: str,
        instance_id: str,
        settings: Iterable[RefreshableSettings[Any]] = (),
        *,
        topic: str = DEFAULT_TOPIC,
        retry_interval_s: float = RETRY_INTERVAL_S,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.bus_id = f"{application}:{instance_id}"
        self.group_id = f"anonymous.{application}.{uuid.uuid4().hex}"
        self.retry_interval_s = retry_interval_s
        self._settings = list(settings)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._seen: deque[str] = deque(maxlen=_REMEMBERED_EVENTS)
        # Bus events received (for anyone) and refreshes done (for us): a test or a status
        # page can tell "not addressed" from "not delivered".
        self.events = 0
        self.refreshes = 0
        self.last_error: str | None = None

    def add(self, settings: RefreshableSettings[Any]) -> None:
        self._settings.append(settings)

    @property
    def ready(self) -> bool:
        """Subscribed, partitions assigned, and positioned at the end of the topic."""
        return self._ready.is_set()

    async def start(self) -> None:
        """Start listening in the background; returns at once (see `wait_ready`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"bus-listener {self.bus_id}")

    async def wait_ready(self, timeout: float) -> None:
        """Wait until events published from now on will be seen; TimeoutError names why not."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"bus listener {self.bus_id} not subscribed to {self.topic} at "
                               f"{self.bootstrap} within {timeout:g} s; last error: "
                               f"{self.last_error or 'none'}") from None

    async def stop(self) -> None:
        """Leave the group and stop; safe to call twice or without start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ready.clear()

    async def __aenter__(self) -> BusListener:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Kafka down or unreachable: try again, never crash
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("bus listener %s: %s; retrying in %g s", self.bus_id,
                            self.last_error, self.retry_interval_s)
            self._ready.clear()
            await asyncio.sleep(self.retry_interval_s)

    async def _consume(self) -> None:
        await ensure_topic(self.bootstrap, self.topic)
        assignment = _Assignment()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id,
            auto_offset_reset="latest", enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.subscribe([self.topic], listener=assignment)
            while not assignment.assigned.is_set():  # the group join takes a moment
                await self._handle_batches(await consumer.getmany(timeout_ms=100))
            for partition in consumer.assignment():
                await consumer.position(partition)  # pin "latest" now, not at the first fetch
            self._ready.set()
            self.last_error = None
            log.info("bus listener %s subscribed to %s (group %s)", self.bus_id, self.topic,
                     self.group_id)
            while True:
                await self._handle_batches(await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS))
        finally:
            self._ready.clear()
            await consumer.stop()

    async def _handle_batches(self, batches: dict[TopicPartition, list[Any]]) -> None:
        for messages in batches.values():
            for message in messages:
                await self.handle(message.value)

    async def handle(self, raw: bytes | None) -> bool:
        """Act on one message of the topic; True if it refreshed this instance's settings."""
        if raw is None:
            return False
        try:
            event = RemoteEvent.from_json(raw)
        except (ValueError, TypeError) as error:
            log.warning("bus listener %s: ignoring a message that is not an event: %s",
                        self.bus_id, error)
            return False
        self.events += 1
        if event.type != REFRESH_EVENT or not event.is_for(self.bus_id):
            return False
        if event.id and event.id in self._seen:
            return False
        self._seen.append(event.id)
        log.info("bus listener %s: refresh %s from %s for %s", self.bus_id, event.id,
                 event.origin_service, event.destination_service)
        for settings in list(self._settings):
            try:
                await asyncio.to_thread(settings.refresh)
            except ConfigError as error:
                log.error("bus listener %s: refresh of %s failed, keeping the current "
                          "settings: %s", self.bus_id, settings.name, error)
        self.refreshes += 1
        return True
