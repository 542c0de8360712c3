"""Latency of ``locate`` through ``codeseer serve``, with ``/search`` (hybrid chunk search) on the
same server and index as the baseline measured in the same run.

The localisation issue's bound: under 1 s per query on a 2-core machine for a 10k-chunk repository.
Queries are commit-style texts written from the index's own function names ("fix <name> when the
input is empty"), plus a scoped and a backticked form, so every feature of the ranker runs.

Usage:
  python bench/locate_latency.py --index REPO/.codeseer [--queries 60] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import served  # noqa: E402

TEMPLATES = [
    "fix {words} when the input is empty",
    "{module}: handle {words} for large graphs",
    "`{name}` returns the wrong result on a directed input",
    "speed up {words} by caching intermediate results",
]


def _queries(index_dir: Path, n: int, seed: int) -> list[str]:
    import lancedb

    from codeseer.text.lexical import split_identifier

    table = lancedb.connect(str(index_dir / "lance")).open_table("chunks")
    rows = table.search().where("kind IN ('function', 'method')").select(["path", "symbol"]).limit(None).to_list()
    rng = random.Random(seed)
    out = []
    for row in rng.sample(rows, min(n, len(rows))):
        name = row["symbol"].rsplit(".", 1)[-1]
        words = " ".join(w.lower() for w in split_identifier(name)) or name
        module = row["path"].split("/")[-2] if "/" in row["path"] else "core"
        out.append(rng.choice(TEMPLATES).format(words=words, name=name, module=module))
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True, type=Path, help="An index folder (REPO/.codeseer).")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Write the table's numbers here.")
    args = parser.parse_args()
    state = json.loads((args.index / "state.json").read_text())
    texts = _queries(args.index, args.queries, args.seed)
    timings: dict[str, list[float]] = {"search (hybrid chunks, baseline)": [], "locate (file ranker)": []}
    with served(args.index) as url:
        with httpx.Client(base_url=url, timeout=120) as client:
            for text in texts[:3]:  # warm-up: the model, the files table, the BM25 indexes
                client.post("/locate", json={"text": text}).raise_for_status()
                client.post("/search", json={"query": text}).raise_for_status()
            for text in texts:
                for label, route, body in (("search (hybrid chunks, baseline)", "/search", {"query": text, "k": 10}),
                                           ("locate (file ranker)", "/locate", {"text": text, "k": 10})):
                    start = time.perf_counter()
                    client.post(route, json=body).raise_for_status()
                    timings[label].append(time.perf_counter() - start)
    base = statistics.median(timings["search (hybrid chunks, baseline)"])
    print(f"{state['chunks']} chunks, {state['files']} files, model {state['model']}, {len(texts)} queries each")
    print(f"{'request':36s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'p50 / baseline':>15s}")
    rows = []
    for label, values in timings.items():
        p50, p95, top = statistics.median(values), _percentile(values, 0.95), max(values)
        rows.append({"request": label, "p50_ms": round(1000 * p50, 1), "p95_ms": round(1000 * p95, 1),
                     "max_ms": round(1000 * top, 1), "ratio": round(p50 / base, 2)})
        print(f"{label:36s} {1000 * p50:8.1f} {1000 * p95:8.1f} {1000 * top:8.1f} {p50 / base:14.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"chunks": state["chunks"], "files": state["files"], "rows": rows}, indent=2)
                             + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
