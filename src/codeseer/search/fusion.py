"""Fuse dense and BM25 results, weighted by what the query looks like.

Equal-weight reciprocal rank fusion is a trap for code search. Measured with MiniLM on cosqa-dev
(``bench/fusion_weights.py``): dense 60.3 nDCG@10, BM25 38.3, equal-weight RRF 53.1, and even a
lexical weight of 0.1 in RRF stays below dense (59.0): rank-based fusion promotes BM25's noisy top
ranks. A convex combination of min-max normalised scores keeps the size of each signal's margin and
does not lose to dense (60.4 at lexical weight 0.1). Queries made of identifiers or pasted code are
the opposite case: exact tokens are strong evidence there, so the lexical weight grows with how
code-like the query is. Weighted RRF stays available (``method="rrf"``) for comparison.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence

RRF_K = 60
PROSE_LEXICAL_WEIGHT = 0.1  # share of BM25 for plain-English queries (cosqa-dev: best at 0.05-0.1)
CODE_LEXICAL_WEIGHT = 0.4  # share of BM25 for pasted code / bare identifiers
FUSION_METHODS = ("convex", "rrf")

_CODE_PUNCT = re.compile(r"[(){}\[\];=<>]|::|->|=>|\w\.\w")
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*$")


def _is_identifier_like(token: str) -> bool:
    token = token.strip(".,:;!?\"'`()")
    if not _IDENTIFIER.match(token):
        return False
    has_snake = "_" in token.strip("_")
    has_camel = re.search(r"[a-z][A-Z]", token) is not None
    return has_snake or has_camel


def code_likeness(query: str) -> float:
    """0 for plain English, 1 for code or a bare identifier; in between for mixed queries."""
    tokens = query.split()
    if not tokens:
        return 0.0
    punct = len(_CODE_PUNCT.findall(query))
    if "\n" in query.strip() or punct >= 3:
        return 1.0
    identifiers = sum(_is_identifier_like(t) for t in tokens) / len(tokens)
    return min(1.0, max(identifiers, 0.5 * min(punct, 2) / 2 + 0.5 * identifiers))


def lexical_weight(query: str) -> float:
    """Share of the BM25 signal in the fused score for this query (dense gets the rest)."""
    return PROSE_LEXICAL_WEIGHT + (CODE_LEXICAL_WEIGHT - PROSE_LEXICAL_WEIGHT) * code_likeness(query)


def _min_max(scores: Mapping[Hashable, float]) -> dict[Hashable, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {doc: (s - lo) / span if span > 0 else 1.0 for doc, s in scores.items()}


def convex_fusion(
    dense: Mapping[Hashable, float], lexical: Mapping[Hashable, float], weight: float
) -> dict[Hashable, float]:
    """(1 - w) * minmax(dense) + w * minmax(bm25); a document missing from a list gets 0 there."""
    nd, nl = _min_max(dense), _min_max(lexical)
    return {doc: (1 - weight) * nd.get(doc, 0.0) + weight * nl.get(doc, 0.0) for doc in nd.keys() | nl.keys()}


def weighted_rrf(
    rankings: Sequence[Sequence[Hashable]], weights: Sequence[float], k: int = RRF_K
) -> dict[Hashable, float]:
    """sum_i w_i / (k + rank_i(d)), ranks starting at 1; absent documents contribute nothing."""
    scores: dict[Hashable, float] = {}
    for ranking, weight in zip(rankings, weights):
        if weight <= 0:
            continue
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return scores


def fuse(
    dense: Mapping[Hashable, float],
    lexical: Mapping[Hashable, float],
    query: str,
    *,
    method: str = "convex",
    weight: float | None = None,
) -> dict[Hashable, float]:
    """Fused scores for one query; ``weight`` overrides the query-dependent lexical share."""
    w = lexical_weight(query) if weight is None else weight
    if method == "convex":
        return convex_fusion(dense, lexical, w)
    if method == "rrf":
        rank = lambda run: sorted(run, key=lambda d: (-run[d], str(d)))  # noqa: E731
        return weighted_rrf([rank(dense), rank(lexical)], [1 - w, w])
    raise ValueError(f"unknown fusion method {method!r}; choose one of {FUSION_METHODS}")


def fused_rows(dense: Sequence[dict], lexical: Sequence[dict], query: str, *, method: str = "convex") -> list[dict]:
    """Chunk rows of both runs, each once (the dense copy where both have it), scored by their fusion."""
    by_id = {row["chunk_id"]: row for row in lexical}
    by_id.update({row["chunk_id"]: row for row in dense})
    fused = fuse({r["chunk_id"]: r["score"] for r in dense}, {r["chunk_id"]: r["score"] for r in lexical}, query,
                 method=method)
    return [dict(by_id[cid], score=float(score)) for cid, score in fused.items()]
