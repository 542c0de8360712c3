"""Search at scale: exact scan vs the ANN index (IVF_PQ, ``codeseer.index.ann``), k=10.

(a) Synthetic: 384-d float32 unit vectors in clusters of uneven size, each cluster spread along a
    few shared directions (so neighbours are graded, not ties), at ``--sizes`` chunks (default 100k
    and 1M). Latency p50/p99 of exact search and of the ANN search exactly as the searcher tunes it
    (``NPROBE_FRACTION`` of the partitions probed, ``REFINE_FACTOR`` x k candidates rescored with
    exact cosine), ANN recall@10 against exact NumPy search, index build time, bytes per chunk.
(b) Real code: ~``--real-chunks`` chunks of the installed packages' sources (this venv's
    site-packages, package by package in name order), indexed by ``codeseer index`` with a static
    model distilled offline (model2vec) from the bundled all-MiniLM-L6-v2 (384-d). Queries are the
    names (split into words) and docstring first lines of chunks from the packages that follow,
    which are not indexed. Exact and ANN latency through ``Searcher.search(mode="dense")``, ANN
    recall@10 against the same searcher with the index bypassed, the ANN build time inside
    ``codeseer index --ann on``, bytes per chunk on disk.
``--compare-hnsw`` adds an IVF_HNSW_SQ index (LanceDB's m=20, ef_construction=300; a partition per
25k rows, all probed, ef=128, refine 2) at synthetic sizes up to 100k and on the real chunks: the
alternative the index type was chosen against (at 1M it took 5-9 minutes to build here).

Usage: python bench/scale_search.py [--sizes 100000,1000000] [--real-chunks 100000] [--queries 200]
       [--exact-queries 30] [--compare-hnsw] [--out bench/results/scale-search.txt] [--json OUT]
Smoke check: python bench/scale_search.py --sizes 20000 --real-chunks 5000 --queries 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

import codeseer.index.store  # noqa: E402, F401  (sets the lance log level before lancedb loads)
from codeseer.index import ann  # noqa: E402

import lancedb  # noqa: E402

DIM = 384
K = 10
BATCH = 100_000


# ----------------------------------------------------------------------------------------- helpers


def synthetic_vectors(n: int, n_queries: int, dim: int = DIM, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in ~n/500 clusters of Pareto-distributed size, each spread along 24 shared directions.

    Queries are drawn the same way but are not in the table. A query's 1st/10th/100th neighbour has
    cosine ~0.73/0.66/0.57 at 100k: graded neighbourhoods, neither ties nor noise.
    """
    rng = np.random.default_rng(seed)
    k = max(16, n // 500)
    centres = rng.standard_normal((k, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = rng.pareto(1.5, k) + 1
    basis = (rng.standard_normal((24, dim)) / np.sqrt(dim)).astype(np.float32)
    out = np.empty((n + n_queries, dim), np.float32)
    for start in range(0, n + n_queries, BATCH):
        end = min(n + n_queries, start + BATCH)
        members = rng.choice(k, end - start, p=sizes / sizes.sum())
        v = (centres[members] + rng.standard_normal((end - start, 24)).astype(np.float32) @ basis * 0.9
             + rng.standard_normal((end - start, dim)).astype(np.float32) * (0.25 / np.sqrt(dim)))
        out[start:end] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out[:n], out[n:]


def exact_top(queries: np.ndarray, vectors: np.ndarray, k: int = K) -> np.ndarray:
    """Row ids of each query's exact top k (NumPy, a few queries at a time to bound memory)."""
    tops = []
    for start in range(0, len(queries), 16):
        scores = queries[start : start + 16] @ vectors.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        tops.append(np.take_along_axis(part, order, axis=1))
    return np.vstack(tops)


def timed(fn, items) -> tuple[list, np.ndarray]:
    results, seconds = [], []
    for item in items:
        start = time.perf_counter()
        results.append(fn(item))
        seconds.append(time.perf_counter() - start)
    return results, np.asarray(seconds)


def ms(seconds: np.ndarray, q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def recall(found: list[set], truth: list[set]) -> float:
    return float(np.mean([len(f & t) / max(len(t), 1) for f, t in zip(found, truth)]))


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_hnsw(table, rows: int) -> None:
    """The IVF_HNSW_SQ alternative (for --compare-hnsw), as measured when the index type was chosen."""
    from lancedb.index import HnswSq

    table.create_index("vector", config=HnswSq(distance_type="cosine", num_partitions=max(1, rows // 25_000)),
                       replace=True, name="vector_hnsw")


def hnsw_search(builder):
    return builder.nprobes(ann.NPROBES_ALL).ef(128).refine_factor(2)


# --------------------------------------------------------------------------------------- synthetic


def bench_synthetic(n: int, args, workdir: Path) -> dict:
    started = time.perf_counter()
    vectors, queries = synthetic_vectors(n, args.queries)
    db = lancedb.connect(str(workdir / f"synthetic-{n}"))
    schema = pa.schema([("id", pa.int64()), ("vector", pa.list_(pa.float32(), DIM))])
    table = db.create_table("chunks", schema=schema)
    for start in range(0, n, BATCH):
        end = min(n, start + BATCH)
        table.add(pa.Table.from_arrays(
            [pa.array(np.arange(start, end)), pa.FixedSizeListArray.from_arrays(pa.array(vectors[start:end].ravel()), DIM)],
            schema=schema))
    table.optimize(cleanup_older_than=timedelta(0))  # one copy of the data, as after the indexer's cleanup
    data_bytes = dir_bytes(workdir / f"synthetic-{n}")
    truth = [set(row.tolist()) for row in exact_top(queries, vectors)]
    del vectors  # the rest reads the table

    def search(builder):
        return set(builder.select(["id", "_distance"]).limit(K).to_arrow()["id"].to_pylist())

    exact_q = queries[: args.exact_queries]
    found, exact_s = timed(lambda q: search(table.search(q).distance_type("cosine")), exact_q)
    exact_recall = recall(found, truth)
    start = time.perf_counter()
    ann.build_index(table, n)
    build_s = time.perf_counter() - start
    index_bytes = ann.vector_index(table).size_bytes
    nprobes = ann.nprobes_for(ann.vector_index(table))
    found, ann_s = timed(lambda q: search(ann.ann_search(table.search(q).distance_type("cosine"), nprobes)), queries)
    row = {
        "chunks": n, "queries": len(queries), "exact_queries": len(exact_q), "exact_recall": exact_recall,
        "exact_p50_ms": ms(exact_s, 50), "exact_p99_ms": ms(exact_s, 99),
        "ann_p50_ms": ms(ann_s, 50), "ann_p99_ms": ms(ann_s, 99), "ann_recall": recall(found, truth),
        "build_s": build_s, "index_bytes_per_chunk": index_bytes / n, "data_bytes_per_chunk": data_bytes / n,
        "partitions": ann.partitions_for(n), "nprobes": nprobes,
    }
    if args.compare_hnsw and n <= 100_000:
        table.drop_index(ann.vector_index(table).name)
        start = time.perf_counter()
        build_hnsw(table, n)
        row["hnsw_build_s"] = time.perf_counter() - start
        row["hnsw_index_bytes_per_chunk"] = ann.vector_index(table).size_bytes / n
        found, hnsw_s = timed(lambda q: search(hnsw_search(table.search(q).distance_type("cosine"))), queries)
        row.update(hnsw_p50_ms=ms(hnsw_s, 50), hnsw_p99_ms=ms(hnsw_s, 99), hnsw_recall=recall(found, truth))
    shutil.rmtree(workdir / f"synthetic-{n}", ignore_errors=True)
    row["seconds"] = time.perf_counter() - started
    row["peak_rss_mb"] = peak_rss_mb()
    return row


# ------------------------------------------------------------------------------------------- real


def _query_from(chunk) -> str | None:
    """A held-out chunk's name in words, or its docstring's first line: what someone might type."""
    doc = re.search(r'^\s*(?:"""|\'\'\'|///?|#)\s*([A-Z][^\n]{15,100})', chunk.text.split("\n", 1)[-1], re.M)
    if doc and chunk.start_line % 2:
        return doc.group(1).strip().rstrip(".")
    if chunk.symbol:
        name = chunk.symbol.replace(".", " ").replace("_", " ")
        name = " ".join(re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).split()).lower()
        if len(name) >= 8 and len(name.split()) >= 2:
            return name
    return None


def build_real_corpus(dest: Path, wanted: int, n_queries: int) -> tuple[dict, list[str]]:
    """Copy packages' indexable files until ``wanted`` chunks; queries come from the packages after."""
    import sysconfig

    from codeseer.index.chunking import chunk_source
    from codeseer.index.walker import WalkStats, read_source, walk

    site = Path(sysconfig.get_paths()["purelib"])
    chunks = files = 0
    packages: list[str] = []
    per_package: dict[str, int] = {}
    queries: list[str] = []
    for package in sorted(p for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".data"))):
        if package.name.startswith(("_", ".")) or package.name == "codeseer":
            continue
        held_out = chunks >= wanted
        for source in walk(package, WalkStats()):
            text = read_source(source, WalkStats())
            if text is None:
                continue
            pieces = chunk_source(source.rel, text, source.language)
            if held_out:
                queries += [q for q in map(_query_from, pieces) if q]
                continue
            target = dest / package.name / source.rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.abs, target)
            chunks += len(pieces)
            files += 1
            per_package[package.name] = per_package.get(package.name, 0) + len(pieces)
        if not held_out:
            packages.append(package.name)
        elif len(set(queries)) >= 4 * n_queries:
            break
    unique = sorted(set(queries))
    picked = [unique[i] for i in np.random.default_rng(1).permutation(len(unique))[:n_queries]]
    # The filtered measurement keeps one package of about 2% of the chunks (a --path glob)
    small = min(per_package, key=lambda name: abs(per_package[name] - chunks / 50))
    return {"files": files, "chunks_walked": chunks, "packages": len(packages), "first": packages[0],
            "last": packages[-1], "filter_package": small, "filter_chunks": per_package[small]}, picked


def bench_real(args, workdir: Path) -> dict:
    from model2vec.distill import distill

    from codeseer.index.indexer import index_repository
    from codeseer.index.store import IndexStore
    from codeseer.models.embedder import Embedder, resolve_model
    from codeseer.search.searcher import Searcher

    os.environ["CODESEER_VECTOR_CACHE"] = "off"  # bench vectors stay out of the machine-wide cache
    repo = workdir / "corpus"
    corpus, queries = build_real_corpus(repo, args.real_chunks, args.queries)
    static = workdir / "static-minilm-384"
    start = time.perf_counter()
    distill(model_name=resolve_model(None).location, pca_dims=None).save_pretrained(str(static))
    distill_s = time.perf_counter() - start
    index_dir = workdir / "index"
    start = time.perf_counter()
    report = index_repository(repo, index_dir=index_dir, model=str(static), ann="off")
    index_s = time.perf_counter() - start
    exact_bytes = dir_bytes(index_dir / "lance")
    start = time.perf_counter()
    with_ann = index_repository(repo, index_dir=index_dir, ann="on")  # unchanged tree: builds the index, commits
    build_s = time.perf_counter() - start
    total_bytes = dir_bytes(index_dir / "lance")

    store = IndexStore(index_dir)
    embedder = Embedder(str(static))
    searcher = Searcher(store, embedder=embedder)
    ann_bytes = ann.vector_index(searcher.chunks).size_bytes
    assert searcher.ann == with_ann.ann == "IVF_PQ", (searcher.ann, with_ann.ann)
    vectors = {q: v for q, v in zip(queries, embedder.encode_queries(queries))}

    def keys(hits) -> set:
        return {(h.path, h.start_line, h.end_line) for h in hits}

    for q in queries[:5]:  # warm the caches either way
        searcher.search(q, k=K, mode="dense")
    found, ann_s = timed(lambda q: keys(searcher.search(q, k=K, mode="dense")), queries)
    glob = f"{corpus['filter_package']}/**"
    found_filtered, filtered_s = timed(lambda q: keys(searcher.search(q, k=K, mode="dense", path_glob=glob)), queries)
    searcher.use_ann = False  # the same snapshot, searched exactly (the index is bypassed)
    truth, exact_s = timed(lambda q: keys(searcher.search(q, k=K, mode="dense")), queries)
    truth_filtered = [keys(searcher.search(q, k=K, mode="dense", path_glob=glob)) for q in queries]
    searcher.use_ann = True
    row = {
        **corpus, "chunks": report.chunks, "queries": len(queries), "examples": queries[:4],
        "distill_s": distill_s, "index_s": index_s, "build_s": build_s,
        "exact_p50_ms": ms(exact_s, 50), "exact_p99_ms": ms(exact_s, 99),
        "ann_p50_ms": ms(ann_s, 50), "ann_p99_ms": ms(ann_s, 99), "ann_recall": recall(found, truth),
        "filtered_p50_ms": ms(filtered_s, 50), "filtered_p99_ms": ms(filtered_s, 99),
        "filtered_recall": recall(found_filtered, truth_filtered),
        "bytes_per_chunk_exact": exact_bytes / report.chunks, "bytes_per_chunk_ann": total_bytes / report.chunks,
        "ann_index_bytes_per_chunk": ann_bytes / report.chunks,
    }
    if args.compare_hnsw:
        chunks = store.db.open_table("chunks")  # the latest version, not committed: scratch space for the comparison
        chunks.drop_index(ann.vector_index(chunks).name)
        start = time.perf_counter()
        build_hnsw(chunks, report.chunks)
        row["hnsw_build_s"] = time.perf_counter() - start

        def hnsw(q):
            builder = hnsw_search(chunks.search(vectors[q], vector_column_name="vector").distance_type("cosine"))
            return {(r["path"], r["start_line"], r["end_line"]) for r in
                    builder.select(["path", "start_line", "end_line", "_distance"]).limit(K).to_list()}

        found, hnsw_s = timed(hnsw, queries)
        row.update(hnsw_p50_ms=ms(hnsw_s, 50), hnsw_p99_ms=ms(hnsw_s, 99), hnsw_recall=recall(found, truth))
    row["peak_rss_mb"] = peak_rss_mb()
    return row


# ------------------------------------------------------------------------------------------- main


def render(results: dict) -> str:
    lines = [f"# search at scale: exact vs ANN ({results['ann']}), k={K}, {results['cpus']} CPUs", ""]
    lines.append(f"search: {results['params']}")
    synthetic = results.get("synthetic", [])
    if synthetic:
        lines += ["", "## (a) synthetic, 384-d float32 unit vectors in clusters",
                  f"{'chunks':>10s} {'exact p50':>10s} {'exact p99':>10s} {'ANN p50':>8s} {'ANN p99':>8s} "
                  f"{'speed-up':>8s} {'recall@10':>9s} {'build s':>8s} {'probed':>9s} {'index B/chunk':>13s} "
                  f"{'vectors B/chunk':>15s}"]
        for r in synthetic:
            lines.append(
                f"{r['chunks']:>10,d} {r['exact_p50_ms']:>8.1f}ms {r['exact_p99_ms']:>8.1f}ms {r['ann_p50_ms']:>6.1f}ms "
                f"{r['ann_p99_ms']:>6.1f}ms {r['exact_p50_ms'] / r['ann_p50_ms']:>7.0f}x {r['ann_recall']:>9.3f} "
                f"{r['build_s']:>8.1f} {str(r['nprobes']) + '/' + str(r['partitions']):>9s} {r['index_bytes_per_chunk']:>13,.0f} "
                f"{r['data_bytes_per_chunk']:>15,.0f}")
        lines.append("(exact: " + ", ".join(f"{r['exact_queries']} queries at {r['chunks']:,}" for r in synthetic)
                     + f"; ANN: {synthetic[0]['queries']} queries each)")
        for r in synthetic:
            if "hnsw_recall" in r:
                lines.append(f"IVF_HNSW_SQ (comparison) at {r['chunks']:,}: p50 {r['hnsw_p50_ms']:.1f} ms, "
                             f"p99 {r['hnsw_p99_ms']:.1f} ms, recall@10 {r['hnsw_recall']:.3f}, "
                             f"build {r['hnsw_build_s']:.1f} s, index {r['hnsw_index_bytes_per_chunk']:,.0f} B/chunk")
    real = results.get("real")
    if real:
        lines += ["", f"## (b) real code: {real['chunks']:,} chunks from {real['files']:,} files of {real['packages']} "
                      f"packages ({real['first']} .. {real['last']}), static MiniLM (model2vec, 384-d)",
                  f"queries: {real['queries']} names and docstring lines of held-out chunks, e.g. "
                  + "; ".join(repr(q) for q in real["examples"]),
                  f"{'':22s} {'p50':>8s} {'p99':>8s} {'recall@10':>9s}",
                  f"{'exact (index bypassed)':22s} {real['exact_p50_ms']:>6.1f}ms {real['exact_p99_ms']:>6.1f}ms {1.0:>9.3f}",
                  f"{'ANN ' + results['ann']:22s} {real['ann_p50_ms']:>6.1f}ms {real['ann_p99_ms']:>6.1f}ms "
                  f"{real['ann_recall']:>9.3f}"]
        lines.append(f"{'ANN, --path one package':22s} {real['filtered_p50_ms']:>6.1f}ms {real['filtered_p99_ms']:>6.1f}ms "
                     f"{real['filtered_recall']:>9.3f}   ({real['filter_package']}/**: {real['filter_chunks']:,} chunks)")
        if "hnsw_recall" in real:
            lines.append(f"{'IVF_HNSW_SQ (compared)':22s} {real['hnsw_p50_ms']:>6.1f}ms {real['hnsw_p99_ms']:>6.1f}ms "
                         f"{real['hnsw_recall']:>9.3f}   (build {real['hnsw_build_s']:.1f} s)")
        lines.append(f"codeseer index (exact, incl. distilled-model embedding): {real['index_s']:.1f} s; "
                     f"ANN build (codeseer index --ann on): {real['build_s']:.1f} s; "
                     f"on disk {real['bytes_per_chunk_exact']:,.0f} B/chunk before it, "
                     f"{real['bytes_per_chunk_ann']:,.0f} after (older versions not yet pruned); "
                     f"the ANN index itself {real['ann_index_bytes_per_chunk']:,.0f} B/chunk")
    lines += ["", f"peak RSS {results['peak_rss_mb']:,.0f} MB; total {results['seconds']:.0f} s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="synthetic sizes, comma-separated ('' for none)")
    parser.add_argument("--real-chunks", type=int, default=100_000, help="real chunks to index (0: skip)")
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--exact-queries", type=int, default=30, help="queries for exact latency (slow at 1M)")
    parser.add_argument("--compare-hnsw", action="store_true", help="also measure IVF_HNSW_SQ (up to 100k, real)")
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="write all numbers here")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results: dict = {
        "cpus": os.cpu_count(), "ann": "IVF_PQ",
        "params": f"sqrt(rows)/2 partitions, {ann.SUB_VECTOR_DIMS}-d sub-vectors (48 at 384-d), "
                  f"{ann.NPROBE_FRACTION:.0%} of the partitions probed, refine_factor={ann.REFINE_FACTOR} "
                  "(exact cosine rescoring)",
    }
    tmp = tempfile.TemporaryDirectory(prefix="codeseer-scale-search-", dir=args.workdir)
    workdir = Path(tmp.name)
    try:
        results["synthetic"] = []
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            row = bench_synthetic(size, args, workdir)
            results["synthetic"].append(row)
            print(f"synthetic {size:,}: done in {row['seconds']:.0f} s", file=sys.stderr, flush=True)
        if args.real_chunks:
            results["real"] = bench_real(args, workdir)
    finally:
        tmp.cleanup()
    results["seconds"] = time.perf_counter() - started
    results["peak_rss_mb"] = peak_rss_mb()
    table = render(results)
    print(table, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
