"""Paired significance tests of per-query scores, checked against brute force and hand computation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from codeseer.eval.significance import paired_from_records, paired_test


def test_all_equal_gains_exact_p_is_two_of_two_to_the_n():
    result = paired_test(np.zeros(5), np.ones(5))
    # only "all +" and "all −" reach |mean| >= 1 among the 2^5 sign assignments
    assert result.exact and result.n == 5
    assert result.p_value == pytest.approx(2 / 32)
    assert result.mean_diff == 1.0 and result.ci_low == 1.0 and result.ci_high == 1.0
    assert not result.significant()  # 5 queries cannot show a difference at 0.05


def test_exact_p_matches_a_brute_force_enumeration():
    rng = np.random.default_rng(3)
    a, b = rng.random(10), rng.random(10)
    diff = b - a
    observed = abs(diff.mean())
    hits = sum(abs(np.dot(signs, diff)) / 10 >= observed - 1e-12 for signs in itertools.product((1, -1), repeat=10))
    result = paired_test(a, b)
    assert result.exact
    assert result.p_value == pytest.approx(hits / 1024)
    assert result.mean_diff == pytest.approx(diff.mean())


def test_identical_runs_are_not_different():
    scores = np.linspace(0, 1, 300)
    result = paired_test(scores, scores)
    assert result.p_value == 1.0 and result.mean_diff == 0.0
    assert result.ci_low == 0.0 and result.ci_high == 0.0


def test_differences_that_cancel_give_p_one_and_a_ci_around_zero():
    diff = np.tile([0.2, -0.2], 250)  # mean exactly 0
    result = paired_test(np.zeros(500), diff)
    assert not result.exact
    assert result.p_value == 1.0
    assert result.ci_low < 0 < result.ci_high


def test_a_consistent_gain_over_500_queries_is_significant_and_the_ci_covers_it():
    rng = np.random.default_rng(0)
    a = rng.random(500)
    b = a + 0.05 + rng.normal(0, 0.1, 500)  # mean gain 0.05, noise 0.1: z ≈ 11
    result = paired_test(a, b, resamples=2000)
    assert result.p_value == pytest.approx(1 / 2001)  # no sampled assignment reaches it: the floor
    assert result.significant()
    assert 0 < result.ci_low < result.mean_diff < result.ci_high
    assert result.ci_low < 0.05 < result.ci_high


def test_a_small_gain_on_few_noisy_queries_is_not_significant():
    rng = np.random.default_rng(1)
    a = rng.random(40)
    b = a + rng.normal(0.005, 0.2, 40)
    result = paired_test(a, b)
    assert result.p_value > 0.05
    assert result.ci_low < 0 < result.ci_high


def test_seeded_results_repeat():
    rng = np.random.default_rng(2)
    a, b = rng.random(200), rng.random(200)
    assert paired_test(a, b, seed=5) == paired_test(a, b, seed=5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one length"):
        paired_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no queries"):
        paired_test([], [])
    with pytest.raises(ValueError, match="resamples"):
        paired_test([1.0], [2.0], resamples=0)


def test_records_are_paired_by_query_id_not_by_position():
    a = {"per_query": {"query_ids": ["q1", "q2", "q3"], "ndcg@10": [0.0, 0.5, 1.0]}}
    b = {"per_query": {"query_ids": ["q3", "q1", "q2", "q9"], "ndcg@10": [1.0, 1.0, 1.0, 0.0]}}
    result = paired_from_records(a, b)
    assert result.n == 3  # q9 is only in b
    assert result.mean_diff == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert paired_from_records(a, b, "mrr@10") is None  # no per-query MRR stored
    assert paired_from_records({"metrics": {}}, b) is None  # a file written before per-query scores
