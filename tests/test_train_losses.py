"""codeseer.train.losses against hand computations on small fixed tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MatryoshkaLoss,
    MultipleNegativesRankingLoss,
)
from torch import nn

from codeseer.errors import CodeseerError
from codeseer.train.losses import (
    OrderAugmentedLoss,
    TeacherDistillLoss,
    build_loss,
    code_tokens,
    edit_similarity,
    order_term,
    teacher_similarity,
)


class FakeModel(nn.Module):
    """Stands in for a SentenceTransformer: the 'features' already are the embeddings."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, features):
        return {"sentence_embedding": features["x"]}

    def _get_untruncated_embedding_dimension(self):
        return self.dim

    def get_embedding_dimension(self):
        return self.dim


def _fixed(rows: int, dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, dim, generator=g, dtype=torch.float64).float()


def hand_infonce(q: torch.Tensor, docs: list[torch.Tensor], scale: float = 20.0) -> float:
    """Cross-entropy over scale * cosine(q_i, every document), target = q_i's positive (row i of docs[0])."""
    d = torch.cat(docs)
    total = 0.0
    for i in range(q.shape[0]):
        logits = [scale * float(F.cosine_similarity(q[i], d[j], dim=0)) for j in range(d.shape[0])]
        log_z = math.log(sum(math.exp(x) for x in logits))
        total += log_z - logits[i]
    return total / q.shape[0]


def test_infonce_is_mnrl_at_scale_20():
    q, pos, neg = _fixed(4, 8, 0), _fixed(4, 8, 1), _fixed(4, 8, 2)
    mnrl = MultipleNegativesRankingLoss(FakeModel(8), scale=20.0)
    assert mnrl.temperature == pytest.approx(0.05)
    value = mnrl.compute_loss_from_embeddings([q, pos], None)
    assert float(value) == pytest.approx(hand_infonce(q, [pos]), rel=1e-5)
    # hard negatives are extra columns of documents
    value = mnrl.compute_loss_from_embeddings([q, pos, neg], None)
    assert float(value) == pytest.approx(hand_infonce(q, [pos, neg]), rel=1e-5)
    # and the same through forward(), with build_loss's default
    loss = build_loss(FakeModel(8), "infonce")
    assert isinstance(loss, MultipleNegativesRankingLoss) and loss.scale == 20.0
    assert float(loss([{"x": q}, {"x": pos}], None)) == pytest.approx(hand_infonce(q, [pos]), rel=1e-5)


def test_matryoshka_is_weighted_sum_of_truncated_infonce():
    q, pos = _fixed(5, 8, 3), _fixed(5, 8, 4)
    model = FakeModel(8)
    dims, weights = [8, 4, 2], [1.0, 0.5, 0.25]
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model, scale=20.0), dims, weights)
    value = float(loss([{"x": q.clone()}, {"x": pos.clone()}], None))
    expected = sum(w * hand_infonce(F.normalize(q[:, :d], dim=-1), [F.normalize(pos[:, :d], dim=-1)])
                   for d, w in zip(dims, weights))
    assert value == pytest.approx(expected, rel=1e-5)
    # build_loss wraps in Matryoshka with unit weights; dims wider than the model are refused
    wrapped = build_loss(model, "infonce", matryoshka_dims=[2, 8, 4])
    assert isinstance(wrapped, MatryoshkaLoss) and wrapped.matryoshka_dims == (8, 4, 2)
    unit = sum(hand_infonce(F.normalize(q[:, :d], dim=-1), [F.normalize(pos[:, :d], dim=-1)]) for d in dims)
    assert float(wrapped([{"x": q.clone()}, {"x": pos.clone()}], None)) == pytest.approx(unit, rel=1e-5)
    with pytest.raises(CodeseerError, match="matryoshka"):
        build_loss(model, "infonce", matryoshka_dims=[16, 8])
    with pytest.raises(CodeseerError, match="unknown loss"):
        build_loss(model, "triplet")


def hand_order(scores: list[float], grades: list[float], scale: float, margin: float) -> float:
    terms = [math.exp(scale * (scores[b] - scores[a]))
             for a in range(len(scores)) for b in range(len(scores)) if grades[a] - grades[b] > margin]
    return math.log(1 + sum(terms))


