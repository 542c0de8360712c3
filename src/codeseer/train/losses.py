"""Training losses for codeseer's code embedder, and the graded labels the order-augmented loss needs.

Three objectives, all sentence-transformers losses (``forward(sentence_features, labels)``), so they
plug into :class:`~sentence_transformers.SentenceTransformerTrainer` and into each other:

* **InfoNCE with in-batch negatives** at temperature 0.05: sentence-transformers'
  ``MultipleNegativesRankingLoss(scale=20)``; ``CachedMultipleNegativesRankingLoss`` (GradCache,
  Gao et al. 2021, arXiv 2101.06983) gives the same loss and gradients for a large batch while
  only ``mini_batch_size`` texts are in the model at once, which is how a CPU reaches batch 64-512.
* **Matryoshka** (Kusupati et al. 2022, arXiv 2205.13147): sentence-transformers' ``MatryoshkaLoss``
  sums the wrapped loss over prefixes of the embedding (each re-normalised), so that a truncated
  vector (``codeseer index --dim 128``) still retrieves well.
* **Order-augmented** (:class:`OrderAugmentedLoss`, after OASIS, Kwaipilot, arXiv 2503.08161):
  InfoNCE plus a CoSENT-style ranking term (Su 2022; Huang et al. TASLP 2024) that keeps graded hard
  negatives in the order of their similarity to the positive.
* **Teacher distillation** (:class:`TeacherDistillLoss`): InfoNCE plus the KL divergence from one or
  more teachers' in-batch score distributions (listwise distillation, as in RocketQAv2 and the
  distilled MiniLM/E5/GTE students), so the student learns the teachers' graded view of every
  in-batch document instead of a single one-hot positive.

Graded labels for the order term come from :func:`edit_similarity` (token-level Levenshtein ratio,
no model needed) or :func:`teacher_similarity` (a teacher model's cosine).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from sentence_transformers.base.losses.gradcache import CachedLossMixin
from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn

from codeseer.errors import CodeseerError

LOSSES = ("infonce", "gist", "oasis", "distill")
DEFAULT_SCALE = 20.0  # inverse temperature: 1 / 0.05
DEFAULT_ORDER_WEIGHT = 1.0
DEFAULT_GRADE_MARGIN = 0.05

__all__ = [
    "LOSSES",
    "OrderAugmentedLoss",
    "TeacherDistillLoss",
    "build_loss",
    "code_tokens",
    "edit_similarity",
    "order_term",
    "teacher_similarity",
]


# ---------------------------------------------------------------------------------------- labels

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[^\sA-Za-z0-9_]")


def code_tokens(text: str) -> list[str]:
    """Code tokens: identifiers, numbers and single punctuation characters (whitespace is dropped)."""
    return _TOKEN.findall(text)


def _levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
    """Edit distance between two token-id sequences, one numpy pass per row of the DP table.

    Row ``i`` is ``cur[j] = min(prev[j] + 1, prev[j-1] + cost, cur[j-1] + 1)``; the last term is a
    running minimum, ``cur[j] = j + min_{k<=j}(t[k] - k)`` with ``t`` the first two terms, so a row
    costs a few vector operations instead of a Python loop over ``b``.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    bb = np.asarray(b, dtype=np.int64)
    ramp = np.arange(len(b) + 1, dtype=np.int64)
    prev = ramp.copy()
    for i, token in enumerate(a, 1):
        t = np.empty_like(prev)
        t[0] = i
        t[1:] = np.minimum(prev[1:] + 1, prev[:-1] + (bb != token))
        prev = np.minimum.accumulate(t - ramp) + ramp
    return int(prev[-1])


def edit_similarity(a: str, b: str, *, max_tokens: int = 512) -> float:
    """Normalised token-level Levenshtein similarity of two code snippets, in [0, 1].

    ``1 - distance / max(len_a, len_b)`` over :func:`code_tokens` (each side cut to ``max_tokens``
    tokens), so formatting does not count, renaming one identifier costs one token, and two empty
    texts are identical (1.0). Symmetric.
    """
    ta, tb = code_tokens(a)[:max_tokens], code_tokens(b)[:max_tokens]
    longest = max(len(ta), len(tb))
    if longest == 0:
        return 1.0
    ids: dict[str, int] = {}
    ia = [ids.setdefault(t, len(ids)) for t in ta]
    ib = [ids.setdefault(t, len(ids)) for t in tb]
    return 1.0 - _levenshtein(ia, ib) / longest


