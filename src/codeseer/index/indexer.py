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

A run (:class:`_IndexRun`) is five steps: plan (walk the repos, read what is committed), chunk (read
and chunk the files that changed), embed (reuse or compute each new chunk's vector), write (the new
table versions, BM25 and ANN indexes) and commit. Around it, each in a room of its own: the run's
arguments (:mod:`~codeseer.index.request`), where files come from (:mod:`~codeseer.index.sources`),
what rows hold (:mod:`~codeseer.index.rows`), vectors already known (:mod:`~codeseer.index.vectors`),
``--repair`` (:mod:`~codeseer.index.repair`), failures in one line (:mod:`~codeseer.index.failures`)
and progress display (:mod:`~codeseer.index.progress`). What the run needs from a model is
:class:`~codeseer.models.encoder.Encoder`. Tests swap some names of this module (``_trace``,
``read_source``, ``KIND_RULES``, ``load_embedder``) to watch or steer a run, so the run uses them from here.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
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
from codeseer.index.chunking import Chunk
from codeseer.index.ann import check_mode, ensure_ann
from codeseer.index.filekinds import RULES_VERSION as KIND_RULES
from codeseer.index.filekinds import is_build_output
from codeseer.index.ann import plan as ann_plan
from codeseer.index.ann import status as ann_status
from codeseer.index.failures import write_failure
from codeseer.index.progress import Progress
from codeseer.index.quantize import Codec
from codeseer.index.repair import NO_INDEX_YET, repair_base, salvage_vectors
from codeseer.index.request import IndexSettings, resolve_repos, root_specs, settings_for
from codeseer.index.rows import chunk_row, file_row, key_filters, stamp_repos, touched_rows
from codeseer.index.sources import DiskListing, GitListing, record_sources
from codeseer.index.store import FILE_METADATA, FILE_SCHEMA, IndexState, IndexStore, chunk_schema, fts_columns
from codeseer.index.uri import index_location
from codeseer.index.vector_cache import VectorCache, cache_enabled
from codeseer.index.vectors import known_vectors, vector_cache
from codeseer.index.walker import SourceFile, WalkStats, read_source
from codeseer.models.embedder import resolve_model
from codeseer.models.factory import load_embedder
from codeseer.models.encoder import Encoder
from codeseer.text.lexical import FTS_COLUMN, PATH_COLUMN, fts_config

KEEP_OLD_VERSIONS = timedelta(minutes=10)  # readers that opened an older snapshot keep working
NEVER = timedelta(days=36500)  # before the commit point, the committed versions must survive


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


def embed_text(symbol: str, text: str) -> str:
    """What the model sees: the qualified name (a method's class is context), then the code.

    The path is left out on purpose: moving a file must not re-embed it. BM25 still sees the path.
    """
    return f"{symbol}\n{text}" if symbol else text


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


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
    embedder_factory: Callable[[str | None], Encoder] | None = None,
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

    ``embedder_factory(model)`` gives the :class:`~codeseer.models.encoder.Encoder` that embeds
    (default: a local :class:`~codeseer.models.embedder.Embedder`).
    ``ray_address`` (auto, local or HOST:PORT) embeds on Ray actors (:mod:`codeseer.index.distributed`).
    ``ann`` (auto, on, off): the vector index for large indexes (:mod:`codeseer.index.ann`).
    """
    started = time.perf_counter()
    check_mode(ann)
    if repair and rebuild:
        raise CodeseerError("--repair and --rebuild do not go together: --rebuild alone starts from scratch")
    specs = root_specs(root if root is not None or index_dir is not None else Path("."))
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
            run = _open_run(
                store, specs, rev=rev, repair=repair, rebuild=rebuild, model=model, precision=precision,
                recipe=recipe, dim=dim, loading=dict(backend=backend, quantize=int8, bf16=bf16),
                embedder_factory=embedder_factory, ray_address=ray_address, ray_actors=ray_actors,
            )
            run.ann = ann
            _execute(run, progress)
    except CodeseerError:
        raise
    except Exception as exc:  # a full disk, a damaged table: one line, not a traceback
        failure = write_failure(exc, store)
        if failure is None:
            raise
        raise failure from None
    run.report.seconds = time.perf_counter() - started
    return run.report


def split_root_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` -> ``(NAME, PATH)``; a plain path (even one with ``=`` in it, if it exists) -> ``(None, PATH)``."""
    name, sep, path = spec.partition("=")
    if sep and name and path and not Path(spec).expanduser().exists():
        return name, path
    return None, spec


