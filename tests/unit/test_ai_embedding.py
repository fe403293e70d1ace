"""The embedding pipeline: tokenize -> run -> mean-pool over the mask -> L2-normalise.

A fake tokenizer and session stand in for the model, so each step's arithmetic is checked
exactly; one test loads the real packaged model and compares it with the published reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from services.ai.domain.embedding import (
    Encoder,
    ModelFiles,
    ModelUnavailable,
    load_encoder,
    mean_pool,
    normalise,
)


@dataclass
class FakeEncoding:
    ids: list[int]
    attention_mask: list[int]
    type_ids: list[int]


class FakeTokenizer:
    """One token per word (id = word length), padded to the longest text of the batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode_batch(self, input: list[str]) -> Sequence[FakeEncoding]:
        self.batches.append(list(input))
        words = [text.split() for text in input]
        width = max(len(w) for w in words)
        return [FakeEncoding([len(x) for x in w] + [0] * (width - len(w)),
                             [1] * len(w) + [0] * (width - len(w)), [0] * width)
                for w in words]


class FakeSession:
    """Token i's hidden state is [id, 1, 0, …]; padding positions hold a loud 1000."""

    def __init__(self, dimensions: int = 4) -> None:
        self.dimensions = dimensions
        self.feeds: list[dict[str, npt.NDArray[np.int64]]] = []

    def run(self, output_names: list[str] | None,
            input_feed: dict[str, npt.NDArray[np.int64]]) -> Sequence[Any]:
        self.feeds.append(input_feed)
        ids, mask = input_feed["input_ids"], input_feed["attention_mask"]
        hidden = np.zeros((*ids.shape, self.dimensions), dtype=np.float32)
        hidden[..., 0] = ids
        hidden[..., 1] = 1.0
        hidden[mask == 0] = 1000.0
        return [hidden]


def test_mean_pool_ignores_padding_and_normalise_gives_unit_rows() -> None:
    hidden = np.array([[[1, 0], [3, 0], [99, 99]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]], dtype=np.int64)
    pooled = mean_pool(hidden, mask)
    assert pooled.tolist() == [[2.0, 0.0]]
    np.testing.assert_allclose(normalise(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)),
                               [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_encoder_feeds_the_three_inputs_and_pools_each_text_over_its_own_tokens() -> None:
    session = FakeSession()
    encoder = Encoder(FakeTokenizer(), session, dimensions=4)
    vectors = encoder.encode(["ab abcd", "abc"])
    assert set(session.feeds[0]) == {"input_ids", "attention_mask", "token_type_ids"}
    # "ab abcd": mean of [2,1] and [4,1] = [3,1]; "abc": [3,1]: same direction, unit length.
    expected = np.array([3.0, 1.0, 0.0, 0.0]) / np.sqrt(10.0)
    np.testing.assert_allclose(vectors, [expected, expected], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1.0, 1.0], rtol=1e-6)


def test_encoder_batches_by_length_and_keeps_the_callers_order() -> None:
    tokenizer = FakeTokenizer()
    encoder = Encoder(tokenizer, FakeSession(), dimensions=4, batch_size=2)
    texts = ["a a a a a", "b", "cc cc", "d"]
    vectors = encoder.encode(texts)
    assert tokenizer.batches == [["b", "d"], ["cc cc", "a a a a a"]]
    # Each row is the vector of its own text: [len, 1] normalised.
    for text, vector in zip(texts, vectors, strict=True):
        length = float(len(text.split()[0]))
        np.testing.assert_allclose(vector[:2], np.array([length, 1.0]) / np.hypot(length, 1.0),
                                   rtol=1e-6)


def test_encoder_of_nothing_is_an_empty_matrix_and_a_wrong_shape_is_an_error() -> None:
    assert Encoder(FakeTokenizer(), FakeSession(4), dimensions=4).encode([]).shape == (0, 4)
    with pytest.raises(ModelUnavailable, match="expected"):
        Encoder(FakeTokenizer(), FakeSession(3), dimensions=4).encode(["x"])


def test_a_file_other_than_the_pinned_one_is_refused(tmp_path: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import services.ai.domain.embedding as embedding

    monkeypatch.setattr(embedding, "TOKENIZER_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailable, match="not the pinned"):
        ModelFiles.installed()


@pytest.fixture(scope="module")
def real_encoder() -> Encoder:
    return load_encoder()


def test_the_packaged_model_reproduces_the_published_similarities(real_encoder: Encoder) -> None:
    """sentence-transformers' README: all-MiniLM-L6-v2 gives 0.6660, 0.1046 and 0.1411 for
    these sentences; the int8 ONNX export stays within 0.01 of them."""
    vectors = real_encoder.encode(["The weather is lovely today.", "It's so sunny outside!",
                                   "He drove to the stadium."])
    similarity = vectors @ vectors.T
    np.testing.assert_allclose([similarity[0, 1], similarity[0, 2], similarity[1, 2]],
                               [0.6660, 0.1046, 0.1411], atol=0.01)


def test_the_packaged_model_puts_running_shoes_near_the_query(real_encoder: Encoder) -> None:
    shoes = ["Trail running shoes with a grippy outsole", "Cushioned road running shoe",
             "Lightweight marathon racing flats"]
    others = ["Cast iron skillet, 12 inch", "Noise-cancelling Bluetooth headphones",
              "Paperback novel", "Four-person camping tent"]
    query = real_encoder.encode_one("running shoes")
    shoe_scores = real_encoder.encode(shoes) @ query
    other_scores = real_encoder.encode(others) @ query
    assert shoe_scores.min() > 0.5
    assert other_scores.max() < 0.2
