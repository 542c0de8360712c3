"""File-level retrieval evaluation on real repositories: "which files does this change touch?".

Queries come as JSON lines ``{"_id": ..., "text": "bug report or change description",
"files": ["path/rel.py", ...]}``, for one repository (``REPO_DIR QUERIES.jsonl``) or for a
benchmark of several (a folder of ``NAME/queries.jsonl`` + ``NAME/snapshot.tar.gz``, the layout
``codeseer data repo-tasks`` writes and ``repos-dev`` uses). Each repository is indexed with the
normal indexer; the ``locate`` mode ranks files with the file ranker of ``codeseer locate``
(:mod:`codeseer.search.files`), the chunk modes rank a file by its best chunk. Only files of the
ranked kinds (source by default) are candidates for these.

The baseline, ``bm25-files``, is the simplest thing that works: BM25 over each file's path and
whole text (identifier parts added, the index's tokenizer) among every file in the languages of
the answers, tests included. Scores are per repository and pooled over all queries, and every run
keeps per-query scores for paired significance tests against the baseline.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from codeseer.paths import cache_dir
from codeseer.data.repo_tasks import QUERIES_FILE, SNAPSHOT_FILE
from codeseer.eval.metrics import evaluate_keeping_per_query
from codeseer.jsonl import iter_jsonl_objects
from codeseer.text.lexical import FTS_COLUMN, fts_config, lexical_query, lexical_text

__all__ = [
    "BASELINE_MODE",
    "LOCATE_MODE",
    "REPO_K_VALUES",
    "REPO_MODES",
    "FileBM25",
    "ModeResult",
    "PreparedRepo",
    "RepoEvalResult",
    "RepoQuery",
    "RepoTask",
    "build_qrels",
    "evaluate_repos",
    "file_ranking",
    "fit_on",
    "load_repo_queries",
    "load_tasks",
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


# ----------------------------------------------------------------------------- benchmarks of repositories


LOCATE_MODE = "locate"
CHUNK_MODES = ("hybrid", "dense", "lexical")
REPO_MODES = (LOCATE_MODE, *CHUNK_MODES)
KEEP_PER_QUERY = ("mrr@10", "recall@1", "recall@5", "recall@10")


@dataclass(frozen=True)
class RepoTask:
    """One repository and its queries: a checkout, or a snapshot archive extracted on first use."""

    name: str
    queries: tuple[RepoQuery, ...]
    root: Path | None = None  # a folder to index as it is
    snapshot: Path | None = None  # else a .tar.gz of the repository's files


def load_tasks(path: str | Path, queries: str | Path | None = None) -> list[RepoTask]:
    """``REPO_DIR QUERIES.jsonl`` (one repository), or a benchmark folder: ``queries.jsonl`` beside
    ``snapshot.tar.gz`` (or beside the repository's own files), or sub-folders that each hold one."""
    path = Path(path)
    if queries is not None:
        if not path.is_dir():
            raise ValueError(f"{path}: not a folder")
        return [RepoTask(path.resolve().name, tuple(load_repo_queries(queries)), root=path)]
    if not path.is_dir():
        raise ValueError(f"{path}: not a folder (give REPO_DIR QUERIES.jsonl, or a benchmark folder)")
    folders = [path] if (path / QUERIES_FILE).is_file() else sorted(
        d for d in path.iterdir() if d.is_dir() and (d / QUERIES_FILE).is_file())
    if not folders:
        raise ValueError(f"{path}: no {QUERIES_FILE} here or in its sub-folders; give REPO_DIR QUERIES.jsonl for "
                         "a repository of your own")
    tasks = []
    for folder in folders:
        loaded = tuple(load_repo_queries(folder / QUERIES_FILE))
        snapshot = folder / SNAPSHOT_FILE
        if snapshot.is_file():
            tasks.append(RepoTask(folder.resolve().name, loaded, snapshot=snapshot))
        else:
            tasks.append(RepoTask(folder.resolve().name, loaded, root=folder))
    return tasks


def work_root() -> Path:
    """Where snapshots are unpacked and indexed: ``$CODESEER_CACHE/repo-tasks``."""
    base = cache_dir()
    return base / "repo-tasks"


def unpack_snapshot(task: RepoTask, work_dir: Path | None = None) -> Path:
    """The folder holding the task's repository: its snapshot unpacked once (keyed by the archive's hash)."""
    if task.root is not None:
        return task.root
    assert task.snapshot is not None
    digest = hashlib.sha1(task.snapshot.read_bytes()).hexdigest()[:12]
    target = (work_dir or work_root()) / f"{task.name}-{digest}"
    done = target / ".codeseer-unpacked"
    if done.is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with tarfile.open(task.snapshot, "r:gz") as archive:
            archive.extractall(partial, filter="data")  # no absolute paths, no links out, no devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(f"{task.snapshot}: cannot unpack ({exc})") from None
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    done.write_text(str(task.snapshot) + "\n", encoding="utf-8")
    return target


@dataclass
class ModeResult:
    mode: str
    model: str | None
    metrics: dict[str, float]
    per_query: dict[str, list]
    run: dict[str, dict[str, float]]  # query id -> {path: rank score}
    search_seconds: float

    @property
    def queries_per_second(self) -> float | None:
        return len(self.run) / self.search_seconds if self.search_seconds > 0 else None


@dataclass
class PreparedRepo:
    """A task indexed, with its qrels and each query's file-ranker candidates (features computed once)."""

    task: RepoTask
    root: str
    index_dir: str
    model: str
    n_files: int
    index_seconds: float
    qrels: dict[str, dict[str, int]]
    missing: list[tuple[str, str]]
    dropped_queries: list[str]
    candidates: dict[str, Any] = field(default_factory=dict)  # qid -> FileCandidates
    feature_seconds: float = 0.0
    results: list[ModeResult] = field(default_factory=list)


@dataclass
class RepoEvalResult:
    repos: list[PreparedRepo]
    pooled: list[ModeResult]
    weights: dict[str, Any]  # label -> RankerWeights used for LOCATE_MODE ("shipped", "file", or per repo)


def _score_run(qrels, run) -> tuple[dict[str, float], dict[str, list]]:
    return evaluate_keeping_per_query(qrels, run, keep=KEEP_PER_QUERY, k_values=REPO_K_VALUES)


def _baseline_files(searcher, paths: list[str], queries) -> list[str]:
    """Whole-file BM25 baseline's files: every indexed file (``paths``, in table order) in the languages
    of the answers (tests included)."""
    from codeseer.index.store import column_values

    languages = column_values(searcher.files, "language")
    language_of = dict(zip(paths, languages))
    wanted = {language_of[f] for q in queries for f in q.files if f in language_of}
    return [p for p, lang in zip(paths, languages) if lang in wanted]


def prepare_repo(
    task: RepoTask,
    *,
    model: str | None = None,
    index_dir: str | Path | None = None,
    work_dir: Path | None = None,
    kinds: Sequence[str] = ("source",),
    modes: Sequence[str] = (LOCATE_MODE,),
    k: int = 100,
    baseline: bool = True,
    progress: bool = False,
    on_indexed: Callable[[Any], None] | None = None,
) -> PreparedRepo:
    """Index the task's repository (incrementally), then run every chunk mode and the baseline and
    compute the file ranker's candidates of every query (scored later, once weights are chosen)."""
    from codeseer.index.indexer import index_repository
    from codeseer.index.store import IndexStore, column_values
    from codeseer.search.searcher import Searcher

    root = unpack_snapshot(task, work_dir)
    report = index_repository(root, index_dir=Path(index_dir) if index_dir else None, model=model, progress=progress)
    if on_indexed is not None:
        on_indexed(report)
    searcher = Searcher(IndexStore(Path(report.index_dir)))
    indexed = column_values(searcher.files, "path")
    qrels, missing = build_qrels(task.queries, indexed)
    prepared = PreparedRepo(task, report.root, report.index_dir, report.model, len(indexed), report.seconds, qrels,
                            missing, [q.qid for q in task.queries if q.qid not in qrels])
    todo = [q for q in task.queries if q.qid in qrels]
    if not todo:
        return prepared
    if any(mode != "lexical" for mode in modes):
        # load and warm up the model now, so its start-up is not charged to the first mode's queries
        searcher.embedder.encode_queries(["warm up"])
    vectors = {}
    for mode in modes:
        run: dict[str, dict[str, float]] = {}
        start = time.perf_counter()
        for q in todo:
            if mode == LOCATE_MODE:
                vectors.setdefault(q.qid, searcher.embedder.encode_queries([q.text])[0])
                prepared.candidates[q.qid] = searcher.file_ranker.candidates(q.text, kinds=list(kinds),
                                                                             vector=vectors[q.qid])
            else:
                hits = searcher.search(q.text, k=k, mode=mode, file_kinds=list(kinds))
                run[q.qid] = rank_scores([path for path, _ in file_ranking(hits)])
        seconds = time.perf_counter() - start
        if mode == LOCATE_MODE:
            prepared.feature_seconds = seconds
            continue
        metrics, per_query = _score_run(qrels, run)
        prepared.results.append(ModeResult(mode, report.model if mode != "lexical" else None, metrics, per_query,
                                           run, seconds))
    if baseline:
        bm25 = FileBM25.from_repository(Path(report.root), _baseline_files(searcher, indexed, todo))
        try:
            run = {}
            start = time.perf_counter()
            for q in todo:
                run[q.qid] = rank_scores([path for path, _ in bm25.search(q.text, max(k, len(bm25.paths)))])
            seconds = time.perf_counter() - start
        finally:
            bm25.close()
        metrics, per_query = _score_run(qrels, run)
        prepared.results.append(ModeResult(BASELINE_MODE, None, metrics, per_query, run, seconds))
    return prepared


def _samples(prepared: PreparedRepo) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features, relevance) of each query: what the weights are fitted on."""
    out = []
    for qid, found in prepared.candidates.items():
        relevant = prepared.qrels[qid]
        out.append((found.features, np.array([float(path in relevant) for _, path in found.keys])))
    return out


def fit_on(repos: Sequence[PreparedRepo], note: str = ""):
    """Weights fitted on these repositories' queries (:func:`codeseer.eval.fit_ranker.fit_weights`)."""
    from codeseer.eval.fit_ranker import fit_weights
    from codeseer.search.files import FEATURES, RankerWeights

    w = fit_weights([s for p in repos for s in _samples(p)])
    names = ", ".join(p.task.name for p in repos)
    return RankerWeights(dict(zip(FEATURES, (float(x) for x in w))), fitted_on=names, note=note)


