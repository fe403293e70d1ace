"""Recommendations: "similar products" for a product and "for you" from what a user bought.

"For you" is the nearest-neighbour search around a taste vector: the mean of the vectors of the
user's recent purchases, each weighted by quantity and by recency (the newest purchase counts
most), renormalised. Products the user already bought are left out. A user with no purchase
(or whose purchases are all gone from the catalogue) gets the catalogue's best sellers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from services.ai.domain.embedding import Vectors, normalise
from services.ai.domain.index import Match, VectorIndex

RECENCY_DECAY = 0.9  # each older purchase weighs 10 % less than the next newer one


@dataclass(frozen=True)
class Purchase:
    product_id: str
    quantity: int


class Basis(StrEnum):
    PURCHASES = "purchases"
    BEST_SELLERS = "best-sellers"
    NONE = "none"


@dataclass(frozen=True)
class Recommendations:
    basis: Basis
    matches: list[Match]


def taste(index: VectorIndex, purchases: Sequence[Purchase]) -> Vectors | None:
    """The weighted mean of the purchased products' vectors (newest first), or None."""
    total = np.zeros(index.dimensions, dtype=np.float32)
    used = False
    for age, purchase in enumerate(purchases):
        vector = index.vector(purchase.product_id)
        if vector is None:
            continue
        total += vector * (max(purchase.quantity, 1) * RECENCY_DECAY ** age)
        used = True
    if not used or not np.any(total):
        return None
    unit: Vectors = normalise(total[np.newaxis, :])[0]
    return unit


def for_user(index: VectorIndex, purchases: Sequence[Purchase],
             best_sellers: Sequence[str], limit: int, *,
             statuses: Collection[str]) -> Recommendations:
    """Products for a user: around their taste, else the best sellers they have not bought."""
    bought = {p.product_id for p in purchases}
    vector = taste(index, purchases)
    if vector is not None:
        matches = index.nearest(vector, limit, statuses=statuses, exclude=bought)
        if matches:
            return Recommendations(Basis.PURCHASES, matches)
    popular: list[Match] = []
    for product_id in best_sellers:
        product = index.product(product_id)
        if product is None or product_id in bought or product.status not in statuses:
            continue
        popular.append(Match(product, 0.0))
        if len(popular) == limit:
            break
    return Recommendations(Basis.BEST_SELLERS if popular else Basis.NONE, popular)


def similar(index: VectorIndex, product_id: str, limit: int, *,
            statuses: Collection[str]) -> list[Match] | None:
    """The products nearest to ``product_id``; None when the product is not indexed."""
    vector = index.vector(product_id)
    if vector is None:
        return None
    return index.nearest(vector, limit, statuses=statuses, exclude=(product_id,))
