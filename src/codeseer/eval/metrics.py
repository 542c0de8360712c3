"""trec_eval-compatible retrieval metrics in plain numpy.

Why not just call pytrec_eval?  It is a compiled extension that is awkward to
install on some platforms, and it is only a test dependency here.  The numbers
must still be *the* numbers BEIR, MTEB and CoIR publish (they all go through
pytrec_eval), so every definition below mirrors trec_eval, and
``tests/test_metrics.py`` checks agreement against pytrec_eval on randomized
runs with tied scores.

Definitions (``rel`` = qrels grade; a document is relevant iff ``rel > 0``,
documents missing from the qrels have ``rel = 0``):

* ``ndcg@k``      trec_eval ``ndcg_cut_k``: gain = rel (linear), discount
  ``log2(rank + 1)``, ideal DCG from the query's qrels; grades <= 0 give no gain.
* ``map@k``       trec_eval ``map_cut_k``: sum of precision@rank over relevant
  documents ranked <= k, divided by the total number of relevant documents.
* ``recall@k``    relevant in top k / total relevant (trec_eval ``recall_k``).
* ``precision@k`` relevant in top k / k (trec_eval ``P_k``; short runs are not
  rescaled).
* ``mrr@k``       1 / rank of the first relevant document if it is ranked <= k,
  else 0 (trec_eval ``recip_rank`` on the run truncated to k).

A query with no relevant documents scores 0 everywhere.  Averages are over the
queries in ``qrels``; a query missing from the run counts as 0, run entries for
queries not in ``qrels`` are ignored.

Ranking order (verified empirically against pytrec_eval-terrier 0.5.11, see
``rank_documents``): trec_eval stores run scores as C ``float`` (float32) and
sorts by that score descending, breaking ties by document id descending in
byte (``strcmp``) order.  So ``{"a": 1.0, "b": 1.0}`` ranks ``b`` first,
``"d9"`` ranks above ``"d10"``, ``"a"`` above ``"B"``, and scores that differ
only beyond float32 precision (``0.1 + 0.2`` vs ``0.3``) are ties.  We round
scores to float32 and sort ``(score, doc_id)`` descending, which reproduces
that exactly (Python compares ``str`` by code point, which is the same order
as comparing the UTF-8 bytes).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = [
    "DEFAULT_K_VALUES",
    "METRIC_NAMES",
    "evaluate",
    "evaluate_per_query",
    "evaluate_keeping_per_query",
    "rank_documents",
]

DEFAULT_K_VALUES: tuple[int, ...] = (1, 5, 10, 100)
METRIC_NAMES: tuple[str, ...] = ("ndcg", "map", "recall", "mrr", "precision")

# Queries are scored in blocks so that memory stays O(block * max_k) however
# large the query set is.
_BLOCK = 4096


def _check_k_values(k_values: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(sorted({int(k) for k in k_values}))
    if not ks:
        raise ValueError("k_values must contain at least one cutoff")
    if ks[0] < 1:
        raise ValueError(f"k_values must be >= 1, got {ks[0]}")
    return ks


def _top_k(
    scores: Mapping[str, float], k: int | None, exclude: str | None = None
) -> list[str]:
    """Document ids of ``scores`` in trec_eval order, at most ``k`` of them."""
    if exclude is not None and exclude in scores:
        scores = {d: s for d, s in scores.items() if d != exclude}
    n = len(scores)
    if n == 0:
        return []
    # float32 rounding: trec_eval keeps the similarity in a C float.
    s32 = np.fromiter(scores.values(), dtype=np.float64, count=n).astype(np.float32)
    if np.isnan(s32).any():
        bad = next(d for d, s in scores.items() if math.isnan(s))
        raise ValueError(f"NaN score for document {bad!r}")
    pairs = zip(s32.tolist(), scores.keys())
    # Tuples compare (score, doc_id): reverse order = score desc, then id desc.
    if k is not None and n > 4 * k:
        ranked = heapq.nlargest(k, pairs)
    else:
        ranked = sorted(pairs, reverse=True)
        if k is not None:
            del ranked[k:]
    return [d for _, d in ranked]


def rank_documents(scores: Mapping[str, float], k: int | None = None) -> list[str]:
    """Rank a ``{doc_id: score}`` mapping exactly as trec_eval/pytrec_eval do.

    Score descending (compared as float32), ties by doc id descending.
    """
    return _top_k(scores, k)


def _score_block(
    qids: list[str],
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    ks: tuple[int, ...],
    ignore_identical_ids: bool,
) -> dict[str, np.ndarray]:
    kmax = ks[-1]
    nq = len(qids)
    gains = np.zeros((nq, kmax), dtype=np.float64)
    ideal = np.zeros((nq, kmax), dtype=np.float64)
    num_rel = np.zeros(nq, dtype=np.float64)
    empty: Mapping[str, float] = {}
    for i, qid in enumerate(qids):
        rels = qrels[qid]
        positive = sorted((r for r in rels.values() if r > 0), reverse=True)
        if not positive:
            continue  # no relevant docs: every metric is 0
        num_rel[i] = len(positive)
        ideal[i, : min(kmax, len(positive))] = positive[:kmax]
        ranked = _top_k(
            run.get(qid, empty), kmax, qid if ignore_identical_ids else None
        )
        if ranked:
            row = [rels.get(d, 0) for d in ranked]
            gains[i, : len(row)] = row
    np.maximum(gains, 0.0, out=gains)  # grades <= 0 are non-relevant

    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    disc = 1.0 / np.log2(ranks + 1.0)
    hit = gains > 0
    dcg = np.cumsum(gains * disc, axis=1)
    idcg = np.cumsum(ideal * disc, axis=1)
    hits = np.cumsum(hit, axis=1, dtype=np.float64)
    ap = np.cumsum(np.where(hit, hits / ranks, 0.0), axis=1)
    any_hit = hit.any(axis=1)
    first = np.where(any_hit, hit.argmax(axis=1) + 1, kmax + 1)
    safe_rel = np.where(num_rel > 0, num_rel, 1.0)

    out: dict[str, np.ndarray] = {}
    for k in ks:
        c = k - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"ndcg@{k}"] = np.where(idcg[:, c] > 0, dcg[:, c] / idcg[:, c], 0.0)
        out[f"map@{k}"] = ap[:, c] / safe_rel
        out[f"recall@{k}"] = hits[:, c] / safe_rel
        out[f"mrr@{k}"] = np.where(first <= k, 1.0 / first, 0.0)
        out[f"precision@{k}"] = hits[:, c] / k
    return out


def _metric_keys(ks: tuple[int, ...]) -> list[str]:
    return [f"{m}@{k}" for m in METRIC_NAMES for k in ks]


def _per_query_arrays(qrels, run, k_values, ignore_identical_ids):
    if not qrels:
        raise ValueError("qrels is empty: nothing to evaluate")
    ks = _check_k_values(k_values)
    qids = list(qrels)
    keys = _metric_keys(ks)
    parts: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    for start in range(0, len(qids), _BLOCK):
        block = _score_block(
            qids[start : start + _BLOCK], qrels, run, ks, ignore_identical_ids
        )
        for key in keys:
            parts[key].append(block[key])
    return qids, {key: np.concatenate(v) for key, v in parts.items()}


def evaluate_per_query(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    k_values: Iterable[int] = DEFAULT_K_VALUES,
    ignore_identical_ids: bool = False,
) -> dict[str, dict[str, float]]:
    """``{query_id: {"ndcg@10": ..., ...}}`` for every query in ``qrels``.

    Useful for per-query analysis and significance tests; ``evaluate`` is the
    mean of these values.
    """
    qids, arrays = _per_query_arrays(qrels, run, k_values, ignore_identical_ids)
    cols = {key: arr.tolist() for key, arr in arrays.items()}
    return {qid: {key: cols[key][i] for key in cols} for i, qid in enumerate(qids)}


def evaluate_keeping_per_query(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    keep: Iterable[str] = ("ndcg@10", "mrr@10"),
    k_values: Iterable[int] = DEFAULT_K_VALUES,
) -> tuple[dict[str, float], dict[str, list]]:
    """``evaluate``'s means plus compact per-query columns of the ``keep`` metrics, from one pass.

    The columns (``{"query_ids": [...], metric: [...], ...}``) go into ``codeseer eval --json``
    records so that two runs can be compared with a paired significance test
    (:mod:`codeseer.eval.significance`) later, without running them again.
    """
    qids, arrays = _per_query_arrays(qrels, run, k_values, False)
    columns: dict[str, list] = {"query_ids": list(qids)}
    for name in keep:
        columns[name] = [round(float(v), 6) for v in arrays[name]]
    return {key: float(arr.mean()) for key, arr in arrays.items()}, columns


def evaluate(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    k_values: Iterable[int] = DEFAULT_K_VALUES,
    ignore_identical_ids: bool = False,
) -> dict[str, float]:
    """Mean ``ndcg@k``, ``map@k``, ``recall@k``, ``mrr@k``, ``precision@k``.

    ``qrels``: ``{query_id: {doc_id: grade}}``; ``run``:
    ``{query_id: {doc_id: score}}`` (higher is better).  Values are fractions
    in [0, 1], averaged over the queries in ``qrels``.

    ``ignore_identical_ids`` drops run documents whose id equals the query id
    before ranking (BEIR's guard against self-hits when queries are also in
    the corpus).
    """
    _, arrays = _per_query_arrays(qrels, run, k_values, ignore_identical_ids)
    return {key: float(arr.mean()) for key, arr in arrays.items()}
