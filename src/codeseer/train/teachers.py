"""Teacher vectors for ``codeseer train --loss distill``: every training text encoded once, before training.

A student sees thousands of steps but each text only a few times, so the teachers run once over the
rows (bf16 autocast where the CPU has native bf16, which halves a base-size teacher's time) and the
loss looks their vectors up by row. Several teachers form an ensemble: each one's unit vectors are
scaled by ``sqrt(w_t)`` and concatenated, so a dot product of two such vectors is the weighted mean
of the teachers' cosines. The vectors are saved beside the run (``teacher_vectors.npz``) so that
``--resume`` does not encode again.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from codeseer.errors import CodeseerError
from codeseer.models.tasks import DOCUMENT, QUERY

TEACHER_FILE = "teacher_vectors.npz"

__all__ = ["TEACHER_FILE", "column_texts", "ensemble_vectors", "load_or_encode"]


def column_texts(rows: Sequence[dict], negatives: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """The training columns as ``(role, [(task, text), ...])``: queries, positives, then each negative."""
    cols = [(QUERY, [(p["task"], p["query"]) for p in rows]), (DOCUMENT, [(p["task"], p["positive"]) for p in rows])]
    for j in range(negatives):
        cols.append((DOCUMENT, [(p["task"], p["negatives"][j]) for p in rows]))
    return cols


def _encode_column(embedder, role: str, items: list[tuple[str, str]], bar) -> np.ndarray:
    """One column with the teacher's own prefix for each row's task (none where it has no recipe);
    the Embedder's vectors are already unit length."""
    recipe = embedder.recipe
    texts = [(recipe.prefix(task, role) if recipe else "") + text for task, text in items]
    return embedder.encode_documents(texts, on_slab=None if bar is None else lambda _at, v: bar.update(len(v)))


def ensemble_vectors(per_teacher: Sequence[Sequence[np.ndarray]], weights: Sequence[float] | None = None) -> list[np.ndarray]:
    """Per column, the teachers' unit vectors scaled by ``sqrt(w_t)`` (weights summing to 1) and
    concatenated: ``a . b`` is then ``sum_t w_t cos_t(a, b)``."""
    n = len(per_teacher)
    if n == 0:
        raise ValueError("no teacher vectors")
    w = [1.0 / n] * n if weights is None else [float(x) for x in weights]
    if len(w) != n or any(x <= 0 for x in w):
        raise ValueError("one positive weight per teacher")
    total = sum(w)
    columns = len(per_teacher[0])
    return [np.concatenate([math.sqrt(w[t] / total) * per_teacher[t][c] for t in range(n)], axis=1).astype(np.float32)
            for c in range(columns)]


def load_or_encode(out_dir: Path, rows: Sequence[dict], negatives: int, teachers: Sequence[str], *,
                   base: str | None, max_seq_length: int, progress: bool = False,
                   echo: Callable[[str], None] | None = None) -> tuple[list[np.ndarray], dict]:
    """Teacher vectors for the rows (read back from ``out_dir`` when a previous start of the same run
    saved them), and a note for the report. ``base`` in ``teachers`` means the base model itself."""
    say = echo or (lambda msg: None)
    names = [base if t.strip().lower() == "base" else t for t in teachers]
    path = out_dir / TEACHER_FILE
    cols = column_texts(rows, negatives)
    texts = hashlib.sha256(json.dumps(cols).encode("utf-8")).hexdigest()  # other pairs, same count: encode again
    key = json.dumps({"teachers": [str(n) for n in names], "rows": len(rows), "negatives": negatives,
                      "max_seq_length": max_seq_length, "texts": texts})
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["key"]) == key:
                say(f"teacher vectors: reusing {path}")
                return [saved[f"col{c}"] for c in range(negatives + 2)], {"teachers": names, "reused": str(path)}

    from codeseer.models.embedder import Embedder, native_bf16

    n_texts = sum(len(items) for _role, items in cols)
    per_teacher: list[list[np.ndarray]] = []
    seconds: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            embedder = Embedder(name, backend="torch", bf16=native_bf16(), max_seq_length=max_seq_length,
                                query_prefix="", document_prefix="")
        except CodeseerError as exc:
            raise CodeseerError(f"--teacher {name}: {exc}") from None
        say(f"teacher {embedder.name}: encoding {n_texts} texts"
            f"{' (bf16)' if embedder.bf16 else ''} ...")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_texts, desc=f"teacher {embedder.name}", unit="text")
        try:
            per_teacher.append([_encode_column(embedder, role, items, bar) for role, items in cols])
        finally:
            if bar is not None:
                bar.close()
        seconds[embedder.name] = round(time.perf_counter() - t0, 2)
        del embedder
    vectors = ensemble_vectors(per_teacher)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (TEACHER_FILE + ".tmp.npz")
    np.savez(tmp, key=np.array(key), **{f"col{c}": v for c, v in enumerate(vectors)})
    tmp.replace(path)
    return vectors, {"teachers": names, "seconds": seconds, "dim": int(vectors[0].shape[1])}
