"""Indexing at scale: a large corpus through codeseer and through the naive pipeline, in one run.

Corpus: source files of the installed packages (this venv's site-packages), taken package by package
in name order until ``--lines`` lines (default 500k). Each pipeline runs in its own process so its
peak RSS is its own:

- naive: whole files through sentence-transformers (MiniLM, PyTorch fp32), numpy matrix
  (``bench/index_speed.py``'s baseline, the "first benchmark");
- codeseer default: ``codeseer index`` exactly as the CLI runs it (``--backend auto``);
- codeseer torch fp32 (``--with-fp32``): the same pipeline on the naive pipeline's numerics;
- codeseer --fast: the bundled static model codeseer-code-static, distilled from the same MiniLM
  and fitted to it on code (``codeseer distill``).

Throughput is also put against the arithmetic: model FLOPs per token (2 x encoder weights + attention
at the measured mean length) x tokens/s, divided by this machine's measured fp32 matmul FLOP/s.
Then search latency and ANN recall (``bench/scale_search.py``) and Ray with 1 vs 2 actors
(``bench/scale_ray.py``), when those parts are present.

Usage: python bench/scale.py [--lines 500000] [--with-fp32] [--skip-search] [--skip-ray] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


def build_corpus(dest: Path, max_lines: int) -> dict:
    """Copy the installed packages' indexable files, package by package, until the line budget is met."""
    import sysconfig

    from codeseer.index.walker import WalkStats, walk

    site = Path(sysconfig.get_paths()["purelib"])
    lines = files = 0
    packages = []
    for package in sorted(p for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".data"))):
        if package.name.startswith(("_", ".")) or package.name in ("codeseer",):
            continue
        for source in walk(package, WalkStats()):
            target = dest / package.name / source.rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.abs, target)
            with open(source.abs, "rb") as fh:
                lines += sum(1 for _ in fh)
            files += 1
            if lines >= max_lines:
                break
        packages.append(package.name)
        if lines >= max_lines:
            break
    return {"files": files, "lines": lines, "packages": len(packages), "first": packages[0], "last": packages[-1]}


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def iter_chunk_texts(repo: Path) -> Iterator[str]:
    """Every chunk of ``repo`` as the index embeds it (the benches count its tokens or time its encoding)."""
    from codeseer.index.chunking import chunk_source
    from codeseer.index.indexer import embed_text
    from codeseer.index.walker import WalkStats, read_source, walk

    for f in walk(repo, WalkStats()):
        text = read_source(f, WalkStats())
        if text is not None:
            yield from (embed_text(c.symbol, c.text) for c in chunk_source(f.rel, text, f.language))


def token_lengths(tokenizer, texts: list[str], limit: int) -> list[int]:
    lengths = []
    for start in range(0, len(texts), 2048):
        ids = tokenizer(texts[start : start + 2048], add_special_tokens=True)["input_ids"]
        lengths += [min(len(x), limit) for x in ids]
    return lengths


# ----------------------------------------------------------------------------------------- workers
# Each runs in a fresh process (``--worker``) and prints one JSON line.


def worker_naive(repo: Path, out: Path) -> dict:
    from index_speed import bench_naive

    from codeseer.models.embedder import Embedder

    embedder = Embedder(None, backend="torch")
    result = bench_naive(repo, embedder, ["parse command line arguments"])
    texts = []
    for p in sorted(q for q in repo.rglob("*") if q.is_file()):
        try:
            texts.append(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    lengths = token_lengths(embedder.tokenizer, texts, embedder._model.max_seq_length)
    return {"seconds": result["seconds"], "files": result["files"], "units": result["units"],
            "tokens": sum(lengths), "mean_len": sum(lengths) / max(len(lengths), 1), "bytes": result["bytes"]}


def worker_codeseer(repo: Path, out: Path, backend: str, model: str | None) -> dict:
    from codeseer.index.indexer import index_repository
    from codeseer.models.embedder import Embedder

    os.environ["CODESEER_VECTOR_CACHE"] = str(out / "vector-cache.sqlite")  # cold: a fair race
    index_dir = out / "index"
    start = time.perf_counter()
    report = index_repository(repo, index_dir=index_dir, model=model, backend=backend)
    seconds = time.perf_counter() - start
    probe = Embedder(None, backend="torch")  # one tokenizer counts for every run (the static model shares its vocabulary)
    lengths = token_lengths(probe.tokenizer, list(iter_chunk_texts(repo)), probe.max_seq_length)
    return {"seconds": seconds, "files": report.files, "units": report.chunks, "embedded": report.embedded_chunks,
            "tokens": sum(lengths), "mean_len": sum(lengths) / max(len(lengths), 1), "bytes": dir_bytes(index_dir)}


def run_worker(kind: str, repo: Path, workdir: Path, extra: list[str]) -> dict:
    out = workdir / kind
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--worker", kind, "--repo", str(repo), "--out", str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------- arithmetic


def matmul_gflops(dtype: str = "float32", n: int = 1024, seconds: float = 3.0) -> float:
    """Square matmuls in a loop: the machine's practical peak for that number format (int8: VNNI)."""
    import torch

    if dtype == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        multiply = torch._int_mm
    else:
        a = torch.randn(n, n, dtype=getattr(torch, dtype))
        b = torch.randn(n, n, dtype=getattr(torch, dtype))
        multiply = torch.matmul
    multiply(a, b)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        multiply(a, b)
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - start) / 1e9


