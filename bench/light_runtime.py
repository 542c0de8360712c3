"""The light runtime against the paths it replaces, measured in one run on this machine.

1. Cold ``codeseer search`` (a new process each time, 5 runs, median) on a flask-sized repository:
   the torch-loading path (``CODESEER_BACKEND=torch``, no warm process), the light runtime in the
   CLI process (``CODESEER_WARM=off``), and the default (the index's warm query process; the first
   run answers itself and starts it). The three print the same bytes (checked).
2. ``codeseer index --rebuild`` of the same repository (vector cache off), twice each, alternating:
   the auto backend as it was (``CODESEER_SHIPPED_ONNX=off``: int8 graph exported through torch, one
   text per call on one session) against the default now (the shipped int8 graph, one text per
   call on every core). Wall time and CPU use of the child.
3. cosqa-dev's documents through both document encoders: encode time, nDCG@10 (fp32 queries) and
   the largest difference between the two encoders' vectors.

Usage: python bench/light_runtime.py [--repo DIR] [--dataset ../shared/datasets/cosqa-dev] [--json OUT]
(default repo: the click snapshot of ../shared/datasets/repos-dev, 1.8k chunks; the old paths need
the [train] extra.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = REPO_ROOT.parent / "shared" / "datasets"
QUERY = "parse command line options and their default values"


def _run(args: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """(wall seconds, CPU percent of the child, stdout) of one CLI run."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "codeseer.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"codeseer {' '.join(args)} failed ({status})")
    return wall, 100 * (usage.ru_utime + usage.ru_stime) / wall, out.decode()


def _repo(arg: str | None, work: Path) -> Path:
    target = work / "repo"
    if arg:
        shutil.copytree(arg, target, ignore=shutil.ignore_patterns(".codeseer", ".git"))
        return target
    target.mkdir()
    with tarfile.open(DATASETS / "repos-dev" / "click" / "snapshot.tar.gz") as archive:
        archive.extractall(target, filter="data")
    return target


def cold_search(repo: Path, env: dict, work: Path) -> dict:
    runs = {
        "torch path (before)": dict(env, CODESEER_WARM="off", CODESEER_BACKEND="torch"),
        "light runtime, CLI process": dict(env, CODESEER_WARM="off"),
        "light runtime, warm process (default)": dict(env, CODESEER_WARM="on", CODESEER_WARM_DIR=str(work / "sockets"),
                                                      CODESEER_WARM_IDLE="60"),
    }
    rows, outputs = {}, set()
    for label, run_env in runs.items():
        times = []
        for _ in range(5):
            wall, _, out = _run(["search", QUERY, "-k", "5"], repo, run_env)
            times.append(wall)
            outputs.add(out)
            time.sleep(0.5)  # the warm process starts in the background after the first run
        rows[label] = times
    base = statistics.median(rows["torch path (before)"])
    print(f"\ncold `codeseer search` on {repo.name} (5 runs each; same output: {len(outputs) == 1})")
    print(f"{'path':40s} {'median s':>9s} {'runs':>32s} {'speed-up':>9s}")
    out = {}
    for label, times in rows.items():
        median = statistics.median(times)
        print(f"{label:40s} {median:9.2f} {' '.join(f'{t:.2f}' for t in times):>32s} {base / median:8.1f}x")
        out[label] = {"median_s": round(median, 3), "runs_s": [round(t, 3) for t in times],
                      "speedup": round(base / median, 2)}
    subprocess.run(["pkill", "-f", f"codeseer.serve.warm {repo}"], check=False)
    return {"same_output": len(outputs) == 1, "rows": out}


