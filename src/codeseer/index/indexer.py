"""Incremental, crash-safe indexing of a source tree.

Only files whose size/mtime changed are read; only chunks whose content hash is new are embedded
(vectors of moved or unchanged chunks are reused). Embedded vectors are journaled as they are
computed, so a killed run loses no model work; the commit itself is the atomic ``state.json``
replace in :mod:`codeseer.index.store`.

Failures are reported in one line: a full disk (or a read-only one) says so and that the previous
index is intact (nothing after the commit point can fail the run); a damaged index points to
``codeseer index --repair`` (:func:`index_repository` with ``repair=True``), which verifies the
committed snapshot by reading it fully, falls back to the newest older snapshot that still reads,
or else rebuilds, reusing the vectors still readable in the journal and the old table versions.

``CODESEER_TRACE=1`` prints ``phase:<name>`` lines to stderr as a run goes (lock, walk, chunk,
model, embed <slab>, write, fts, ann, commit, cleanup, done), for tests that kill runs at chosen moments.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from codeseer.errors import CodeseerError
from codeseer.index.chunk_pool import chunk_files, chunk_workers
from codeseer.index.chunker import Chunk
from codeseer.index.ann import check_mode, ensure_ann
from codeseer.index.filekinds import RULES_VERSION as KIND_RULES
from codeseer.index.filekinds import file_kind, is_build_output
from codeseer.index.ann import plan as ann_plan
from codeseer.index.ann import status as ann_status
from codeseer.index.quantize import PRECISIONS, Codec
from codeseer.index.store import (
    CHUNKS,
    FILE_METADATA,
    FILE_SCHEMA,
    DamagedIndex,
    IndexState,
    IndexStore,
    chunk_schema,
    column_values,
    damaged,
    default_repo_name,
    fts_columns,
    one_line,
    sql_in,
    sql_quote,
)
from codeseer.index.location import INDEX_DIRNAME
from codeseer.index.uri import index_location
from codeseer.index.vector_cache import VectorCache, cache_enabled
from codeseer.index.walker import IGNORE_FILES, SourceFile, WalkStats, read_source, walk
from codeseer.models.embedder import Embedder, resolve_model
from codeseer.search.lexical import FTS_COLUMN, PATH_COLUMN, fts_config, lexical_text, path_words

LINE_SECONDS = 5.0  # a progress line this often when stderr is not a terminal (CODESEER_PROGRESS_EVERY)
UNITS = {"chunking": "files", "embedding": "chunks"}
KEEP_OLD_VERSIONS = timedelta(minutes=10)  # readers that opened an older snapshot keep working
NEVER = timedelta(days=36500)  # before the commit point, the committed versions must survive
SYMBOL_BOOST = 3  # BM25 sees the chunk's own name 3 times: a poor man's field weighting
DEFINITION_KINDS = ("function", "method", "class")  # chunks whose symbol the file defines


@dataclass
class IndexReport:
    root: str
    index_dir: str
    model: str
    files: int = 0
    chunks: int = 0
    changed_files: int = 0
    deleted_files: int = 0
    embedded_chunks: int = 0
    reused_chunks: int = 0
    cached_chunks: int = 0  # of the reused ones: vectors from the machine-wide cache (other indexes)
    skipped: dict[str, int] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # the repos this run indexed: name -> root
    rev: str | None = None  # --rev as given
    commits: dict[str, str] = field(default_factory=dict)  # --rev: repo name -> commit id indexed
    diff_files: int | None = None  # --rev update: paths the git diff touched (None: nothing to diff against)
    blobs_read: int = 0  # --rev: source files read from git objects
    seconds: float = 0.0
    repaired: list[str] = field(default_factory=list)  # what --repair found and did
    ray_nodes: dict[str, int] = field(default_factory=dict)  # --ray: chunks embedded per Ray node id
    ann: str | None = None  # the ANN index dense search uses (e.g. IVF_PQ); None: exact search
    chunk_workers: int = 0  # processes that chunked (0: in-process)


def _trace(phase: str) -> None:
    if os.environ.get("CODESEER_TRACE"):
        sys.stderr.write(f"phase:{phase}\n")
        sys.stderr.flush()


_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def _error_code(exc: BaseException) -> int | None:
    """The errno behind an error, also when lance reports it as text: "... (os error 28)"."""
    for current in (exc, exc.__cause__, exc.__context__):
        if current is None:
            continue
        if isinstance(current, OSError) and current.errno:
            return current.errno
        found = _OS_ERROR_CODE.search(str(current))
        if found:
            return int(found.group(1))
    return None


def _is_lance_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("lance", "lancedb") or bool(
        re.search(r"lance ?error|LanceError", str(exc), re.I)
    )


def _write_failure(exc: Exception, store: IndexStore) -> CodeseerError | None:
    """One clear line for a failed run that is not a bug in codeseer, or None to let it through."""
    directory = store.directory
    code = _error_code(exc)
    intact = "nothing was committed and the previous index is intact"
    if code in _DISK_FULL:
        return CodeseerError(
            f"no space left on device while writing the index at {directory}: {intact}; "
            "free some space and run `codeseer index` again"
        )
    if code in _NOT_WRITABLE and (isinstance(exc, OSError) or _is_lance_error(exc)):
        return CodeseerError(
            f"cannot write the index at {directory} ({os.strerror(code)}): {intact}; "
            "fix the permissions or use --index to put it elsewhere"
        )
    if _is_lance_error(exc):
        try:  # is it the committed snapshot itself that no longer reads?
            state = store.read_state()
        except CodeseerError as damage:
            return damage
        problem = store.verify(state) if state is not None else None
        if problem:
            return damaged(directory, problem)
        return DamagedIndex(
            f"could not update the index at {directory} ({one_line(exc)}): {intact}; "
            "if this happens again, run `codeseer index --repair`"
        )
    return None


def embed_text(chunk: Chunk) -> str:
    """What the model sees: the qualified name (a method's class is context), then the code.

    The path is left out on purpose: moving a file must not re-embed it. BM25 still sees the path.
    """
    return f"{chunk.symbol}\n{chunk.text}" if chunk.symbol else chunk.text


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def chunk_id(chunk: Chunk, digest: str, repo: str = "") -> str:
    return _chunk_id(chunk.path, chunk.start_line, chunk.end_line, digest, repo)


def _chunk_id(path: str, start: int, end: int, digest: str, repo: str) -> str:
    """The repo is part of the id: the same file in two repositories of one index are two chunks."""
    key = f"{path}\0{start}\0{end}\0{digest}"
    return hashlib.sha1((f"{repo}\0{key}" if repo else key).encode()).hexdigest()


class _Progress:
    """How a run shows its progress: a Rich bar on a terminal (``"bar"``, or ``True``), plain lines
    on stderr every few seconds where there is none (``"lines"``: agents, CI logs, ``nohup``), or
    nothing (``False``: tests, ``--json``)."""

    def __init__(self, mode: bool | str) -> None:
        self._progress = None
        self.lines = mode == "lines"
        self.every = float(os.environ.get("CODESEER_PROGRESS_EVERY", LINE_SECONDS))
        if mode is True or mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                transient=True,
            )

    def __enter__(self):
        if self._progress:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress:
            self._progress.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if self.lines:
            return self._line_task(description, total)
        if not self._progress:
            return lambda n: None
        task_id = self._progress.add_task(description, total=total)
        return lambda n: self._progress.advance(task_id, n)

    def _line_task(self, description: str, total: int) -> Callable[[int], None]:
        """``embedding: 512/1601 chunks, 96/s, ETA 11s`` on stderr, at most every ``every`` seconds."""
        unit = UNITS.get(description, "items")
        started = last = time.monotonic()
        done = 0

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last < self.every and done < total:
                return
            if done >= total and now - started < self.every:  # a quick step: no line for it
                return
            last = now
            rate = done / max(now - started, 1e-9)
            eta = f", ETA {int((total - done) / rate)}s" if rate > 0 and done < total else ""
            print(f"{description}: {done}/{total} {unit}, {rate:.0f}/s{eta}", file=sys.stderr, flush=True)

        return advance


def index_repository(
    root: Path | str | list | None,
    *,
    index_dir: Path | None = None,
    rev: str | None = None,
    model: str | None = None,
    rebuild: bool = False,
    precision: str | None = None,
    recipe: str | None = None,
    dim: int | None = None,
    backend: str = "auto",
    int8: bool = False,
    bf16: bool = False,
    progress: bool | str = False,
    embedder_factory: Callable[[str | None], Embedder] | None = None,
    repair: bool = False,
    ray_address: str | None = None,
    ray_actors: int | None = None,
    ann: str = "auto",
) -> IndexReport:
    """Index ``root`` incrementally; ``repair=True`` first checks (and if need be restores) the index.

    ``root`` may be several roots (paths or ``(name, path)`` pairs) sharing one index (``index_dir``
    required), each a repo named after its folder unless named; the index's other repos are left as
    they are. ``None`` updates every repo the index at ``index_dir`` holds. ``rev`` indexes each root
    at that git revision from git objects (:mod:`codeseer.index.gitsource`), not its working tree.

    ``ray_address`` (auto, local or HOST:PORT) embeds on Ray actors (:mod:`codeseer.index.distributed`).
    ``ann`` (auto, on, off): the vector index for large indexes (:mod:`codeseer.index.ann`).
    """
    started = time.perf_counter()
    check_mode(ann)
    if repair and rebuild:
        raise CodeseerError("--repair and --rebuild do not go together: --rebuild alone starts from scratch")
    specs = _root_specs(root if root is not None or index_dir is not None else Path("."))
    if len(specs) > 1 and index_dir is None:
        raise CodeseerError("several roots share one index: say where to keep it with --index DIR")
    if rev is not None:  # a bad revision fails before anything is locked or loaded
        from codeseer.index.gitsource import resolve_commit

        for _name, path in specs:
            resolve_commit(path, rev)
    store = IndexStore(index_location(index_dir) if index_dir else specs[0][1] / ".codeseer")  # a folder or a URI
    try:
        with store.write_lock():
            _trace("lock")
            repaired: list[str] = []
            hint = None  # --repair rebuilding: the last known settings, to reuse their vectors
            if repair:
                state, hint = _repair_base(store, repaired)
                if state is None and hint is None and model is None and repaired[-1] != _NO_INDEX_YET:
                    raise CodeseerError(
                        f"the index at {store.directory} must be rebuilt, but neither {store.state_path.name} nor "
                        "history.json says which model built it; run `codeseer index --repair --model MODEL` "
                        "with that model (`--model default` for the bundled one)"
                    )
            else:
                state = store.read_state() if not rebuild else None
            previous = state or hint
            if rebuild and not specs:  # rebuilding every repo of the index: which ones, it says
                try:
                    previous = store.read_state()
                except CodeseerError:
                    previous = None
            repos = _resolve_repos(specs, previous, store)
            if rebuild:
                store.drop_all()
            if hint is not None:
                settings = _settings(None, model=model or hint.model, precision=precision or hint.precision,
                                     recipe=recipe or hint.recipe, dim=dim or hint.dim)
            else:
                settings = _settings(state, model=model, precision=precision, recipe=recipe, dim=dim)
            report = IndexReport(root=str(repos[0][1]), index_dir=str(store.directory), model=resolve_model(settings.model).name)
            report.roots = {name: str(path) for name, path in repos}
            report.rev = rev
            report.repaired = repaired
            factory = embedder_factory or (
                lambda m: Embedder(m, recipe=settings.recipe, dim=settings.dim, backend=backend, quantize=int8, bf16=bf16)
            )
            if hint is not None:
                _salvage_vectors(store, hint, report.model, repaired)
            if ray_address is not None:
                from codeseer.index.distributed import ray_embedder_factory

                factory = ray_embedder_factory(ray_address, ray_actors, recipe=settings.recipe, dim=settings.dim,
                                               backend=backend, quantize=int8, bf16=bf16)
            run = _IndexRun(store, state, repos, settings, report, factory, rev=rev)
            run.ann = ann
            try:
                with _Progress(progress) as bar:
                    run.execute(bar)
            except KeyboardInterrupt:  # what Ctrl-C kept: the journal makes the next run finish, not redo
                raise KeyboardInterrupt(f"interrupted: {run.journaled} vectors kept; re-run `codeseer index` to "
                                        "finish") from None
            finally:  # an embedder holding resources (Ray actors) releases them
                if hasattr(run._embedder, "close"):
                    report.ray_nodes = run._embedder.close()
    except CodeseerError:
        raise
    except Exception as exc:  # a full disk, a damaged table: one line, not a traceback
        failure = _write_failure(exc, store)
        if failure is None:
            raise
        raise failure from None
    report.seconds = time.perf_counter() - started
    return report


_NO_INDEX_YET = "no index here yet: building a new one"
_BAD_NAME_CHARS = ("/", "\\", ":", "\0", "\n")


def split_root_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` -> ``(NAME, PATH)``; a plain path (even one with ``=`` in it, if it exists) -> ``(None, PATH)``."""
    name, sep, path = spec.partition("=")
    if sep and name and path and not Path(spec).expanduser().exists():
        return name, path
    return None, spec


def _root_specs(root) -> list[tuple[str | None, Path]]:
    """The roots asked for, as ``(name or None, resolved directory)``, each checked to exist."""
    if root is None:
        return []
    items = list(root) if isinstance(root, (list, tuple)) else [root]  # items: paths or (name, path)
    specs = []
    for item in items:
        name, path = item if isinstance(item, tuple) else (None, item)
        path = Path(path).expanduser()
        if not path.exists():
            raise CodeseerError(f"path does not exist: {path}")
        if not path.is_dir():
            raise CodeseerError(f"not a directory: {path}")
        specs.append((name, path.resolve()))
    if not specs:
        raise CodeseerError("no folder to index")
    return specs


def _resolve_repos(specs, known: IndexState | None, store: IndexStore) -> list[tuple[str, Path]]:
    """(name, root) of each repo to index: names default to the folder's (or the name the index
    already gives that folder), must be unique, and may not point a known repo at another folder."""
    existing = known.repo_roots() if known is not None else {}
    if not specs:
        if not existing:
            raise CodeseerError(f"no index at {store.directory} yet: say which folder(s) to index")
        specs = []
        for name, path in existing.items():
            if not Path(path).is_dir():
                raise CodeseerError(f"repo {name!r} of index {store.directory} is gone: {path} is not a directory")
            specs.append((name, Path(path)))
    if len(existing) == 1 and len(specs) == 1 and specs[0][0] is None:
        (name, old), = existing.items()
        path = specs[0][1]
        if Path(old) != path and Path(os.path.abspath(store.directory)) == path / INDEX_DIRNAME:
            existing = {name: str(path)}  # the repository was copied or moved, its index with it: same repo
    by_path = {Path(path): name for name, path in existing.items()}
    chosen: dict[str, Path] = {}
    for name, path in specs:
        if name is None:
            name = by_path.get(path) or default_repo_name(path)
        if name in (".", "..") or any(c in name for c in _BAD_NAME_CHARS) or not name.strip():
            raise CodeseerError(f"invalid repo name {name!r}: it is the first part of paths (REPO/PATH), "
                                "so no '/', '\\', ':' and not '.' or '..'")
        if name in chosen:
            raise CodeseerError(f"two roots are named {name!r} ({chosen[name]} and {path}); "
                                "repo names must be unique: name one with NAME=PATH")
        if name in existing and Path(existing[name]) != path:
            raise CodeseerError(f"index {store.directory} has repo {name!r} at {existing[name]}, not {path}; "
                                f"give this one another name with NAME=PATH")
        if by_path.get(path, name) != name:
            raise CodeseerError(f"{path} is already in index {store.directory} as repo {by_path[path]!r}")
        chosen[name] = path
    return list(chosen.items())


def _repair_base(store: IndexStore, repaired: list[str]) -> tuple[IndexState | None, IndexState | None]:
    """The snapshot --repair builds on: ``(state, None)``, or ``(None, hint)`` to rebuild from scratch.

    The committed snapshot is read in full (every column of both tables, the BM25 index probed);
    if it does not read, the newest readable snapshot from ``history.json`` is committed instead.
    """
    committed = None
    try:
        committed = store.read_state()
    except DamagedIndex as exc:
        repaired.append(str(exc).replace("; run `codeseer index --repair`", ""))
    history = store.read_history()
    candidates = [committed] if committed is not None else []
    candidates += [
        h for h in history
        if committed is None or (h.chunks_version, h.files_version) != (committed.chunks_version, committed.files_version)
    ]
    if not candidates:
        try:
            has_tables = bool(store.table_names())
        except Exception:
            has_tables = False
        if not has_tables and not store.state_path.exists():
            repaired.append(_NO_INDEX_YET)
            return None, None
    for n, candidate in enumerate(candidates):
        if candidate is committed:
            label = "committed snapshot"
        elif n == 0:
            label = f"last committed snapshot ({candidate.updated_at}, from history.json)"
        else:
            label = f"older snapshot of {candidate.updated_at}"
        versions = f"chunks v{candidate.chunks_version}, files v{candidate.files_version}"
        problem = store.verify(candidate)
        if problem is None:
            if candidate is committed:
                repaired.append(f"committed snapshot ({versions}) verified: {candidate.chunks} chunks and "
                                f"{candidate.files} files read in full; nothing to repair")
            else:
                store.write_state(candidate)
                repaired.append(f"fell back to the {label} ({versions}), which reads in full"
                                if committed is not None else f"recommitted the {label} ({versions}), which reads in full")
            return candidate, None
        repaired.append(f"{label} ({versions}) does not read: {problem}")
    hint = candidates[0] if candidates else None
    repaired.append("no readable snapshot left: rebuilding the index from scratch")
    if hint is None:
        return None, None
    return None, hint


def _salvage_vectors(store: IndexStore, hint: IndexState, model: str, repaired: list[str], versions: int = 3) -> None:
    """Before a rebuild, keep every vector that still reads (old table versions, the journal) in the journal."""
    if model != hint.model:
        return  # another model: its vectors are of no use
    known = store.journal_vectors(model, hint.dim)
    from_journal = len(known)
    if hint.precision in ("float32", "float16"):  # lossless to re-store; int8/binary are not
        try:
            chunks = store.db.open_table(CHUNKS)
            listed = sorted((v["version"] for v in chunks.list_versions()), reverse=True)
        except Exception:
            listed = []
        read = 0
        for version in listed:
            if read >= versions:
                break
            try:
                chunks.checkout(version)
                table = chunks.search().select(["content_hash", "vector"]).limit(None).to_arrow()
                vectors = np.asarray(
                    np.stack(table["vector"].to_numpy(zero_copy_only=False)) if len(table) else np.zeros((0, hint.dim)),
                    dtype=np.float32,
                )
            except Exception:
                continue
            if vectors.shape[1:] != (hint.dim,):
                continue
            read += 1
            for digest, vector in zip(table["content_hash"].to_pylist(), vectors):
                known.setdefault(digest, vector)
    fresh = {h: v for h, v in known.items() if h is not None}
    if len(fresh) > from_journal:
        try:
            journal = store.journal(model, hint.dim)
            existing = set(column_values(journal, "content_hash"))
            hashes = [h for h in fresh if h not in existing]
            for batch in _batches(hashes, 10_000):
                journal.add(pa.Table.from_pydict(
                    {"content_hash": batch, "vector": [np.asarray(fresh[h], dtype=np.float32) for h in batch]},
                    schema=journal.schema,
                ))
        except Exception as exc:
            failure = _write_failure(exc, store)
            if failure is not None and not isinstance(failure, DamagedIndex):
                raise failure from None
            repaired.append(f"could not keep the old vectors ({one_line(exc)}): they will be embedded again")
            return
    if fresh:
        repaired.append(f"kept {len(fresh)} vectors that still read, so they need not be embedded again")


@dataclass(frozen=True)
class IndexSettings:
    """What an index is built with; fixed for its lifetime (changing one needs --rebuild)."""

    model: str | None
    recipe: str | None
    dim: int | None
    precision: str


def _settings(state: IndexState | None, *, model, precision, recipe, dim) -> IndexSettings:
    """The user's settings for a new index, or the committed ones, refusing silent changes."""
    if precision is not None and precision not in PRECISIONS:
        raise CodeseerError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if state is None:
        return IndexSettings(model, recipe, dim, precision or "float32")
    asked = {
        "model": (resolve_model(model).name if model is not None else None, state.model),
        "precision": (precision, state.precision),
        "dim": (dim, state.dim),
        "recipe": (recipe, state.recipe),
    }
    for name, (wanted, built) in asked.items():
        if wanted is not None and wanted != built:
            raise CodeseerError(
                f"index was built with {name} {built}, not {wanted}; "
                f"re-create it with `codeseer index --rebuild --{name} {wanted}`"
            )
    return IndexSettings(state.model, state.recipe, state.dim, state.precision)


class _IndexRun:
    ann = "auto"  # --ann: auto, on or off

    def __init__(self, store, state, repos, settings: IndexSettings, report, embedder_factory, *, rev=None) -> None:
        self.store = store
        self.state: IndexState | None = state
        self.repos: list[tuple[str, Path]] = repos  # (name, root) of the repos this run indexes
        self.root = repos[0][1]
        self.rev = rev
        self.commits: dict[str, str] = {}
        self._tables_have_repo = state is None
        self.model = settings.model
        self.recipe = settings.recipe
        self.precision = settings.precision
        self.report = report
        self.embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self.journaled = 0  # vectors this run saved in the journal (what an interruption keeps)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.embedder_factory(self.model)
        return self._embedder

    @property
    def _legacy_repo(self) -> str:
        """The repo of rows written before the ``repo`` column existed (such an index holds one)."""
        return next(iter(self.state.repo_roots())) if self.state is not None else ""

    def _old_files(self, files_table) -> dict[tuple[str, str], dict]:
        """Committed file rows by their key, (repo, path): metadata only (file texts stay on disk)."""
        if self.state is None:
            return {}
        self._tables_have_repo = "repo" in files_table.schema.names
        columns = [c for c in FILE_METADATA if c in files_table.schema.names]
        table = files_table.search().select(columns).limit(None).to_arrow()
        legacy = self._legacy_repo
        return {(row.get("repo") or legacy, row["path"]): row for row in table.to_pylist()}

    def _touched_rows(self, files_table, touched) -> list[dict]:
        """New rows for files whose content is unchanged (new mtime): the old rows with the new size and mtime."""
        if not touched:
            return []
        by_key = {(s.repo, s.rel): s for s, _, _ in touched}
        rows = []
        for clause in _key_filters(list(by_key)):
            for row in files_table.search().where(clause).limit(None).to_arrow().to_pylist():
                source = by_key[(row["repo"], row["path"])]
                rows.append(row | {"size": source.size, "mtime_ns": source.mtime_ns, "language": source.language})
        return rows

    def _listing(self, name: str, root: Path, stats: WalkStats):
        if self.rev is None:
            return _DiskListing(name, root, stats)
        from codeseer.index.gitsource import GitTree

        tree = GitTree(root, self.rev, name)
        self.commits[name] = tree.commit
        old_commit = (self.state.revs or {}).get(name) if self.state is not None else None
        return _GitListing(tree, old_commit, stats)

    def _sourced(self, state: IndexState) -> IndexState:
        """``state`` recording where its sources came from: every repo's root, git commits, the legacy ``root``."""
        roots = self.state.repo_roots() if self.state is not None else {}
        revs = dict(self.state.revs or {}) if self.state is not None else {}
        for name, root in self.repos:
            roots[name] = str(root)
            if name in self.commits:
                revs[name] = self.commits[name]
            else:
                revs.pop(name, None)
        single = len(roots) == 1
        return dataclasses.replace(
            state,
            root=next(iter(roots.values())) if single else os.path.commonpath(list(roots.values())),
            roots=dict(sorted(roots.items())),
            revs=dict(sorted(revs.items())) or None,
            rev=next(iter(revs.values())) if single and revs else None,
        )

    def execute(self, bar: _Progress) -> None:
        _trace("walk")
        stats = WalkStats()
        listings = {name: self._listing(name, root, stats) for name, root in self.repos}
        sources = [s for listing in listings.values() for s in listing.sources]
        if self.state is None and not sources:
            for listing in listings.values():
                listing.close()
            where = " or ".join(str(root) for _, root in self.repos) + (f" at {self.rev}" if self.rev else "")
            raise CodeseerError(f"no source files found under {where} (nothing to index)")
        if self.state is None:
            _trace("model")
        dim = self.embedder.dim if self.state is None else self.state.dim
        self.codec = Codec(self.precision, dim, self.state.calibration if self.state else None)
        # Read the committed snapshot: an unchanged tree is then checked without writing anything.
        committed_files = self.store.snapshot(self.state)[1] if self.state is not None else None
        old_files = self._old_files(committed_files)
        # An index from before the file-level columns, or classified by older file-kind rules, is
        # rewritten whole (every vector reused).
        upgrade = committed_files is not None and (
            not IndexStore.has_file_level(committed_files) or self.state.file_kinds != KIND_RULES)
        _trace("chunk")
        indexed = set(listings)  # the index's other repos are left exactly as they are
        seen = {(f.repo, f.rel) for f in sources}
        deleted = sorted(key for key in old_files if key[0] in indexed and key not in seen)
        candidates = [f for listing in listings.values() for f in listing.candidates(old_files, everything=upgrade)]

        changed: list[tuple[SourceFile, str, list[Chunk]]] = []
        file_rows_new: list[dict] = []
        touched: list[tuple[SourceFile, str, int]] = []
        unreadable: set[tuple[str, str]] = set()
        advance = bar.task("chunking", len(candidates))
        digests: dict[int, str] = {}
        texts: dict[int, str] = {}  # changed files' text, for their file-level row

        def read(source: SourceFile) -> tuple[str, str, str | None] | None:
            """The chunking job of a changed file; None for an unreadable, build-output or unchanged one."""
            text = listings[source.repo].read(source, stats)
            if text is not None and is_build_output(source.rel, source.language, text):
                stats.skip("build output")
                text = None
            if text is None:
                unreadable.add((source.repo, source.rel))
                return None
            digest = content_hash(text)
            old = None if upgrade else old_files.get((source.repo, source.rel))
            if old is not None and old["file_hash"] == digest:
                touched.append((source, digest, old["chunks"]))
                return None
            digests[id(source)] = digest
            texts[id(source)] = text
            return source.rel, text, source.language

        try:
            workers = chunk_workers(len(candidates))
            self.report.chunk_workers = workers
            for source, job, chunks in chunk_files(candidates, read, workers=workers, on_file=lambda: advance(1)):
                if job is not None:
                    changed.append((source, digests.pop(id(source)), chunks))
                    file_rows_new.append(_file_row(source, changed[-1][1], chunks, texts.pop(id(source))))
        finally:
            for listing in listings.values():
                listing.close()
        # A file that became unreadable (binary, not UTF-8) leaves the index like a deleted one.
        deleted += sorted(p for p in unreadable if p in old_files)
        if self.rev is not None:
            diffs = [listing.changed for listing in listings.values()]
            self.report.commits = dict(self.commits)
            self.report.diff_files = None if any(d is None for d in diffs) else sum(len(d) for d in diffs)
            self.report.blobs_read = sum(listing.tree.blobs_read for listing in listings.values())

        self.report.skipped = dict(stats.skipped)
        self.report.changed_files = len(changed)
        self.report.deleted_files = len(deleted)
        if self.state is not None and not (changed or touched or deleted) and not self._ann_pending():
            state = self._sourced(self.state)
            same = all(getattr(state, k) == getattr(self.state, k) for k in ("root", "roots", "revs", "rev"))
            # (Several repos in tables without a repo column take the write path below, which adds it.)
            if same or self._tables_have_repo or len(state.roots) == 1:
                if not same or self.store.stale_roots:  # no file changed, but a revision or a root did: record it
                    _trace("commit")
                    self.store.write_state(dataclasses.replace(state, updated_at=IndexState.now()))
                self._finish_counts(self.state)
                _trace("done")
                return

        chunks_table, files_table = self.store.writable_tables(self.state, dim, self.precision)
        if self.state is not None:  # an index from before the repo column gets one (its only repo)
            self.store.ensure_repo_column((chunks_table, files_table), self._legacy_repo)
            self.store.upgrade_tables(chunks_table, files_table)
        touched_rows = self._touched_rows(files_table, touched)
        stale_paths = [(s.repo, s.rel) for s, _, _ in changed] + deleted
        rows = self._build_rows(changed, file_rows_new, chunks_table, dim, bar)
        _stamp_repos(rows, changed)

        _trace("write")
        for clause in _key_filters(stale_paths + [(s.repo, s.rel) for s, _, _ in touched]):
            files_table.delete(clause)
        for clause in _key_filters(stale_paths):
            chunks_table.delete(clause)
        if rows:
            chunks_table.add(pa.Table.from_pylist(rows, schema=chunk_schema(dim, self.precision)))
        file_rows = file_rows_new + touched_rows
        if file_rows:
            files_table.add(pa.Table.from_pylist(file_rows, schema=FILE_SCHEMA))
        _trace("fts")
        self._prepare_for_commit(chunks_table, files_table)

        state = IndexState(
            root=str(self.root),
            model=self.report.model,
            dim=dim,
            chunks_version=chunks_table.version,
            files_version=files_table.version,
            files=files_table.count_rows(),
            chunks=chunks_table.count_rows(),
            updated_at=IndexState.now(),
            precision=self.precision,
            recipe=self.recipe,
            calibration=self.codec.calibration,
            file_kinds=KIND_RULES,
        )
        state = self._sourced(state)
        _trace("commit")
        self.store.write_state(state)
        _trace("cleanup")
        # Housekeeping only: the commit happened, so nothing from here on may fail the run.
        try:
            self.store.drop_journals()
        except Exception:
            pass
        for table in (chunks_table, files_table):
            try:  # nothing is left to compact, so this only prunes versions: no new version
                table.optimize(cleanup_older_than=KEEP_OLD_VERSIONS)
            except Exception:
                pass
        self._finish_counts(state)
        _trace("done")

    def _finish_counts(self, state: IndexState) -> None:
        self.report.files = state.files
        self.report.chunks = state.chunks

    def _build_rows(self, changed, file_rows, chunks_table, dim, bar) -> list[dict]:
        pending: list[tuple[Chunk, str, str]] = []
        kinds: list[str] = []  # each pending chunk's file kind
        for (_source, _digest, chunks), file_row in zip(changed, file_rows, strict=True):
            for chunk in chunks:
                text = embed_text(chunk)
                pending.append((chunk, text, content_hash(text)))
                kinds.append(file_row["file_kind"])
        if not pending:
            return []
        known = self._known_vectors(chunks_table, {h for _, _, h in pending}, dim)
        missing: dict[str, str] = {}
        for _chunk, text, digest in pending:
            if digest not in known:
                missing.setdefault(digest, text)
        cache = None
        if missing:
            cache = self._vector_cache(dim)
            if cache is not None:  # another index on this machine may have embedded them already
                hits = cache.get(missing)
                known.update(hits)
                for digest in hits:
                    del missing[digest]
                self.report.cached_chunks = len(hits)
        self.report.embedded_chunks = len(missing)
        self.report.reused_chunks = len(pending) - sum(
            1 for _, _, h in pending if h in missing
        )
        if missing:
            journal = self.store.journal(self.report.model, dim)
            # Longest first: each slab then holds texts of similar length (little padding), and the
            # progress bar's estimate only improves as the run goes.
            hashes = sorted(missing, key=lambda h: -len(missing[h]))
            advance = bar.task("embedding", len(hashes))

            _trace("model")

            def save(start: int, vectors: np.ndarray) -> None:
                _trace(f"embed {start}")
                batch = hashes[start : start + len(vectors)]
                journal.add(pa.Table.from_pydict(
                    {"content_hash": batch, "vector": list(vectors)}, schema=journal.schema
                ))
                known.update(zip(batch, vectors))
                self.journaled += len(vectors)
                if cache is not None:
                    cache.put(batch, vectors)
                advance(len(vectors))

            self.embedder.encode_documents([missing[h] for h in hashes], on_slab=save)
        if cache is not None:
            cache.close()
        self.codec.calibrate(np.stack([known[h] for _, _, h in pending]))
        stored = dict(zip(known, self.codec.encode(np.stack(list(known.values())))))
        rows = []
        for (chunk, _text, digest), kind in zip(pending, kinds):
            rows.append(
                {
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
                    "vector": stored[digest],
                    "file_kind": kind,
                }
            )
        return rows

    def _vector_cache(self, dim: int) -> VectorCache | None:
        """The machine-wide cache for this embedder, or None (disabled, or an embedder without a fingerprint)."""
        if not cache_enabled():
            return None
        fingerprint = getattr(self.embedder, "fingerprint", None)
        if fingerprint is None:
            return None
        try:
            return VectorCache(fingerprint(), dim)
        except Exception:  # a cache must never stop indexing
            return None

    def _known_vectors(self, chunks_table, wanted: set[str], dim: int) -> dict[str, np.ndarray]:
        """Vectors we already have for these hashes: in the index (any path) or in a journal."""
        known: dict[str, np.ndarray] = {}
        if self.state is not None and wanted:
            hashes = column_values(chunks_table, "content_hash")
            reusable = sorted(wanted.intersection(hashes))
            for batch in _batches(reusable, 500):
                table = chunks_table.search().where(sql_in("content_hash", batch)).select(
                    ["content_hash", "vector"]
                ).limit(None).to_arrow()
                vectors = self.codec.decode(np.stack(table["vector"].to_numpy(zero_copy_only=False)))
                known.update(zip(table["content_hash"].to_pylist(), vectors))
        journal = self.store.journal(self.report.model, dim)
        try:
            table = journal.to_arrow() if journal.count_rows() else None
        except Exception:  # a drop cut short by a kill can leave the manifest without its data files
            self.store.drop_journal(self.report.model, dim)
            table = None
        if table is not None:
            for digest, vector in zip(table["content_hash"].to_pylist(), table["vector"].to_pylist()):
                if digest in wanted:
                    known[digest] = np.asarray(vector, dtype=np.float32)
        return known

    def _prepare_for_commit(self, chunks_table, files_table) -> None:
        """Compact and bring the BM25 and ANN indexes up to date, deleting nothing the committed state uses."""
        for table in (chunks_table, files_table):
            table.optimize(cleanup_older_than=NEVER)
        for table, columns in ((chunks_table, (FTS_COLUMN,)), (files_table, (FTS_COLUMN, PATH_COLUMN))):
            have = fts_columns(table)
            for column in columns:
                if column not in have and table.count_rows():
                    table.create_index(column, config=fts_config(), replace=True)
        _trace("ann")
        self.report.ann = ensure_ann(chunks_table, self.precision, self.ann).index_type

    def _ann_pending(self) -> bool:
        """Whether --ann wants the vector index built, retrained or dropped: an unchanged tree then still writes."""
        chunks = self.store.snapshot(self.state)[0]
        self.report.ann = ann_status(chunks).index_type
        return ann_plan(chunks, self.precision, self.ann) in ("build", "rebuild", "drop")


def _file_row(source: SourceFile, digest: str, chunks: list[Chunk], text: str) -> dict:
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


def _stamp_repos(rows: list[dict], changed) -> None:
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


def _key_filters(keys: list[tuple[str, str]], size: int = 500):
    """Filters selecting the rows of these (repo, path) file keys, a few hundred paths at a time."""
    by_repo: dict[str, list[str]] = {}
    for repo, path in keys:
        by_repo.setdefault(repo, []).append(path)
    for repo, paths in sorted(by_repo.items()):
        for batch in _batches(paths, size):
            yield f"repo = {sql_quote(repo)} AND {sql_in('path', batch)}"


class _DiskListing:
    """A repo's files as they are on disk (the walker); a file is read again when its mtime or size moved."""

    changed = None

    def __init__(self, name: str, root: Path, stats: WalkStats) -> None:
        self.sources = [dataclasses.replace(s, repo=name) for s in walk(root, stats)]

    def candidates(self, old_files: dict, everything: bool = False) -> list[SourceFile]:
        if everything:
            return list(self.sources)
        out = []
        for f in self.sources:
            old = old_files.get((f.repo, f.rel))
            if old is None or (old["mtime_ns"], old["size"]) != (f.mtime_ns, f.size):
                out.append(f)
        return out

    def read(self, source: SourceFile, stats: WalkStats) -> str | None:
        return read_source(source, stats)

    def close(self) -> None:
        pass


class _GitListing:
    """A repo at a git commit; after an earlier commit was indexed, only what ``git diff`` names is read."""

    def __init__(self, tree, old_commit: str | None, stats: WalkStats) -> None:
        self.tree = tree
        self.old_commit = old_commit
        self.sources = tree.list_sources(stats)
        self.changed = tree.changed_paths(old_commit)

    def candidates(self, old_files: dict, everything: bool = False) -> list[SourceFile]:
        if self.changed is None or everything:  # nothing to diff against: every file is read (unchanged ones only touched)
            return list(self.sources)
        # A file not indexed before and not in the diff was skipped at the old commit (binary...) and
        # still is; only when an ignore file changed may one that was ignored then be listed now.
        rules_changed = any(p.rpartition("/")[2] in IGNORE_FILES for p in self.changed)
        listed_before = {s.rel for s in self.tree.list_sources(WalkStats(), self.old_commit)} if rules_changed else set()
        return [f for f in self.sources
                if f.rel in self.changed
                or (rules_changed and (f.repo, f.rel) not in old_files and f.rel not in listed_before)]

    def read(self, source: SourceFile, stats: WalkStats) -> str | None:
        return self.tree.read(source, stats)

    def close(self) -> None:
        self.tree.close()


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]
