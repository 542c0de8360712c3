"""Approximate nearest-neighbour (ANN) search on the chunk vectors, for indexes past ~100k chunks.

Exact search reads every vector: ~0.1 s a query at 100k chunks (384-d float32), ~0.5-1 s at 1M.
Past ``ANN_MIN_CHUNKS`` (env ``CODESEER_ANN_MIN_CHUNKS``, or ``codeseer index --ann on|off``) the
indexer builds a LanceDB IVF_PQ index (cosine) on ``vector`` inside ``_prepare_for_commit``, before
``state.json`` is written: the committed table version holds the index, and a run killed while
building it leaves the previous snapshot untouched (the next run rolls the table back).

IVF_PQ was chosen over IVF_HNSW_SQ by measurement on 2 shared cores (``bench/scale_search.py``,
table in ``bench/results/scale-search.txt``). At 1M synthetic 384-d chunks IVF_PQ builds in ~80 s
into 53 bytes a chunk and answers in ~20 ms (exact: ~380 ms) at recall@10 0.99; IVF_HNSW_SQ
answered in 5.5-10 ms at 0.998 but took 5-9 minutes to build (m=12/ef_construction=100 up to
LanceDB's defaults) into 520-600 bytes a chunk. At 100k both pass 0.95 (real code: PQ 0.965 at
8 ms, HNSW_SQ 0.97 at 4 ms, exact 96 ms) and HNSW_SQ builds faster (19 s against 45 s), but the
index is for the million-chunk case, where build time (it is retrained at every doubling) and
size decide.

Parameters: sqrt(rows)/2 partitions (at 100k real chunks, 128 and 316 partitions gave the same
recall for the same fraction probed; fewer train faster), sub-vectors of 8 dimensions (48 at
384-d), ``NPROBE_FRACTION`` of the partitions probed (on 100k real chunks a third gave 0.966, a
half 0.965-0.98) and ``REFINE_FACTOR`` x k candidates rescored with exact cosine (PQ distances
alone reach recall 0.6-0.8). A filtered query probes further partitions while it has fewer than k
results. On real code the exact 10th and 11th neighbours are within 0.001 cosine of each other for
~60% of the queries: a miss at that boundary swaps near-equals.

Only float32 and float16 indexes get one: int8 and binary have their own coarse-then-rescore paths.
Rows added later are folded into the index (assigned to the trained partitions, PQ-encoded) by the
``optimize`` the indexer already runs; once the table has grown to ``RETRAIN_GROWTH`` x the rows the
index was trained on (kept in its name), it is trained again. Rows an index does not cover are still
searched by LanceDB with a flat scan, so a stale index costs speed, never results.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import timedelta

from codeseer.errors import CodeseerError

ANN_MIN_CHUNKS = 100_000
ANN_ENV = "CODESEER_ANN_MIN_CHUNKS"
ANN_MODES = ("auto", "on", "off")
ANN_PRECISIONS = ("float32", "float16")
VECTOR_COLUMN = "vector"
INDEX_PREFIX = "vector_ann_"  # + the row count it was trained on
MIN_TRAIN_ROWS = 256  # 8-bit PQ trains 256 centroids per sub-vector; below this exact search is instant anyway
RETRAIN_GROWTH = 2.0
SUB_VECTOR_DIMS = 8
NPROBE_FRACTION = 0.5  # 0.4 gave recall@10 0.958-0.966 on 100k real chunks: too close to 0.95
NPROBES_ALL = 1 << 16  # an index of unknown shape: probe every partition (LanceDB stops at the last)
REFINE_FACTOR = 10
KEEP_ALL = timedelta(days=36500)  # before the commit point no version may be pruned


@dataclass(frozen=True)
class AnnStatus:
    """What :func:`ensure_ann` found or did, for the index report."""

    index_type: str | None  # e.g. "IVF_PQ"; None: searches are exact
    action: str  # "none", "built", "rebuilt", "updated", "kept", "dropped"
    indexed_rows: int = 0
    unindexed_rows: int = 0


def ann_threshold() -> int:
    """Rows from which ``--ann auto`` builds an index (``CODESEER_ANN_MIN_CHUNKS`` overrides)."""
    raw = os.environ.get(ANN_ENV, "").strip()
    if not raw:
        return ANN_MIN_CHUNKS
    try:
        value = int(raw)
    except ValueError:
        raise CodeseerError(f"{ANN_ENV} must be a whole number of chunks, not {raw!r}") from None
    if value < 0:
        raise CodeseerError(f"{ANN_ENV} must not be negative, got {value}")
    return value


def check_mode(mode: str) -> str:
    if mode not in ANN_MODES:
        raise CodeseerError(f"unknown --ann {mode!r}; choose one of {', '.join(ANN_MODES)}")
    return mode


def vector_index(table):
    """The ANN index on ``vector`` (a LanceDB ``IndexConfig``), or None."""
    for idx in table.list_indices():
        if list(idx.columns) == [VECTOR_COLUMN]:
            return idx
    return None


def trained_rows(idx) -> int | None:
    """Rows the index was trained on, from its name (None for an index codeseer did not name)."""
    name = getattr(idx, "name", "") or ""
    if name.startswith(INDEX_PREFIX) and name[len(INDEX_PREFIX):].isdigit():
        return int(name[len(INDEX_PREFIX):])
    return None


def partitions_for(rows: int) -> int:
    return max(1, round(math.sqrt(rows) / 2))


def sub_vectors_for(dim: int) -> int:
    """About one sub-vector per ``SUB_VECTOR_DIMS`` dimensions, dividing ``dim`` evenly."""
    wanted = max(1, dim // SUB_VECTOR_DIMS)
    return next(n for n in range(wanted, 0, -1) if dim % n == 0)


def build_index(table, rows: int) -> None:
    """Train an IVF_PQ index (cosine) on ``vector`` over the table's ``rows`` rows; prunes no version."""
    from lancedb.index import IvfPq

    dim = table.schema.field(VECTOR_COLUMN).type.list_size
    table.create_index(
        VECTOR_COLUMN,
        config=IvfPq(distance_type="cosine", num_partitions=partitions_for(rows), num_sub_vectors=sub_vectors_for(dim)),
        replace=True,
        name=f"{INDEX_PREFIX}{rows}",
    )
    # The first optimize after a build writes one more version; here, not after the commit point.
    table.optimize(cleanup_older_than=KEEP_ALL)


