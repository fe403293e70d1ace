"""The in-memory vector index: one row per product, cosine by dot product, top-k by partition.

Every instance holds the whole catalogue's vectors (384 float32 = 1.5 KB a product: 100,000
products are 150 MB), so a query costs one matrix-vector product and no database round trip.
Each entry carries the revision of the database row it came from: applying the same or an older
revision again changes nothing, which makes event handling and the periodic sync idempotent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from services.ai.domain.embedding import DIMENSIONS, Vectors
from services.ai.domain.products import Product

INITIAL_CAPACITY = 256


@dataclass(frozen=True)
class Match:
    product: Product
    score: float


class VectorIndex:
    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = dimensions
        self._matrix = np.zeros((INITIAL_CAPACITY, dimensions), dtype=np.float32)
        self._products: list[Product] = []
        self._positions: dict[str, int] = {}
        self._revisions: dict[str, int] = {}  # also remembers removed products' revisions

    def __len__(self) -> int:
        return len(self._products)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._positions

    def revision(self, product_id: str) -> int:
        """The revision applied for ``product_id`` (0 when never seen)."""
        return self._revisions.get(product_id, 0)

    def product(self, product_id: str) -> Product | None:
        position = self._positions.get(product_id)
        return None if position is None else self._products[position]

    def vector(self, product_id: str) -> Vectors | None:
        position = self._positions.get(product_id)
        return None if position is None else self._matrix[position].copy()

    def upsert(self, product: Product, vector: Vectors, revision: int) -> bool:
        """Add or replace a product; False (and nothing changes) for an old revision."""
        if revision <= self.revision(product.product_id):
            return False
        if vector.shape != (self.dimensions,):
            raise ValueError(f"vector of shape {vector.shape}; expected ({self.dimensions},)")
        position = self._positions.get(product.product_id)
        if position is None:
            position = len(self._products)
            if position == len(self._matrix):
                grown = np.zeros((len(self._matrix) * 2, self.dimensions), dtype=np.float32)
                grown[:position] = self._matrix
                self._matrix = grown
            self._products.append(product)
            self._positions[product.product_id] = position
        else:
            self._products[position] = product
        self._matrix[position] = vector
        self._revisions[product.product_id] = revision
        return True

    def remove(self, product_id: str, revision: int) -> bool:
        """Drop a product (the last row moves into its place); False for an old revision."""
        if revision <= self.revision(product_id):
            return False
        self._revisions[product_id] = revision
        position = self._positions.pop(product_id, None)
        if position is None:
            return True
        last = len(self._products) - 1
        if position != last:
            moved = self._products[last]
            self._products[position] = moved
            self._matrix[position] = self._matrix[last]
            self._positions[moved.product_id] = position
        self._products.pop()
        return True

    def nearest(self, query: Vectors, limit: int, *, statuses: Collection[str],
                exclude: Iterable[str] = ()) -> list[Match]:
        """The ``limit`` products most similar to ``query`` (a unit vector), best first."""
        count = len(self._products)
        if count == 0 or limit <= 0:
            return []
        scores = self._matrix[:count] @ query.astype(np.float32)
        allowed = np.array([p.status in statuses for p in self._products], dtype=bool)
        for product_id in exclude:
            position = self._positions.get(product_id)
            if position is not None:
                allowed[position] = False
        candidates = np.flatnonzero(allowed)
        if len(candidates) == 0:
            return []
        limit = min(limit, len(candidates))
        top = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
        # Ties (e.g. identical texts) are broken by product id so that answers are repeatable,
        # also at the cut: every candidate scoring as well as the last one taken competes.
        cut = scores[top].min()
        tied = candidates[scores[candidates] >= cut]
        ranked = sorted(tied, key=lambda i: (-scores[i], self._products[i].product_id))[:limit]
        return [Match(self._products[i], float(scores[i])) for i in ranked]
