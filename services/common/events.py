"""Domain events on Kafka: the envelope, a publisher, a consumer loop, and the outbox.

- **Envelope.** ``{"id", "type", "occurredAt", "data"}``; ``id`` is what consumers deduplicate
  on, because Kafka delivers at least once.
- **Outbox.** A service that must publish *if and only if* its transaction commits writes the
  event into its own ``outbox`` table in that transaction; `OutboxRelay` publishes committed
  rows in order and marks them sent. Kafka being down delays events, never loses or invents
  them.
- **Consumers** commit their offset only after the handler succeeded, so a crash re-delivers;
  handlers record the event ids they have applied (`first_delivery`) to stay idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger("come2us.events")

RETRY_S = 1.0
RELAY_POLL_S = 0.2
RELAY_BATCH = 100


@dataclass(frozen=True)
class Event:
    type: str
    data: Mapping[str, Any]
    id: str = ""
    occurred_at: str = ""

    @classmethod
    def new(cls, type_: str, data: Mapping[str, Any]) -> Event:
        return cls(type_, data, uuid.uuid4().hex, datetime.now(UTC).isoformat())

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "occurredAt": self.occurred_at,
                "data": dict(self.data)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Event:
        return cls(str(raw["type"]), dict(raw.get("data") or {}), str(raw["id"]),
                   str(raw.get("occurredAt", "")))


def encode(event: Event) -> bytes:
    return json.dumps(event.to_json(), separators=(",", ":")).encode()


def decode(value: bytes) -> Event:
    return Event.from_json(json.loads(value))


def outbox_table(metadata: MetaData) -> Table:
    """The outbox of one service (include it in the service's metadata and migrations)."""
    return Table(
        "outbox", metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", String(32), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True, index=True),
    )


def processed_events_table(metadata: MetaData) -> Table:
    """Ids of the events a consumer has applied: the record that makes it idempotent."""
    return Table(
        "processed_events", metadata,
        Column("event_id", String(32), primary_key=True),
        Column("type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False,
               server_default=func.now()),
    )


async def add_to_outbox(session: AsyncSession, outbox: Table, topic: str, key: str,
                        event: Event) -> None:
    """Record ``event`` for publication, inside the caller's transaction."""
    await session.execute(insert(outbox).values(
        event_id=event.id, topic=topic, key=key, payload=event.to_json()))


async def first_delivery(session: AsyncSession, processed: Table, event: Event) -> bool:
    """Mark ``event`` applied in the caller's transaction; False if it already was."""
    result = await session.execute(
        pg_insert(processed).values(event_id=event.id, type=event.type)
        .on_conflict_do_nothing(index_elements=["event_id"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


class Publisher:
    """One idempotent, acks=all producer per service process.

    The aiokafka producer is made on first use, inside the running event loop (it binds to the
    loop it is created in, so a `build()` outside the loop must not create it), and made anew
    after a failed start: a producer whose start failed cannot be started again.
    """

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all",
            enable_idempotence=True, request_timeout_ms=5000)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def publish(self, topic: str, key: str, event: Event) -> None:
        await self.start()
        assert self._producer is not None
        await self._producer.send_and_wait(topic, encode(event), key=key.encode())

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


class OutboxRelay:
    """Publishes committed outbox rows in order; waits and retries while Kafka is down."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Table,
                 publisher: Publisher) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.publisher = publisher
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    def nudge(self) -> None:
        """Publish soon: called after a commit that added events."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def relay_once(self) -> int:
        """Publish what is pending; returns how many rows were sent."""
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(
                select(self.outbox).where(self.outbox.c.published_at.is_(None))
                .order_by(self.outbox.c.seq).limit(RELAY_BATCH)
                .with_for_update(skip_locked=True))).mappings().all()
            for row in rows:
                await self.publisher.publish(row["topic"], row["key"],
                                             Event.from_json(row["payload"]))
                await session.execute(update(self.outbox)
                                      .where(self.outbox.c.seq == row["seq"])
                                      .values(published_at=func.now()))
            return len(rows)

    async def _run(self) -> None:
        outage = False
        while True:
            try:
                sent = await self.relay_once()
                if outage:
                    log.info("outbox relay: publishing again")
                    outage = False
                if sent == RELAY_BATCH:
                    continue
            except (KafkaError, OSError) as error:
                if not outage:
                    log.warning("outbox relay: cannot publish (%s); events wait in the outbox",
                                error)
                    outage = True
                await asyncio.sleep(RETRY_S)
                continue
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(RETRY_S)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RELAY_POLL_S)


Handler = Callable[[Event], Awaitable[None]]


class Consumer:
    """A consumer-group loop: handle each event, then commit; a failing handler is retried."""

    def __init__(self, bootstrap: str, group: str, topics: list[str],
                 handlers: Mapping[str, Handler]) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = topics
        self.handlers = dict(handlers)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                *self.topics, bootstrap_servers=self.bootstrap, group_id=self.group,
                enable_auto_commit=False, auto_offset_reset="earliest")
            try:
                await consumer.start()
                async for message in consumer:
                    await self._handle(message.value)
                    await consumer.commit()
            except (KafkaError, OSError) as error:
                log.warning("consumer %s: %s; reconnecting", self.group, error)
                await asyncio.sleep(RETRY_S)
            finally:
                await consumer.stop()

    async def _handle(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            event = decode(value)
        except (ValueError, KeyError) as error:
            log.error("consumer %s: skipping an undecodable message: %s", self.group, error)
            return
        handler = self.handlers.get(event.type)
        if handler is None:
            return
        while True:  # a handler failure is retried, never skipped: events are not dropped
            try:
                await handler(event)
                return
            except Exception:
                log.exception("consumer %s: handling %s %s failed; retrying", self.group,
                              event.type, event.id)
                await asyncio.sleep(RETRY_S)


@dataclass
class Messaging:
    """A service's Kafka side — the relay of its outbox and its consumer — with its lifespan.

    Made in the service's `build()` and started from the runtime's ``starting`` hooks, because
    aiokafka's clients belong to the event loop that is running when they are made.
    """

    bootstrap: str
    client_id: str
    sessions: async_sessionmaker[AsyncSession] | None = None
    outbox: Table | None = None
    group: str | None = None
    topics: Sequence[str] = ()
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    _publisher: Publisher | None = None
    _relay: OutboxRelay | None = None
    _consumer: Consumer | None = None

    async def start(self) -> None:
        if self.outbox is not None and self.sessions is not None:
            self._publisher = Publisher(self.bootstrap, self.client_id)
            self._relay = OutboxRelay(self.sessions, self.outbox, self._publisher)
            self._relay.start()
        if self.group is not None:
            self._consumer = Consumer(self.bootstrap, self.group, list(self.topics),
                                      self.handlers)
            self._consumer.start()

    def nudge(self) -> None:
        """A commit added events to the outbox: publish them now rather than at the next poll."""
        if self._relay is not None:
            self._relay.nudge()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._relay is not None:
            await self._relay.stop()
        if self._publisher is not None:
            await self._publisher.stop()
