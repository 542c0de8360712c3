"""Distil a transformer into a static (model2vec) model for the ``--fast`` tier.

A static model is one vector per token, averaged: no attention, so it embeds ~13x faster than the
int8 transformer and ~37x faster than fp32 PyTorch on a laptop CPU (``bench/scale.py``), at a cost
in quality that ``codeseer eval`` measures. Distillation alone embeds each token out of context
(model2vec: PCA to ``pca_dims``, SIF weighting) and is weak on code search (cosqa-dev nDCG@10 26);
:func:`fit_to_teacher` then fits the table on real code and queries (43). Extra whole words
(``vocabulary``, e.g. :func:`code_vocabulary`) are supported but hurt with BERT tokenisers, whose
pre-tokeniser splits ``snake_case`` so the added words never match (11.9).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from codeseer.errors import CodeseerError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,30}")


def code_vocabulary(texts: Iterable[str], size: int, min_count: int = 20) -> list[str]:
    """The ``size`` most frequent identifiers in ``texts`` (seen at least ``min_count`` times)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_IDENT.findall(text))
    return [w for w, c in counts.most_common(size) if c >= min_count]


def distill_static(base: str | None, out_dir: str | Path, *, pca_dims: int = 256,
                   vocabulary: list[str] | None = None) -> dict:
    """Distil ``base`` (a folder or the bundled default) into a model2vec folder at ``out_dir``."""
    try:
        from model2vec.distill import distill
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise CodeseerError("distillation needs model2vec's distill extra: pip install 'model2vec[distill]'") from exc
    from codeseer.models.embedder import resolve_model

    resolved = resolve_model(base)
    started = time.perf_counter()
    tokenizer_words = None
    if vocabulary:
        from transformers import AutoTokenizer

        vocab = AutoTokenizer.from_pretrained(resolved.location).get_vocab()
        tokenizer_words = [w for w in vocabulary if w not in vocab]
    model = distill(model_name=resolved.location, vocabulary=tokenizer_words or None, pca_dims=pca_dims)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return {"base": resolved.name, "out": str(out), "pca_dims": pca_dims,
            "added_words": len(tokenizer_words or []), "tokens": int(model.embedding.shape[0]),
            "dim": int(model.embedding.shape[1]), "seconds": round(time.perf_counter() - started, 1)}


