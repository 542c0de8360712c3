"""codeseer.eval.metrics: hand-computed cases and agreement with pytrec_eval."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest

from codeseer.eval.metrics import evaluate, evaluate_keeping_per_query, evaluate_per_query, rank_documents

LOG2_3 = math.log2(3)


def test_binary_relevance_ranks_1_and_3():
    # Ranking a, b, c, d; relevant = {a, c} -> relevant at ranks 1 and 3 of 2.
    qrels = {"q": {"a": 1, "c": 1}}
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}}
    m = evaluate(qrels, run, k_values=(1, 2, 5, 10))
    # DCG@10 = 1/log2(2) + 1/log2(4) = 1.5;  IDCG@10 = 1/log2(2) + 1/log2(3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / LOG2_3))
    assert m["ndcg@1"] == pytest.approx(1.0)
    # ndcg@2: DCG = 1 (b not relevant), IDCG = 1 + 1/log2(3)
    assert m["ndcg@2"] == pytest.approx(1 / (1 + 1 / LOG2_3))
    # AP@10 = (P@1 + P@3) / 2 = (1/1 + 2/3) / 2 = 5/6
    assert m["map@10"] == pytest.approx(5 / 6)
    # AP@2 = P@1 / 2 relevant in total (not / min(k, R)) = 0.5
    assert m["map@2"] == pytest.approx(0.5)
    assert m["recall@1"] == pytest.approx(0.5)  # 1 of 2
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["recall@5"] == pytest.approx(1.0)  # 2 of 2
    assert m["precision@1"] == pytest.approx(1.0)
    assert m["precision@5"] == pytest.approx(2 / 5)  # 2 hits / k, run has only 4
    assert m["precision@10"] == pytest.approx(2 / 10)
    assert m["mrr@1"] == pytest.approx(1.0)
    assert m["mrr@10"] == pytest.approx(1.0)


def test_graded_relevance_linear_gain():
    # rel(a) = 2, rel(b) = 1; run ranks b above a.
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": {"b": 0.9, "a": 0.5, "x": 0.1}}
    m = evaluate(qrels, run, k_values=(1, 10))
    # DCG@10  = 1/log2(2) + 2/log2(3) = 1 + 1.2619 = 2.2619
    # IDCG@10 = 2/log2(2) + 1/log2(3) = 2 + 0.6309 = 2.6309
    assert m["ndcg@10"] == pytest.approx((1 + 2 / LOG2_3) / (2 + 1 / LOG2_3))
    # ndcg@1 = 1 / 2 (gain 1 at rank 1 vs ideal gain 2)
    assert m["ndcg@1"] == pytest.approx(0.5)
    # MAP/recall/MRR are binary: both relevant at ranks 1, 2.
    assert m["map@10"] == pytest.approx(1.0)
    assert m["mrr@10"] == pytest.approx(1.0)


def test_nothing_relevant_retrieved():
    qrels = {"q": {"z": 1}}
    run = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
    m = evaluate(qrels, run)
    assert set(m) == {f"{n}@{k}" for n in ("ndcg", "map", "recall", "mrr", "precision")
                      for k in (1, 5, 10, 100)}
    assert all(v == 0.0 for v in m.values())


def test_mrr_first_relevant_at_rank_3():
    qrels = {"q": {"c": 1, "d": 1}}
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}}
    m = evaluate(qrels, run, k_values=(2, 3, 10))
    assert m["mrr@2"] == 0.0  # first relevant is beyond the cut
    assert m["mrr@3"] == pytest.approx(1 / 3)
    assert m["mrr@10"] == pytest.approx(1 / 3)
    # AP@10 = (P@3 + P@4) / 2 = (1/3 + 2/4) / 2 = 5/12
    assert m["map@10"] == pytest.approx(5 / 12)


def test_map_divides_by_all_relevant():
    # 3 relevant, only one retrieved at rank 1: AP@1 = (1/1) / 3
    qrels = {"q": {"a": 1, "b": 1, "c": 1}}
    run = {"q": {"a": 1.0, "x": 0.5}}
    m = evaluate(qrels, run, k_values=(1, 10))
    assert m["map@1"] == pytest.approx(1 / 3)
    assert m["recall@10"] == pytest.approx(1 / 3)
    # IDCG@1 = 1, DCG@1 = 1
    assert m["ndcg@1"] == pytest.approx(1.0)


def test_nonpositive_grades_are_not_relevant():
    # trec_eval: rel <= 0 earns no gain (negative grades are not subtracted).
    qrels = {"q": {"neg": -1, "zero": 0, "pos": 1}}
    run = {"q": {"neg": 3.0, "zero": 2.0, "pos": 1.0}}
    m = evaluate(qrels, run, k_values=(10,))
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(4))  # pos at rank 3
    assert m["mrr@10"] == pytest.approx(1 / 3)
    assert m["recall@10"] == pytest.approx(1.0)


def test_averaging_over_qrels_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {
        "q1": {"a": 1.0},  # perfect
        # q2 missing from the run -> 0
        # q3 has no relevant document -> 0
        "extra": {"a": 1.0},  # not in qrels -> ignored
    }
    m = evaluate(qrels, run, k_values=(10,))
    assert m["ndcg@10"] == pytest.approx(1 / 3)
    assert m["mrr@10"] == pytest.approx(1 / 3)
    per = evaluate_per_query(qrels, run, k_values=(10,))
    assert set(per) == {"q1", "q2", "q3"}
    assert per["q1"]["ndcg@10"] == 1.0 and per["q2"]["ndcg@10"] == 0.0
    means, columns = evaluate_keeping_per_query(qrels, run)  # one pass: evaluate's means + kept columns
    assert means == evaluate(qrels, run)
    assert columns == {"query_ids": ["q1", "q2", "q3"], "ndcg@10": [1.0, 0.0, 0.0], "mrr@10": [1.0, 0.0, 0.0]}


def test_tie_breaking_doc_id_descending():
    # pytrec_eval/trec_eval: equal scores -> doc id descending (strcmp order).
    assert rank_documents({"a": 1.0, "b": 1.0}) == ["b", "a"]
    assert rank_documents({"d10": 1.0, "d9": 1.0}) == ["d9", "d10"]  # '9' > '1'
    assert rank_documents({"a": 1.0, "B": 1.0}) == ["a", "B"]  # 'a' 0x61 > 'B' 0x42
    assert rank_documents({"a": 1.0, "ab": 1.0}) == ["ab", "a"]
    assert rank_documents({"a": 2.0, "b": 1.0, "c": 2.0}) == ["c", "a", "b"]
    assert rank_documents({"a": 3.0, "b": 2.0, "c": 1.0}, k=2) == ["a", "b"]
    # So with relevant "a" tied with "b": b takes rank 1, a rank 2.
    m = evaluate({"q": {"a": 1}}, {"q": {"a": 0.5, "b": 0.5}}, k_values=(1, 10))
    assert m["mrr@10"] == pytest.approx(0.5)
    assert m["precision@1"] == 0.0
    assert m["ndcg@10"] == pytest.approx(1 / LOG2_3)


def test_scores_compared_at_float32_precision():
    # trec_eval keeps scores in a C float: 0.1 + 0.2 and 0.3 are a tie there
    # (the id tie-break then puts "b" first), 1.0 vs 1.0 + 2e-7 is not.
    assert 0.1 + 0.2 > 0.3
    assert rank_documents({"a": 0.1 + 0.2, "b": 0.3}) == ["b", "a"]
    assert rank_documents({"a": 1.0 + 2e-7, "b": 1.0}) == ["a", "b"]


def test_ignore_identical_ids():
    qrels = {"q": {"d1": 1}}
    run = {"q": {"q": 0.99, "d1": 0.5}}
    assert evaluate(qrels, run, k_values=(1,))["mrr@1"] == 0.0
    m = evaluate(qrels, run, k_values=(1,), ignore_identical_ids=True)
    assert m["mrr@1"] == 1.0 and m["ndcg@1"] == 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        evaluate({}, {})
    with pytest.raises(ValueError, match="k_values"):
        evaluate({"q": {"a": 1}}, {}, k_values=(0,))
    with pytest.raises(ValueError, match="NaN"):
        evaluate({"q": {"a": 1}}, {"q": {"a": float("nan")}})


def _random_case(seed: int, n_queries: int = 200):
    rng = random.Random(seed)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for i in range(n_queries):
        qid = f"q{i}"
        pool = [f"d{j}" for j in rng.sample(range(400), 150)]
        n_judged = rng.randint(1, 8)
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in pool[:n_judged]}
        if rng.random() < 0.05:
            continue  # query absent from the run
        n_ret = rng.choice([0, 3, 20, 120, 150])
        docs = rng.sample(pool, n_ret)
        scores = {}
        for d in docs:
            r = rng.random()
            if r < 0.5:
                scores[d] = round(rng.random(), 1)  # many exact ties
            elif r < 0.6:
                scores[d] = 0.5 + 1e-12 * rng.random()  # ties only in float32
            else:
                scores[d] = rng.random()
        run[qid] = scores
    return qrels, run


def _trec_top(scores: dict[str, float], k: int) -> dict[str, float]:
    # Independent restatement of trec_eval's order: float32 score desc, id desc.
    order = sorted(scores, key=lambda d: (np.float32(scores[d]), d), reverse=True)
    return {d: scores[d] for d in order[:k]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pytrec_eval(seed):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_case(seed)
    measures = {"ndcg_cut_10", "map_cut_10", "recall_10", "recall_100", "P_5",
                "ndcg_cut_100", "recip_rank"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    rr10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: _trec_top(s, 10) for q, s in run.items()}
    )
    ours = evaluate_per_query(qrels, run, k_values=(5, 10, 100))
    pairs = [("ndcg_cut_10", "ndcg@10"), ("map_cut_10", "map@10"),
             ("recall_10", "recall@10"), ("recall_100", "recall@100"),
             ("P_5", "precision@5"), ("ndcg_cut_100", "ndcg@100")]
    compared = 0
    for qid in qrels:
        if qid not in ref:  # pytrec_eval only reports queries present in the run
            assert all(v == 0.0 for v in ours[qid].values())
            continue
        for theirs, mine in pairs:
            assert ours[qid][mine] == pytest.approx(ref[qid][theirs], abs=1e-6), (qid, mine)
        assert ours[qid]["mrr@10"] == pytest.approx(rr10[qid]["recip_rank"], abs=1e-6)
        # Same thing without truncating: reciprocal ranks below 1/10 are cut.
        rr = ref[qid]["recip_rank"]
        assert ours[qid]["mrr@10"] == pytest.approx(rr if rr >= 0.1 else 0.0, abs=1e-6)
        compared += 1
    assert compared > 150

    # Means: over all qrels queries, absent ones contributing 0.
    mean = evaluate(qrels, run, k_values=(10,))
    expect = sum(ref.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels) / len(qrels)
    assert mean["ndcg@10"] == pytest.approx(expect, abs=1e-9)


def test_ignore_identical_ids_matches_beir_preprocessing():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_case(7, n_queries=50)
    for qid in run:  # plant self-hits at the top
        run[qid][qid] = 2.0
    # BEIR: pop results whose doc id equals the query id, then pytrec_eval.
    cleaned = {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"}).evaluate(cleaned)
    ours = evaluate_per_query(qrels, run, k_values=(10,), ignore_identical_ids=True)
    for qid, vals in ref.items():
        assert ours[qid]["ndcg@10"] == pytest.approx(vals["ndcg_cut_10"], abs=1e-6)


def test_fast_enough():
    rng = np.random.default_rng(0)
    qrels, run = {}, {}
    for i in range(10_000):
        docs = [f"d{j}" for j in rng.choice(50_000, 100, replace=False)]
        qrels[f"q{i}"] = {docs[0]: 1, docs[7]: 2}
        run[f"q{i}"] = dict(zip(docs, np.round(rng.random(100), 2).tolist()))
    t0 = time.perf_counter()
    evaluate(qrels, run)
    # ~0.5 s on a laptop-class core; the bound only catches accidental O(n^2).
    assert time.perf_counter() - t0 < 10.0
