"""Event handling of the AI service: idempotent, skips inference when only the price changed,
and an instance catches up with rows another instance stored."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import numpy as np

from services.ai.domain.embedding import Encoder, Vectors
from services.ai.domain.index import VectorIndex
from services.ai.domain.products import Product
from services.ai.indexing import Indexer
from services.ai.repository import StoredProduct
from services.common.events import Event
from services.common.topics import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    PRODUCT_DELETED,
    PRODUCT_UPSERTED,
)

DIMENSIONS = 8
MODEL = "fake-model"


class HashEncoder(Encoder):
    """A deterministic stand-in: a unit vector derived from the text's hash; counts texts."""

    def __init__(self, model_id: str = MODEL) -> None:
        super().__init__(tokenizer=None, session=None, model_id=model_id,  # type: ignore[arg-type]
                         dimensions=DIMENSIONS)
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.texts += texts
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:DIMENSIONS], dtype=np.uint8)
                .astype(np.float32) + 1 for t in texts]
        matrix = np.array(rows, dtype=np.float32).reshape(len(texts), DIMENSIONS)
        result: Vectors = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        return result


class FakeStore:
    """The repository's contract in memory: processed ids, one revision counter, tombstones."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredProduct] = {}
        self.processed: set[str] = set()
        self.orders: dict[str, tuple[str, list[tuple[str, int]]]] = {}
        self.recent: set[str] = set()  # what changed_within returns
        self.revision = 0

    def _next(self) -> int:
        self.revision += 1
        return self.revision

    def _first(self, event: Event) -> bool:
        if event.id in self.processed:
            return False
        self.processed.add(event.id)
        return True

    async def find(self, product_id: str) -> StoredProduct | None:
        return self.rows.get(product_id)

    async def apply_upsert(self, event: Event, product: Product, vector: Vectors,
                           model_id: str) -> StoredProduct | None:
        if not self._first(event):
            return None
        row = StoredProduct(product, vector, False, self._next(), model_id, product.text_hash)
        self.rows[product.product_id] = row
        return row

    async def apply_delete(self, event: Event, product_id: str) -> int | None:
        if not self._first(event) or product_id not in self.rows:
            return None
        row = replace(self.rows[product_id], vector=None, deleted=True, revision=self._next())
        self.rows[product_id] = row
        return row.revision

    async def replace_vectors(self, updates: Sequence[tuple[str, Vectors, str]],
                              model_id: str) -> dict[str, int]:
        applied = {}
        for product_id, vector, text_hash in updates:
            row = replace(self.rows[product_id], vector=vector, model_id=model_id,
                          text_hash=text_hash, revision=self._next())
            self.rows[product_id] = row
            applied[product_id] = row.revision
        return applied

    async def load_all(self) -> list[StoredProduct]:
        return list(self.rows.values())

    async def changed_within(self, window: timedelta) -> list[StoredProduct]:
        return [self.rows[p] for p in self.recent]

    async def record_order(self, event: Event, order_id: str, user_id: str,
                           items: Sequence[tuple[str, int]]) -> bool:
        if not self._first(event):
            return False
        self.orders[order_id] = (user_id, list(items))
        return True

    async def forget_order(self, event: Event, order_id: str) -> bool:
        if not self._first(event):
            return False
        self.orders.pop(order_id, None)
        return True


def upserted(product_id: str, name: str, *, price: int = 1000, status: str = "ACTIVE",
             description: str = "") -> Event:
    return Event.new(PRODUCT_UPSERTED, {"productId": int(product_id), "storeId": 1,
                                        "categoryId": 2, "name": name,
                                        "description": description, "price": price,
                                        "status": status})


def indexer(store: FakeStore, encoder: HashEncoder | None = None) -> Indexer:
    return Indexer(store, VectorIndex(DIMENSIONS), encoder or HashEncoder(),
                   sync_window=timedelta(seconds=60))


def test_an_upsert_is_embedded_stored_and_searchable_and_a_redelivery_changes_nothing() -> None:
    store, encoder = FakeStore(), HashEncoder()
    ai = indexer(store, encoder)
    event = upserted("7", "Trail running shoe", description="Grippy")
    asyncio.run(ai.product_upserted(event))
    asyncio.run(ai.product_upserted(event))  # Kafka delivers at least once
    assert encoder.texts == ["Trail running shoe. Grippy"]  # the redelivery: no inference
    assert store.rows["7"].revision == 1 and store.revision == 1
    assert ai.index.revision("7") == 1
    stored = ai.index.product("7")
    assert stored is not None and stored.store_id == "1" and stored.category_id == "2"


def test_a_price_change_reuses_the_vector_and_a_new_text_is_embedded_again() -> None:
    store, encoder = FakeStore(), HashEncoder()
    ai = indexer(store, encoder)
    asyncio.run(ai.product_upserted(upserted("7", "Shoe")))
    asyncio.run(ai.product_upserted(upserted("7", "Shoe", price=900)))
    assert encoder.texts == ["Shoe"]
    product = ai.index.product("7")
    assert product is not None and product.price == 900
    asyncio.run(ai.product_upserted(upserted("7", "Running shoe")))
    assert encoder.texts == ["Shoe", "Running shoe"]


def test_a_deletion_leaves_a_tombstone_and_empties_the_index_entry() -> None:
    store = FakeStore()
    ai = indexer(store)
    asyncio.run(ai.product_upserted(upserted("7", "Shoe")))
    asyncio.run(ai.product_deleted(Event.new(PRODUCT_DELETED, {"productId": 7})))
    assert store.rows["7"].deleted and "7" not in ai.index
    asyncio.run(ai.product_deleted(Event.new(PRODUCT_DELETED, {"productId": 8})))  # unknown


def test_orders_record_purchases_and_a_cancellation_forgets_them() -> None:
    store = FakeStore()
    ai = indexer(store)
    created = Event.new(ORDER_CREATED, {"orderId": 5, "userId": 42, "amount": 3000,
                                        "currency": "KRW", "couponCode": None,
                                        "items": [{"productId": 7, "quantity": 2,
                                                   "unitPrice": 1500}]})
    asyncio.run(ai.order_created(created))
    asyncio.run(ai.order_created(created))
    assert store.orders == {"5": ("42", [("7", 2)])}
    asyncio.run(ai.order_cancelled(Event.new(ORDER_CANCELLED, {"orderId": 5, "userId": 42,
                                                               "reason": "changed mind"})))
    assert store.orders == {}
    assert set(ai.handlers()) == {PRODUCT_UPSERTED, PRODUCT_DELETED, ORDER_CREATED,
                                  ORDER_CANCELLED}


def test_another_instance_catches_up_through_the_sync() -> None:
    store = FakeStore()
    first, second = indexer(store), indexer(store)
    asyncio.run(second.load())
    asyncio.run(first.product_upserted(upserted("7", "Shoe")))
    asyncio.run(first.product_upserted(upserted("8", "Pan")))
    asyncio.run(first.product_deleted(Event.new(PRODUCT_DELETED, {"productId": 8})))
    store.recent = {"7", "8"}
    assert asyncio.run(second.sync_once()) == 2  # 7 added; 8 only ever seen as a tombstone
    assert "7" in second.index and "8" not in second.index
    assert asyncio.run(second.sync_once()) == 0  # the same rows again: nothing to do


def test_load_re_embeds_vectors_of_another_model() -> None:
    store = FakeStore()
    asyncio.run(indexer(store, HashEncoder("old-model")).product_upserted(upserted("7", "Shoe")))
    encoder = HashEncoder("new-model")
    upgraded = indexer(store, encoder)
    assert asyncio.run(upgraded.load()) == 1
    assert encoder.texts == ["Shoe"]
    assert store.rows["7"].model_id == "new-model"
    assert upgraded.index.revision("7") == store.rows["7"].revision == 2