def teacher_similarity(model: Any, positives: Sequence[str], negatives: Sequence[Sequence[str]], *,
                       batch_size: int = 32) -> list[list[float]]:
    """Graded labels from a teacher: cosine of each negative to its row's positive, clipped to [0, 1].

    ``model`` is a sentence-transformers model (``encode``) or a codeseer ``Embedder``
    (``encode_documents``); both sides are embedded as documents. ``negatives[i]`` belong to
    ``positives[i]``; the result has the same shape as ``negatives``.
    """
    if len(positives) != len(negatives):
        raise ValueError("positives and negatives must have one row each")
    flat = [n for row in negatives for n in row]
    texts = list(positives) + flat
    if not texts:
        return []
    if hasattr(model, "encode_documents"):
        vectors = np.asarray(model.encode_documents(texts), dtype=np.float32)
    else:
        vectors = np.asarray(model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                          show_progress_bar=False), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)
    pos, neg = vectors[: len(positives)], vectors[len(positives):]
    out: list[list[float]] = []
    at = 0
    for i, row in enumerate(negatives):
        sims = neg[at: at + len(row)] @ pos[i]
        at += len(row)
        out.append([float(min(1.0, max(0.0, s))) for s in sims])
    return out


# ----------------------------------------------------------------------------------- order term

def order_term(scores: Tensor, grades: Tensor, *, scale: float = DEFAULT_SCALE,
               grade_margin: float = DEFAULT_GRADE_MARGIN) -> Tensor:
    """CoSENT-style ranking penalty, averaged over rows.

    ``scores`` and ``grades`` are ``(rows, candidates)``: the model's cosine and the graded label of
    each candidate of a query. For each row,

        order_i = log(1 + sum_{a,b : g_a - g_b > margin} exp(scale * (s_b - s_a)))

    i.e. every pair the grades order (``a`` above ``b``) adds a term that is ~0 when the model agrees
    by a wide margin and grows linearly (``scale * (s_b - s_a)``) when it inverts them. A row with no
    ordered pair contributes log(1) = 0.
    """
    scores = scores.float()
    grades = grades.to(scores.device, torch.float32)
    diff = scale * (scores.unsqueeze(1) - scores.unsqueeze(2))  # [i, a, b] = scale * (s_b - s_a)
    ordered = (grades.unsqueeze(2) - grades.unsqueeze(1)) > grade_margin  # g_a - g_b > margin
    diff = diff.masked_fill(~ordered, float("-inf")).flatten(1)
    zero = torch.zeros(diff.shape[0], 1, dtype=diff.dtype, device=diff.device)  # the "1 +" inside the log
    return torch.logsumexp(torch.cat([zero, diff], dim=1), dim=1).mean()


def _in_batch_cosines(queries: Tensor, docs: Sequence[Tensor]) -> Tensor:
    """``cos(q_i, d)`` for every document in the batch: all positives, then every column of hard negatives."""
    q = nn.functional.normalize(queries.float(), dim=-1)
    d = nn.functional.normalize(torch.cat(list(docs), dim=0).float(), dim=-1)
    return q @ d.T


def _infonce_from_cosines(cosines: Tensor, scale: float) -> Tensor:
    """Cross-entropy of ``scale * cosines`` per row, the target being row ``i``'s positive (column ``i``)."""
    target = torch.arange(cosines.shape[0], device=cosines.device)
    return nn.functional.cross_entropy(scale * cosines, target)


def _infonce(queries: Tensor, docs: Sequence[Tensor], scale: float) -> Tensor:
    """MultipleNegativesRankingLoss: cross-entropy of ``scale * cos(q_i, d)`` over every document in the
    batch (all positives, then every column of hard negatives), the target being ``q_i``'s positive."""
    return _infonce_from_cosines(_in_batch_cosines(queries, docs), scale)


