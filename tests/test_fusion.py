"""Fusion weights: unit behaviour, and on the shared dev sets hybrid never loses much to its parts."""

from __future__ import annotations

import math

import pytest

from codeseer.search.fusion import (
    CODE_LEXICAL_WEIGHT,
    PROSE_LEXICAL_WEIGHT,
    code_likeness,
    convex_fusion,
    fuse,
    lexical_weight,
    weighted_rrf,
)

from conftest import SHARED_DATASETS


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("retry an operation that sometimes fails", 0.0),
        ("python check if a variable is iterable", 0.0),
        ("handle_user_exception", 1.0),
        ("getUserName", 1.0),
        ("public String toString() {return pattern();}", 1.0),
        ("def f(x):\n    return x", 1.0),
    ],
)
def test_code_likeness(query, expected):
    assert code_likeness(query) == expected


def test_mixed_query_gets_an_intermediate_weight():
    w = lexical_weight("where is handle_user_exception called")
    assert PROSE_LEXICAL_WEIGHT < w < CODE_LEXICAL_WEIGHT


def test_convex_fusion_by_hand():
    dense = {"a": 0.9, "b": 0.5, "c": 0.7}  # minmax: a 1, b 0, c 0.5
    lexical = {"b": 10.0, "d": 4.0}  # minmax: b 1, d 0
    fused = convex_fusion(dense, lexical, 0.25)
    assert fused == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.375, "d": 0.0})


def test_weighted_rrf_by_hand():
    fused = weighted_rrf([["a", "b"], ["b", "c"]], [1.0, 0.5], k=60)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 0.5 / 61)
    assert fused["c"] == pytest.approx(0.5 / 62)
    assert "a" in fuse({"a": 1.0}, {}, "x", method="rrf")
    with pytest.raises(ValueError):
        fuse({}, {}, "x", method="magic")


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets not present")
@pytest.mark.parametrize("name", ["cosqa-dev", "java2cs-dev"])
def test_hybrid_is_never_much_worse_than_the_better_part(name, tmp_path_factory):
    from codeseer.eval.beir import load_beir
    from codeseer.eval.metrics import evaluate
    from codeseer.eval.runner import CorpusRetriever, default_cache_dir
    from codeseer.models.embedder import Embedder

    dataset = load_beir(SHARED_DATASETS / name)
    retriever = CorpusRetriever(dataset, embedder=Embedder(None), cache_dir=default_cache_dir())
    dense, lexical = retriever.dense(), retriever.lexical()
    scores = {
        mode: evaluate(dataset.qrels, run, k_values=(10,))
        for mode, run in (("dense", dense), ("lexical", lexical), ("hybrid", retriever.hybrid(dense, lexical)))
    }
    best = max(scores["dense"]["ndcg@10"], scores["lexical"]["ndcg@10"])
    assert scores["hybrid"]["ndcg@10"] >= best - 0.01, scores
    assert scores["hybrid"]["mrr@10"] >= max(scores["dense"]["mrr@10"], scores["lexical"]["mrr@10"]) - 0.01
    # and equal-weight RRF, the naive fusion, is measurably worse on prose queries
    if name == "cosqa-dev":
        naive = evaluate(dataset.qrels, retriever.hybrid(dense, lexical, method="rrf", weight=0.5), k_values=(10,))
        assert naive["ndcg@10"] < scores["hybrid"]["ndcg@10"] - 0.03
    assert not math.isnan(scores["hybrid"]["ndcg@10"])
