"""The rows an index run writes: a chunk's row, a file's row, and the filters that select them.

Its own room because the row layout is a contract with every reader of the index (search, the
file ranker, the apps): what a chunk's id is made of, which text BM25 sees, which symbols a file
defines. Keeping it out of the run means the run moves data and this module says what it looks like.
"""

from __future__ import annotations

import hashlib

import numpy as np

from codeseer.index.chunking import Chunk
from codeseer.index.filekinds import file_kind
from codeseer.index.store import sql_in, sql_quote
from codeseer.index.walker import SourceFile
from codeseer.text.lexical import lexical_text, path_words

SYMBOL_BOOST = 3  # BM25 sees the chunk's own name 3 times: a poor man's field weighting
DEFINITION_KINDS = ("function", "method", "class")  # chunks whose symbol the file defines


def chunk_id(chunk: Chunk, digest: str, repo: str = "") -> str:
    return _chunk_id(chunk.path, chunk.start_line, chunk.end_line, digest, repo)


def _chunk_id(path: str, start: int, end: int, digest: str, repo: str) -> str:
    """The repo is part of the id: the same file in two repositories of one index are two chunks."""
    key = f"{path}\0{start}\0{end}\0{digest}"
    return hashlib.sha1((f"{repo}\0{key}" if repo else key).encode()).hexdigest()


def chunk_row(chunk: Chunk, digest: str, vector: np.ndarray, kind: str) -> dict:
    """A chunk's row, its repo still to be stamped (:func:`stamp_repos`)."""
    return {
        "chunk_id": chunk_id(chunk, digest),
        "path": chunk.path,
        "language": chunk.language,
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "symbol": chunk.symbol,
        "kind": chunk.kind,
        "content_hash": digest,
        "text": chunk.text,
        "search_text": lexical_text(*[chunk.symbol] * SYMBOL_BOOST, chunk.text),
        "vector": vector,
        "file_kind": kind,
    }


def file_row(source: SourceFile, digest: str, chunks: list[Chunk], text: str) -> dict:
    """A file's row: metadata, its kind, and the file-level evidence the file ranker reads."""
    symbols: dict[str, None] = {}
    for chunk in chunks:
        if chunk.symbol and chunk.kind in DEFINITION_KINDS:
            symbols[chunk.symbol] = None
            symbols[chunk.symbol.rsplit(".", 1)[-1]] = None
    path_text = path_words(source.rel)
    return {
        "repo": source.repo,
        "path": source.rel,
        "language": source.language,
        "size": source.size,
        "mtime_ns": source.mtime_ns,
        "file_hash": digest,
        "chunks": len(chunks),
        "file_kind": file_kind(source.rel, source.language, text),
        "symbols": list(symbols),
        "path_text": lexical_text(path_text),
        "search_text": lexical_text(path_text, text),
    }


def touched_rows(files_table, touched) -> list[dict]:
    """New rows for files whose content is unchanged (new mtime): the old rows with the new size and mtime."""
    if not touched:
        return []
    by_key = {(s.repo, s.rel): s for s, _, _ in touched}
    rows = []
    for clause in key_filters(list(by_key)):
        for row in files_table.search().where(clause).limit(None).to_arrow().to_pylist():
            source = by_key[(row["repo"], row["path"])]
            rows.append(row | {"size": source.size, "mtime_ns": source.mtime_ns, "language": source.language})
    return rows


def stamp_repos(rows: list[dict], changed) -> None:
    """Give each new chunk row its repo, and an id that includes it.

    Rows are matched to their files by content, not by position: rows that differ only in their repo
    are interchangeable, so this holds however the rows were built (and keeps row building repo-free).
    """
    owners: dict[tuple, list[str]] = {}
    for source, _digest, chunks in changed:
        for c in chunks:
            owners.setdefault((c.path, c.start_line, c.end_line, c.symbol, c.kind, c.text), []).append(source.repo)
    for row in rows:
        repo = owners[(row["path"], row["start_line"], row["end_line"], row["symbol"], row["kind"], row["text"])].pop()
        row["repo"] = repo
        row["chunk_id"] = _chunk_id(row["path"], row["start_line"], row["end_line"], row["content_hash"], repo)


def key_filters(keys: list[tuple[str, str]], size: int = 500):
    """Filters selecting the rows of these (repo, path) file keys, a few hundred paths at a time."""
    by_repo: dict[str, list[str]] = {}
    for repo, path in keys:
        by_repo.setdefault(repo, []).append(path)
    for repo, paths in sorted(by_repo.items()):
        for batch in batches(paths, size):
            yield f"repo = {sql_quote(repo)} AND {sql_in('path', batch)}"


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]
