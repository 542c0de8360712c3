"""Shared plumbing for the retrieval applications: opening an index, resolving ``PATH:LINE``
inside the indexed root, reading chunk rows and vectors, and encoding queries for a task.

In an index of several repositories a path names its repo first: ``REPO/PATH`` (``REPO/PATH:LINE``),
the same form hits are shown in; the CLI also takes an absolute path or one relative to the current
folder that lies inside one of the roots."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from codeseer.errors import CodeseerError

# Kinds the chunker emits (see codeseer.index.chunker.Chunk).
DEFINITION_KINDS = ("function", "method")
CODE_KINDS = ("function", "method", "class", "module", "window")
DOC_KIND = "section"
DOC_LANGUAGES = ("markdown", "rst")
CHUNK_COLUMNS = ["chunk_id", "path", "language", "start_line", "end_line", "symbol", "kind", "text"]

# Task names understood by codeseer.models.tasks (query side / document side prefixes).
TASK_SEARCH = "nl2code"
TASK_SIMILAR = "code2code"
TASK_DOCS = "code2nl"


class PathOutsideRoot(CodeseerError):
    """A path that is absolute, climbs out with ``..`` or leads out of the root through a symlink."""


@dataclass
class ChunkRef:
    """One indexed chunk (the query side of ``similar`` and ``docs``)."""

    chunk_id: str
    path: str
    language: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    text: str
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    repo: str | None = None  # set only in an index of several repositories

    @property
    def location(self) -> str:
        shown = f"{self.repo}/{self.path}" if self.repo else self.path
        return f"{shown}:{self.start_line}-{self.end_line}"

    @property
    def lines(self) -> int:
        return self.end_line - self.start_line + 1

    def to_dict(self) -> dict:
        return {
            "path": self.path, "start_line": self.start_line, "end_line": self.end_line,
            "symbol": self.symbol, "language": self.language, "kind": self.kind, "text": self.text,
        } | ({"repo": self.repo} if self.repo else {})

    @classmethod
    def from_row(cls, row: dict, searcher=None) -> "ChunkRef":
        vector = row.get("vector")
        if vector is not None:
            vector = decode_vectors(searcher, np.asarray(vector)[None, :])[0]
        return cls(
            chunk_id=row["chunk_id"], path=row["path"], language=row["language"],
            start_line=int(row["start_line"]), end_line=int(row["end_line"]), symbol=row["symbol"] or "",
            kind=row["kind"], text=row["text"], vector=vector, repo=row.get("repo"),
        )


def chunk_columns(searcher, columns: list[str] | None = None) -> list[str]:
    """Columns to read for chunk rows: ``repo`` too when the index holds several repositories."""
    columns = list(columns or CHUNK_COLUMNS)
    if getattr(searcher, "multi", False) and getattr(searcher, "has_repo", False) and "repo" not in columns:
        columns.append("repo")
    chunks = getattr(searcher, "chunks", None)
    if chunks is not None and "file_kind" in chunks.schema.names and "file_kind" not in columns:
        columns.append("file_kind")
    return columns


# --------------------------------------------------------------------------- opening


def open_store(index_dir: Path | str | None = None, *, cwd: Path | None = None):
    from codeseer.index.store import IndexStore

    if index_dir:
        return IndexStore.open_existing(Path(index_dir).expanduser())
    return IndexStore.find(cwd or Path.cwd())


def open_searcher(index_dir: Path | str | None = None, *, cwd: Path | None = None, model: str | None = None):
    from codeseer.search.searcher import Searcher

    return Searcher(open_store(index_dir, cwd=cwd), model=model)


# --------------------------------------------------------------------------- paths


def parse_location(spec: str) -> tuple[str, int]:
    """``"src/app.py:42"`` -> ``("src/app.py", 42)``."""
    spec = (spec or "").strip()
    path, sep, line = spec.rpartition(":")
    if not sep or not path or not line.strip().isdigit():
        raise CodeseerError(f"expected PATH:LINE (e.g. src/app.py:42), got {spec!r}")
    number = int(line)
    if number < 1:
        raise CodeseerError(f"line numbers start at 1, got {number} in {spec!r}")
    return path, number


def repo_path(root: Path, path: str, *, cwd: Path | None = None, strict: bool = False) -> str:
    """The root-relative POSIX form of ``path``; never a path that leaves ``root``.

    ``strict`` (network front-ends): ``path`` must be relative to the root, without ``..``, and must
    not lead out of the root through a symlink. Otherwise (the CLI) an absolute path inside the root
    or a path relative to ``cwd`` is accepted too.
    """
    raw = (path or "").strip()
    if not raw:
        raise CodeseerError("empty path")
    if "\x00" in raw:
        raise PathOutsideRoot("path contains a NUL byte")
    root = Path(root)
    root_real = Path(os.path.realpath(root))
    candidate = Path(raw).expanduser() if not strict else Path(raw)
    if strict:
        if candidate.is_absolute() or raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
            raise PathOutsideRoot(f"path must be relative to the indexed root, not absolute: {raw}")
        if ".." in PurePosixPath(raw.replace("\\", "/")).parts:
            raise PathOutsideRoot(f"path must not contain '..': {raw}")
        full = root / raw
    elif candidate.is_absolute():
        full = candidate
    else:
        here = (cwd or Path.cwd()) / candidate
        full = here if here.exists() and _inside(Path(os.path.realpath(here)), root_real) else root / candidate
    lexical = Path(os.path.normpath(full))
    if not (_inside(lexical, root) or _inside(lexical, root_real)):
        raise PathOutsideRoot(f"path is outside the indexed root {root}: {raw}")
    resolved = Path(os.path.realpath(lexical))
    if not _inside(resolved, root_real):
        raise PathOutsideRoot(f"path leads outside the indexed root (symlink): {raw}")
    base = root if _inside(lexical, root) else root_real
    rel = lexical.relative_to(base).as_posix()
    if rel in ("", "."):
        raise CodeseerError(f"{raw} is the indexed root itself, not a file")
    return rel


def locate_path(searcher, path: str, *, cwd: Path | None = None, strict: bool = False) -> tuple[str | None, str]:
    """``(repo, root-relative path)`` of a path argument; repo is None in an index of one repository.

    With several repos the path is ``REPO/PATH``; outside ``strict`` (the CLI) an absolute path, or
    one relative to ``cwd`` that exists, is also matched against every root. Nothing outside a root.
    """
    roots = getattr(searcher, "roots", None) or {None: Path(searcher.root)}
    if len(roots) == 1:
        return (None, repo_path(next(iter(roots.values())), path, cwd=cwd, strict=strict))
    raw = (path or "").strip()
    if not raw:
        raise CodeseerError("empty path")
    if "\x00" in raw:
        raise PathOutsideRoot("path contains a NUL byte")
    if strict and (raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":")):
        raise PathOutsideRoot(f"path must be REPO/PATH, relative to a repo of the index, not absolute: {raw}")
    if not strict:
        candidate = Path(raw).expanduser()
        here = candidate if candidate.is_absolute() else (cwd or Path.cwd()) / candidate
        if candidate.is_absolute() or here.exists():
            for name, root in sorted(roots.items(), key=lambda item: -len(str(item[1]))):  # nested roots: innermost
                try:
                    return name, repo_path(root, str(here), cwd=cwd)
                except PathOutsideRoot:
                    continue
            if candidate.is_absolute():
                raise PathOutsideRoot(f"path is outside every indexed root: {raw}")
    name, _, rest = raw.replace("\\", "/").partition("/")
    if name not in roots:
        if name == "..":
            raise PathOutsideRoot(f"path must not contain '..': {raw}")
        raise CodeseerError(f"this index holds several repos: give the path as REPO/PATH, where REPO is one of "
                            f"{', '.join(sorted(roots))} (got {raw!r})")
    if not rest.strip("/"):
        raise CodeseerError(f"{raw} is the root of repo {name}, not a file")
    return name, repo_path(roots[name], rest, cwd=roots[name], strict=strict)


def resolve_location(searcher, spec: str, *, cwd: Path | None = None) -> tuple[str | None, str, int]:
    """A ``PATH:LINE`` argument as (repo, root-relative path, line); repo is None in an index of one repository."""
    path, line = parse_location(spec)
    repo, rel = locate_path(searcher, path, cwd=cwd or Path.cwd())
    return repo, rel, line


def check_glob(glob: str | None) -> str | None:
    """A path filter for the network front-ends: relative, no ``..``."""
    if glob is None or not glob.strip():
        return None
    glob = glob.strip()
    if glob.startswith(("/", "\\")) or (len(glob) > 1 and glob[1] == ":"):
        raise PathOutsideRoot(f"path filter must be relative to the indexed root: {glob}")
    if ".." in PurePosixPath(glob.replace("\\", "/")).parts:
        raise PathOutsideRoot(f"path filter must not contain '..': {glob}")
    return glob


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- rows


def read_rows(table, columns: list[str], where: str | None = None) -> list[dict]:
    builder = table.search()
    if where:
        builder = builder.where(where)
    return builder.select(columns).limit(None).to_list()


def read_arrow(table, columns: list[str], where: str | None = None):
    builder = table.search()
    if where:
        builder = builder.where(where)
    return builder.select(columns).limit(None).to_arrow()


def precision(searcher) -> str:
    """How the index stores vectors: float32 (default), float16, int8 or binary (see index.quantize)."""
    codec = getattr(searcher, "codec", None)
    return getattr(codec, "precision", None) or getattr(getattr(searcher, "state", None), "precision", None) or "float32"


def exact_vectors(searcher) -> bool:
    """Stored vectors are floats that LanceDB can search (float32/float16), not int8/binary codes."""
    return precision(searcher) in ("float32", "float16")


def decode_vectors(searcher, stored: np.ndarray) -> np.ndarray:
    """Stored vectors (floats or compact codes) as a row-normalised float32 matrix."""
    stored = np.asarray(stored)
    if searcher is not None and not exact_vectors(searcher):
        return normalise(searcher.codec.decode(stored))
    return normalise(stored.astype(np.float32, copy=False))


def vectors_from_arrow(column, searcher=None) -> np.ndarray:
    """A (fixed-size) list column of stored vectors as a row-normalised float32 matrix."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return decode_vectors(searcher, flat.reshape(n, -1))


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def where_clause(
    searcher,
    *,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    kinds: tuple[str, ...] | list[str] | None = None,
    exclude_kinds: tuple[str, ...] | list[str] | None = None,
    repos: list[str] | None = None,
    file_kinds: list[str] | None = None,
) -> str | None | bool:
    """A LanceDB filter; ``False`` when the path glob matches no indexed file."""
    return searcher.where(languages, path_glob, kinds=kinds, exclude_kinds=exclude_kinds, repos=repos,
                          file_kinds=file_kinds)


