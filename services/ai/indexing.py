"""Keeping the vectors current: product and order events in, the database and the index out.

- At start every instance loads the stored vectors into its index (re-embedding rows whose text
  or model changed), then the consumer group applies events: a ``product.upserted`` is embedded
  (unless its text is unchanged) and stored with a new revision, then put in this instance's
  index; ``product.deleted`` leaves a tombstone; ``order.created``/``order.cancelled`` record
  or forget purchases.
- Kafka hands each partition to one instance of the group, so an instance also reads the rows
  that changed recently (`sync_once`) to apply what another instance stored. Revisions make
  both paths idempotent: an entry is only replaced by a newer revision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Protocol

from services.ai.domain.embedding import Encoder, Vectors
from services.ai.domain.index import VectorIndex
from services.ai.domain.products import Product
from services.ai.repository import StoredProduct
from services.common.events import Event, Handler
from services.common.topics import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    PRODUCT_DELETED,
    PRODUCT_UPSERTED,
)

log = logging.getLogger("come2us.ai.indexing")


class VectorStore(Protocol):
    """What indexing needs of the repository (`services.ai.repository.AiRepository`)."""

    async def find(self, product_id: str) -> StoredProduct | None: ...

    async def apply_upsert(self, event: Event, product: Product, vector: Vectors,
                           model_id: str) -> StoredProduct | None: ...

    async def apply_delete(self, event: Event, product_id: str) -> int | None: ...

    async def replace_vectors(self, updates: Sequence[tuple[str, Vectors, str]],
                              model_id: str) -> dict[str, int]: ...

    async def load_all(self) -> list[StoredProduct]: ...

    async def changed_within(self, window: timedelta) -> list[StoredProduct]: ...

    async def record_order(self, event: Event, order_id: str, user_id: str,
                           items: Sequence[tuple[str, int]]) -> bool: ...

    async def forget_order(self, event: Event, order_id: str) -> bool: ...


class Indexer:
    def __init__(self, store: VectorStore, index: VectorIndex, encoder: Encoder, *,
                 sync_window: timedelta = timedelta(seconds=60)) -> None:
        self.store = store
        self.index = index
        self.encoder = encoder
        self.sync_window = sync_window
        self.loaded = False
        self._last_sync: float | None = None  # monotonic time of the last successful sync

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Off the event loop: inference takes milliseconds per text."""
        return await asyncio.to_thread(self.encoder.encode, list(texts))

    def handlers(self) -> Mapping[str, Handler]:
        return {PRODUCT_UPSERTED: self.product_upserted, PRODUCT_DELETED: self.product_deleted,
                ORDER_CREATED: self.order_created, ORDER_CANCELLED: self.order_cancelled}

    # --- events -----------------------------------------------------------------------------

    async def product_upserted(self, event: Event) -> None:
        product = Product.from_event(event.data)
        stored = await self.store.find(product.product_id)
        vector = None if stored is None else stored.vector_for(product.text_hash, self.model_id)
        if vector is None:  # else only the price, status or stock changed: no inference
            vector = (await self.embed([product.text]))[0]
        applied = await self.store.apply_upsert(event, product, vector, self.model_id)
        if applied is not None and applied.vector is not None:
            self.index.upsert(applied.product, applied.vector, applied.revision)

    async def product_deleted(self, event: Event) -> None:
        product_id = str(event.data["productId"])
        revision = await self.store.apply_delete(event, product_id)
        if revision is not None:
            self.index.remove(product_id, revision)

    async def order_created(self, event: Event) -> None:
        data = event.data
        items = [(str(item["productId"]), int(item.get("quantity") or 1))
                 for item in data.get("items") or ()]
        await self.store.record_order(event, str(data["orderId"]), str(data["userId"]), items)

    async def order_cancelled(self, event: Event) -> None:
        await self.store.forget_order(event, str(event.data["orderId"]))

    # --- start and sync ---------------------------------------------------------------------

    async def load(self) -> int:
        """Fill the index from the database; returns how many products it holds."""
        rows = await self.store.load_all()
        await self._apply(rows)
        self.loaded = True
        self._last_sync = time.monotonic()
        log.info("index loaded: %d products (model %s)", len(self.index), self.model_id)
        return len(self.index)

    async def sync_once(self) -> int:
        """Apply rows another instance changed; a full reload after a gap longer than the
        window (rows changed during the gap would otherwise be missed)."""
        started = time.monotonic()
        gap = None if self._last_sync is None else started - self._last_sync
        if gap is None or gap > self.sync_window.total_seconds() / 2:
            rows = await self.store.load_all()
        else:
            rows = await self.store.changed_within(self.sync_window)
        changed = await self._apply(rows)
        self._last_sync = started
        return changed

    async def _apply(self, rows: Sequence[StoredProduct]) -> int:
        stale = [row for row in rows if not row.deleted and not row.current(self.model_id)
                 and row.revision > self.index.revision(row.product.product_id)]
        fresh = await self._reembed(stale)
        changed = 0
        for row in rows:
            product_id = row.product.product_id
            if row.deleted:
                changed += self.index.remove(product_id, row.revision)
            elif product_id in fresh:
                vector, revision = fresh[product_id]
                changed += self.index.upsert(row.product, vector, revision)
            elif row.vector is not None and row.current(self.model_id):
                changed += self.index.upsert(row.product, row.vector, row.revision)
        return changed

    async def _reembed(self, rows: Sequence[StoredProduct]) -> dict[str, tuple[Vectors, int]]:
        """Vectors of another model or of an older text (e.g. after a model upgrade)."""
        if not rows:
            return {}
        vectors = await self.embed([row.product.text for row in rows])
        updates = [(row.product.product_id, vector, row.product.text_hash)
                   for row, vector in zip(rows, vectors, strict=True)]
        revisions = await self.store.replace_vectors(updates, self.model_id)
        log.info("re-embedded %d products with %s", len(revisions), self.model_id)
        return {pid: (vector, revisions[pid]) for pid, vector, _ in updates if pid in revisions}


class SyncLoop:
    """Runs `Indexer.sync_once` every ``interval_s``; a failure is logged and retried."""

    def __init__(self, indexer: Indexer, interval_s: float) -> None:
        self.indexer = indexer
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ai-index-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.indexer.sync_once()
                failing = False
            except Exception as error:  # the database may be failing over: try again
                if not failing:
                    log.warning("index sync failed (%s: %s); retrying", type(error).__name__,
                                error)
                failing = True