class _EmbeddingLoss(CachedLossMixin, nn.Module):
    """A loss defined on the columns' embeddings (``compute_loss_from_embeddings``), run either on the
    whole batch at once or, with ``mini_batch_size``, through GradCache (as
    ``CachedMultipleNegativesRankingLoss``): the batch is embedded in chunks without gradients, the loss
    gradient w.r.t. the embeddings is cached, and chunks are re-embedded with gradients, so memory
    follows ``mini_batch_size``, not the batch."""

    def __init__(self, model, mini_batch_size: int | None, show_progress_bar: bool) -> None:
        super().__init__()
        self.model = model
        self.mini_batch_size = mini_batch_size or 0
        self.uses_gradient_cache = mini_batch_size is not None and mini_batch_size > 0
        self.show_progress_bar = show_progress_bar
        self.last_parts: dict[str, float] = {}

    def compute_loss_from_embeddings(self, embeddings: Sequence[Tensor], labels: Tensor | None) -> Tensor:
        raise NotImplementedError

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        if self.uses_gradient_cache:
            return self.forward_cached(list(sentence_features), labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None = None, *,
                       with_backward: bool = False) -> Tensor:
        loss = self.compute_loss_from_embeddings([torch.cat(r) for r in reps], labels)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss


class OrderAugmentedLoss(_EmbeddingLoss):
    """InfoNCE over (query, positive, k graded hard negatives, in-batch negatives) plus an order term.

    Inputs: columns ``(anchor, positive, negative_1, ..., negative_k)``; labels ``(batch, k)``, the
    graded similarity ``g_j`` in [0, 1] of each negative to the positive (a teacher's cosine or
    :func:`edit_similarity`); the positive's grade is 1. (``(batch, k + 1)`` labels give the
    positive's grade too; no labels means every negative is graded 0.) With ``s_c = cos(q, c)``::

        infonce = -mean_i log softmax_i(scale * [s(q_i, d) for d in all positives and negatives])[pos_i]
        order   = mean_i log(1 + sum_{a,b in C_i : g_a - g_b > grade_margin} exp(order_scale * (s_b - s_a)))
        loss    = infonce + order_weight * order

    where ``C_i`` is query ``i``'s positive and its own negatives. InfoNCE pulls the positive above
    everything; the order term (CoSENT's pairwise form, as in sentence-transformers' ``CoSENTLoss``,
    applied within each query's candidate list) also asks that a near-miss (same API, one wrong
    branch) stays closer than an unrelated function, so the embedding keeps the graded structure the
    plain loss flattens (OASIS, arXiv 2503.08161). ``grade_margin`` ignores pairs whose grades are too
    close to order reliably.

    ``mini_batch_size`` switches on GradCache (as ``CachedMultipleNegativesRankingLoss``): the batch
    is embedded in chunks without gradients, the loss gradient w.r.t. the embeddings is cached, and
    chunks are re-embedded with gradients, so memory follows ``mini_batch_size``, not the batch.
    Wrapping in ``MatryoshkaLoss`` works either way.
    """

    def __init__(self, model, *, scale: float = DEFAULT_SCALE, order_scale: float = DEFAULT_SCALE,
                 order_weight: float = DEFAULT_ORDER_WEIGHT, grade_margin: float = DEFAULT_GRADE_MARGIN,
                 mini_batch_size: int | None = None, show_progress_bar: bool = False) -> None:
        super().__init__(model, mini_batch_size, show_progress_bar)
        if scale <= 0 or order_scale <= 0:
            raise ValueError("scale and order_scale must be positive")
        if order_weight < 0:
            raise ValueError("order_weight must be >= 0")
        self.scale = scale
        self.order_scale = order_scale
        self.order_weight = order_weight
        self.grade_margin = grade_margin

    # -- the loss from embeddings (both paths) ---------------------------------------------------
    def compute_loss_from_embeddings(self, embeddings: Sequence[Tensor], labels: Tensor | None) -> Tensor:
        if len(embeddings) < 3:
            raise ValueError("OrderAugmentedLoss needs (anchor, positive, negative_1, ...) columns: mine hard negatives first")
        queries, docs = embeddings[0], list(embeddings[1:])
        k = len(docs) - 1
        infonce = _infonce(queries, docs, self.scale)
        q = nn.functional.normalize(queries.float(), dim=-1)
        cands = nn.functional.normalize(torch.stack([d.float() for d in docs], dim=1), dim=-1)  # (B, 1+k, D)
        scores = torch.einsum("bd,bcd->bc", q, cands)
        grades = self._grades(labels, queries.shape[0], k, scores.device)
        order = order_term(scores, grades, scale=self.order_scale, grade_margin=self.grade_margin)
        self.last_parts = {"infonce": float(infonce.detach()), "order": float(order.detach())}
        return infonce + self.order_weight * order

    @staticmethod
    def _grades(labels: Tensor | None, batch: int, k: int, device) -> Tensor:
        if labels is None or (isinstance(labels, Tensor) and labels.numel() == 0):
            neg = torch.zeros(batch, k, device=device)
        else:
            neg = torch.as_tensor(labels, dtype=torch.float32, device=device).reshape(batch, -1)
            if neg.shape[1] == k + 1:
                return neg
            if neg.shape[1] != k:
                raise ValueError(f"OrderAugmentedLoss: expected {k} grades per row (one per negative), got {neg.shape[1]}")
        return torch.cat([torch.ones(batch, 1, device=device), neg], dim=1)

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "order_scale": self.order_scale, "order_weight": self.order_weight,
                "grade_margin": self.grade_margin, "mini_batch_size": self.mini_batch_size or None}

    @property
    def citation(self) -> str:
        return """
@misc{gao2025oasis,
    title={OASIS: Order-Augmented Strategy for Improved Code Search},
    author={Zuchen Gao and Zizheng Zhan and Xianming Li and Erxin Yu and Haotian Zhang and Bin Chen and Yuqun Zhang and Jing Li},
    year={2025},
    eprint={2503.08161},
    archivePrefix={arXiv},
    primaryClass={cs.SE}
}
"""


