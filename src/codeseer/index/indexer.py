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
model, embed <slab>, write, fts, commit, cleanup, done), for tests that kill runs at chosen moments.
"""

from __future__ import annotations

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
from codeseer.index.chunker import Chunk, chunk_source
from codeseer.index.quantize import PRECISIONS, Codec
from codeseer.index.store import (
    CHUNKS,
    FILE_SCHEMA,
    DamagedIndex,
    IndexState,
    IndexStore,
    chunk_schema,
    column_values,
    damaged,
    one_line,
    sql_in,
)
from codeseer.index.vector_cache import VectorCache, cache_enabled
from codeseer.index.walker import SourceFile, WalkStats, read_source, walk
from codeseer.models.embedder import Embedder, resolve_model
from codeseer.search.lexical import FTS_COLUMN, fts_config, lexical_text

KEEP_OLD_VERSIONS = timedelta(minutes=10)  # readers that opened an older snapshot keep working
NEVER = timedelta(days=36500)  # before the commit point, the committed versions must survive
SYMBOL_BOOST = 3  # BM25 sees the chunk's own name 3 times: a poor man's field weighting


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
    seconds: float = 0.0
    repaired: list[str] = field(default_factory=list)  # what --repair found and did


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


def chunk_id(chunk: Chunk, digest: str) -> str:
    return hashlib.sha1(f"{chunk.path}\0{chunk.start_line}\0{chunk.end_line}\0{digest}".encode()).hexdigest()


class _Progress:
    """Rich progress when asked for, silent otherwise (tests, --json)."""

    def __init__(self, enabled: bool) -> None:
        self._progress = None
        if enabled:
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
        if not self._progress:
            return lambda n: None
        task_id = self._progress.add_task(description, total=total)
        return lambda n: self._progress.advance(task_id, n)


def index_repository(
    root: Path,
    *,
    index_dir: Path | None = None,
    model: str | None = None,
    rebuild: bool = False,
    precision: str | None = None,
    recipe: str | None = None,
    dim: int | None = None,
    backend: str = "auto",
    int8: bool = False,
    bf16: bool = False,
    progress: bool = False,
    embedder_factory: Callable[[str | None], Embedder] | None = None,
    repair: bool = False,
) -> IndexReport:
    """Index ``root`` incrementally; ``repair=True`` first checks (and if need be restores) the index."""
    started = time.perf_counter()
    if repair and rebuild:
        raise CodeseerError("--repair and --rebuild do not go together: --rebuild alone starts from scratch")
    root = Path(root).expanduser()
    if not root.exists():
        raise CodeseerError(f"path does not exist: {root}")
    if not root.is_dir():
        raise CodeseerError(f"not a directory: {root}")
    root = root.resolve()
    store = IndexStore(Path(index_dir).expanduser().resolve() if index_dir else root / ".codeseer")
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
            if rebuild:
                store.drop_all()
            for known in (state, hint):
                if known is not None and Path(known.root) != root:
                    raise CodeseerError(f"index {store.directory} belongs to {known.root}, not {root}")
            if hint is not None:
                settings = _settings(None, model=model or hint.model, precision=precision or hint.precision,
                                     recipe=recipe or hint.recipe, dim=dim or hint.dim)
            else:
                settings = _settings(state, model=model, precision=precision, recipe=recipe, dim=dim)
            report = IndexReport(root=str(root), index_dir=str(store.directory), model=resolve_model(settings.model).name)
            report.repaired = repaired
            factory = embedder_factory or (
                lambda m: Embedder(m, recipe=settings.recipe, dim=settings.dim, backend=backend, quantize=int8, bf16=bf16)
            )
            if hint is not None:
                _salvage_vectors(store, hint, report.model, repaired)
            run = _IndexRun(store, state, root, settings, report, factory)
            with _Progress(progress) as bar:
                run.execute(bar)
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
    def __init__(self, store, state, root, settings: IndexSettings, report, embedder_factory) -> None:
        self.store = store
        self.state: IndexState | None = state
        self.root = root
        self.model = settings.model
        self.recipe = settings.recipe
        self.precision = settings.precision
        self.report = report
        self.embedder_factory = embedder_factory
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.embedder_factory(self.model)
        return self._embedder

    def _old_files(self, files_table) -> dict[str, dict]:
        if self.state is None:
            return {}
        table = files_table.to_arrow()
        return {row["path"]: row for row in table.to_pylist()}

    def execute(self, bar: _Progress) -> None:
        _trace("walk")
        stats = WalkStats()
        sources = list(walk(self.root, stats))
        if self.state is None and not sources:
            raise CodeseerError(f"no source files found under {self.root} (nothing to index)")
        if self.state is None:
            _trace("model")
        dim = self.embedder.dim if self.state is None else self.state.dim
        self.codec = Codec(self.precision, dim, self.state.calibration if self.state else None)
        # Read the committed snapshot: an unchanged tree is then checked without writing anything.
        old_files = self._old_files(self.store.snapshot(self.state)[1]) if self.state is not None else {}
        _trace("chunk")
        seen = {f.rel for f in sources}
        deleted = sorted(set(old_files) - seen)
        candidates = [
            f for f in sources
            if f.rel not in old_files
            or (old_files[f.rel]["mtime_ns"], old_files[f.rel]["size"]) != (f.mtime_ns, f.size)
        ]

        changed: list[tuple[SourceFile, str, list[Chunk]]] = []
        touched: list[tuple[SourceFile, str, int]] = []
        unreadable: set[str] = set()
        advance = bar.task("chunking", len(candidates))
        for source in candidates:
            text = read_source(source, stats)
            advance(1)
            if text is None:
                unreadable.add(source.rel)
                continue
            digest = content_hash(text)
            old = old_files.get(source.rel)
            if old is not None and old["file_hash"] == digest:
                touched.append((source, digest, old["chunks"]))
                continue
            changed.append((source, digest, chunk_source(source.rel, text, source.language)))
        # A file that became unreadable (binary, not UTF-8) leaves the index like a deleted one.
        deleted += sorted(p for p in unreadable if p in old_files)

        self.report.skipped = dict(stats.skipped)
        self.report.changed_files = len(changed)
        self.report.deleted_files = len(deleted)
        if self.state is not None and not (changed or touched or deleted):
            self._finish_counts(self.state)
            _trace("done")
            return

        chunks_table, files_table = self.store.writable_tables(self.state, dim, self.precision)
        stale_paths = [s.rel for s, _, _ in changed] + deleted
        rows = self._build_rows(changed, chunks_table, dim, bar)

        _trace("write")
        for batch in _batches(stale_paths + [s.rel for s, _, _ in touched], 500):
            files_table.delete(sql_in("path", batch))
        for batch in _batches(stale_paths, 500):
            chunks_table.delete(sql_in("path", batch))
        if rows:
            chunks_table.add(pa.Table.from_pylist(rows, schema=chunk_schema(dim, self.precision)))
        file_rows = [
            _file_row(s, digest, len(chunks)) for s, digest, chunks in changed
        ] + [_file_row(s, digest, n) for s, digest, n in touched]
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
        )
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

    def _build_rows(self, changed, chunks_table, dim, bar) -> list[dict]:
        pending: list[tuple[Chunk, str, str]] = []
        for _source, _digest, chunks in changed:
            for chunk in chunks:
                text = embed_text(chunk)
                pending.append((chunk, text, content_hash(text)))
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
                if cache is not None:
                    cache.put(batch, vectors)
                advance(len(vectors))

            self.embedder.encode_documents([missing[h] for h in hashes], on_slab=save)
        if cache is not None:
            cache.close()
        self.codec.calibrate(np.stack([known[h] for _, _, h in pending]))
        stored = dict(zip(known, self.codec.encode(np.stack(list(known.values())))))
        rows = []
        for chunk, _text, digest in pending:
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
        if journal.count_rows():
            table = journal.to_arrow()
            for digest, vector in zip(table["content_hash"].to_pylist(), table["vector"].to_pylist()):
                if digest in wanted:
                    known[digest] = np.asarray(vector, dtype=np.float32)
        return known

    def _prepare_for_commit(self, chunks_table, files_table) -> None:
        """Compact and bring the BM25 index up to date, deleting nothing the committed state uses."""
        for table in (chunks_table, files_table):
            table.optimize(cleanup_older_than=NEVER)
        has_fts = any(FTS_COLUMN in idx.columns for idx in chunks_table.list_indices())
        if not has_fts and chunks_table.count_rows():
            chunks_table.create_index(FTS_COLUMN, config=fts_config(), replace=True)


def _file_row(source: SourceFile, digest: str, n_chunks: int) -> dict:
    return {
        "path": source.rel,
        "language": source.language,
        "size": source.size,
        "mtime_ns": source.mtime_ns,
        "file_hash": digest,
        "chunks": n_chunks,
    }


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]
