"""Seconds per training step on this machine: fp32 against bf16 autocast, the same batches.

    python bench/train_step.py                       # all-MiniLM-L6-v2, batch 64 x 128 tokens, 6 steps each
    python bench/train_step.py --batch-size 32 --steps 10 --pairs my-pairs.jsonl --json

Pairs: ``--pairs`` (e.g. ``codeseer data mine-git`` output), else query/code pairs made from codeseer's
own functions (docstring first line -> code; deterministic). Each precision trains the same base with
the same seed on the same rows; the first step (warm-up: allocation, autocast caches) is left out of
the per-step time, which is the mean of the rest. The loss after the last step shows the two
precisions train alike. ``--precision auto`` picks bf16 where the hardware multiplies it natively.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def own_pairs(limit: int) -> list[dict]:
    pairs = []
    for path in sorted((REPO / "src" / "codeseer").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and ast.get_docstring(node):
                doc = ast.get_docstring(node).split("\n")[0]
                if len(doc.split()) >= 4:
                    pairs.append({"query": doc, "positive": ast.get_source_segment(source, node), "task": "nl2code"})
    return pairs[:limit]


def step_times(out: Path) -> list[float]:
    """Wall seconds between consecutive train-loss rows of train_log.jsonl (logged every step)."""
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    elapsed = [r["elapsed"] for r in rows if r.get("kind") == "train"]
    return [b - a for a, b in zip(elapsed, elapsed[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=None, help="base model (default: all-MiniLM-L6-v2)")
    parser.add_argument("--pairs", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from codeseer.train.config import TrainConfig
    from codeseer.train.trainer import train, uses_bf16

    with tempfile.TemporaryDirectory() as tmp:
        pairs = args.pairs
        if pairs is None:
            pairs = Path(tmp) / "pairs.jsonl"
            rows = own_pairs(args.batch_size * args.steps)
            pairs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        results = {}
        for precision in ("fp32", "bf16"):
            out = Path(tmp) / precision
            started = time.perf_counter()
            report = train(TrainConfig(base=args.base, pairs=[pairs], out=out, batch_size=args.batch_size,
                                       max_seq_length=args.max_seq_length, max_steps=args.steps, eval_every=0,
                                       log_every=1, precision=precision, progress=False, warmup_ratio=0.0))
            times = step_times(out)
            results[precision] = {"seconds_per_step": sum(times) / max(1, len(times)),
                                  "wall_seconds": time.perf_counter() - started,
                                  "last_loss": report["last_loss"], "steps": report["global_step"]}
    base = results["fp32"]["seconds_per_step"]
    for row in results.values():
        row["speedup"] = base / row["seconds_per_step"] if row["seconds_per_step"] else None
    auto = "bf16" if uses_bf16("auto", None) else "fp32"
    if args.json:
        print(json.dumps({"results": results, "auto": auto, "batch_size": args.batch_size,
                          "max_seq_length": args.max_seq_length}, indent=2))
        return
    print(f"batch {args.batch_size} x {args.max_seq_length} tokens, {args.steps} steps each "
          f"(first left out); --precision auto picks {auto} here")
    print(f"{'precision':<10} {'s/step':>8} {'vs fp32':>8} {'last loss':>10} {'wall s':>8}")
    for name, row in results.items():
        print(f"{name:<10} {row['seconds_per_step']:>8.2f} {row['speedup']:>7.2f}x {row['last_loss']:>10.4f} "
              f"{row['wall_seconds']:>8.1f}")


if __name__ == "__main__":
    main()
