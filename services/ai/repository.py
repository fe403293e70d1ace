"""Persistence of the AI service: product vectors, purchases, and the events applied.

Every write that applies an event records the event's id in the same transaction
(`first_delivery`), so a redelivered event changes nothing. Whole-table reads (the index at
start, the periodic sync, purchase history) go to the reader endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Row, delete, desc, func, select
from sqlalchemy.dialects.postgresql import insert

from services.ai.domain.embedding import Vectors
from services.ai.domain.products import Product
from services.ai.domain.recommend import Purchase
from services.ai.models import processed_events, product_vectors, purchases, revisions
from services.common.database import Database
from services.common.events import Event, first_delivery

VECTOR_DTYPE = np.dtype("<f4")


def to_bytes(vector: Vectors) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def from_bytes(raw: bytes) -> Vectors:
    vector: Vectors = np.frombuffer(raw, dtype=VECTOR_DTYPE).astype(np.float32)
    return vector


@dataclass(frozen=True)
class StoredProduct:
    product: Product
    vector: Vectors | None
    deleted: bool
    revision: int
    model_id: str
    text_hash: str

    def current(self, model_id: str) -> bool:
        """Whether its vector was computed by ``model_id`` from its present text."""
        return self.vector_for(self.product.text_hash, model_id) is not None

    def vector_for(self, text_hash: str, model_id: str) -> Vectors | None:
        """The stored vector if it is the one ``model_id`` computes for that text."""
        if self.model_id == model_id and self.text_hash == text_hash:
            return self.vector
        return None


def _stored(row: Row[Any]) -> StoredProduct:
    product = Product(product_id=row.product_id, name=row.name, description=row.description,
                      price=row.price, status=row.status, store_id=row.store_id,
                      category_id=row.category_id)
    vector = from_bytes(row.vector) if row.vector is not None else None
    return StoredProduct(product, vector, row.deleted, row.revision, row.model_id,
                         row.text_hash)


class AiRepository:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def find(self, product_id: str) -> StoredProduct | None:
        """The row as the writer has it (the event handler decides on it)."""
        async with self.database.writes() as session:
            row = (await session.execute(select(product_vectors).where(
                product_vectors.c.product_id == product_id))).first()
        return None if row is None else _stored(row)

    async def apply_upsert(self, event: Event, product: Product, vector: Vectors,
                           model_id: str) -> StoredProduct | None:
        """Store the product and its vector; None when ``event`` was applied before."""
        values = {"name": product.name, "description": product.description,
                  "price": product.price, "status": product.status,
                  "store_id": product.store_id, "category_id": product.category_id,
                  "text_hash": product.text_hash, "model_id": model_id,
                  "vector": to_bytes(vector), "deleted": False,
                  "revision": revisions.next_value(), "updated_at": func.now()}
        statement = insert(product_vectors).values(
            product_id=product.product_id, **values,
        ).on_conflict_do_update(
            index_elements=[product_vectors.c.product_id], set_=values,
        ).returning(*product_vectors.c)
        async with self.database.writes() as session, session.begin():
            if not await first_delivery(session, processed_events, event):
                return None
            row = (await session.execute(statement)).one()
        return _stored(row)

    async def apply_delete(self, event: Event, product_id: str) -> int | None:
        """Leave a tombstone (so other instances drop it too); its revision, or None when
        ``event`` was applied before or the product was never known."""
        async with self.database.writes() as session, session.begin():
            if not await first_delivery(session, processed_events, event):
                return None
            revision = (await session.execute(
                product_vectors.update()
                .where(product_vectors.c.product_id == product_id)
                .values(deleted=True, vector=None, revision=revisions.next_value(),
                        updated_at=func.now())
                .returning(product_vectors.c.revision))).scalar_one_or_none()
        return None if revision is None else int(revision)

    async def replace_vectors(self, updates: Sequence[tuple[str, Vectors, str]],
                              model_id: str) -> dict[str, int]:
        """Store re-computed vectors (text hash -> vector); product id -> new revision."""
        applied: dict[str, int] = {}
        async with self.database.writes() as session, session.begin():
            for product_id, vector, text_hash in updates:
                revision = (await session.execute(
                    product_vectors.update()
                    .where(product_vectors.c.product_id == product_id,
                           product_vectors.c.deleted.is_(False))
                    .values(vector=to_bytes(vector), model_id=model_id, text_hash=text_hash,
                            revision=revisions.next_value(), updated_at=func.now())
                    .returning(product_vectors.c.revision))).scalar_one_or_none()
                if revision is not None:
                    applied[product_id] = int(revision)
        return applied

    async def load_all(self) -> list[StoredProduct]:
        async with self.database.reads() as session:
            rows = (await session.execute(select(product_vectors))).all()
        return [_stored(row) for row in rows]

    async def changed_within(self, window: timedelta) -> list[StoredProduct]:
        """Rows changed in the last ``window`` (by the database's clock)."""
        async with self.database.reads() as session:
            rows = (await session.execute(select(product_vectors).where(
                product_vectors.c.updated_at > func.now() - window))).all()
        return [_stored(row) for row in rows]

    async def record_order(self, event: Event, order_id: str, user_id: str,
                           items: Sequence[tuple[str, int]]) -> bool:
        """Remember what the order bought; False when ``event`` was applied before."""
        quantities: dict[str, int] = {}
        for product_id, quantity in items:
            quantities[product_id] = quantities.get(product_id, 0) + quantity
        async with self.database.writes() as session, session.begin():
            if not await first_delivery(session, processed_events, event):
                return False
            if quantities:
                await session.execute(insert(purchases).values([
                    {"order_id": order_id, "product_id": product_id, "user_id": user_id,
                     "quantity": quantity} for product_id, quantity in quantities.items()
                ]).on_conflict_do_nothing())
        return True

    async def forget_order(self, event: Event, order_id: str) -> bool:
        """A cancelled order was not a purchase; False when ``event`` was applied before."""
        async with self.database.writes() as session, session.begin():
            if not await first_delivery(session, processed_events, event):
                return False
            await session.execute(delete(purchases).where(purchases.c.order_id == order_id))
        return True

    async def recent_purchases(self, user_id: str, limit: int) -> list[Purchase]:
        """The user's purchases, newest first (one entry per product)."""
        latest = func.max(purchases.c.purchased_at)
        async with self.database.reads() as session:
            rows = (await session.execute(
                select(purchases.c.product_id, func.sum(purchases.c.quantity).label("quantity"))
                .where(purchases.c.user_id == user_id)
                .group_by(purchases.c.product_id)
                .order_by(desc(latest), purchases.c.product_id)
                .limit(limit))).all()
        return [Purchase(row.product_id, int(row.quantity)) for row in rows]

    async def best_sellers(self, limit: int) -> list[str]:
        sold = func.sum(purchases.c.quantity)
        async with self.database.reads() as session:
            rows = (await session.execute(
                select(purchases.c.product_id).group_by(purchases.c.product_id)
                .order_by(desc(sold), purchases.c.product_id).limit(limit))).all()
        return [row.product_id for row in rows]
