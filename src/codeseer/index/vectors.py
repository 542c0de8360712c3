"""Where a chunk's vector comes from before any model runs: the index, the journal, the machine cache.

Its own room because reuse is what makes a run incremental, and it has three sources with three
ways of failing: vectors already in the committed index (stored in the index's precision, decoded
here), vectors journaled by an earlier run that was killed (a half-dropped journal is dropped), and
the machine-wide cache that other indexes filled (never allowed to stop a run). Only what none of
them holds is embedded.
"""

from __future__ import annotations

import numpy as np

from codeseer.index.quantize import Codec
from codeseer.index.rows import batches
from codeseer.index.store import IndexState, IndexStore, column_values, sql_in
from codeseer.index.vector_cache import VectorCache
from codeseer.models.encoder import Encoder


def known_vectors(store: IndexStore, state: IndexState | None, chunks_table, codec: Codec, model: str,
                  wanted: set[str], dim: int) -> dict[str, np.ndarray]:
    """Vectors we already have for these hashes: in the index (any path) or in a journal."""
    known: dict[str, np.ndarray] = {}
    if state is not None and wanted:
        hashes = column_values(chunks_table, "content_hash")
        reusable = sorted(wanted.intersection(hashes))
        for batch in batches(reusable, 500):
            table = chunks_table.search().where(sql_in("content_hash", batch)).select(
                ["content_hash", "vector"]
            ).limit(None).to_arrow()
            vectors = codec.decode(np.stack(table["vector"].to_numpy(zero_copy_only=False)))
            known.update(zip(table["content_hash"].to_pylist(), vectors))
    journal = store.journal(model, dim)
    try:
        table = journal.to_arrow() if journal.count_rows() else None
    except Exception:  # a drop cut short by a kill can leave the manifest without its data files
        store.drop_journal(model, dim)
        table = None
    if table is not None:
        for digest, vector in zip(table["content_hash"].to_pylist(), table["vector"].to_pylist()):
            if digest in wanted:
                known[digest] = np.asarray(vector, dtype=np.float32)
    return known


def vector_cache(encoder: Encoder, dim: int) -> VectorCache | None:
    """The machine-wide cache for this encoder's vectors, or None (no fingerprint, or it failed).

    The caller checks :func:`~codeseer.index.vector_cache.cache_enabled` first, before it loads the
    encoder to pass here.
    """
    try:
        fingerprint = encoder.fingerprint()
        return VectorCache(fingerprint, dim) if fingerprint is not None else None
    except Exception:  # a cache must never stop indexing
        return None