def test_order_term_small_when_respected_large_when_inverted():
    grades = torch.tensor([[1.0, 0.6, 0.2]])
    respected = order_term(torch.tensor([[0.9, 0.5, 0.1]]), grades, scale=20.0, grade_margin=0.0)
    inverted = order_term(torch.tensor([[0.1, 0.5, 0.9]]), grades, scale=20.0, grade_margin=0.0)
    assert float(respected) < 1e-3
    assert float(respected) == pytest.approx(hand_order([0.9, 0.5, 0.1], [1, 0.6, 0.2], 20, 0), rel=1e-4)
    assert float(inverted) > 15.0
    assert float(inverted) == pytest.approx(hand_order([0.1, 0.5, 0.9], [1, 0.6, 0.2], 20, 0), rel=1e-5)
    # pairs whose grades are within the margin are not ordered: equal grades give exactly 0
    assert float(order_term(torch.tensor([[0.1, 0.9]]), torch.tensor([[0.5, 0.5]]))) == 0.0
    close = order_term(torch.tensor([[0.1, 0.9]]), torch.tensor([[0.53, 0.5]]), grade_margin=0.05)
    assert float(close) == 0.0


def test_oasis_loss_matches_hand_computation():
    torch.manual_seed(0)
    q, pos, n1, n2 = (_fixed(3, 6, s) for s in (10, 11, 12, 13))
    grades = torch.tensor([[0.8, 0.1], [0.2, 0.7], [0.5, 0.5]])
    loss = OrderAugmentedLoss(FakeModel(6), scale=20.0, order_scale=10.0, order_weight=0.5, grade_margin=0.0)
    value = float(loss([{"x": q}, {"x": pos}, {"x": n1}, {"x": n2}], grades))
    infonce = hand_infonce(q, [pos, n1, n2])
    order = 0.0
    for i in range(3):
        sims = [float(F.cosine_similarity(q[i], c[i], dim=0)) for c in (pos, n1, n2)]
        order += hand_order(sims, [1.0, *grades[i].tolist()], 10.0, 0.0) / 3
    assert value == pytest.approx(infonce + 0.5 * order, rel=1e-5)
    assert loss.last_parts["infonce"] == pytest.approx(infonce, rel=1e-5)
    assert loss.last_parts["order"] == pytest.approx(order, rel=1e-5)
    # order_weight 0 is plain InfoNCE over the same candidates (MNRL)
    plain = OrderAugmentedLoss(FakeModel(6), order_weight=0.0)
    mnrl = MultipleNegativesRankingLoss(FakeModel(6))
    assert float(plain([{"x": q}, {"x": pos}, {"x": n1}, {"x": n2}], grades)) == pytest.approx(
        float(mnrl.compute_loss_from_embeddings([q, pos, n1, n2], None)), rel=1e-5)
    with pytest.raises(ValueError, match="negative"):
        loss([{"x": q}, {"x": pos}], None)


def test_oasis_order_term_is_what_separates_graded_candidates():
    """Same embeddings, grades in or against the model's order: only the order term changes."""
    q = torch.tensor([[1.0, 0.0, 0.0]])
    pos = torch.tensor([[0.95, 0.3, 0.0]])
    near = torch.tensor([[0.7, 0.7, 0.0]])
    far = torch.tensor([[0.0, 0.0, 1.0]])
    loss = OrderAugmentedLoss(FakeModel(3), order_weight=1.0, grade_margin=0.0)
    feats = [{"x": q}, {"x": pos}, {"x": near}, {"x": far}]
    loss(feats, torch.tensor([[0.9, 0.1]]))
    agree = loss.last_parts["order"]
    loss(feats, torch.tensor([[0.1, 0.9]]))
    disagree = loss.last_parts["order"]
    assert agree < 0.01 < 5.0 < disagree


def _tiny_batch(model, n: int = 6):
    texts = [f"def f{i}(x): return x + {i}" for i in range(n)]
    queries = [f"add {i} to a number" for i in range(n)]
    negs = [f"def g{i}(y): return y * {i}" for i in range(n)]
    return [model.tokenize(t) for t in (queries, texts, negs)]