def chunk_at(searcher, path: str, line: int, *, with_vector: bool = True, repo: str | None = None) -> ChunkRef:
    """The innermost (smallest) chunk of ``path`` (in ``repo``, with several) that contains ``line``."""
    from codeseer.index.store import sql_quote

    columns = chunk_columns(searcher) + (["vector"] if with_vector else [])
    where = f"path = {sql_quote(path)}"
    if repo is not None and getattr(searcher, "has_repo", False):
        where += f" AND repo = {sql_quote(repo)}"
    rows = read_rows(searcher.chunks, columns, where)
    shown = f"{repo}/{path}" if repo and getattr(searcher, "multi", False) else path
    if not rows:
        raise CodeseerError(f"{shown} is not in the index (not indexed, ignored, or renamed since the last `codeseer index`)")
    if len({r.get("repo") for r in rows}) > 1:
        raise CodeseerError(f"{path} is in several repos of this index; give it as REPO/PATH")
    path = shown
    covering = [r for r in rows if int(r["start_line"]) <= line <= int(r["end_line"])]
    if not covering:
        first = min(int(r["start_line"]) for r in rows)
        last = max(int(r["end_line"]) for r in rows)
        raise CodeseerError(f"line {line} of {path} is outside every indexed chunk (indexed lines: {first}-{last})")
    best = min(covering, key=lambda r: (int(r["end_line"]) - int(r["start_line"]), -int(r["start_line"]), r["chunk_id"]))
    return ChunkRef.from_row(best, searcher)