# -------------------------------------------------------------------------------- distillation

def distill_term(student: Tensor, teacher: Tensor, *, scale: float = DEFAULT_SCALE,
                 teacher_scale: float = DEFAULT_SCALE) -> Tensor:
    """Row-wise KL(teacher || student) between softmax distributions over the same candidates.

    ``student`` and ``teacher`` are ``(rows, candidates)`` cosines; each row becomes
    ``softmax(scale * s)`` and ``softmax(teacher_scale * t)``; the result is the mean over rows of
    ``sum_c p_t(c) * (log p_t(c) - log p_s(c))`` (0 when the two rank and space the candidates alike).
    """
    log_s = torch.log_softmax(scale * student.float(), dim=1)
    log_t = torch.log_softmax(teacher_scale * teacher.to(student.device, torch.float32), dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=1).mean()


class TeacherDistillLoss(_EmbeddingLoss):
    """InfoNCE plus listwise distillation of teachers' in-batch scores.

    Inputs: columns ``(anchor, positive, negative_1, ..., negative_k)``; labels: each row's index into
    ``teacher_vectors``, a list with one ``(rows, D_t)`` tensor per column holding the teachers'
    vectors of that column's texts, already normalised and concatenated as ``sqrt(w_t) * v_t`` so that
    a dot product is the weighted mean of the teachers' cosines. With ``S = cos(q_i, d_j)`` over every
    document of the batch (as InfoNCE sees them) and ``T`` the teachers' same matrix::

        loss = infonce_weight * CE(scale * S, positives) + distill_weight * KL(softmax(T) || softmax(S))

    The KL term keeps near-misses and false in-batch negatives where the teachers put them, which a
    one-hot target cannot: on narrow mined data plain InfoNCE made all-MiniLM-L6-v2 forget (README,
    Train). GradCache (``mini_batch_size``) and ``MatryoshkaLoss`` work as for the other losses.
    """

    def __init__(self, model, teacher_vectors: Sequence[Tensor], *, scale: float = DEFAULT_SCALE,
                 teacher_scale: float = DEFAULT_SCALE, infonce_weight: float = 1.0, distill_weight: float = 1.0,
                 mini_batch_size: int | None = None, show_progress_bar: bool = False) -> None:
        super().__init__(model, mini_batch_size, show_progress_bar)
        if scale <= 0 or teacher_scale <= 0:
            raise ValueError("scale and teacher_scale must be positive")
        if infonce_weight < 0 or distill_weight < 0 or infonce_weight + distill_weight == 0:
            raise ValueError("the loss weights must be >= 0 and not both 0")
        if len(teacher_vectors) < 2 or len({int(t.shape[0]) for t in teacher_vectors}) != 1:
            raise ValueError("teacher_vectors: one tensor per column (anchor, positive, ...), all with one row per example")
        self.teacher_vectors = [torch.as_tensor(t, dtype=torch.float32) for t in teacher_vectors]
        self.scale = scale
        self.teacher_scale = teacher_scale
        self.infonce_weight = infonce_weight
        self.distill_weight = distill_weight

    def compute_loss_from_embeddings(self, embeddings: Sequence[Tensor], labels: Tensor | None) -> Tensor:
        if labels is None or len(embeddings) != len(self.teacher_vectors):
            raise ValueError("TeacherDistillLoss needs each row's index as its label and one teacher tensor per column")
        rows = torch.as_tensor(labels).reshape(-1).long().cpu()
        student = _in_batch_cosines(embeddings[0], embeddings[1:])
        tq = self.teacher_vectors[0][rows]
        td = torch.cat([t[rows] for t in self.teacher_vectors[1:]], dim=0)
        teacher = tq @ td.T
        infonce = _infonce_from_cosines(student, self.scale)
        distill = distill_term(student, teacher, scale=self.scale, teacher_scale=self.teacher_scale)
        self.last_parts = {"infonce": float(infonce.detach()), "distill": float(distill.detach())}
        return self.infonce_weight * infonce + self.distill_weight * distill

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "teacher_scale": self.teacher_scale, "infonce_weight": self.infonce_weight,
                "distill_weight": self.distill_weight, "mini_batch_size": self.mini_batch_size or None,
                "teacher_dim": int(self.teacher_vectors[0].shape[1])}


