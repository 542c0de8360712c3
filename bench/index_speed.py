"""Index a large installed package with codeseer and with a naive pipeline, in one run.

codeseer: tree-sitter chunks -> MiniLM (length-sorted batches) -> LanceDB (vectors + BM25),
hybrid search. Naive: every whole file encoded by the same model (truncated to its window),
numpy brute-force cosine search. Both use the same model, files and queries.

Usage: python bench/index_speed.py [--package transformers] [--max-files 300] [--queries 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from codeseer.index.indexer import index_repository  # noqa: E402
from codeseer.index.store import IndexStore  # noqa: E402
from codeseer.index.walker import WalkStats, walk  # noqa: E402
from codeseer.models.embedder import Embedder  # noqa: E402
from codeseer.search.searcher import Searcher  # noqa: E402
from scale import iter_chunk_texts  # noqa: E402  (bench/ is on the path: this script's folder)

QUERIES = [
    "load a pretrained model from a local folder", "split text into tokens", "save the configuration to json",
    "compute attention scores", "download a file with retries", "apply layer normalization",
    "convert a tensor to numpy", "check if a package is installed", "pad a batch of sequences",
    "log a warning once", "parse command line arguments", "resize token embeddings",
    "move the model to a device", "cache the result of a function", "read a yaml file",
    "compute cross entropy loss", "generate text with beam search", "set the random seed",
    "merge two dictionaries recursively", "format a number of bytes for humans",
]


def copy_subset(package_dir: Path, max_files: int, dest: Path) -> int:
    stats = WalkStats()
    files = list(walk(package_dir, stats))[:max_files]
    for f in files:
        target = dest / f.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f.abs, target)
    return len(files)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def count_tokens(embedder: Embedder, texts: list[str]) -> int:
    limit = embedder._model.max_seq_length
    return sum(min(len(ids), limit) for ids in embedder.tokenizer(texts, add_special_tokens=True)["input_ids"])


def bench_codeseer(repo: Path, embedder: Embedder, queries: list[str]) -> dict:
    index_dir = repo.parent / "index"
    start = time.perf_counter()
    report = index_repository(repo, index_dir=index_dir, embedder_factory=lambda m: embedder)
    seconds = time.perf_counter() - start
    tokens = count_tokens(embedder, list(iter_chunk_texts(repo)))
    start = time.perf_counter()
    again = index_repository(repo, index_dir=index_dir, embedder_factory=lambda m: embedder)
    noop_seconds = time.perf_counter() - start
    searcher = Searcher(IndexStore(index_dir), embedder=embedder)
    searcher.search(queries[0])  # warm-up
    latencies = []
    for q in queries:
        t = time.perf_counter()
        searcher.search(q, k=10)
        latencies.append(1000 * (time.perf_counter() - t))
    return {
        "files": report.files, "units": report.chunks, "seconds": seconds, "tokens": tokens,
        "bytes": dir_bytes(index_dir), "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
        "noop_seconds": noop_seconds, "noop_files": again.files,
    }


def bench_naive(repo: Path, embedder: Embedder, queries: list[str]) -> dict:
    start = time.perf_counter()
    paths = sorted(p for p in repo.rglob("*") if p.is_file() and ".codeseer" not in p.parts)
    texts = []
    for p in paths:
        try:
            texts.append(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    matrix = embedder.encode_documents(texts)  # whole files, cut at the model's window
    seconds = time.perf_counter() - start
    tokens = count_tokens(embedder, texts)
    latencies = []
    for q in queries:
        t = time.perf_counter()
        vector = embedder.encode_queries([q])[0]
        np.argsort(-(matrix @ vector))[:10]
        latencies.append(1000 * (time.perf_counter() - t))
    return {
        "files": len(texts), "units": len(texts), "seconds": seconds, "tokens": tokens,
        "bytes": matrix.nbytes + sum(len(t.encode()) for t in texts),
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default="transformers", help="installed package to index")
    parser.add_argument("--max-files", type=int, default=300)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    spec = importlib.util.find_spec(args.package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {args.package} is not installed")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    queries = (QUERIES * (args.queries // len(QUERIES) + 1))[: args.queries]
    embedder = Embedder(None)
    with tempfile.TemporaryDirectory(prefix="codeseer-bench-") as tmp:
        repo = Path(tmp) / "repo"
        n = copy_subset(package_dir, args.max_files, repo)
        print(f"{args.package}: {n} files from {package_dir}, model {embedder.name}, {os.cpu_count()} CPUs")
        naive = bench_naive(repo, embedder, queries)
        ours = bench_codeseer(repo, embedder, queries)
    rows = [
        ("files/s", lambda r: r["files"] / r["seconds"]),
        ("units indexed (chunks | files)", lambda r: r["units"]),
        ("units/s", lambda r: r["units"] / r["seconds"]),
        ("embedded tokens", lambda r: r["tokens"]),
        ("embedded tokens/s", lambda r: r["tokens"] / r["seconds"]),
        ("index size (MB)", lambda r: r["bytes"] / 1e6),
        ("search p50 (ms)", lambda r: r["p50"]),
        ("search p95 (ms)", lambda r: r["p95"]),
        ("index wall time (s)", lambda r: r["seconds"]),
    ]
    print(f"\n{'metric':32s} {'naive':>12s} {'codeseer':>12s} {'ratio':>8s}")
    for name, fn in rows:
        a, b = fn(naive), fn(ours)
        print(f"{name:32s} {a:12.1f} {b:12.1f} {b / a if a else float('nan'):8.2f}")
    print(f"\nunchanged re-index: {ours['noop_files']} files in {ours['noop_seconds']:.3f}s "
          f"({1000 * ours['noop_seconds'] / max(ours['noop_files'], 1):.2f} ms per file)")
    print("naive = whole files through the same model (truncated to its window), numpy brute force;"
          " codeseer search = hybrid (dense + BM25) through LanceDB.")


if __name__ == "__main__":
    main()