def _starting_point(store: IndexStore, *, repair: bool, rebuild: bool,
                    model: str | None) -> tuple[IndexState | None, IndexState | None, list[str]]:
    """``(state, hint, repaired)``: the committed state the run builds on (None: a new index), the
    last known settings when ``--repair`` must rebuild (to reuse their vectors), and what --repair did."""
    repaired: list[str] = []
    hint = None  # --repair rebuilding: the last known settings, to reuse their vectors
    if repair:
        state, hint = repair_base(store, repaired)
        if state is None and hint is None and model is None and repaired[-1] != NO_INDEX_YET:
            raise CodeseerError(
                f"the index at {store.directory} must be rebuilt, but neither {store.state_path.name} nor "
                "history.json says which model built it; run `codeseer index --repair --model MODEL` "
                "with that model (`--model default` for the bundled one)"
            )
    else:
        state = store.read_state() if not rebuild else None
    return state, hint, repaired


def _open_run(store: IndexStore, specs, *, rev, repair, rebuild, model, precision, recipe, dim, loading: dict,
              embedder_factory, ray_address, ray_actors) -> _IndexRun:
    """The run that brings the index at ``store`` up to date: its starting state, repos, settings and encoder.

    ``loading``: how the default encoder is loaded (backend, quantize, bf16), locally or on Ray actors.
    """
    state, hint, repaired = _starting_point(store, repair=repair, rebuild=rebuild, model=model)
    previous = state or hint
    if rebuild and not specs:  # rebuilding every repo of the index: which ones, it says
        try:
            previous = store.read_state()
        except CodeseerError:
            previous = None
    repos = resolve_repos(specs, previous, store)
    if rebuild:
        store.drop_all()
    if hint is not None:
        settings = settings_for(None, model=model or hint.model, precision=precision or hint.precision,
                                recipe=recipe or hint.recipe, dim=dim or hint.dim)
    else:
        settings = settings_for(state, model=model, precision=precision, recipe=recipe, dim=dim)
    report = IndexReport(root=str(repos[0][1]), index_dir=str(store.directory), model=resolve_model(settings.model).name)
    report.roots = {name: str(path) for name, path in repos}
    report.rev = rev
    report.repaired = repaired
    loading = dict(recipe=settings.recipe, dim=settings.dim, **loading)
    factory = embedder_factory or (lambda m: load_embedder(m, **loading))
    if hint is not None:
        salvage_vectors(store, hint, report.model, repaired)
    if ray_address is not None:
        from codeseer.index.distributed import ray_embedder_factory

        factory = ray_embedder_factory(ray_address, ray_actors, **loading)
    return _IndexRun(store, state, repos, settings, report, factory, rev=rev)


def _execute(run: _IndexRun, progress: bool | str) -> None:
    """``run`` under its progress display; an interruption says what it kept; the encoder is released."""
    try:
        with Progress(progress) as bar:
            run.execute(bar)
    except KeyboardInterrupt:  # what Ctrl-C kept: the journal makes the next run finish, not redo
        raise KeyboardInterrupt(f"interrupted: {run.journaled} vectors kept; re-run `codeseer index` to "
                                "finish") from None
    finally:  # an embedder holding resources (Ray actors) releases them
        if run._embedder is not None:
            run.report.ray_nodes = run._embedder.close()