# ------------------------------------------------------------------------------------- factory

def build_loss(model, loss: str = "infonce", *, mini_batch_size: int | None = None,
               matryoshka_dims: Sequence[int] | None = None, scale: float = DEFAULT_SCALE,
               order_weight: float = DEFAULT_ORDER_WEIGHT, order_scale: float = DEFAULT_SCALE,
               grade_margin: float = DEFAULT_GRADE_MARGIN, teacher_vectors: Sequence[Tensor] | None = None,
               distill_weight: float = 1.0) -> nn.Module:
    """The training loss: InfoNCE (cached when ``mini_batch_size``), GISTEmbed, OASIS or teacher
    distillation (``teacher_vectors``), under Matryoshka when ``matryoshka_dims`` is given (dims
    above the model's width are an error)."""
    from sentence_transformers.sentence_transformer import losses as st_losses

    name = (loss or "").strip().lower()
    if name == "infonce":
        if mini_batch_size:
            base = st_losses.CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=mini_batch_size)
        else:
            base = st_losses.MultipleNegativesRankingLoss(model, scale=scale)
    elif name == "gist":
        import copy

        # GISTEmbed (Solatorio, 2024): a frozen copy of the starting model vetoes in-batch negatives it
        # scores above the positive, i.e. likely false negatives (near-identical helpers across packages)
        guide = copy.deepcopy(model).eval()
        for p in guide.parameters():
            p.requires_grad_(False)
        cls = st_losses.CachedGISTEmbedLoss if mini_batch_size else st_losses.GISTEmbedLoss
        extra = {"mini_batch_size": mini_batch_size} if mini_batch_size else {}
        base = cls(model, guide, temperature=1.0 / scale, **extra)
    elif name == "oasis":
        base = OrderAugmentedLoss(model, scale=scale, order_scale=order_scale, order_weight=order_weight,
                                  grade_margin=grade_margin, mini_batch_size=mini_batch_size)
    elif name == "distill":
        if not teacher_vectors:
            raise CodeseerError("--loss distill needs teacher vectors: pass --teacher MODEL")
        base = TeacherDistillLoss(model, teacher_vectors, scale=scale, teacher_scale=scale,
                                  distill_weight=distill_weight, mini_batch_size=mini_batch_size)
    else:
        raise CodeseerError(f"unknown loss {loss!r}: choose {' or '.join(LOSSES)}")
    if matryoshka_dims:
        dims = sorted({int(d) for d in matryoshka_dims}, reverse=True)
        width = model.get_embedding_dimension()
        if dims[-1] < 1 or (width and dims[0] > width):
            raise CodeseerError(f"--matryoshka-dims {','.join(map(str, dims))}: each must be between 1 and the model's {width} dimensions")
        return st_losses.MatryoshkaLoss(model, base, dims)
    return base