def embed_text(symbol: str, text: str) -> str:
    """What the indexer embeds for a chunk (kept in step with codeseer.index.indexer.embed_text)."""
    return f"{symbol}\n{text}" if symbol else text


# --------------------------------------------------------------------------- models and tasks

_LOCK = threading.Lock()


def _recipe_of(state):
    from codeseer.models.registry import find_recipe

    return find_recipe(getattr(state, "recipe", None) or state.model)


def _recipe_prefixes(recipe, task: str) -> tuple[str, str] | None:
    from codeseer.models.tasks import DOCUMENT, QUERY

    if recipe is None:
        return None
    try:
        return recipe.prefix(task, QUERY), recipe.prefix(task, DOCUMENT)
    except CodeseerError:
        return None


def task_prefixes(state, task: str) -> tuple | None:
    """(query prefix, document prefix) the index's recipe gives ``task``; None without a recipe.

    For an ensemble (``a+b``) each side is a tuple with one prefix per member, and None only when
    no member has a recipe, so two tasks compare equal exactly when every member encodes alike.
    """
    from codeseer.models.ensemble import split_members
    from codeseer.models.registry import find_recipe

    members = None if getattr(state, "recipe", None) else split_members(state.model)
    if not members:
        return _recipe_prefixes(_recipe_of(state), task)
    each = [_recipe_prefixes(find_recipe(m), task) for m in members]
    if all(p is None for p in each):
        return None
    each = [p or ("", "") for p in each]
    return tuple(p[0] for p in each), tuple(p[1] for p in each)