def nprobes_for(idx) -> int:
    trained = trained_rows(idx) if idx is not None else None
    if trained is None:
        return NPROBES_ALL
    return max(1, math.ceil(NPROBE_FRACTION * partitions_for(trained)))


def plan(table, precision: str, mode: str = "auto") -> str:
    """What :func:`ensure_ann` would do to ``table``: none, build, rebuild, drop, update or keep.

    ``auto`` builds an index from :func:`ann_threshold` rows on and maintains an existing one;
    ``on`` builds one whatever the size (from ``MIN_TRAIN_ROWS`` rows); ``off`` drops it.
    """
    check_mode(mode)
    existing = vector_index(table)
    if precision not in ANN_PRECISIONS:
        return "none"
    if mode == "off":
        return "none" if existing is None else "drop"
    rows = table.count_rows()
    if existing is None:
        threshold = MIN_TRAIN_ROWS if mode == "on" else max(ann_threshold(), MIN_TRAIN_ROWS)
        return "build" if rows >= threshold else "none"
    trained = trained_rows(existing)
    stats = table.index_stats(existing.name)
    unindexed = stats.num_unindexed_rows if stats is not None else 0
    if (trained is not None and rows >= RETRAIN_GROWTH * trained) or unindexed > rows / 2:
        return "rebuild"  # partitions and quantiser ranges fit a table half this size: train them again
    return "update" if unindexed else "keep"


def ensure_ann(table, precision: str, mode: str = "auto") -> AnnStatus:
    """Bring the ANN index of ``table`` in line with ``mode`` (see :func:`plan`); new table versions only.

    Call it after the indexer's ``optimize``, which already folds new rows into an existing index.
    """
    action = plan(table, precision, mode)
    if action == "drop":
        table.drop_index(vector_index(table).name)
        return AnnStatus(None, "dropped")
    if action in ("build", "rebuild"):
        if action == "rebuild":  # replace=True would keep an index of another name beside the new one
            table.drop_index(vector_index(table).name)
        build_index(table, table.count_rows())
        return status(table, "rebuilt" if action == "rebuild" else "built")
    if action == "update":
        table.optimize(cleanup_older_than=KEEP_ALL)
        return status(table, "updated")
    return status(table, "kept" if action == "keep" else "none")


def status(table, action: str = "kept") -> AnnStatus:
    """The ANN index of ``table`` as it is (``table`` may be a committed snapshot)."""
    idx = vector_index(table)
    if idx is None:
        return AnnStatus(None, action)
    stats = table.index_stats(idx.name)
    return AnnStatus(
        stats.index_type if stats is not None else idx.index_type,
        action,
        stats.num_indexed_rows if stats is not None else 0,
        stats.num_unindexed_rows if stats is not None else 0,
    )


def for_search(table, precision: str) -> tuple[str | None, int]:
    """(index type, partitions to probe) for searching ``table`` (a committed snapshot); (None, 0): exact."""
    idx = vector_index(table) if precision in ANN_PRECISIONS else None
    if idx is None:
        return None, 0
    return status(table).index_type, nprobes_for(idx)


def ann_search(builder, nprobes: int):
    """Tune a LanceDB vector query for the ANN index: ``nprobes`` partitions at least (more while a
    filter leaves fewer rows than the limit), then ``REFINE_FACTOR`` x limit candidates rescored exactly."""
    return builder.minimum_nprobes(nprobes).maximum_nprobes(0).refine_factor(REFINE_FACTOR)
