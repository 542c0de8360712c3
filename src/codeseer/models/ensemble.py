"""Several embedding models as one: ``--model a+b`` scores every pair by the mean of the members' cosines.

Why: on cosqa-dev no single offline model reaches what two together do (codeseer-code-mini +
all-mpnet-base-v2 is +3.3 nDCG@10 over all-MiniLM-L6-v2, p < 0.001, where either alone is at most
+1.8 and not significant). Each member's unit vector is scaled by ``1/sqrt(k)`` and the scaled
vectors are concatenated, so the result is again a unit vector and a dot product of two of them is
exactly the mean of the k members' cosines: the index, the caches, int8/binary storage and every
search mode work on it unchanged. Each member keeps its own recipe (prefixes per task and role,
pooling, input limit); Matryoshka truncation does not apply to the joined vector.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from codeseer.errors import CodeseerError
from codeseer.models.embedder import Embedder, ResolvedModel, resolve_model
from codeseer.models.registry import ENSEMBLE_SEPARATOR as SEPARATOR  # noqa: F401  (the ensemble spelling)
from codeseer.models.registry import split_members
from codeseer.models.tasks import DEFAULT_TASK, DOCUMENT, QUERY, check_role, get_task

FAMILY = "ensemble"


def resolve_ensemble(members: Sequence[str]) -> ResolvedModel:
    resolved = [resolve_model(m) for m in members]
    names = [r.name for r in resolved]
    if len(set(names)) != len(names):
        raise CodeseerError(f"ensemble names one model twice: {SEPARATOR.join(names)}")
    return ResolvedModel(SEPARATOR.join(names), SEPARATOR.join(r.location for r in resolved))


class EnsembleEmbedder(Embedder):
    """Built by ``load_embedder("a+b", ...)``; the options that apply to every member pass through to each."""

    def __init__(
        self,
        model: str | None = None,
        *,
        task: str = DEFAULT_TASK,
        device: str = "cpu",
        batch_size: int = 32,
        backend: str = "torch",
        recipe=None,
        pooling: str | None = None,
        dim: int | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        **shared,
    ) -> None:
        """``shared``: the rest of :class:`Embedder`'s options (max_seq_length, quantize, bf16, ...), given to each member."""
        specs = split_members(model) or []
        if len(specs) < 2:
            raise CodeseerError(f"an ensemble needs two or more models, not {model!r}")
        for option, value in (("--recipe", recipe), ("--pooling", pooling), ("a query prefix", query_prefix),
                              ("a document prefix", document_prefix)):
            if value is not None:
                raise CodeseerError(f"{option} applies to one model; each member of an ensemble uses its own recipe")
        self.resolved = resolve_ensemble(specs)
        self.members = [
            Embedder(spec, task=task, device=device, batch_size=batch_size, backend=backend, **shared)
            for spec in specs
        ]
        self.device = device
        self.batch_size = batch_size
        self.task = get_task(task).name
        self.recipe = None
        self.family = FAMILY
        self.pooling = SEPARATOR.join(m.pooling for m in self.members)
        self.backend = SEPARATOR.join(dict.fromkeys(m.backend for m in self.members))
        self.auto_backend = backend == "auto"
        self.quantized = any(m.quantized for m in self.members)
        self.bf16 = any(m.bf16 for m in self.members)
        self.query_prefix = self.document_prefix = ""  # each member adds its own
        self._weight = np.float32(1.0 / np.sqrt(len(self.members)))
        self.native_dim = sum(m.dim for m in self.members)
        if dim is not None and dim != self.native_dim:
            raise CodeseerError(
                f"--dim does not apply to an ensemble: its {self.native_dim} dimensions are its members' joined"
            )
        self._dim = None  # no _encoder of its own: every encoding path below goes through the members

    @property
    def tokenizer(self):
        """The first member's: chunk and context budgets are counted in its tokens."""
        return self.members[0].tokenizer

    @property
    def max_seq_length(self) -> int | None:
        return self.members[0].max_seq_length

    def fingerprint(self) -> str:
        payload = {"ensemble": [m.fingerprint() for m in self.members]}
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:32]

    def describe(self) -> dict:
        info = super().describe()
        info["members"] = [m.describe() for m in self.members]
        return info

    def _join(self, encode: Callable[[Embedder], np.ndarray]) -> np.ndarray:
        return np.concatenate([encode(m) * self._weight for m in self.members], axis=1).astype(np.float32)

    def encode(self, texts: Sequence[str], role: str = QUERY) -> np.ndarray:
        role = check_role(role)
        return self._join(lambda m: m.encode(texts, role=role))

    def _document_slabs(self, texts: Sequence[str], slab: int) -> Iterator[np.ndarray]:
        """Every member on the same slab, so progress and partial saves work as for one model."""
        for start in range(0, len(texts), slab):
            batch = list(texts[start : start + slab])
            yield self._join(lambda m: m.encode(batch, role=DOCUMENT))
