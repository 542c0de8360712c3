"""What the indexer needs from an embedding model, as a :class:`typing.Protocol`.

Three kinds of object embed an index's chunks: the local :class:`~codeseer.models.embedder.Embedder`,
the Ray-backed :class:`~codeseer.index.distributed.RayEmbedder`, and the tests' fakes (hash vectors,
spies, embedders that die mid-run). None of them inherits from another, so this protocol is the one
written-down contract between them and :mod:`codeseer.index.indexer`: an object with these members
can be handed to ``index_repository(embedder_factory=...)``. It is structural on purpose: the Ray
embedder must not import the model stack to subclass anything, and fakes stay plain classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    """Embeds an index's documents (chunks) into L2-normalised float32 vectors of width ``dim``."""

    @property
    def dim(self) -> int:
        """Width of the vectors, fixed for the encoder's lifetime (a new index is created with it)."""
        ...

    def fingerprint(self) -> str | None:
        """Identifies the vectors ``encode_documents`` makes (weights, recipe, prefix, dim, numerics).

        Two encoders with one fingerprint give the same vectors, so the machine-wide vector cache
        (:mod:`codeseer.index.vector_cache`) shares them between indexes; ``None`` keeps this
        encoder's vectors out of that cache (fakes whose vectors no other index may reuse).
        """
        ...

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        slab: int = 256,
        on_slab: Callable[[int, np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """The vectors of ``texts`` in order; ``on_slab(start, vectors)`` runs as each run of up to
        ``slab`` texts is done (in any order), so the indexer journals it and a killed run loses
        only what was still being embedded."""
        ...

    def close(self) -> dict[str, int]:
        """Release what the encoder holds (Ray actors) once the run is done, however it ended; returns
        the texts embedded per Ray node id (``{}`` for a model in this process)."""
        ...
