"""The file ranker's weight fit: a convex listwise loss, its derivatives, and what it recovers."""

from __future__ import annotations

import numpy as np
import pytest

from codeseer.eval.fit_ranker import fit_weights, listwise_loss


def _queries(n=200, files=20, seed=0, true_w=(2.0, 0.0, -1.0)):
    """Queries whose relevant file is drawn from softmax(X @ true_w): the fit should find true_w."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.normal(size=(files, len(true_w)))
        p = np.exp(x @ np.asarray(true_w))
        y = np.zeros(files)
        y[rng.choice(files, p=p / p.sum())] = 1
        out.append((x, y))
    return out


def test_gradient_and_hessian_match_finite_differences():
    samples = _queries(n=20)
    w = np.array([0.3, -0.2, 0.5])
    loss, grad, hess = listwise_loss(w, [(x, y / y.sum()) for x, y in samples])
    eps = 1e-6
    for j in range(3):
        step = np.zeros(3)
        step[j] = eps
        up = listwise_loss(w + step, [(x, y / y.sum()) for x, y in samples])
        down = listwise_loss(w - step, [(x, y / y.sum()) for x, y in samples])
        assert (up[0] - down[0]) / (2 * eps) == pytest.approx(grad[j], rel=1e-5, abs=1e-7)
        assert (up[1] - down[1]) / (2 * eps) == pytest.approx(hess[j], rel=1e-4, abs=1e-6)
    assert loss > 0


def test_fit_recovers_the_generating_weights():
    w = fit_weights(_queries(n=3000), l2=0.0)
    assert w == pytest.approx([2.0, 0.0, -1.0], abs=0.15)


def test_fit_is_the_minimum_and_ignores_queries_without_an_answer():
    samples = _queries(n=300)
    w = fit_weights(samples)
    prepared = [(x, y / y.sum()) for x, y in samples]
    best = listwise_loss(w, prepared)[0]
    for delta in np.eye(3) * 0.05:
        assert listwise_loss(w + delta, prepared)[0] > best
        assert listwise_loss(w - delta, prepared)[0] > best
    empty = (np.ones((5, 3)), np.zeros(5))
    assert fit_weights(samples + [empty]) == pytest.approx(w)
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_weights([empty])
