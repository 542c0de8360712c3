"""What each document-encoding backend costs in quality and buys in speed, on the dev sets, in one run.

Queries are always encoded by PyTorch fp32 (as ``codeseer search`` does); documents by each backend,
as ``codeseer index --backend ...`` would. Also reported: the cosine of each backend's document
vectors to PyTorch fp32, and batch dependence (max |difference| of a text's vector when it is encoded
among other texts), which must be 0 for crash-resumed, distributed and cached indexes to agree.

Usage: python bench/backend_quality.py [DATASET_DIR ...]  (default: ../shared/datasets/*)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from codeseer.eval import metrics  # noqa: E402
from codeseer.eval.beir import load_beir  # noqa: E402
from codeseer.eval.runner import CorpusRetriever  # noqa: E402
from codeseer.models.embedder import Embedder, auto_backend  # noqa: E402

BACKENDS = {
    "torch fp32": dict(backend="torch"),
    "torch bf16": dict(backend="torch", bf16=True),
    "onnx fp32": dict(backend="onnx"),
    "onnx int8": dict(backend="onnx", quantize=True),
}


def batch_dependence(embedder: Embedder, texts: list[str], vectors: np.ndarray, n: int = 1000) -> float:
    """Encode the last ``n`` texts again, reversed (other batch-mates, other padding), and compare."""
    again = embedder.encode_documents(texts[::-1][:n], slab=100_000)[::-1]
    return float(np.abs(again - vectors[-n:]).max())


def main(argv: list[str]) -> None:
    root = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    datasets = [Path(a) for a in argv] or sorted(p for p in root.iterdir() if (p / "corpus.jsonl").is_file())
    backend, int8, bf16 = auto_backend()
    print(f"auto on this CPU = {backend}{' int8' if int8 else ''}{' bf16' if bf16 else ''}; {os.cpu_count()} CPUs")
    reference = Embedder(None, backend="torch")
    embedders = {name: Embedder(None, **kwargs) for name, kwargs in BACKENDS.items()}
    print(f"\n{'dataset':14s} {'documents by':12s} {'encode s':>9s} {'speed-up':>9s} {'nDCG@10':>8s} {'MRR@10':>7s} "
          f"{'cos min':>8s} {'cos mean':>9s} {'batch dep.':>11s}")
    for path in datasets:
        dataset = load_beir(path)
        retriever = CorpusRetriever(dataset, embedder=reference)
        queries = reference.encode_queries([dataset.queries[q] for q in retriever.query_ids])
        base_vectors, base_seconds = None, None
        for name, embedder in embedders.items():
            start = time.perf_counter()
            docs = embedder.encode_documents(retriever.doc_texts, slab=100_000)
            seconds = time.perf_counter() - start
            if base_vectors is None:
                base_vectors, base_seconds = docs, seconds
            scores = queries @ docs.T
            run = {
                qid: {retriever.doc_ids[j]: float(scores[i, j]) for j in np.argsort(-scores[i])[:100]}
                for i, qid in enumerate(retriever.query_ids)
            }
            result = metrics.evaluate(dataset.qrels, run)
            cosine = np.sum(docs * base_vectors, axis=1)
            dependence = batch_dependence(embedder, retriever.doc_texts, docs)
            print(f"{path.name:14s} {name:12s} {seconds:9.1f} {base_seconds / seconds:8.2f}x "
                  f"{100 * result['ndcg@10']:8.2f} {100 * result['mrr@10']:7.2f} {cosine.min():8.4f} {cosine.mean():9.4f} "
                  f"{dependence:11.2e}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