def index_speed(repo: Path, env: dict) -> dict:
    runs = {"auto backend before": dict(env, CODESEER_SHIPPED_ONNX="off"), "default now": dict(env)}
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    chunks = 0
    for _ in range(2):
        for label, run_env in runs.items():
            wall, cpu, out = _run(["index", ".", "--rebuild", "--json"], repo, dict(run_env, CODESEER_VECTOR_CACHE="off"))
            chunks = json.loads(out)["chunks"]
            results[label].append((wall, cpu))
    base = statistics.mean(w for w, _ in results["auto backend before"])
    print(f"\n`codeseer index --rebuild` of {repo.name} ({chunks} chunks, vector cache off, 2 runs each)")
    print(f"{'backend':24s} {'wall s':>8s} {'chunks/s':>9s} {'CPU':>6s} {'speed-up':>9s}")
    out = {}
    for label, values in results.items():
        wall = statistics.mean(w for w, _ in values)
        cpu = statistics.mean(c for _, c in values)
        print(f"{label:24s} {wall:8.2f} {chunks / wall:9.0f} {cpu:5.0f}% {base / wall:8.2f}x")
        out[label] = {"wall_s": round(wall, 2), "chunks_per_s": round(chunks / wall, 1), "cpu_percent": round(cpu),
                      "speedup": round(base / wall, 2)}
    return {"chunks": chunks, "rows": out}


def document_quality(dataset: Path) -> dict:
    import numpy as np

    from codeseer.eval.beir import load_beir
    from codeseer.eval.metrics import evaluate
    from codeseer.models.embedder import MINI_MODEL, Embedder

    ds = load_beir(dataset)
    ids = list(ds.corpus)
    texts = [ds.corpus[i] for i in ids]
    texts = [(d.get("title", "") + "\n" + d.get("text", "")).strip() if isinstance(d, dict) else str(d) for d in texts]
    qids = list(ds.queries)
    queries = Embedder(MINI_MODEL).encode_queries([ds.queries[q] for q in qids])
    out, vectors = {}, {}
    for label, setting in (("auto backend before", "off"), ("default now", "on")):
        os.environ["CODESEER_SHIPPED_ONNX"] = setting
        embedder = Embedder(MINI_MODEL, backend="auto")
        start = time.perf_counter()
        docs = embedder.encode_documents(texts)
        seconds = time.perf_counter() - start
        scores = queries @ docs.T
        run = {q: {ids[j]: float(scores[n, j]) for j in np.argsort(-scores[n])[:100]} for n, q in enumerate(qids)}
        metrics = evaluate(ds.qrels, run, k_values=(10,))
        vectors[label] = docs
        out[label] = {"encode_s": round(seconds, 1), "ndcg@10": round(100 * metrics["ndcg@10"], 2)}
    os.environ.pop("CODESEER_SHIPPED_ONNX", None)
    diff = float(np.abs(vectors["auto backend before"] - vectors["default now"]).max())
    base = out["auto backend before"]["encode_s"]
    print(f"\n{dataset.name}: {len(texts)} documents (queries fp32), max |difference| between the encoders' vectors {diff:.1e}")
    print(f"{'documents by':24s} {'encode s':>9s} {'speed-up':>9s} {'nDCG@10':>8s}")
    for label, row in out.items():
        print(f"{label:24s} {row['encode_s']:9.1f} {base / row['encode_s']:8.2f}x {row['ndcg@10']:8.2f}")
    return {"rows": out, "max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", help="a repository to copy and index (default: repos-dev's click snapshot)")
    parser.add_argument("--dataset", type=Path, default=DATASETS / "cosqa-dev")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", NO_COLOR="1", COLUMNS="120")
    with tempfile.TemporaryDirectory(prefix="codeseer-light-") as tmp:
        work = Path(tmp)
        repo = _repo(args.repo, work)
        subprocess.run([sys.executable, "-m", "codeseer.cli", "index", "."], cwd=repo, env=env, check=True,
                       capture_output=True)
        report = {"cpu_count": os.cpu_count(), "search": cold_search(repo, env, work), "index": index_speed(repo, env)}
        if args.dataset.is_dir():
            report["documents"] = document_quality(args.dataset)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
