"""Embedding throughput on CPU: PyTorch vs ONNX Runtime (fp32, dynamic int8), plus a static model.

    python bench/embed_speed.py                      # default model (all-MiniLM-L6-v2), 128 code chunks
    python bench/embed_speed.py --sample 32 --batch-sizes 1 16 64 --threads 2
    python bench/embed_speed.py --model ./mirror/jina-code-0.5b --recipe jinaai/jina-code-embeddings-0.5b
    python bench/embed_speed.py --static ./mirror/potion-code-16M --json

Texts are ~20-line chunks of codeseer's own source (real code, deterministic). For every backend and
batch size it reports texts/s, tokens/s (tokens after truncation, special tokens included), the
speed ratio against the PyTorch run at the same batch size, and the mean cosine to the PyTorch
vectors (how much the backend changes the embeddings). The static row uses ``--static`` if given,
else minishlab/potion-code-16M from the local HF cache, else a synthetic 256-d model2vec model over
MiniLM's vocabulary (same lookup cost as potion, meaningless vectors: its cosine column is blank).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402

from codeseer.models.embedder import Embedder  # noqa: E402


def code_chunks(n: int, lines: int = 20) -> list[str]:
    chunks: list[str] = []
    for path in sorted((REPO / "src" / "codeseer").rglob("*.py")):
        text = path.read_text(encoding="utf-8").splitlines()
        for start in range(0, len(text), lines):
            chunk = "\n".join(text[start : start + lines]).strip()
            if chunk:
                chunks.append(chunk)
    if not chunks:
        raise SystemExit("no source files to sample")
    while len(chunks) < n:
        chunks = chunks + chunks
    return chunks[:n]


def count_tokens(embedder: Embedder, texts: list[str]) -> int:
    enc = embedder._encoder
    if hasattr(enc, "batcher"):
        return int(sum(enc.batcher.lengths(texts)))
    if enc.__class__.__name__ == "StaticEncoder":
        if enc.uses_model2vec:
            return int(sum(len(ids) for ids in enc._m2v.tokenize(texts)))
        return int(sum(len(ids) for ids in enc._ids(texts)))
    limit = embedder.max_seq_length or 512
    return int(sum(min(len(ids), limit) for ids in embedder.tokenizer(texts)["input_ids"]))


def timed(embedder: Embedder, texts: list[str], batch_size: int, repeat: int) -> tuple[float, np.ndarray]:
    embedder._encoder.batch_size = batch_size
    embedder.batch_size = batch_size
    embedder.encode_documents(texts[: max(batch_size, 2)])  # warm-up (ONNX session, allocator, caches)
    best = float("inf")
    vectors = None
    for _ in range(repeat):
        start = time.perf_counter()
        vectors = embedder.encode_documents(texts, slab=len(texts))
        best = min(best, time.perf_counter() - start)
    return best, vectors


def synthetic_static(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))  # the tiny-model builders live with the tests
    from tiny_models import build_static

    return build_static(folder, dim=256)


def find_static(arg: str | None, tmp: Path) -> tuple[str | None, str]:
    if arg:
        return arg, arg
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download("minishlab/potion-code-16M", local_files_only=True), "minishlab/potion-code-16M"
    except Exception:
        return str(synthetic_static(tmp / "static-synthetic")), "static (synthetic 256-d, MiniLM vocab)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder or hub id (default: bundled all-MiniLM-L6-v2)")
    ap.add_argument("--recipe", default=None)
    ap.add_argument("--sample", type=int, default=128, help="number of code chunks")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--max-length", type=int, default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=1, help="best of N timed runs")
    ap.add_argument("--static", default=None, help="model2vec folder for the static row")
    ap.add_argument("--no-static", action="store_true")
    ap.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    texts = code_chunks(args.sample)
    tmp = Path(tempfile.mkdtemp(prefix="codeseer-bench-"))
    rows = []

    def load(backend: str) -> Embedder:
        kw = dict(recipe=args.recipe, max_seq_length=args.max_length)
        if backend == "torch":
            return Embedder(args.model, **kw)
        return Embedder(args.model, backend="onnx", quantize=backend == "onnx-int8", **kw)

    reference: dict[int, np.ndarray] = {}
    base_speed: dict[int, float] = {}
    for backend in args.backends:
        t0 = time.perf_counter()
        emb = load(backend)
        if backend != "torch":
            _rebuild_session(emb, args.threads)
        load_s = time.perf_counter() - t0
        tokens = count_tokens(emb, texts)
        for bs in args.batch_sizes:
            seconds, vectors = timed(emb, texts, bs, args.repeat)
            if backend == "torch":
                reference[bs], base_speed[bs] = vectors, seconds
            cos = float((vectors * reference[bs]).sum(axis=1).mean()) if bs in reference else None
            rows.append({"model": emb.name, "backend": backend, "batch": bs,
                         "texts_per_s": len(texts) / seconds, "tokens_per_s": tokens / seconds,
                         "vs_torch": (base_speed[bs] / seconds) if bs in base_speed else None,
                         "cos_vs_torch": cos, "load_s": load_s, "dim": emb.dim})
    if not args.no_static:
        folder, label = find_static(args.static, tmp)
        emb = Embedder(folder)
        tokens = count_tokens(emb, texts)
        for bs in args.batch_sizes:
            seconds, _ = timed(emb, texts, bs, args.repeat)
            rows.append({"model": label, "backend": "static", "batch": bs, "texts_per_s": len(texts) / seconds,
                         "tokens_per_s": tokens / seconds,
                         "vs_torch": (base_speed[bs] / seconds) if bs in base_speed else None,
                         "cos_vs_torch": None, "load_s": 0.0, "dim": emb.dim})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{len(texts)} code chunks, {args.threads} threads, best of {args.repeat}")
    header = f"{'model':44} {'backend':10} {'batch':>5} {'texts/s':>9} {'tokens/s':>10} {'vs torch':>9} {'cos':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['vs_torch']:.2f}x" if r["vs_torch"] else "-"
        cos = f"{r['cos_vs_torch']:.5f}" if r["cos_vs_torch"] is not None else "-"
        print(f"{r['model'][-44:]:44} {r['backend']:10} {r['batch']:5d} {r['texts_per_s']:9.1f} "
              f"{r['tokens_per_s']:10.0f} {ratio:>9} {cos:>8}")


def _rebuild_session(emb: Embedder, threads: int) -> None:
    """Give ONNX Runtime the same thread count as torch, so the comparison is fair."""
    import onnxruntime as ort

    enc = emb._encoder
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    enc.session = ort.InferenceSession(str(enc.path), options, providers=["CPUExecutionProvider"])


if __name__ == "__main__":
    main()