def score_locate(prepared: PreparedRepo, weights, label: str = LOCATE_MODE) -> ModeResult:
    """The file ranker's run of one repository with ``weights``."""
    run = {}
    for qid, found in prepared.candidates.items():
        order = found.order(weights)
        run[qid] = rank_scores([found.keys[i][1] for i in order])
    metrics, per_query = _score_run(prepared.qrels, run)
    return ModeResult(label, prepared.model, metrics, per_query, run, prepared.feature_seconds)


def pool(repos: Sequence[PreparedRepo]) -> list[ModeResult]:
    """Every mode over the queries of all repositories together (query ids prefixed by the repo)."""
    modes: dict[str, list[tuple[PreparedRepo, ModeResult]]] = {}
    for p in repos:
        for r in p.results:
            modes.setdefault(r.mode, []).append((p, r))
    pooled = []
    for mode, runs in modes.items():
        if len(runs) != len(repos):
            continue
        qrels = {f"{p.task.name}/{q}": rel for p, _ in runs for q, rel in p.qrels.items()}
        run = {f"{p.task.name}/{q}": ranking for p, r in runs for q, ranking in r.run.items()}
        metrics, per_query = _score_run(qrels, run)
        seconds = sum(r.search_seconds for _, r in runs)
        pooled.append(ModeResult(mode, runs[0][1].model, metrics, per_query, run, seconds))
    return pooled