@dataclass
class _Plan:
    """What the plan step found: each repo's listing, the committed file rows, and the vector width."""

    stats: WalkStats
    listings: dict[str, DiskListing | GitListing]  # by repo name
    dim: int
    old_files: dict[tuple[str, str], dict]  # committed file rows by (repo, path)
    upgrade: bool  # every file is rewritten (old file-level columns or file-kind rules); vectors are reused


@dataclass
class _Changes:
    """What the chunk step found: files whose rows are rewritten, files only touched, files gone."""

    deleted: list[tuple[str, str]]  # (repo, path) of files no longer indexed
    changed: list[tuple[SourceFile, str, list[Chunk]]] = field(default_factory=list)  # new content, its chunks
    file_rows: list[dict] = field(default_factory=list)  # the changed files' rows, in step with ``changed``
    touched: list[tuple[SourceFile, str, int]] = field(default_factory=list)  # same content, new size/mtime
    unreadable: set[tuple[str, str]] = field(default_factory=set)
    digests: dict[int, str] = field(default_factory=dict)  # read, waiting for its chunks: id(source) -> hash
    texts: dict[int, str] = field(default_factory=dict)  # changed files' text, for their file-level row


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
        self._embedder: Encoder | None = None
        self.journaled = 0  # vectors this run saved in the journal (what an interruption keeps)

    @property
    def embedder(self) -> Encoder:
        if self._embedder is None:
            self._embedder = self.embedder_factory(self.model)
        return self._embedder

    @property
    def _legacy_repo(self) -> str:
        """The repo of rows written before the ``repo`` column existed (such an index holds one)."""
        return next(iter(self.state.repo_roots())) if self.state is not None else ""

    def execute(self, bar: Progress) -> None:
        """plan -> chunk -> embed -> write -> commit; a run that finds nothing changed stops after chunk."""
        plan = self._plan()
        changes = self._chunk(plan, bar)
        if self._unchanged(changes):
            return
        chunks_table, files_table = self._open_tables(plan.dim)
        touched = touched_rows(files_table, changes.touched)
        rows = self._embed(changes, chunks_table, plan.dim, bar)
        self._write(changes, rows, touched, chunks_table, files_table, plan.dim)
        self._commit(chunks_table, files_table, plan.dim)

    # ------------------------------------------------------------------ plan

    def _plan(self) -> _Plan:
        """List every repo's files, and read what the committed snapshot holds for them."""
        _trace("walk")
        stats = WalkStats()
        listings = {name: self._listing(name, root, stats) for name, root in self.repos}
        if self.state is None and not any(listing.sources for listing in listings.values()):
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
        return _Plan(stats, listings, dim, old_files, upgrade)

    def _listing(self, name: str, root: Path, stats: WalkStats) -> DiskListing | GitListing:
        if self.rev is None:
            return DiskListing(name, root, stats, read_source)  # this module's read_source: tests race it
        from codeseer.index.gitsource import GitTree

        tree = GitTree(root, self.rev, name)
        self.commits[name] = tree.commit
        old_commit = (self.state.revs or {}).get(name) if self.state is not None else None
        return GitListing(tree, old_commit, stats)

    def _old_files(self, files_table) -> dict[tuple[str, str], dict]:
        """Committed file rows by their key, (repo, path): metadata only (file texts stay on disk)."""
        if self.state is None:
            return {}
        self._tables_have_repo = "repo" in files_table.schema.names
        columns = [c for c in FILE_METADATA if c in files_table.schema.names]
        table = files_table.search().select(columns).limit(None).to_arrow()
        legacy = self._legacy_repo
        return {(row.get("repo") or legacy, row["path"]): row for row in table.to_pylist()}

    # ------------------------------------------------------------------ chunk

    def _chunk(self, plan: _Plan, bar: Progress) -> _Changes:
        """Read each file that may have changed, chunk those whose content did, and note the ones gone."""
        _trace("chunk")
        indexed = set(plan.listings)  # the index's other repos are left exactly as they are
        seen = {(f.repo, f.rel) for listing in plan.listings.values() for f in listing.sources}
        changes = _Changes(deleted=sorted(key for key in plan.old_files if key[0] in indexed and key not in seen))
        candidates = [f for listing in plan.listings.values()
                      for f in listing.candidates(plan.old_files, everything=plan.upgrade)]
        advance = bar.task("chunking", len(candidates))
        read = functools.partial(self._read_changed, plan, changes)
        try:
            workers = chunk_workers(len(candidates))
            self.report.chunk_workers = workers
            for source, job, chunks in chunk_files(candidates, read, workers=workers, on_file=lambda: advance(1)):
                if job is not None:
                    digest = changes.digests.pop(id(source))
                    changes.changed.append((source, digest, chunks))
                    changes.file_rows.append(file_row(source, digest, chunks, changes.texts.pop(id(source))))
        finally:
            for listing in plan.listings.values():
                listing.close()
        # A file that became unreadable (binary, not UTF-8) leaves the index like a deleted one.
        changes.deleted += sorted(p for p in changes.unreadable if p in plan.old_files)
        self._report_changes(plan, changes)
        return changes

    def _read_changed(self, plan: _Plan, changes: _Changes, source: SourceFile) -> tuple[str, str, str | None] | None:
        """The chunking job of a changed file; None for an unreadable, build-output or unchanged one."""
        text = plan.listings[source.repo].read(source, plan.stats)
        if text is not None and is_build_output(source.rel, source.language, text):
            plan.stats.skip("build output")
            text = None
        if text is None:
            changes.unreadable.add((source.repo, source.rel))
            return None
        digest = content_hash(text)
        old = None if plan.upgrade else plan.old_files.get((source.repo, source.rel))
        if old is not None and old["file_hash"] == digest:
            changes.touched.append((source, digest, old["chunks"]))
            return None
        changes.digests[id(source)] = digest
        changes.texts[id(source)] = text
        return source.rel, text, source.language

    def _report_changes(self, plan: _Plan, changes: _Changes) -> None:
        """What the chunk step found, in the report (and for --rev, what git gave)."""
        if self.rev is not None:
            diffs = [listing.changed for listing in plan.listings.values()]
            self.report.commits = dict(self.commits)
            self.report.diff_files = None if any(d is None for d in diffs) else sum(len(d) for d in diffs)
            self.report.blobs_read = sum(listing.tree.blobs_read for listing in plan.listings.values())
        self.report.skipped = dict(plan.stats.skipped)
        self.report.changed_files = len(changes.changed)
        self.report.deleted_files = len(changes.deleted)

    def _unchanged(self, changes: _Changes) -> bool:
        """True when no file changed and --ann wants nothing: the run ends here, committing at most a
        new revision or root (no table is written)."""
        if self.state is None or changes.changed or changes.touched or changes.deleted or self._ann_pending():
            return False
        state = record_sources(self.state, self.state, self.repos, self.commits)
        same = all(getattr(state, k) == getattr(self.state, k) for k in ("root", "roots", "revs", "rev"))
        # (Several repos in tables without a repo column take the write path, which adds it.)
        if not (same or self._tables_have_repo or len(state.roots) == 1):
            return False
        if not same or self.store.stale_roots:  # no file changed, but a revision or a root did: record it
            _trace("commit")
            self.store.write_state(dataclasses.replace(state, updated_at=IndexState.now()))
        self._finish_counts(self.state)
        _trace("done")
        return True

    def _ann_pending(self) -> bool:
        """Whether --ann wants the vector index built, retrained or dropped: an unchanged tree then still writes."""
        chunks = self.store.snapshot(self.state)[0]
        self.report.ann = ann_status(chunks).index_type
        return ann_plan(chunks, self.precision, self.ann) in ("build", "rebuild", "drop")

    # ------------------------------------------------------------------ embed

    def _open_tables(self, dim: int):
        """The tables this run writes new versions of, brought to the current layout first."""
        chunks_table, files_table = self.store.writable_tables(self.state, dim, self.precision)
        if self.state is not None:  # an index from before the repo column gets one (its only repo)
            self.store.ensure_repo_column((chunks_table, files_table), self._legacy_repo)
            self.store.upgrade_tables(chunks_table, files_table)
        return chunks_table, files_table

    def _embed(self, changes: _Changes, chunks_table, dim: int, bar: Progress) -> list[dict]:
        """The changed files' chunk rows, each with its vector: reused where the index, a journal or the
        machine-wide cache has it, else embedded now."""
        pending: list[tuple[Chunk, str, str]] = []
        kinds: list[str] = []  # each pending chunk's file kind
        for (_source, _digest, chunks), row in zip(changes.changed, changes.file_rows, strict=True):
            for chunk in chunks:
                text = embed_text(chunk.symbol, chunk.text)
                pending.append((chunk, text, content_hash(text)))
                kinds.append(row["file_kind"])
        if not pending:
            return []
        known = known_vectors(self.store, self.state, chunks_table, self.codec, self.report.model,
                              {h for _, _, h in pending}, dim)
        missing: dict[str, str] = {}
        for _chunk, text, digest in pending:
            if digest not in known:
                missing.setdefault(digest, text)
        cache = self._vector_cache(dim) if missing else None
        if cache is not None:  # another index on this machine may have embedded them already
            hits = cache.get(missing)
            known.update(hits)
            for digest in hits:
                del missing[digest]
            self.report.cached_chunks = len(hits)
        self.report.embedded_chunks = len(missing)
        self.report.reused_chunks = len(pending) - sum(1 for _, _, h in pending if h in missing)
        if missing:
            self._embed_missing(missing, known, cache, dim, bar)
        if cache is not None:
            cache.close()
        self.codec.calibrate(np.stack([known[h] for _, _, h in pending]))
        stored = dict(zip(known, self.codec.encode(np.stack(list(known.values())))))
        rows = [chunk_row(chunk, digest, stored[digest], kind) for (chunk, _text, digest), kind in zip(pending, kinds)]
        stamp_repos(rows, changes.changed)
        return rows

    def _vector_cache(self, dim: int) -> VectorCache | None:
        """The machine-wide cache for this run's encoder, or None (disabled, or an encoder without a fingerprint)."""
        if not cache_enabled():
            return None
        return vector_cache(self.embedder, dim)

    def _embed_missing(self, missing: dict[str, str], known: dict[str, np.ndarray], cache: VectorCache | None,
                       dim: int, bar: Progress) -> None:
        """Embed the texts no index, journal or cache had (``missing``: hash -> text) into ``known``,
        journaling each slab as it comes: a killed run keeps them, and the next run finishes the work."""
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

    # ------------------------------------------------------------------ write

    def _write(self, changes: _Changes, rows: list[dict], touched_rows: list[dict], chunks_table, files_table,
               dim: int) -> None:
        """New table versions without the changed and deleted files' old rows, with their new ones; then
        the BM25 and ANN indexes. Nothing here is committed yet: readers still see the old snapshot."""
        stale_paths = [(s.repo, s.rel) for s, _, _ in changes.changed] + changes.deleted
        _trace("write")
        for clause in key_filters(stale_paths + [(s.repo, s.rel) for s, _, _ in changes.touched]):
            files_table.delete(clause)
        for clause in key_filters(stale_paths):
            chunks_table.delete(clause)
        if rows:
            chunks_table.add(pa.Table.from_pylist(rows, schema=chunk_schema(dim, self.precision)))
        file_rows = changes.file_rows + touched_rows
        if file_rows:
            files_table.add(pa.Table.from_pylist(file_rows, schema=FILE_SCHEMA))
        _trace("fts")
        self._prepare_for_commit(chunks_table, files_table)

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

    # ------------------------------------------------------------------ commit

    def _commit(self, chunks_table, files_table, dim: int) -> None:
        """The commit point, ``state.json`` naming the new table versions; then housekeeping."""
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
        state = record_sources(state, self.state, self.repos, self.commits)
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
