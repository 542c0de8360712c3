"""File-level retrieval evaluation on a real repository: "which files does this change touch?".

Queries come as JSON lines ``{"_id": ..., "text": "bug report or change description",
"files": ["path/rel.py", ...]}``. The repository is indexed with the normal indexer and every
query goes through the normal :class:`~codeseer.search.searcher.Searcher`; chunk hits are turned
into a file ranking (a file scores as its best chunk), and scored with the BEIR metrics at file
level. A baseline that ranks *whole files* by BM25 (same tokenizer as the index) runs alongside:
it tells whether chunking and the dense model help over the simplest thing that could work.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from codeseer.eval.metrics import evaluate
from codeseer.jsonl import iter_jsonl_objects
from codeseer.search.lexical import FTS_COLUMN, fts_config, lexical_query, lexical_text

__all__ = [
    "BASELINE_MODE",
    "REPO_K_VALUES",
    "FileBM25",
    "ModeResult",
    "RepoEvalResult",
    "RepoQuery",
    "build_qrels",
    "evaluate_repo",
    "file_ranking",
    "load_repo_queries",
    "normalize_path",
    "rank_scores",
]

BASELINE_MODE = "bm25-files"
REPO_K_VALUES: tuple[int, ...] = (1, 5, 10)


@dataclass(frozen=True)
class RepoQuery:
    qid: str
    text: str
    files: tuple[str, ...]


def normalize_path(path: str) -> str:
    """``./src\\\\a.py`` -> ``src/a.py``: the index stores posix paths relative to the root."""
    cleaned = path.strip().replace("\\", "/")
    parts = [p for p in PurePosixPath(cleaned).parts if p not in (".", "")]
    return "/".join(parts)


def load_repo_queries(path: str | Path) -> list[RepoQuery]:
    """Read QUERIES.jsonl; any malformed line raises ``ValueError`` naming ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: queries file not found")
    queries: list[RepoQuery] = []
    seen: set[str] = set()
    for line_no, obj in iter_jsonl_objects(path):
        where = f"{path}:{line_no}"
        qid = obj.get("_id")
        if qid is None or qid == "" or isinstance(qid, (dict, list, bool)):
            raise ValueError(f"{where}: missing '_id' (a string or number)")
        qid = str(qid)
        if qid in seen:
            raise ValueError(f"{where}: duplicate _id {qid!r}")
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: 'text' must be a non-empty string")
        files = obj.get("files")
        if not isinstance(files, list) or not files:
            raise ValueError(f"{where}: 'files' must be a non-empty list of paths relative to the repository")
        if not all(isinstance(f, str) and normalize_path(f) for f in files):
            raise ValueError(f"{where}: every entry of 'files' must be a non-empty path string")
        seen.add(qid)
        queries.append(RepoQuery(qid, text, tuple(dict.fromkeys(normalize_path(f) for f in files))))
    if not queries:
        raise ValueError(f"{path}: no queries")
    return queries


def build_qrels(
    queries: Sequence[RepoQuery], known_files: Iterable[str]
) -> tuple[dict[str, dict[str, int]], list[tuple[str, str]]]:
    """qrels (every listed file has grade 1) restricted to files the repository has.

    Returns ``(qrels, missing)`` with ``missing`` the ``(query id, path)`` pairs left out; a query
    none of whose files exist is left out entirely.
    """
    known = set(known_files)
    qrels: dict[str, dict[str, int]] = {}
    missing: list[tuple[str, str]] = []
    for q in queries:
        present = {f: 1 for f in q.files if f in known}
        missing += [(q.qid, f) for f in q.files if f not in known]
        if present:
            qrels[q.qid] = present
    return qrels, missing


def file_ranking(hits: Iterable[Any]) -> list[tuple[str, float]]:
    """Chunk hits (anything with ``.path`` and ``.score``, best first) -> files, best first.

    A file scores as its best chunk; files with equal scores keep the order in which they were
    first seen in ``hits``.
    """
    best: dict[str, float] = {}
    for hit in hits:
        score = float(hit.score)
        if hit.path not in best or score > best[hit.path]:
            best[hit.path] = score
    # sorted() is stable and dict order is first-seen order
    return sorted(best.items(), key=lambda item: -item[1])


def rank_scores(paths: Sequence[str]) -> dict[str, float]:
    """Scores that make :func:`evaluate` rank ``paths`` exactly in the given order.

    trec_eval breaks score ties by document id, and compares scores as float32; strictly
    decreasing small integers are immune to both.
    """
    n = len(paths)
    return {p: float(n - i) for i, p in enumerate(paths)}


