"""Fit the file ranker's weights on benchmark queries: listwise softmax regression.

For each query the candidates' scores ``X @ w`` go through a softmax, and the loss is the
cross-entropy against the relevant files (each relevant file an equal share). The loss is convex,
so Newton's method with a small L2 term reaches the optimum in a few dozen steps; numpy only.
This is what ``codeseer eval-repo DATASET --fit`` runs, and ``--loro`` runs it once per held-out
repository.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["L2", "fit_weights", "listwise_loss"]

L2 = 3e-4  # small: the features are on comparable scales; it only keeps unused features at 0
MAX_STEPS = 100


def _prepared(samples: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for features, relevant in samples:
        relevant = np.asarray(relevant, dtype=np.float64)
        if len(relevant) and relevant.sum() > 0:
            out.append((np.asarray(features, dtype=np.float64), relevant / relevant.sum()))
    return out


def listwise_loss(w: np.ndarray, samples, l2: float = L2) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cross-entropy + l2 |w|^2, its gradient and Hessian."""
    dim = len(w)
    loss, grad, hess = 0.0, np.zeros(dim), np.zeros((dim, dim))
    for x, y in samples:
        s = x @ w
        s = s - s.max()
        p = np.exp(s)
        p /= p.sum()
        loss -= float(y @ np.log(p + 1e-300))
        grad -= x.T @ (y - p)
        mean = x.T @ p
        hess += (x.T * p) @ x - np.outer(mean, mean)
    n = max(len(samples), 1)
    return loss / n + l2 * float(w @ w), grad / n + 2 * l2 * w, hess / n + 2 * l2 * np.eye(dim)


def fit_weights(samples: Sequence[tuple[np.ndarray, np.ndarray]], *, l2: float = L2) -> np.ndarray:
    """Weights minimising the listwise loss over ``(features (files x F), relevant (files,))`` samples."""
    prepared = _prepared(samples)
    if not prepared:
        raise ValueError("no query has a relevant file among its candidates: nothing to fit")
    dim = prepared[0][0].shape[1]
    w = np.zeros(dim)
    loss, grad, hess = listwise_loss(w, prepared, l2)
    for _ in range(MAX_STEPS):
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6:  # backtracking: Newton steps can overshoot far from the optimum
            candidate = w - t * step
            new_loss, new_grad, new_hess = listwise_loss(candidate, prepared, l2)
            if new_loss <= loss - 1e-4 * t * float(grad @ step):
                break
            t /= 2
        else:
            break
        w, loss, grad, hess = candidate, new_loss, new_grad, new_hess
        if np.abs(grad).max() < 1e-8:
            break
    return w