def stored_vectors_serve_as_queries(searcher, task: str) -> bool:
    """True when embedding a chunk as a ``task`` query gives exactly its stored (document) vector.

    That is the case for models without instructions (MiniLM) on a float index: then ``similar``
    and ``docs`` use the index's vectors and never run the model for a ``PATH:LINE`` query.
    """
    from codeseer.models.tasks import DEFAULT_TASK

    if not exact_vectors(searcher):  # int8/binary codes are approximations: embed the query exactly
        return False
    prefixes = task_prefixes(searcher.state, task)
    indexed = task_prefixes(searcher.state, DEFAULT_TASK)
    if prefixes is None or indexed is None:
        return prefixes is None and indexed is None
    return prefixes[0] == indexed[1]


def task_embedder(searcher, task: str):
    """The index's model set up for ``task``'s prefixes.

    The searcher's own embedder when the task's prefixes are the same as its (models without
    instructions: one model in memory serves every task); otherwise ``Searcher.embedder_for(task)``
    (or, on a Searcher without it, an ``Embedder(model, task=task)`` cached on the searcher).
    """
    from codeseer.models.tasks import DEFAULT_TASK

    base = searcher.embedder
    if getattr(base, "task", None) == task:
        return base
    prefixes = task_prefixes(searcher.state, task)
    if prefixes is None or prefixes == task_prefixes(searcher.state, getattr(base, "task", DEFAULT_TASK)):
        return base  # no instructions, or the same ones for both tasks: they encode alike
    if hasattr(searcher, "embedder_for"):
        with _LOCK:
            return searcher.embedder_for(task)
    cache = searcher.__dict__.setdefault("_codeseer_task_embedders", {})
    with _LOCK:
        if task not in cache:
            from codeseer.models.embedder import Embedder

            cache[task] = Embedder(searcher.state.model, task=task)
    return cache[task]


def carry_models(old, fresh) -> None:
    """Hand the models an old searcher loaded to a fresh one on a newer snapshot of the same index."""
    if old is None or old.state.model != fresh.state.model or old.state.dim != fresh.state.dim \
            or getattr(old.state, "recipe", None) != getattr(fresh.state, "recipe", None):
        return
    for name in ("_embedders", "_codeseer_task_embedders"):
        loaded = old.__dict__.get(name)
        if isinstance(loaded, dict) and loaded:
            target = fresh.__dict__.setdefault(name, {})
            for key, value in loaded.items():
                target.setdefault(key, value)
    if old.__dict__.get("_embedder") is not None and fresh.__dict__.get("_embedder", 0) is None:
        fresh._embedder = old._embedder


