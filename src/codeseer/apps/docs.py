"""Code -> text: the documentation that describes a piece of code, and docstrings that no longer
describe their function (``stale-docs``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from codeseer.index.indexer import embed_text
from codeseer.index.store import read_rows, sql_quote
from codeseer.models.pooling import l2_normalize
from codeseer.models.tasks import TASK_DOCS
from codeseer.search.records import (
    DEFINITION_KINDS,
    DOC_KIND,
    ChunkRef,
    Record,
)
from codeseer.text.docstrings import split_doc
from codeseer.errors import CodeseerError

DOCSTRING_POOL = 20
MIN_DOC_WORDS = 3
MIN_FUNCTIONS_FOR_STATS = 5


@dataclass
class DocHit(Record):
    path: str
    start_line: int
    end_line: int
    title: str  # section heading path, or the documented symbol
    kind: str  # "section" or "docstring"
    language: str
    score: float
    text: str
    own: bool = False  # the query code's own docstring (or its class's)
    repo: str | None = None  # set only in an index of several repositories


@dataclass
class DocsResult:
    query: dict
    task: str
    hits: list[DocHit] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "task": self.task, "hits": [h.to_dict() for h in self.hits]}


def _query_vector(searcher, chunk: ChunkRef, task: str) -> np.ndarray:
    if chunk.vector is not None and searcher.stored_vectors_are_queries(task):
        return chunk.vector
    return searcher.query_vector(embed_text(chunk.symbol, chunk.text), task)


def docs_for(
    searcher,
    path: str,
    line: int,
    *,
    k: int = 5,
    include_docstrings: bool = True,
    docstring_pool: int = DOCSTRING_POOL,
    task: str = TASK_DOCS,
    repo: str | None = None,
) -> DocsResult:
    """Documentation sections (markdown/rst) and docstrings that describe the code at ``path:line`` (of ``repo``)."""
    if k < 1:
        raise CodeseerError("k must be at least 1")
    chunk = searcher.chunk_at(path, line, with_vector=True, repo=repo)
    vector = _query_vector(searcher, chunk, task)
    hits: list[DocHit] = []
    for row in searcher.nearest(vector, f"kind = '{DOC_KIND}'", k, exclude={chunk.chunk_id}):
        hits.append(DocHit(row["path"], int(row["start_line"]), int(row["end_line"]), row["symbol"] or "",
                           "section", row["language"], row["score"], row["text"], repo=row.get("repo")))
    if include_docstrings:
        hits += _docstring_hits(searcher, chunk, vector, docstring_pool, task)
    hits.sort(key=lambda h: (-h.score, h.path, h.start_line))
    return DocsResult(query=chunk.to_dict(), task=task, hits=hits[:k])


def _docstring_hits(searcher, chunk: ChunkRef, vector: np.ndarray, pool: int, task: str) -> list[DocHit]:
    kinds = ", ".join(f"'{k}'" for k in (*DEFINITION_KINDS, "class"))
    rows = searcher.nearest(vector, f"kind IN ({kinds})", pool)
    own_ids = {chunk.chunk_id}
    if chunk.kind in ("function", "method", "class"):
        rows = [r for r in rows if r["chunk_id"] != chunk.chunk_id]
        rows.insert(0, {**chunk.to_dict(), "chunk_id": chunk.chunk_id})
    if "." in chunk.symbol:  # the class a method belongs to documents it too
        owner = chunk.symbol.rsplit(".", 1)[0]
        same_repo = f" AND repo = {sql_quote(chunk.repo)}" if chunk.repo else ""
        for row in read_rows(searcher.chunks, searcher.row_columns,
                             f"path = {sql_quote(chunk.path)} AND symbol = {sql_quote(owner)} AND kind = 'class'{same_repo}"):
            own_ids.add(row["chunk_id"])
            if all(r["chunk_id"] != row["chunk_id"] for r in rows):
                rows.append(row)
    found = []
    for row in rows:
        doc = split_doc(row["text"], row["language"]).doc
        if len(doc.split()) >= 2:
            found.append((row, doc))
    if not found:
        return []
    doc_vectors = searcher.document_vectors([doc for _, doc in found], task)
    scores = doc_vectors @ np.asarray(vector, dtype=np.float32)
    return [
        DocHit(row["path"], int(row["start_line"]), int(row["end_line"]), row["symbol"] or "", "docstring",
               row["language"], round(float(score), 6), doc, own=row["chunk_id"] in own_ids, repo=row.get("repo"))
        for (row, doc), score in zip(found, scores)
    ]


# --------------------------------------------------------------------------- stale docstrings


@dataclass
class StaleDoc(Record):
    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    similarity: float
    z: float
    doc: str


@dataclass
class StaleDocsResult:
    task: str
    documented: int  # functions with a docstring that were scored
    mean: float
    std: float
    percentile: float
    z_threshold: float
    cutoff: float  # similarity of the percentile
    seconds: float
    flagged: list[StaleDoc] = field(default_factory=list)
    lowest: list[StaleDoc] = field(default_factory=list)  # the lowest scores, flagged or not

    def to_dict(self) -> dict:
        return {"task": self.task, "documented": self.documented, "mean": self.mean, "std": self.std,
                "percentile": self.percentile, "z_threshold": self.z_threshold, "cutoff": self.cutoff,
                "seconds": round(self.seconds, 3), "flagged": [s.to_dict() for s in self.flagged],
                "lowest": [s.to_dict() for s in self.lowest]}


def stale_docs(
    searcher,
    *,
    percentile: float = 5.0,
    z_threshold: float = -1.5,
    min_doc_words: int = MIN_DOC_WORDS,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    lowest: int = 20,
    task: str = TASK_DOCS,
) -> StaleDocsResult:
    """Functions whose docstring is far less similar to their body than is usual in this repository.

    Each documented function's body (code, docstring removed) is embedded as a ``code2nl`` query and
    its docstring as a document; a function is flagged when its cosine is below the repository's
    ``percentile``-th percentile *and* its z-score is at most ``z_threshold``.
    """
    started = time.perf_counter()
    if not 0 < percentile < 100:
        raise CodeseerError(f"percentile must be between 0 and 100, got {percentile}")
    where = searcher.where(languages, path_glob, kinds=DEFINITION_KINDS)
    rows = [] if where is False else read_rows(
        searcher.chunks, ["path", "language", "start_line", "end_line", "symbol", "text"], where or None)
    items = []
    for row in rows:
        split = split_doc(row["text"], row["language"])
        if len(split.doc.split()) < min_doc_words or not split.body.strip():
            continue
        items.append((row, split))
    if not items:
        return StaleDocsResult(task, 0, 0.0, 0.0, percentile, z_threshold, 0.0, time.perf_counter() - started)
    items.sort(key=lambda item: (item[0]["path"], int(item[0]["start_line"])))
    bodies = _encode_bodies(searcher, [embed_text(r["symbol"] or "", s.body) for r, s in items], task)
    docs = searcher.document_vectors([s.doc for _, s in items], task)
    sims = np.sum(bodies * docs, axis=1)
    mean, std = float(sims.mean()), float(sims.std())
    z = (sims - mean) / std if std > 1e-9 else np.zeros_like(sims)
    cutoff = float(np.percentile(sims, percentile))
    entries = [
        StaleDoc(r["path"], int(r["start_line"]), int(r["end_line"]), r["symbol"] or "", r["language"],
                 round(float(s), 4), round(float(zz), 3), split.doc)
        for (r, split), s, zz in zip(items, sims, z)
    ]
    order = np.argsort(sims, kind="stable")
    enough = len(items) >= MIN_FUNCTIONS_FOR_STATS
    flagged = [entries[i] for i in order if enough and sims[i] <= cutoff and z[i] <= z_threshold]
    return StaleDocsResult(
        task=task, documented=len(items), mean=round(mean, 4), std=round(std, 4), percentile=percentile,
        z_threshold=z_threshold, cutoff=round(cutoff, 4), seconds=time.perf_counter() - started,
        flagged=flagged, lowest=[entries[i] for i in order[:lowest]],
    )


def _encode_bodies(searcher, texts: list[str], task: str) -> np.ndarray:
    embedder = searcher.embedder_for(task)
    out = []
    for start in range(0, len(texts), 256):
        out.append(embedder.encode_queries(texts[start : start + 256]))
    return l2_normalize(np.concatenate(out))


def render_stale_markdown(result: StaleDocsResult) -> str:
    lines = [
        "# Docstrings that may be stale",
        "",
        f"{result.documented} documented functions scored (docstring vs body cosine, task {result.task}): "
        f"mean {result.mean:.3f}, std {result.std:.3f}; flagged below the {result.percentile:g}th percentile "
        f"({result.cutoff:.3f}) with z <= {result.z_threshold:g}.",
        "",
    ]
    if result.documented < MIN_FUNCTIONS_FOR_STATS:
        lines += [f"Too few documented functions ({result.documented}) for statistics; nothing flagged.", ""]
    if result.flagged:
        lines += ["| location | symbol | similarity | z | docstring |", "|---|---|---|---|---|"]
        for s in result.flagged:
            doc = s.doc if len(s.doc) <= 120 else s.doc[:117] + "..."
            doc = doc.replace("|", "\\|")
            lines.append(f"| `{s.location}` | `{s.symbol}` | {s.similarity:.3f} | {s.z:.2f} | {doc} |")
    elif result.documented >= MIN_FUNCTIONS_FOR_STATS:
        lines.append("No stale docstrings found.")
    return "\n".join(lines).rstrip() + "\n"