class FileBM25:
    """A throwaway LanceDB BM25 index over whole-file texts, with the repository index's tokenizer."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        import lancedb
        import pyarrow as pa

        self._tmp = tempfile.TemporaryDirectory(prefix="codeseer-files-bm25-")
        self.paths = list(texts)
        db = lancedb.connect(self._tmp.name)
        self.table = db.create_table(
            "files",
            pa.table({"path": self.paths, FTS_COLUMN: [lexical_text(texts[p]) for p in self.paths]}),
        )
        if self.paths:
            self.table.create_index(FTS_COLUMN, config=fts_config())

    @classmethod
    def from_repository(cls, root: Path, paths: Iterable[str]) -> "FileBM25":
        texts: dict[str, str] = {}
        for rel in paths:
            try:
                texts[rel] = (root / rel).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # changed or vanished since indexing: not in the baseline either
        return cls(texts)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        text = lexical_query(query)
        if not self.paths or not text.strip():
            return []
        rows = (
            self.table.search(text, query_type="fts", fts_columns=FTS_COLUMN)
            .select(["path", "_score"]).limit(k).to_list()
        )
        return [(r["path"], float(r["_score"])) for r in rows]

    def close(self) -> None:
        self._tmp.cleanup()


@dataclass
class ModeResult:
    mode: str
    model: str | None
    metrics: dict[str, float]
    run: dict[str, dict[str, float]]  # query id -> {path: rank score}
    search_seconds: float

    @property
    def queries_per_second(self) -> float | None:
        return len(self.run) / self.search_seconds if self.search_seconds > 0 else None


@dataclass
class RepoEvalResult:
    root: str
    index_dir: str
    model: str
    n_queries: int  # evaluated (with at least one file present in the repository)
    n_files: int  # files in the index
    index_seconds: float
    missing: list[tuple[str, str]] = field(default_factory=list)
    dropped_queries: list[str] = field(default_factory=list)
    results: list[ModeResult] = field(default_factory=list)


def _score_runs(qrels, run) -> dict[str, float]:
    return evaluate(qrels, run, k_values=REPO_K_VALUES)


def evaluate_repo(
    root: str | Path,
    queries: Sequence[RepoQuery],
    *,
    modes: Sequence[str] = ("hybrid",),
    model: str | None = None,
    index_dir: str | Path | None = None,
    k: int = 100,
    baseline: bool = True,
    progress: bool = False,
    on_indexed: Callable[[Any], None] | None = None,
) -> RepoEvalResult:
    """Index ``root`` (incrementally), search every query in every mode, score files, and compare
    with whole-file BM25 (``baseline``)."""
    from codeseer.index.indexer import index_repository
    from codeseer.index.store import IndexStore, column_values
    from codeseer.search.searcher import Searcher

    report = index_repository(Path(root), index_dir=Path(index_dir) if index_dir else None, model=model,
                              progress=progress)
    if on_indexed is not None:
        on_indexed(report)
    searcher = Searcher(IndexStore(Path(report.index_dir)))
    indexed = column_values(searcher.files, "path")
    qrels, missing = build_qrels(queries, indexed)
    dropped = [q.qid for q in queries if q.qid not in qrels]
    result = RepoEvalResult(
        root=report.root, index_dir=report.index_dir, model=report.model, n_queries=len(qrels),
        n_files=len(indexed), index_seconds=report.seconds, missing=missing, dropped_queries=dropped,
    )
    if not qrels:
        return result
    todo = [q for q in queries if q.qid in qrels]
    if any(mode != "lexical" for mode in modes):
        # load and warm up the model now, so its start-up is not charged to the first mode's queries
        searcher.embedder.encode_queries(["warm up"])

    for mode in modes:
        run: dict[str, dict[str, float]] = {}
        start = time.perf_counter()
        for q in todo:
            ranked = file_ranking(searcher.search(q.text, k=k, mode=mode))
            run[q.qid] = rank_scores([path for path, _ in ranked])
        seconds = time.perf_counter() - start
        result.results.append(ModeResult(mode, report.model if mode != "lexical" else None,
                                         _score_runs(qrels, run), run, seconds))

    if baseline:
        bm25 = FileBM25.from_repository(Path(report.root), indexed)
        try:
            run = {}
            start = time.perf_counter()
            for q in todo:
                run[q.qid] = rank_scores([path for path, _ in bm25.search(q.text, k)])
            seconds = time.perf_counter() - start
        finally:
            bm25.close()
        result.results.append(ModeResult(BASELINE_MODE, None, _score_runs(qrels, run), run, seconds))
    return result
