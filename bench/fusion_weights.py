"""Measure how the dense/BM25 fusion weights change nDCG@10 and MRR@10 on BEIR-format dev sets.

Evidence for the constants in codeseer/search/fusion.py. Prints one table per dataset: dense,
BM25, RRF and convex fusion at fixed lexical shares (0.5 = equal weights), and codeseer's query-dependent weights.
Usage: python bench/fusion_weights.py ../shared/datasets/cosqa-dev ../shared/datasets/java2cs-dev
"""

from __future__ import annotations

import sys
from pathlib import Path

from codeseer.eval.beir import load_beir
from codeseer.eval.metrics import evaluate
from codeseer.eval.runner import CorpusRetriever, default_cache_dir
from codeseer.models.embedder import Embedder


def main(paths: list[str]) -> None:
    embedder = Embedder(None)
    for path in paths:
        dataset = load_beir(path)
        retriever = CorpusRetriever(dataset, embedder=embedder, cache_dir=default_cache_dir())
        dense, lexical = retriever.dense(), retriever.lexical()
        rows = [("dense", dense), ("bm25", lexical)]
        for method in ("rrf", "convex"):
            for w in (0.5, 0.3, 0.2, 0.1, 0.05):
                rows.append((f"{method} lexical share {w}", retriever.hybrid(dense, lexical, method=method, weight=w)))
        rows.append(("codeseer hybrid (query-dependent)", retriever.hybrid(dense, lexical)))
        print(f"\n{Path(path).name}: {len(dataset.queries)} queries, {len(dataset.corpus)} docs")
        print(f"{'run':38s} {'nDCG@10':>8s} {'MRR@10':>8s} {'R@100':>8s}")
        for name, run in rows:
            m = evaluate(dataset.qrels, run, k_values=(10, 100))
            print(f"{name:38s} {100*m['ndcg@10']:8.2f} {100*m['mrr@10']:8.2f} {100*m['recall@100']:8.2f}")


if __name__ == "__main__":
    main(sys.argv[1:] or [str(p) for p in sorted((Path(__file__).resolve().parents[2] / "shared" / "datasets").iterdir())])