def flops_per_token(mean_len: float) -> float:
    """2 x encoder weights (embeddings are lookups) + QK^T and AV at the mean sequence length."""
    from transformers import AutoConfig

    from codeseer.models.embedder import resolve_model

    cfg = AutoConfig.from_pretrained(resolve_model(None).location)
    d, ff, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    weights = layers * (4 * d * d + 2 * d * ff)
    return 2 * weights + layers * 4 * mean_len * d


# ------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=500_000, help="corpus size in lines (default 500k)")
    parser.add_argument("--with-fp32", action="store_true", help="also run codeseer on PyTorch fp32 (slow)")
    parser.add_argument("--skip-static", action="store_true")
    parser.add_argument("--skip-search", action="store_true", help="skip bench/scale_search.py (100k/1M chunks)")
    parser.add_argument("--skip-ray", action="store_true", help="skip bench/scale_ray.py")
    parser.add_argument("--search-args", default="", help="arguments passed on to scale_search.py")
    parser.add_argument("--ray-args", default="", help="arguments passed on to scale_ray.py")
    parser.add_argument("--json", type=Path, help="write all numbers here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if args.worker == "naive":
            result = worker_naive(args.repo, args.out)
        else:
            result = worker_codeseer(args.repo, args.out, args.backend, args.model)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return result

    results: dict = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="codeseer-scale-") as tmp:
        tmp = Path(tmp)
        repo = tmp / "corpus"
        results["corpus"] = corpus = build_corpus(repo, args.lines)
        print(f"corpus: {corpus['files']} files, {corpus['lines']:,} lines from {corpus['packages']} packages "
              f"({corpus['first']} .. {corpus['last']}); {os.cpu_count()} CPUs", flush=True)
        runs = {"naive": run_worker("naive", repo, tmp, [])}
        print("naive done", flush=True)
        runs["codeseer (default)"] = run_worker("default", repo, tmp, ["--backend", "auto"])
        print("codeseer default done", flush=True)
        if args.with_fp32:
            runs["codeseer torch fp32"] = run_worker("fp32", repo, tmp, ["--backend", "torch"])
        if not args.skip_static:
            runs["codeseer --fast"] = run_worker("static", repo, tmp, ["--model", "codeseer-code-static"])
        results["runs"] = runs

    peak = {}
    for dtype in ("float32", "bfloat16", "int8"):
        try:
            peak[dtype] = matmul_gflops(dtype)
        except Exception:  # e.g. no int8 matmul kernel on this CPU
            peak[dtype] = float("nan")
    results["matmul_gflops"] = peak
    naive = runs["naive"]
    columns = list(runs)
    metrics = [
        ("files/s", lambda r: r["files"] / r["seconds"], "{:,.1f}"),
        ("units (files | chunks)", lambda r: r["units"], "{:,.0f}"),
        ("units/s", lambda r: r["units"] / r["seconds"], "{:,.1f}"),
        ("embedded tokens", lambda r: r["tokens"], "{:,.0f}"),
        ("tokens/s", lambda r: r["tokens"] / r["seconds"], "{:,.0f}"),
        ("peak RSS (MB)", lambda r: r["peak_rss_mb"], "{:,.0f}"),
        ("index bytes per unit", lambda r: r["bytes"] / max(r["units"], 1), "{:,.0f}"),
        ("wall time (s)", lambda r: r["seconds"], "{:,.1f}"),
    ]
    width = max(len(c) for c in columns) + 2
    print(f"\n{'metric':26s}" + "".join(f"{c:>{width}s}" for c in columns))
    for name, fn, fmt in metrics:
        print(f"{name:26s}" + "".join(f"{fmt.format(fn(runs[c])):>{width}s}" for c in columns))
    print(f"{'tokens/s vs naive':26s}" + "".join(
        f"{(runs[c]['tokens'] / runs[c]['seconds']) / (naive['tokens'] / naive['seconds']):>{width}.2f}x" for c in columns))
    for c in columns:
        if "static" in c:
            continue
        r = runs[c]
        achieved = r["tokens"] / r["seconds"] * flops_per_token(r["mean_len"]) / 1e9
        r["model_gflops"] = achieved
        print(f"{c}: model arithmetic {achieved:,.1f} GFLOP/s = {achieved / peak['float32']:.0%} of the fp32, "
              f"{achieved / peak['bfloat16']:.0%} of the bf16, {achieved / peak['int8']:.0%} of the int8 matmul peak")
    print("measured matmul peaks (1024x1024, all cores): " + ", ".join(f"{k} {v:,.0f}" for k, v in peak.items())
          + " GFLOP/s (int8: GOP/s)")

    if not args.skip_search:
        try:
            import scale_search
        except ImportError:
            print("(bench/scale_search.py not present: search part skipped)")
        else:
            print("\n## search at scale", flush=True)
            results["search"] = scale_search.main(args.search_args.split())
    if not args.skip_ray:
        try:
            import scale_ray
        except ImportError:
            print("(bench/scale_ray.py not present: Ray part skipped)")
        else:
            print("\n## Ray: 1 vs 2 actors", flush=True)
            results["ray"] = scale_ray.main(args.ray_args.split())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
