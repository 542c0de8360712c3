"""BEIR-format retrieval datasets: load from disk, or build from row iterables.

BEIR's on-disk layout (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``) is the lingua franca of retrieval benchmarks: MTEB and
CoIR publish the same three tables on the Hugging Face hub.  We read it
ourselves instead of depending on ``beir`` so that loading stays offline,
strict (malformed input fails loudly with ``file:line``) and cheap.

A codeseer extension is the optional ``meta.json`` (``{"task": "nl2code"}``)
telling the evaluator which kind of retrieval the dataset exercises.

Hub benchmarks (``coir:<task>``, ``mteb:<Task>``) are in ``codeseer.eval.hub``;
they go through ``from_rows`` so the conversion is testable without network.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeseer.jsonl import iter_jsonl_objects

__all__ = [
    "TASKS",
    "BeirDataset",
    "doc_text",
    "from_rows",
    "load_beir",
]

log = logging.getLogger(__name__)

#: Retrieval task kinds codeseer knows about (query side -> document side).
TASKS: tuple[str, ...] = ("nl2code", "code2code", "code2nl", "qa", "completion")
DEFAULT_TASK = "nl2code"

_QRELS_HEADER_FIRST = {"query-id", "query_id", "qid"}


@dataclass
class BeirDataset:
    """One retrieval benchmark split held in memory.

    ``corpus``: ``{doc_id: {"title": str, "text": str}}``;
    ``queries``: ``{query_id: text}`` (only queries that have qrels);
    ``qrels``: ``{query_id: {doc_id: grade}}``; ``task``: one of ``TASKS``.
    """

    name: str
    corpus: dict[str, dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    task: str = DEFAULT_TASK
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # the default repr would dump the corpus
        return (
            f"BeirDataset(name={self.name!r}, task={self.task!r}, "
            f"corpus={len(self.corpus)}, queries={len(self.queries)}, "
            f"qrels={sum(len(v) for v in self.qrels.values())})"
        )


def doc_text(doc: Mapping[str, Any] | str) -> str:
    """Text to embed for a corpus document, BEIR convention.

    ``title + " " + text`` (stripped) when the title is non-empty, else the
    text unchanged (code keeps its leading indentation).
    """
    if isinstance(doc, str):
        return doc
    title = doc.get("title") or ""
    text = doc.get("text") or ""
    if title.strip():
        return f"{title} {text}".strip()
    return text


# --------------------------------------------------------------------- helpers


def _check_task(task: Any, where: str) -> str:
    if task not in TASKS:
        raise ValueError(f"{where}: unknown task {task!r}; expected one of {TASKS}")
    return task


def _require_id(obj: Mapping[str, Any], where: str, keys=("_id",)) -> str:
    for key in keys:
        value = obj.get(key)
        if value is not None and value != "":
            return str(value)
    raise ValueError(f"{where}: missing {keys[0]!r}")


def _as_text(value: Any, where: str, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def _as_grade(value: Any, where: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: score {value!r} is not a number") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"{where}: score {value!r} is not an integer grade")
    return int(f)


def _finish(
    name: str,
    corpus: dict[str, dict],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    task: str,
    meta: dict[str, Any],
    *,
    where: str,
    strict: bool,
) -> BeirDataset:
    """Keep only queries with qrels; check qrels reference known queries."""
    missing = [qid for qid in qrels if qid not in queries]
    if missing:
        msg = (
            f"{where}: {len(missing)} qrels query id(s) not found in queries, "
            f"e.g. {missing[:3]}"
        )
        if strict:
            raise ValueError(msg)
        log.warning("%s; dropping their qrels", msg)
        for qid in missing:
            del qrels[qid]
    kept = {qid: queries[qid] for qid in qrels}
    if not kept:
        raise ValueError(f"{where}: no queries with relevance judgements")
    return BeirDataset(name=name, corpus=corpus, queries=kept, qrels=qrels, task=task, meta=meta)


# ------------------------------------------------------------------ on disk


def _load_qrels_tsv(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if line_no == 1 and cols[0].strip().lower() in _QRELS_HEADER_FIRST:
                continue  # header: query-id  corpus-id  score
            where = f"{path}:{line_no}"
            if len(cols) != 3:
                raise ValueError(
                    f"{where}: expected 3 tab-separated columns "
                    f"(query-id, corpus-id, score), got {len(cols)}"
                )
            qid, did, score = (c.strip() for c in cols)
            if not qid or not did:
                raise ValueError(f"{where}: empty query-id or corpus-id")
            qrels.setdefault(qid, {})[did] = _as_grade(score, where)
    return qrels


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR-layout directory.

    Reads ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
    (``_id``, ``text``), ``qrels/{split}.tsv`` (optional header
    ``query-id<TAB>corpus-id<TAB>score``) and optional ``meta.json``
    (``{"task": ..., "name": ...}``; task defaults to ``"nl2code"``).
    Only queries appearing in the qrels are kept.  Malformed input raises
    ``ValueError``/``FileNotFoundError`` naming ``file:line``.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset directory not found")

    meta: dict[str, Any] = {}
    meta_path = root / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{meta_path}:{e.lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path}: expected a JSON object")
    task = _check_task(meta.get("task", DEFAULT_TASK), str(meta_path))
    name = str(meta.get("name") or root.name)

    corpus: dict[str, dict] = {}
    corpus_path = root / "corpus.jsonl"
    for line_no, obj in iter_jsonl_objects(corpus_path):
        where = f"{corpus_path}:{line_no}"
        did = _require_id(obj, where)
        corpus[did] = {
            "title": _as_text(obj.get("title"), where, "title"),
            "text": _as_text(obj.get("text"), where, "text"),
        }

    queries: dict[str, str] = {}
    queries_path = root / "queries.jsonl"
    for line_no, obj in iter_jsonl_objects(queries_path):
        where = f"{queries_path}:{line_no}"
        qid = _require_id(obj, where)
        queries[qid] = _as_text(obj.get("text"), where, "text")

    qrels_path = root / "qrels" / f"{split}.tsv"
    qrels = _load_qrels_tsv(qrels_path)
    return _finish(
        name, corpus, queries, qrels, task, meta, where=str(qrels_path), strict=True
    )


# ------------------------------------------------------------------ from rows

_ID_KEYS = ("_id", "id")
_QID_KEYS = ("query-id", "query_id", "qid")
_DID_KEYS = ("corpus-id", "corpus_id", "doc_id", "pid")


def _pick(row: Mapping[str, Any], keys: tuple[str, ...], where: str) -> str:
    for key in keys:
        if key in row and row[key] is not None and row[key] != "":
            return str(row[key])
    raise ValueError(f"{where}: row has none of the columns {keys}: {sorted(row)}")


def from_rows(
    name: str,
    corpus_rows: Iterable[Mapping[str, Any]],
    query_rows: Iterable[Mapping[str, Any]],
    qrels_rows: Iterable[Mapping[str, Any]],
    task: str = DEFAULT_TASK,
    meta: Mapping[str, Any] | None = None,
) -> BeirDataset:
    """Build a ``BeirDataset`` from table rows as published on the HF hub.

    Pure function (no I/O), shared by the hub loaders.  Accepts the column
    spellings in use: ids as ``_id`` (BEIR/MTEB/CoIR) or ``id``
    (embedding-benchmark/*); qrels as ``query-id``/``corpus-id``/``score``
    (MTEB) or ``query_id``/``corpus_id``/``score`` (CoIR's ``*-qrels``
    repos); float scores (MTEB casts them) must be whole numbers.  Extra
    columns (``partition``, ``language``, ...) are ignored.  Queries without
    qrels are dropped; qrels whose query is absent are dropped with a warning.
    """
    _check_task(task, name)
    corpus: dict[str, dict] = {}
    for i, row in enumerate(corpus_rows):
        where = f"{name} corpus row {i}"
        corpus[_pick(row, _ID_KEYS, where)] = {
            "title": _as_text(row.get("title"), where, "title"),
            "text": _as_text(row.get("text"), where, "text"),
        }
    queries: dict[str, str] = {}
    for i, row in enumerate(query_rows):
        where = f"{name} queries row {i}"
        queries[_pick(row, _ID_KEYS, where)] = _as_text(row.get("text"), where, "text")
    qrels: dict[str, dict[str, int]] = {}
    for i, row in enumerate(qrels_rows):
        where = f"{name} qrels row {i}"
        qid = _pick(row, _QID_KEYS, where)
        did = _pick(row, _DID_KEYS, where)
        if "score" not in row:
            raise ValueError(f"{where}: missing 'score'")
        qrels.setdefault(qid, {})[did] = _as_grade(row["score"], where)
    return _finish(
        name, corpus, queries, qrels, task, dict(meta or {}), where=name, strict=False
    )
