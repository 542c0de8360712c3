"""The dev metric of a ``codeseer train`` run: nDCG@10 / MRR@10 on a BEIR folder while it trains.

Apart because the dev set is an input of its own (``--dev`` or ``$CODESEER_DEV_DATASET``; neither: no
dev metric), and because its subsample must not follow the run's seed: runs with different ``--seed``
are scored on one subset, so their curves can be compared.
"""

from __future__ import annotations

import random
from pathlib import Path

from codeseer.errors import CodeseerError
from codeseer.models.tasks import DOCUMENT, QUERY
from codeseer.train.data import prefixes

DEV_SAMPLE_SEED = 0  # fixed, not the run's --seed: runs with different seeds must be scored on one subset

__all__ = ["DEV_SAMPLE_SEED", "build_dev_evaluator", "pick"]


def build_dev_evaluator(path: str | Path, recipe, *, max_docs: int | None, max_queries: int | None,
                        seed: int = DEV_SAMPLE_SEED, batch_size: int = 64):
    """An InformationRetrievalEvaluator on a BEIR folder; the corpus is subsampled to ``max_docs``
    documents, always keeping every document relevant to a kept query."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from codeseer.eval.beir import doc_text, load_beir

    root = Path(path)
    split = "dev" if (root / "qrels" / "dev.tsv").is_file() else "test"
    try:
        ds = load_beir(root, split=split)
    except (OSError, ValueError) as exc:
        raise CodeseerError(f"dev dataset: {exc}") from None
    rng = random.Random(seed)
    qids = sorted(ds.queries)
    if max_queries and len(qids) > max_queries:
        qids = sorted(rng.sample(qids, max_queries))
    relevant = {q: {d for d, g in ds.qrels[q].items() if g > 0 and d in ds.corpus} for q in qids}
    qids = [q for q in qids if relevant[q]]
    if not qids:
        raise CodeseerError(f"dev dataset {root}: no query has a relevant document in the corpus")
    keep = set().union(*relevant.values())
    others = sorted(set(ds.corpus) - keep)
    if max_docs is not None and len(keep) + len(others) > max_docs:
        others = rng.sample(others, max(0, max_docs - len(keep)))
    doc_ids = sorted(keep) + sorted(others)
    prefix = prefixes(recipe)
    evaluator = InformationRetrievalEvaluator(
        queries={q: ds.queries[q] for q in qids},
        corpus={d: doc_text(ds.corpus[d]) for d in doc_ids},
        relevant_docs={q: relevant[q] for q in qids},
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[10], map_at_k=[100],
        batch_size=batch_size, name="dev", write_csv=False,
        query_prompt=prefix(ds.task, QUERY) or None, corpus_prompt=prefix(ds.task, DOCUMENT) or None,
    )
    info = {"dataset": str(root), "name": ds.name, "task": ds.task, "split": split, "queries": len(qids),
            "docs": len(doc_ids), "docs_total": len(ds.corpus)}
    return evaluator, info


def pick(metrics: dict, suffix: str) -> float | None:
    """The first metric whose key ends with ``suffix`` (``"_ndcg@10"``), as a float."""
    for key, value in metrics.items():
        if key.endswith(suffix) and isinstance(value, (int, float)):
            return float(value)
    return None
