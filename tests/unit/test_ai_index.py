"""The vector index and the recommendations over it, with hand-made unit vectors."""

from __future__ import annotations

import numpy as np
import pytest

from services.ai.domain.embedding import Vectors
from services.ai.domain.index import Match, VectorIndex
from services.ai.domain.products import Product
from services.ai.domain.recommend import Basis, Purchase, for_user, similar, taste

PUBLIC = ("ACTIVE", "SOLD_OUT")


def unit(*values: float) -> Vectors:
    vector = np.array(values, dtype=np.float32)
    result: Vectors = vector / np.linalg.norm(vector)
    return result


def index_of(**vectors: Vectors) -> VectorIndex:
    index = VectorIndex(dimensions=3)
    for revision, (product_id, vector) in enumerate(vectors.items(), start=1):
        index.upsert(Product(product_id, product_id, "", 1000, "ACTIVE"), vector, revision)
    return index


def ids(matches: list[Match]) -> list[str]:
    return [m.product.product_id for m in matches]


def test_nearest_ranks_by_cosine_and_breaks_ties_by_id() -> None:
    index = index_of(b=unit(1, 0, 0), a=unit(1, 0, 0), c=unit(1, 1, 0), d=unit(0, 0, 1))
    matches = index.nearest(unit(1, 0, 0), 3, statuses=PUBLIC)
    assert ids(matches) == ["a", "b", "c"]
    assert matches[0].score == pytest.approx(1.0)
    assert matches[2].score == pytest.approx(np.sqrt(0.5))


def test_nearest_leaves_out_hidden_products_and_excluded_ids() -> None:
    index = index_of(a=unit(1, 0, 0), b=unit(1, 0.1, 0), c=unit(1, 0.2, 0))
    index.upsert(Product("a", "a", "", 1, "HIDDEN"), unit(1, 0, 0), 10)
    assert ids(index.nearest(unit(1, 0, 0), 5, statuses=PUBLIC, exclude=["b"])) == ["c"]


def test_an_old_revision_changes_nothing_and_removal_keeps_the_others_findable() -> None:
    index = index_of(a=unit(1, 0, 0), b=unit(0, 1, 0), c=unit(0, 0, 1))
    assert not index.upsert(Product("a", "old", "", 1, "ACTIVE"), unit(0, 1, 0), 1)
    kept = index.product("a")
    assert kept is not None and kept.name == "a"
    assert index.remove("a", 7)
    assert not index.remove("a", 7)  # the same removal again
    assert not index.upsert(Product("a", "a", "", 1, "ACTIVE"), unit(1, 0, 0), 6)  # older
    assert len(index) == 2 and "a" not in index
    assert ids(index.nearest(unit(0, 0, 1), 1, statuses=PUBLIC)) == ["c"]  # moved row intact
    assert ids(index.nearest(unit(0, 1, 0), 1, statuses=PUBLIC)) == ["b"]


def test_the_matrix_grows_past_its_initial_capacity() -> None:
    vectors = np.random.default_rng(7).normal(size=(600, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(dimensions=16)
    for i, vector in enumerate(vectors):
        index.upsert(Product(f"p{i:03}", "", "", 1, "ACTIVE"), vector, 1)
    assert len(index) == 600
    for i in (0, 255, 256, 599):
        assert ids(index.nearest(vectors[i], 1, statuses=PUBLIC)) == [f"p{i:03}"]


def test_similar_excludes_the_product_itself_and_is_none_for_an_unknown_one() -> None:
    index = index_of(a=unit(1, 0, 0), b=unit(1, 0.2, 0), c=unit(0, 1, 0))
    assert ids(similar(index, "a", 2, statuses=PUBLIC) or []) == ["b", "c"]
    assert similar(index, "zzz", 2, statuses=PUBLIC) is None


def test_taste_weighs_quantity_and_recency() -> None:
    index = index_of(a=unit(1, 0, 0), b=unit(0, 1, 0))
    # Newest first: one b, then three a (older): 3 * 0.9 = 2.7 for a against 1 for b.
    vector = taste(index, [Purchase("b", 1), Purchase("a", 3)])
    assert vector is not None
    assert vector[0] > vector[1] > 0
    assert taste(index, [Purchase("gone", 1)]) is None


def test_for_user_recommends_near_purchases_without_what_was_bought() -> None:
    index = index_of(shoe1=unit(1, 0, 0), shoe2=unit(1, 0.1, 0), pan=unit(0, 1, 0),
                     book=unit(0, 0, 1))
    result = for_user(index, [Purchase("shoe1", 1)], ["book"], 2, statuses=PUBLIC)
    assert result.basis is Basis.PURCHASES
    assert ids(result.matches) == ["shoe2", "book"]  # book and pan tie at 0: by id


def test_for_user_without_purchases_gets_best_sellers_else_nothing() -> None:
    index = index_of(a=unit(1, 0, 0), b=unit(0, 1, 0))
    result = for_user(index, [], ["b", "missing", "a"], 5, statuses=PUBLIC)
    assert result.basis is Basis.BEST_SELLERS and ids(result.matches) == ["b", "a"]
    assert for_user(index, [], [], 5, statuses=PUBLIC).basis is Basis.NONE
