"""Ray: `codeseer index` single-process vs `--ray` with 1 and 2 actors, same corpus, same model.

Corpus: the first ``--files`` .py files (default 200) of installed packages (requests, urllib3, then
others by name). Each run is the real CLI in a fresh process (``--json``), with the machine-wide
vector cache off so every chunk is embedded; ``seconds`` is the indexer's own wall time, so the
Ray runs include starting Ray (``--ray local``) and loading one model per actor. Every Ray index is
also checked against the single-process one (max |difference| of the stored vectors).

Actors get their share of the CPUs as threads (torch, and ONNX Runtime's pool, which otherwise
sizes itself by the machine's cores). Because that alone changes the speed of a one-text-per-call
int8 model, ``thread_probe`` also times the single-process encoder with its default pool and with
one thread, so a Ray speed-up can be told apart from a thread-count effect.

Usage: python bench/scale_ray.py [--files 200] [--actors 1,2] [--ray local|auto|HOST:PORT]
                                 [--backend auto] [--model M] [--json OUT]
Called by bench/scale.py as ``scale_ray.main(argv)``, which gets the numbers back as a dict.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

FIRST = ("requests", "urllib3", "idna", "certifi", "charset_normalizer", "click", "jinja2")


def build_corpus(dest: Path, n_files: int) -> dict:
    """Copy the first ``n_files`` .py files of the installed packages, FIRST ones first."""
    site = Path(sysconfig.get_paths()["purelib"])
    packages = [site / p for p in FIRST if (site / p).is_dir()]
    packages += sorted(p for p in site.iterdir() if p.is_dir() and p not in packages
                       and not p.name.startswith(("_", ".")) and not p.name.endswith((".dist-info", ".data"))
                       and p.name != "codeseer")
    files = lines = 0
    used = []
    for package in packages:
        for source in sorted(package.rglob("*.py")):
            if files >= n_files:
                break
            if "__pycache__" in source.parts or not source.is_file():
                continue
            target = dest / package.name / source.relative_to(package)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            with open(source, "rb") as fh:
                lines += sum(1 for _ in fh)
            files += 1
        used.append(package.name)
        if files >= n_files:
            break
    return {"files": files, "lines": lines, "packages": used}


def run_index(repo: Path, index: Path, extra: list[str], backend: str, model: str | None) -> dict:
    cmd = [sys.executable, "-m", "codeseer.cli", "index", str(repo), "--index", str(index), "--json",
           "--backend", backend, *(["--model", model] if model else []), *extra]
    env = dict(os.environ, CODESEER_VECTOR_CACHE="off", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    return {"seconds": report["seconds"], "process_seconds": wall, "chunks": report["chunks"],
            "embedded": report["embedded_chunks"], "files": report["files"],
            "chunks_per_s": report["embedded_chunks"] / report["seconds"],
            "ray_nodes": len(report.get("ray_nodes") or {}), "per_node": report.get("ray_nodes") or {}}


def max_vector_difference(a: Path, b: Path) -> float:
    import numpy as np

    from codeseer.index.store import IndexStore

    def vectors(index: Path) -> dict:
        store = IndexStore(index)
        chunks, _ = store.snapshot(store.read_state())
        table = chunks.to_arrow()
        return dict(zip(table["chunk_id"].to_pylist(), table["vector"].to_numpy(zero_copy_only=False)))

    va, vb = vectors(a), vectors(b)
    if set(va) != set(vb):
        return float("inf")
    return float(max((np.abs(np.asarray(va[k], dtype=np.float32) - np.asarray(vb[k], dtype=np.float32)).max()
                      for k in va), default=0.0))


def thread_probe(repo: Path, texts: int = 400, backend: str = "auto", model: str | None = None) -> dict:
    """Seconds for ``texts`` chunks in this process: the encoder's default thread pool vs one thread."""
    from scale import iter_chunk_texts

    from codeseer.index.distributed import _limit_onnx_threads
    from codeseer.models.embedder import Embedder

    sample = list(itertools.islice(iter_chunk_texts(repo), texts))
    embedder = Embedder(model, backend=backend)
    embedder.encode_documents(sample[:16])  # warm-up
    result = {"texts": len(sample), "backend": embedder.backend, "int8": embedder.quantized}
    start = time.perf_counter()
    embedder.encode_documents(sample)
    result["default_threads_s"] = time.perf_counter() - start
    import torch

    threads = torch.get_num_threads()
    if embedder.backend == "onnx":
        _limit_onnx_threads(embedder, 1)
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        embedder.encode_documents(sample)
        result["one_thread_s"] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)  # scale.py calls this in its own process
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="corpus size in .py files (default 200)")
    parser.add_argument("--actors", default="1,2", help="Ray actor counts to run, comma-separated (default 1,2)")
    parser.add_argument("--ray", default="local", help="Ray address: local (default), auto or HOST:PORT")
    parser.add_argument("--backend", default="auto", help="--backend for every run (default auto)")
    parser.add_argument("--model", default=None, help="--model for every run (default: bundled MiniLM)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    actor_counts = [int(a) for a in args.actors.split(",") if a.strip()]

    results: dict = {"cpus": os.cpu_count(), "ray": args.ray, "backend": args.backend,
                     "model": args.model or "all-MiniLM-L6-v2 (bundled)", "runs": {}}
    with tempfile.TemporaryDirectory(prefix="codeseer-scale-ray-") as tmp:
        tmp = Path(tmp)
        repo = tmp / "corpus"
        results["corpus"] = corpus = build_corpus(repo, args.files)
        print(f"corpus: {corpus['files']} .py files, {corpus['lines']:,} lines from {', '.join(corpus['packages'])}; "
              f"{os.cpu_count()} CPUs", flush=True)
        runs = results["runs"]
        runs["single process"] = run_index(repo, tmp / "single", [], args.backend, args.model)
        print("single process done", flush=True)
        for n in actor_counts:
            name = f"ray {args.ray}, {n} actor{'s' * (n != 1)}"
            runs[name] = run_index(repo, tmp / f"ray{n}", ["--ray", args.ray, "--ray-actors", str(n)],
                                   args.backend, args.model)
            runs[name]["max_vector_diff_vs_single"] = max_vector_difference(tmp / "single", tmp / f"ray{n}")
            print(f"{name} done", flush=True)
        results["thread_probe"] = probe = thread_probe(repo, backend=args.backend, model=args.model)

    base = runs["single process"]["seconds"]
    width = max(len(n) for n in runs) + 2
    print(f"\n{'run':{width}s}{'chunks':>8s}{'seconds':>10s}{'chunks/s':>10s}{'speed-up':>10s}{'nodes':>7s}{'max |dv|':>11s}")
    for name, r in runs.items():
        diff = r.get("max_vector_diff_vs_single")
        print(f"{name:{width}s}{r['embedded']:>8,d}{r['seconds']:>10.1f}{r['chunks_per_s']:>10.1f}"
              f"{base / r['seconds']:>9.2f}x{r['ray_nodes'] or '-':>7}{'-' if diff is None else f'{diff:.1e}':>11s}")
    print(f"thread probe ({probe['backend']}{' int8' if probe['int8'] else ''}, {probe['texts']} chunks, this process): "
          f"default pool {probe['default_threads_s']:.1f}s, one thread {probe['one_thread_s']:.1f}s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