def evaluate_repos(
    tasks: Sequence[RepoTask],
    *,
    modes: Sequence[str] = (LOCATE_MODE,),
    weights=None,
    loro: bool = False,
    on_prepared: Callable[[PreparedRepo], None] | None = None,
    **prepare_kwargs,
) -> RepoEvalResult:
    """Prepare every task, score the file ranker (shipped ``weights``, or leave-one-repo-out fits
    with ``loro``) and pool every mode over all queries."""
    from codeseer.search.files import load_weights

    if loro and len(tasks) < 2:
        raise ValueError("--loro needs a benchmark of at least two repositories (each is scored with weights "
                         "fitted on the others)")
    prepared = []
    for task in tasks:
        p = prepare_repo(task, modes=modes, **prepare_kwargs)
        prepared.append(p)
        if on_prepared is not None:
            on_prepared(p)
    used: dict[str, Any] = {}
    if LOCATE_MODE in modes:
        shipped = weights or load_weights()
        for p in prepared:
            if not p.qrels:
                continue
            if loro:
                others = [o for o in prepared if o is not p and o.qrels]
                w = fit_on(others, note=f"leave-one-repo-out: {p.task.name} held out")
                used[p.task.name] = w
            else:
                w = used.setdefault("weights", shipped)
            p.results.insert(0, score_locate(p, w))
    return RepoEvalResult(prepared, pool([p for p in prepared if p.qrels]), used)