def fit_to_teacher(static_dir: str | Path, teacher_vectors, texts: list[str], out_dir: str | Path, *,
                   epochs: int = 4, lr: float = 0.01, batch_size: int = 256, holdout: float = 0.05,
                   seed: int = 0, progress=None) -> dict:
    """Fit the static token vectors so that their mean reproduces the teacher's embedding of each text.

    Plain distillation embeds every token alone, out of context; fitting on real texts (the
    tokenlearn recipe of model2vec's potion models) teaches the table how tokens combine in code.
    The student is ``mean(E[tokens]) @ W`` with ``W`` mapping into the teacher's space, trained on
    cosine distance; ``E @ W`` is saved, so the result is a plain model2vec folder in the teacher's
    dimension. A held-out share of the texts measures the fit (mean cosine before and after), and
    the epoch with the best held-out cosine is kept.
    """
    import numpy as np
    import torch
    from model2vec import StaticModel

    started = time.perf_counter()
    model = StaticModel.from_pretrained(str(static_dir))
    target = torch.as_tensor(np.asarray(teacher_vectors, dtype=np.float32))
    if len(texts) != target.shape[0] or not texts:
        raise CodeseerError(f"{len(texts)} texts but {target.shape[0]} teacher vectors")
    ids = model.tokenize(texts)
    keep = [i for i, t in enumerate(ids) if len(t)]
    gen = torch.Generator().manual_seed(seed)
    order = torch.tensor(keep)[torch.randperm(len(keep), generator=gen)].tolist()
    n_hold = max(1, int(len(order) * holdout))
    held, train_idx = order[:n_hold], order[n_hold:]

    vectors = torch.as_tensor(np.asarray(model.embedding, dtype=np.float32))
    emb = torch.nn.EmbeddingBag.from_pretrained(vectors.clone(), freeze=False, mode="mean")
    # start W at the least-squares map from the distilled space to the teacher's
    def bags(idx):
        flat = [tok for i in idx for tok in ids[i]]
        offsets = torch.tensor([0] + [len(ids[i]) for i in idx[:-1]]).cumsum(0)
        return torch.tensor(flat), offsets

    with torch.no_grad():
        probe = train_idx[: min(len(train_idx), 20000)]
        x = torch.cat([emb(*bags(probe[j:j + 2048])) for j in range(0, len(probe), 2048)])
        w0 = torch.linalg.lstsq(x, target[probe]).solution
    proj = torch.nn.Parameter(w0)
    opt = torch.optim.Adam([*emb.parameters(), proj], lr=lr)

    def held_cosine() -> float:
        with torch.no_grad():
            out = torch.cat([emb(*bags(held[j:j + 2048])) for j in range(0, len(held), 2048)]) @ proj
            return float(torch.nn.functional.cosine_similarity(out, target[held]).mean())

    start_cos = held_cosine()
    best = (start_cos, emb.weight.detach().clone(), proj.detach().clone(), 0)
    history = []
    steps = (len(train_idx) + batch_size - 1) // batch_size
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(train_idx), generator=gen).tolist()
        total = 0.0
        for s in range(steps):
            idx = [train_idx[i] for i in perm[s * batch_size:(s + 1) * batch_size]]
            out = emb(*bags(idx)) @ proj
            loss = (1 - torch.nn.functional.cosine_similarity(out, target[idx])).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            if progress is not None:
                progress(epoch, s + 1, steps)
        cos = held_cosine()
        history.append({"epoch": epoch, "train_loss": round(total / steps, 5), "held_cosine": round(cos, 5)})
        if cos > best[0]:
            best = (cos, emb.weight.detach().clone(), proj.detach().clone(), epoch)
    table = (best[1] @ best[2]).numpy().astype(np.float16)
    fitted = StaticModel(vectors=table, tokenizer=model.tokenizer, config=dict(model.config, hidden_dim=table.shape[1]),
                         normalize=True, base_model_name=model.base_model_name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fitted.save_pretrained(str(out))
    return {"texts": len(keep), "held_out": n_hold, "held_cosine_start": round(start_cos, 5),
            "held_cosine_best": round(best[0], 5), "best_epoch": best[3], "history": history,
            "dim": int(table.shape[1]), "seconds": round(time.perf_counter() - started, 1)}


def texts_from_pairs(paths: Iterable[str | Path], n_code: int, n_queries: int,
                     seed: int = 0) -> tuple[list[str], list[str]]:
    """A seeded sample of distinct code and query texts from ``codeseer data mine`` pairs: what the
    static model will embed (code at index time, short queries at search time)."""
    import random

    from codeseer.jsonl import iter_jsonl_objects

    rng = random.Random(seed)
    code: dict[str, None] = {}
    queries: dict[str, None] = {}
    for path in map(Path, paths):  # streamed: a mined file holds hundreds of thousands of pairs
        if not path.is_file():
            raise CodeseerError(f"pairs file not found: {path}")
        for line_no, row in iter_jsonl_objects(path, CodeseerError):
            query, positive = row.get("query"), row.get("positive")
            if not isinstance(query, str) or not isinstance(positive, str):
                raise CodeseerError(f"{path}:{line_no}: 'query' and 'positive' must be strings")
            if row.get("task", "nl2code") == "nl2code":
                code.setdefault(positive, None)
                queries.setdefault(query, None)
    code.pop("", None)
    queries.pop("", None)
    picked_code = rng.sample(list(code), min(n_code, len(code)))
    picked_queries = rng.sample(list(queries), min(n_queries, len(queries)))
    return picked_code, picked_queries


def build_static(base: str | None, out_dir: str | Path, *, pairs: Iterable[str | Path] = (), n_code: int = 30000,
                 n_queries: int = 25000, pca_dims: int = 256, epochs: int = 4, seed: int = 0,
                 say=lambda msg: None) -> dict:
    """Distil ``base``; with ``pairs``, then fit the table to ``base``'s embeddings of a sample of them."""
    import tempfile

    from codeseer.models.embedder import Embedder

    pairs = [str(p) for p in pairs]
    out = Path(out_dir)
    if not pairs:
        return {"distill": distill_static(base, out, pca_dims=pca_dims)}
    import numpy as np

    code, queries = texts_from_pairs(pairs, n_code, n_queries, seed)  # bad input fails before the slow part
    texts = code + queries
    with tempfile.TemporaryDirectory(prefix="codeseer-distill-") as tmp:
        say("distilling the token table ...")
        report = {"distill": distill_static(base, Path(tmp) / "plain", pca_dims=pca_dims)}
        say(f"embedding {len(code):,} code texts and {len(queries):,} queries with the teacher ...")
        t0 = time.perf_counter()
        teacher = Embedder(base, backend="onnx")  # exact fp32 vectors, ~2.5x faster than PyTorch on a CPU
        vectors = np.concatenate([teacher.encode_documents(code)] + ([teacher.encode_queries(queries)] if queries else []))
        report["teacher_seconds"] = round(time.perf_counter() - t0, 1)
        say("fitting the table to the teacher ...")
        report["fit"] = fit_to_teacher(Path(tmp) / "plain", vectors, texts, out, epochs=epochs, seed=seed)
    report["pairs"] = pairs
    return report
