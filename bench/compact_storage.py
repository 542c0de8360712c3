"""Quality and size of compact vectors (float16, calibrated int8, binary), with and without rescoring.

For each BEIR dev set: nDCG@10 of dense retrieval with float32 vectors (the baseline, same run),
then each compact precision searched coarsely (int8 x int8, or Hamming on sign bits) and, for
int8/binary, rescored like the index does (float32 query x dequantised top-4k candidates);
recall@10 is the overlap with float32's own top 10.
Usage: python bench/compact_storage.py [DATASET_DIR ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from codeseer.eval.beir import load_beir  # noqa: E402
from codeseer.eval.metrics import evaluate  # noqa: E402
from codeseer.eval.runner import CorpusRetriever, default_cache_dir  # noqa: E402
from codeseer.index.quantize import RESCORE_FACTOR, Codec, bytes_per_vector  # noqa: E402
from codeseer.models.embedder import Embedder  # noqa: E402

K = 10


def coarse_scores(codec: Codec, stored: np.ndarray, queries: np.ndarray) -> np.ndarray:
    if codec.precision == "int8":
        return codec.encode(queries).astype(np.int32) @ stored.astype(np.int32).T
    if codec.precision == "binary":  # negative Hamming distance
        q = np.unpackbits(codec.encode(queries), axis=1, count=codec.dim).astype(np.int32)
        d = np.unpackbits(stored, axis=1, count=codec.dim).astype(np.int32)
        return -(q @ (1 - d).T + (1 - q) @ d.T)
    return queries @ codec.decode(stored).T


def run(dataset_dir: str, embedder: Embedder) -> None:
    dataset = load_beir(dataset_dir)
    retriever = CorpusRetriever(dataset, embedder=embedder, cache_dir=default_cache_dir())
    docs = retriever.doc_vectors()
    queries = embedder.encode_queries([dataset.queries[q] for q in retriever.query_ids])
    ids = retriever.doc_ids

    def to_run(scores: np.ndarray, candidates: np.ndarray | None = None) -> dict:
        result = {}
        for row, qid in enumerate(retriever.query_ids):
            cols = candidates[row] if candidates is not None else np.argsort(-scores[row])[:100]
            result[qid] = {ids[j]: float(scores[row, j]) for j in cols}
        return result

    exact = queries @ docs.T
    exact_top = np.argsort(-exact, axis=1)[:, :K]
    baseline = evaluate(dataset.qrels, to_run(exact), k_values=(10,))
    print(f"\n{Path(dataset_dir).name}: {len(ids)} docs, {len(queries)} queries, dim {docs.shape[1]}")
    print(f"{'precision':22s} {'bytes/vec':>9s} {'nDCG@10':>8s} {'vs f32':>7s} {'R@10 vs f32':>11s}")
    print(f"{'float32 (baseline)':22s} {bytes_per_vector('float32', docs.shape[1]):9d} {100 * baseline['ndcg@10']:8.2f} {1.0:7.3f} {1.0:11.3f}")
    for precision in ("float16", "int8", "binary"):
        codec = Codec(precision, docs.shape[1])
        codec.calibrate(docs)
        stored = codec.encode(docs)
        coarse = coarse_scores(codec, stored, queries)
        variants = [("", coarse, None)]
        if precision in ("int8", "binary"):
            cand = np.argsort(-coarse, axis=1)[:, : RESCORE_FACTOR * 100]
            rescored = np.full_like(exact, -np.inf)
            decoded = codec.decode(stored)
            for row in range(len(queries)):
                rescored[row, cand[row]] = decoded[cand[row]] @ queries[row]
            variants = [(" coarse", coarse.astype(np.float32), None), (" + rescore", rescored, None)]
        for suffix, scores, _ in variants:
            metrics = evaluate(dataset.qrels, to_run(scores), k_values=(10,))
            top = np.argsort(-scores, axis=1)[:, :K]
            recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(top, exact_top)])
            name = precision + suffix
            print(f"{name:22s} {bytes_per_vector(precision, docs.shape[1]):9d} {100 * metrics['ndcg@10']:8.2f} "
                  f"{metrics['ndcg@10'] / baseline['ndcg@10']:7.3f} {recall:11.3f}")


def main(paths: list[str]) -> None:
    embedder = Embedder(None)
    for path in paths:
        run(path, embedder)


if __name__ == "__main__":
    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    main(sys.argv[1:] or [str(p) for p in sorted(shared.iterdir())])