def encode_query(searcher, text: str, task: str) -> np.ndarray:
    embedder = task_embedder(searcher, task)
    return normalise(embedder.encode_queries([text])[0])


def encode_documents(searcher, texts: list[str], task: str) -> np.ndarray:
    if not texts:
        return np.zeros((0, searcher.state.dim), dtype=np.float32)
    embedder = task_embedder(searcher, task)
    return normalise(embedder.encode_documents(list(texts)))


def vector_search(
    searcher,
    vector: np.ndarray,
    *,
    k: int,
    where: str | None = None,
    exclude_ids: set[str] | frozenset[str] = frozenset(),
    columns: list[str] | None = None,
) -> list[dict]:
    """Nearest chunks by cosine (rows with ``score`` = cosine similarity), minus ``exclude_ids``.

    Float indexes are searched by LanceDB; int8/binary indexes by an exact scan of the decoded codes.
    """
    from codeseer.search.searcher import in_tie_order, tie_margin

    columns = chunk_columns(searcher, columns)
    vector = normalise(np.asarray(vector, dtype=np.float32))
    limit = tie_margin(k) + len(exclude_ids)
    if exact_vectors(searcher):
        builder = searcher.chunks.search(vector, vector_column_name="vector").distance_type("cosine")
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select(columns + ["_distance"]).limit(limit).to_list()
        for row in rows:
            row["score"] = 1.0 - float(row.pop("_distance"))
    else:
        rows = _scan(searcher, vector, where, limit, columns)
    out = []
    for row in rows:
        if row["chunk_id"] in exclude_ids:
            continue
        row["score"] = round(float(row["score"]), 6)
        out.append(row)
    return in_tie_order(out)[:k]


def _scan(searcher, vector: np.ndarray, where: str | None, limit: int, columns: list[str]) -> list[dict]:
    from codeseer.index.store import sql_in

    table = read_arrow(searcher.chunks, ["chunk_id", "vector"], where)
    if table.num_rows == 0:
        return []
    scores = vectors_from_arrow(table.column("vector"), searcher) @ vector
    top = np.argsort(-scores, kind="stable")[:limit]
    ids = [table.column("chunk_id")[int(i)].as_py() for i in top]
    score_of = {cid: float(scores[i]) for cid, i in zip(ids, top)}
    rows = read_rows(searcher.chunks, list(dict.fromkeys(columns + ["chunk_id"])), sql_in("chunk_id", ids))
    for row in rows:
        row["score"] = score_of[row["chunk_id"]]
    return sorted(rows, key=lambda r: -r["score"])


def row_to_hit(row: dict):
    from codeseer.search.searcher import Hit

    return Hit(
        path=row["path"], start_line=int(row["start_line"]), end_line=int(row["end_line"]),
        symbol=row["symbol"] or "", language=row["language"], kind=row["kind"],
        score=round(float(row["score"]), 6), text=row["text"], repo=row.get("repo"), file_kind=row.get("file_kind"),
    )


# --------------------------------------------------------------------------- status


def index_status(searcher) -> dict:
    """What is indexed: root, model, counts, languages (files per language), last update."""
    from codeseer.index.store import column_values

    languages: dict[str, int] = {}
    for language in column_values(searcher.files, "language"):
        languages[language] = languages.get(language, 0) + 1
    state = searcher.state
    return {
        "root": state.root,
        "repos": state.repo_roots(),
        **({"revs": state.revs} if state.revs else {}),
        "index_dir": str(searcher.store.directory),
        "model": state.model,
        "dim": state.dim,
        "files": state.files,
        "chunks": state.chunks,
        "ann": getattr(searcher, "ann", None),  # the vector index dense search uses; None: exact
        "updated_at": state.updated_at,
        "languages": dict(sorted(languages.items(), key=lambda item: (-item[1], item[0]))),
    }