@pytest.mark.parametrize("kind", ["infonce", "oasis"])
def test_gradcache_matches_full_batch(tiny_model_dir, kind):
    """--mini-batch-size changes memory, not the loss or the gradients (with Matryoshka on top)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.eval()  # no dropout, so both passes see the same network
    labels = torch.tensor([[0.3]] * 6) if kind == "oasis" else None
    results = []
    for mini in (None, 2):
        loss = build_loss(model, kind, mini_batch_size=mini, matryoshka_dims=[32, 16])
        if kind == "infonce":
            assert isinstance(loss.loss, CachedMultipleNegativesRankingLoss if mini else MultipleNegativesRankingLoss)
        model.zero_grad()
        value = loss(_tiny_batch(model), labels)
        value.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((float(value.detach()), grads.clone()))
    (full, g_full), (cached, g_cached) = results
    assert cached == pytest.approx(full, rel=1e-4)
    assert torch.allclose(g_full, g_cached, rtol=1e-3, atol=1e-6)


def test_edit_similarity_known_strings():
    assert code_tokens("def add(a, b): return a+b") == ["def", "add", "(", "a", ",", "b", ")", ":", "return", "a", "+", "b"]
    assert edit_similarity("def add(a, b): return a + b", "def add(a,b):\n    return a+b") == 1.0  # layout is free
    assert edit_similarity("a b c", "a b d") == pytest.approx(2 / 3)
    # the classic kitten/sitting: distance 3 over 7 tokens
    assert edit_similarity("k i t t e n", "s i t t i n g") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("x", "") == 0.0
    a, b = "return sum(xs) / len(xs)", "return max(xs)"
    assert edit_similarity(a, b) == edit_similarity(b, a)
    # renaming one identifier costs one token of 12
    assert edit_similarity("def add(a, b): return a+b", "def plus(a, b): return a+b") == pytest.approx(11 / 12)


def test_teacher_similarity_is_clipped_cosine():
    vectors = {"p": [1.0, 0.0], "close": [0.8, 0.6], "orth": [0.0, 1.0], "opposite": [-1.0, 0.0]}

    class Teacher:
        def encode(self, texts, **kwargs):
            return np.array([vectors[t] for t in texts], dtype=np.float32) * 3  # unnormalised on purpose

    grades = teacher_similarity(Teacher(), ["p", "p"], [["close", "orth"], ["opposite"]])
    assert grades[0] == pytest.approx([0.8, 0.0], abs=1e-6)
    assert grades[1] == [0.0]


def hand_kl(student: list[float], teacher: list[float], scale: float, teacher_scale: float) -> float:
    ps = [math.exp(scale * s) for s in student]
    pt = [math.exp(teacher_scale * t) for t in teacher]
    zs, zt = sum(ps), sum(pt)
    return sum((b / zt) * (math.log(b / zt) - math.log(a / zs)) for a, b in zip(ps, pt))


def test_distill_loss_matches_hand_computation():
    """InfoNCE plus KL(teacher || student) over the in-batch candidates, teacher vectors looked up by row."""
    q, pos, neg = (_fixed(3, 5, s) for s in (20, 21, 22))
    # teacher vectors for 4 rows (the batch is rows 2, 0, 3), two teachers concatenated as sqrt(w) * unit
    t_cols = [F.normalize(_fixed(4, 4, s), dim=-1) for s in (30, 31, 32)]
    rows = torch.tensor([2, 0, 3])
    loss = TeacherDistillLoss(FakeModel(5), t_cols, scale=20.0, teacher_scale=10.0, infonce_weight=1.0,
                              distill_weight=0.5)
    value = float(loss([{"x": q}, {"x": pos}, {"x": neg}], rows))
    infonce = hand_infonce(q, [pos, neg])
    docs = torch.cat([pos, neg])
    t_docs = torch.cat([t_cols[1][rows], t_cols[2][rows]])
    kl = 0.0
    for i in range(3):
        student = [float(F.cosine_similarity(q[i], docs[j], dim=0)) for j in range(6)]
        teacher = [float(t_cols[0][rows[i]] @ t_docs[j]) for j in range(6)]
        kl += hand_kl(student, teacher, 20.0, 10.0) / 3
    assert value == pytest.approx(infonce + 0.5 * kl, rel=1e-5)
    assert loss.last_parts == pytest.approx({"infonce": infonce, "distill": kl}, rel=1e-5)
    # a student that scores exactly like the teacher (same vectors, same scale) has no KL left
    same = TeacherDistillLoss(FakeModel(4), t_cols, infonce_weight=0.0)
    assert float(same([{"x": t_cols[0][rows]}, {"x": t_cols[1][rows]}, {"x": t_cols[2][rows]}], rows)) < 1e-6
    with pytest.raises(ValueError, match="label"):
        loss([{"x": q}, {"x": pos}, {"x": neg}], None)


def test_ensemble_vectors_dot_is_weighted_mean_of_cosines():
    from codeseer.train.teachers import ensemble_vectors

    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    t1 = [unit(rng.normal(size=(5, 3))) for _ in range(2)]  # teacher 1: (query, positive) columns, dim 3
    t2 = [unit(rng.normal(size=(5, 7))) for _ in range(2)]  # teacher 2: dim 7
    q, d = ensemble_vectors([t1, t2], weights=[3, 1])
    assert q.shape == (5, 10) and d.shape == (5, 10)
    np.testing.assert_allclose(q @ d.T, 0.75 * t1[0] @ t1[1].T + 0.25 * t2[0] @ t2[1].T, atol=1e-6)
    equal_q, equal_d = ensemble_vectors([t1, t2])
    np.testing.assert_allclose(equal_q @ equal_d.T, 0.5 * t1[0] @ t1[1].T + 0.5 * t2[0] @ t2[1].T, atol=1e-6)
    with pytest.raises(ValueError):
        ensemble_vectors([t1, t2], weights=[1])
