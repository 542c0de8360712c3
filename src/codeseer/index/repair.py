"""``codeseer index --repair``: find the newest snapshot that still reads, or salvage vectors for a rebuild.

Its own room because it reasons about a broken index, which an ordinary run never does: it reads a
committed snapshot in full to prove it sound, walks ``history.json`` back to an older one, and, when
none reads, keeps every vector still readable (the journal, old table versions) so the rebuild does
not embed them again. The run that follows is an ordinary one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from codeseer.index.failures import write_failure
from codeseer.index.rows import batches
from codeseer.index.store import CHUNKS, DamagedIndex, IndexState, IndexStore, column_values, one_line

NO_INDEX_YET = "no index here yet: building a new one"


def repair_base(store: IndexStore, repaired: list[str]) -> tuple[IndexState | None, IndexState | None]:
    """The snapshot --repair builds on: ``(state, None)``, or ``(None, hint)`` to rebuild from scratch.

    The committed snapshot is read in full (every column of both tables, the BM25 index probed);
    if it does not read, the newest readable snapshot from ``history.json`` is committed instead.
    """
    committed = None
    try:
        committed = store.read_state()
    except DamagedIndex as exc:
        repaired.append(str(exc).replace("; run `codeseer index --repair`", ""))
    history = store.read_history()
    candidates = [committed] if committed is not None else []
    candidates += [
        h for h in history
        if committed is None or (h.chunks_version, h.files_version) != (committed.chunks_version, committed.files_version)
    ]
    if not candidates:
        try:
            has_tables = bool(store.table_names())
        except Exception:
            has_tables = False
        if not has_tables and not store.state_path.exists():
            repaired.append(NO_INDEX_YET)
            return None, None
    for n, candidate in enumerate(candidates):
        if candidate is committed:
            label = "committed snapshot"
        elif n == 0:
            label = f"last committed snapshot ({candidate.updated_at}, from history.json)"
        else:
            label = f"older snapshot of {candidate.updated_at}"
        versions = f"chunks v{candidate.chunks_version}, files v{candidate.files_version}"
        problem = store.verify(candidate)
        if problem is None:
            if candidate is committed:
                repaired.append(f"committed snapshot ({versions}) verified: {candidate.chunks} chunks and "
                                f"{candidate.files} files read in full; nothing to repair")
            else:
                store.write_state(candidate)
                repaired.append(f"fell back to the {label} ({versions}), which reads in full"
                                if committed is not None else f"recommitted the {label} ({versions}), which reads in full")
            return candidate, None
        repaired.append(f"{label} ({versions}) does not read: {problem}")
    hint = candidates[0] if candidates else None
    repaired.append("no readable snapshot left: rebuilding the index from scratch")
    if hint is None:
        return None, None
    return None, hint


def salvage_vectors(store: IndexStore, hint: IndexState, model: str, repaired: list[str], versions: int = 3) -> None:
    """Before a rebuild, keep every vector that still reads (old table versions, the journal) in the journal."""
    if model != hint.model:
        return  # another model: its vectors are of no use
    known = store.journal_vectors(model, hint.dim)
    from_journal = len(known)
    if hint.precision in ("float32", "float16"):  # lossless to re-store; int8/binary are not
        try:
            chunks = store.db.open_table(CHUNKS)
            listed = sorted((v["version"] for v in chunks.list_versions()), reverse=True)
        except Exception:
            listed = []
        read = 0
        for version in listed:
            if read >= versions:
                break
            try:
                chunks.checkout(version)
                table = chunks.search().select(["content_hash", "vector"]).limit(None).to_arrow()
                vectors = np.asarray(
                    np.stack(table["vector"].to_numpy(zero_copy_only=False)) if len(table) else np.zeros((0, hint.dim)),
                    dtype=np.float32,
                )
            except Exception:
                continue
            if vectors.shape[1:] != (hint.dim,):
                continue
            read += 1
            for digest, vector in zip(table["content_hash"].to_pylist(), vectors):
                known.setdefault(digest, vector)
    fresh = {h: v for h, v in known.items() if h is not None}
    if len(fresh) > from_journal:
        try:
            journal = store.journal(model, hint.dim)
            existing = set(column_values(journal, "content_hash"))
            hashes = [h for h in fresh if h not in existing]
            for batch in batches(hashes, 10_000):
                journal.add(pa.Table.from_pydict(
                    {"content_hash": batch, "vector": [np.asarray(fresh[h], dtype=np.float32) for h in batch]},
                    schema=journal.schema,
                ))
        except Exception as exc:
            failure = write_failure(exc, store)
            if failure is not None and not isinstance(failure, DamagedIndex):
                raise failure from None
            repaired.append(f"could not keep the old vectors ({one_line(exc)}): they will be embedded again")
            return
    if fresh:
        repaired.append(f"kept {len(fresh)} vectors that still read, so they need not be embedded again")
