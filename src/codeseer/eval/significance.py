"""Is B really better than A on this query set? Paired tests over per-query scores.

A dev set of 500 queries moves by 0.2 nDCG@10 when one query's relevant document moves one rank,
so a difference in means says little on its own. Two standard IR tools answer the question
(Smucker, Allan & Carterette, CIKM 2007, recommend the randomization test for IR metrics):

* the **paired randomization (sign-flip) test**: under "A and B are exchangeable", each query's
  difference is as likely to have either sign; the p-value is the share of sign assignments whose
  mean difference is at least as far from zero as the observed one (two-sided). All 2^n
  assignments are enumerated when that is no more than ``resamples``, else a seeded sample is
  drawn (with the observed assignment counted, so p is never 0);
* a **paired bootstrap** 95% confidence interval of the mean difference (percentile method).

Pure numpy and seeded: the same inputs give the same numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PairedTest", "paired_test", "paired_from_records"]

RESAMPLES = 10_000
_BLOCK_VALUES = 2_000_000  # resamples are drawn in blocks of about this many values (16 MB), whatever n is


def _blocks(n: int, resamples: int):
    """Sizes of the resampling blocks: ``resamples`` in all, about ``_BLOCK_VALUES`` values each."""
    step = max(1, _BLOCK_VALUES // n)
    for start in range(0, resamples, step):
        yield min(step, resamples - start)


@dataclass(frozen=True)
class PairedTest:
    """B − A over ``n`` shared queries: mean, 95% bootstrap interval, two-sided p-value."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    exact: bool  # p from all 2^n sign assignments, not a sample

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def _sign_flip_p(diff: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, bool]:
    n = len(diff)
    observed = abs(diff.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(diff).max(initial=0.0)))
    if n <= 20 and 2**n <= resamples:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        means = np.abs(signs @ diff) / n
        return float(np.mean(means >= observed - tolerance)), True
    hits = 1  # the observed assignment itself
    for size in _blocks(n, resamples):
        signs = rng.choice((-1.0, 1.0), size=(size, n))
        hits += int(np.sum(np.abs(signs @ diff) / n >= observed - tolerance))
    return hits / (resamples + 1), False


def _bootstrap_ci(diff: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    n = len(diff)
    means = [diff[rng.integers(0, n, size=(size, n))].mean(axis=1) for size in _blocks(n, resamples)]
    low, high = np.percentile(np.concatenate(means), [2.5, 97.5])
    return float(low), float(high)


def paired_test(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0
) -> PairedTest:
    """Test B − A on per-query scores given in the same query order."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two 1-d arrays of one length, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("no queries to compare")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    diff = b - a
    rng = np.random.default_rng(seed)
    p, exact = _sign_flip_p(diff, resamples, rng)
    low, high = _bootstrap_ci(diff, resamples, rng)
    return PairedTest(n=len(diff), mean_diff=float(diff.mean()), ci_low=low, ci_high=high, p_value=p, exact=exact)


def paired_from_records(
    a: Mapping[str, Any], b: Mapping[str, Any], metric: str = "ndcg@10", **kwargs: Any
) -> PairedTest | None:
    """The test for two result records of one dataset, on the queries both scored.

    None when either record lacks per-query scores for ``metric`` (files written before codeseer
    stored them, or another metric).
    """
    scores = []
    for rec in (a, b):
        per_query = rec.get("per_query") or {}
        ids, values = per_query.get("query_ids"), per_query.get(metric)
        if ids is None or values is None:
            return None
        scores.append(dict(zip(ids, values)))
    shared = [q for q in scores[0] if q in scores[1]]
    if not shared:
        return None
    return paired_test([scores[0][q] for q in shared], [scores[1][q] for q in shared], **kwargs)
