"""The on-disk index: LanceDB tables plus a small ``state.json`` naming the committed versions.

Crash safety comes from one rule: readers only ever open the table versions recorded in
``state.json``, and a writer replaces that file atomically (write, fsync, rename) as its very last
step. Whatever a killed writer left behind is newer than the committed versions, invisible to
readers, and rolled back by the next writer. A file lock (released by the kernel even on SIGKILL)
keeps two writers apart.

Damage from outside (a truncated ``state.json``, a deleted data file or manifest) is reported as
:class:`DamagedIndex`, whose message sends the user to ``codeseer index --repair``. After each
commit the last few committed states are also kept in ``history.json`` (written after the commit
point, so it never decides what readers see): ``--repair`` falls back to the newest of them that
still reads fully when the committed one does not.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from codeseer.errors import CodeseerError
from codeseer.index.uri import UriPath, as_uri

os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCEDB_LOG", "error")  # the Rust logger lancedb actually reads: no WARN lines on stderr
warnings.filterwarnings("ignore", category=DeprecationWarning, module="lancedb")

import lancedb  # noqa: E402  (LANCE_LOG / LANCEDB_LOG must be set first)

from codeseer.index.location import (  # noqa: E402,F401
    HISTORY_FILE,
    INDEX_DIRNAME,
    STATE_FILE,
    existing_index_dir,
    find_index_dir,
    is_index_dir,
)
HISTORY_KEEP = 8
REPAIR_HINT = "run `codeseer index --repair`"
LOCK_FILE = "index.lock"
FORMAT_VERSION = 1
CHUNKS = "chunks"
FILES = "files"


def vector_type(dim: int, precision: str = "float32") -> pa.DataType:
    """The stored vector column: floats for exact search, int8 codes, or packed sign bits."""
    if precision == "binary":
        return pa.list_(pa.uint8(), (dim + 7) // 8)
    value = {"float32": pa.float32(), "float16": pa.float16(), "int8": pa.int8()}[precision]
    return pa.list_(value, dim)


def chunk_schema(dim: int, precision: str = "float32") -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("path", pa.string()),
            ("language", pa.string()),
            ("start_line", pa.int32()),
            ("end_line", pa.int32()),
            ("symbol", pa.string()),
            ("kind", pa.string()),
            ("content_hash", pa.string()),
            ("text", pa.string()),
            ("search_text", pa.string()),
            ("vector", vector_type(dim, precision)),
            ("repo", pa.string()),  # after the older columns: where migrating an older index adds it (see ensure_repo_column)
            ("file_kind", pa.string()),  # codeseer.index.filekinds: source, test, docs, ... (added by upgrade_tables)
        ]
    )


FILE_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("language", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("file_hash", pa.string()),
        ("chunks", pa.int32()),
        ("repo", pa.string()),  # (repo, path) is a file's key: one index can hold several repositories
        # File-level evidence for the file ranker (codeseer.search.files); added by upgrade_tables to older indexes.
        ("file_kind", pa.string()),
        ("symbols", pa.list_(pa.string())),  # names the file defines, bare and qualified
        ("path_text", pa.string()),  # the path's words, for BM25 over paths
        ("search_text", pa.string()),  # path + whole text + identifier parts, for whole-file BM25
    ]
)
FILE_METADATA = ["repo", "path", "language", "size", "mtime_ns", "file_hash", "chunks"]
FILE_LEVEL_COLUMNS = ("file_kind", "symbols", "path_text", "search_text")


def _journal_name(model: str, dim: int) -> str:
    import hashlib

    return "journal_" + hashlib.sha1(f"{model}|{dim}".encode()).hexdigest()[:12]


def journal_schema(dim: int) -> pa.Schema:
    return pa.schema([("content_hash", pa.string()), ("vector", pa.list_(pa.float32(), dim))])


@dataclass
class IndexState:
    """What a reader needs to open a consistent snapshot, and what the index was built with."""

    root: str
    model: str
    dim: int
    chunks_version: int
    files_version: int
    files: int
    chunks: int
    updated_at: str
    precision: str = "float32"
    recipe: str | None = None  # registry recipe applied to the model (prefixes, pooling)
    calibration: list[list[float]] | None = None  # int8: per-dimension [lo, hi]
    format: int = FORMAT_VERSION
    # Repositories by name -> absolute root; ``root`` stays the only root (or, with several, the
    # folder they share) for older readers. None in indexes built before several repos were possible.
    roots: dict[str, str] | None = None
    revs: dict[str, str] | None = None  # repo name -> commit id, for repos indexed from git (--rev)
    rev: str | None = None  # the commit, when the index holds one repo and it came from git
    file_kinds: int | None = None  # the file-kind rules the files were classified by (filekinds.RULES_VERSION)

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")

    def repo_roots(self) -> dict[str, str]:
        """Repo name -> root; an older index (no ``roots``) is one repo named after its folder."""
        if self.roots:
            return dict(self.roots)
        return {default_repo_name(Path(self.root)): self.root}


def default_repo_name(root: Path) -> str:
    """A repository's name unless NAME=PATH chose one: its folder's name."""
    return Path(root).name or "root"


class DamagedIndex(CodeseerError):
    """The index on disk cannot be read as committed; ``codeseer index --repair`` fixes it."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line: lance appends the Rust source location, which helps nobody."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r",\s*/\S+\.rs:\d+:\d+", "", text)
    text = re.sub(r"^(lance error: )?(LanceError\((\w+)\): )?", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def damaged(directory: Path, exc: BaseException | str) -> DamagedIndex:
    detail = exc if isinstance(exc, str) else one_line(exc)
    return DamagedIndex(f"index at {directory} is damaged ({detail}); {REPAIR_HINT}")


def before_file_kinds(directory: Path) -> CodeseerError:
    """An index written before file kinds still searches; what needs them asks for an update."""
    return CodeseerError(f"the index at {directory} is from before file kinds; run `codeseer index` "
                         "to update it (every vector is reused)")


def state_from_json(raw) -> IndexState:
    """Validate a parsed state (``ValueError`` if it is not one): a hand-edited file must not crash readers."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    if raw.get("format") != FORMAT_VERSION:
        raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT_VERSION}")
    names = {f.name for f in fields(IndexState)}
    raw = {k: v for k, v in raw.items() if k in names}  # keys a newer codeseer added are not damage
    for key in ("root", "model", "updated_at"):
        if not isinstance(raw.get(key), str):
            raise ValueError(f"{key} is missing or not a string")
    for key in ("dim", "chunks_version", "files_version", "files", "chunks"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key} is missing or not a count")
    if raw.get("precision", "float32") not in ("float32", "float16", "int8", "binary"):
        raise ValueError(f"unknown precision {raw.get('precision')!r}")
    if not isinstance(raw.get("recipe"), (str, type(None))):
        raise ValueError("recipe is not a string")
    calibration = raw.get("calibration")
    if calibration is not None and not (
        isinstance(calibration, list) and len(calibration) == 2
        and all(isinstance(row, list) and len(row) == raw["dim"] for row in calibration)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for row in calibration for x in row)
    ):
        raise ValueError("calibration is not two rows of one number per dimension")
    for key in ("roots", "revs"):
        value = raw.get(key)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            raise ValueError(f"{key} is not a mapping of names to strings")
    if not isinstance(raw.get("rev"), (str, type(None))):
        raise ValueError("rev is not a string")
    return IndexState(**raw)


def consistency_problem(chunk_table: pa.Table, file_table: pa.Table) -> str | None:
    """What makes a chunks/files pair inconsistent (duplicates, orphans, wrong counts), or None."""
    from collections import Counter

    ids = chunk_table["chunk_id"].to_pylist()
    if len(set(ids)) != len(ids):
        return "duplicate chunk ids"
    paths = file_keys(file_table)
    if len(set(paths)) != len(paths):
        return "duplicate file rows"
    per_path = Counter(file_keys(chunk_table))
    expected = dict(zip(paths, file_table["chunks"].to_pylist()))
    orphans = set(per_path) - set(expected)
    if orphans:
        return f"chunks of {len(orphans)} files that are not in the files table"
    wrong = [p for p, n in expected.items() if per_path.get(p, 0) != n]
    if wrong:
        return f"chunk counts of {len(wrong)} files do not match"
    return None


def file_keys(table: pa.Table) -> list:
    """(repo, path) of each row: a file's key; (None, path) in an index from before the repo column."""
    paths = table["path"].to_pylist()
    repos = table["repo"].to_pylist() if "repo" in table.column_names else [None] * len(paths)
    return list(zip(repos, paths))


def column_values(table, column: str) -> list:
    """One column of a table, read without the others (vectors stay on disk)."""
    return table.search().select([column]).limit(None).to_arrow().column(column).to_pylist()


def read_arrow(table, columns: list[str], where: str | None = None) -> pa.Table:
    """The rows of ``table`` that match ``where`` (all without), only ``columns``."""
    builder = table.search()
    if where:
        builder = builder.where(where)
    return builder.select(columns).limit(None).to_arrow()


def read_rows(table, columns: list[str], where: str | None = None) -> list[dict]:
    return read_arrow(table, columns, where).to_pylist()


def fts_columns(table) -> list[str]:
    """The columns of ``table`` that have a BM25 (full-text) index."""
    return [column for idx in table.list_indices() if idx.index_type == "FTS" for column in idx.columns]


def sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(sql_quote(v) for v in values)})"


class IndexStore:
    """One index directory (default ``<repo>/.codeseer``), or a URI (:mod:`codeseer.index.uri`: no lock there)."""

    stale_roots = False  # the state read holds roots as an older codeseer wrote them, or from before a move

    def __init__(self, directory: Path | str) -> None:
        uri = as_uri(directory)
        self.directory = UriPath(uri) if uri else Path(directory)
        self.remote = uri is not None
        self._db = None

    # -- locating ---------------------------------------------------------------------------
    @classmethod
    def find(cls, start: Path) -> "IndexStore":
        """The index in ``start`` or its nearest parent that has one, as git finds ``.git``."""
        found = find_index_dir(start)
        if found is None:
            raise CodeseerError(f"no codeseer index found in {Path(start).resolve()} or its parents; run `codeseer index` first")
        return cls(found)

    @classmethod
    def open_existing(cls, directory: Path) -> "IndexStore":
        store = cls(directory)
        if store.remote:
            if not is_index_dir(store.directory):
                raise CodeseerError(f"no codeseer index at {directory}; run `codeseer index` first")
            return store
        found = existing_index_dir(store.directory)
        if found is None:
            raise CodeseerError(f"no codeseer index at {directory}; run `codeseer index` first")
        return cls(found)

    # -- state --------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def read_state(self) -> IndexState | None:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if (self.directory / HISTORY_FILE).is_file():  # commits happened: the state was lost, not never made
                raise DamagedIndex(f"index state {self.state_path} is missing; {REPAIR_HINT}") from None
            return None
        except (OSError, ValueError) as exc:
            raise DamagedIndex(f"index state {self.state_path} is unreadable ({one_line(exc)}); {REPAIR_HINT}") from exc
        if isinstance(raw, dict) and isinstance(raw.get("format"), int) and raw["format"] != FORMAT_VERSION:
            raise CodeseerError(f"index at {self.directory} has format {raw.get('format')}, expected {FORMAT_VERSION}; rebuild with `codeseer index --rebuild`")
        try:
            state = self._in_memory(state_from_json(raw))
            self.stale_roots = raw != self._on_disk(state)  # moved, or written before relative roots
            return state
        except (TypeError, ValueError) as exc:
            raise DamagedIndex(f"index state {self.state_path} is invalid ({one_line(exc)}); {REPAIR_HINT}") from exc

    # Roots on disk: relative to the index folder when the index lives inside them (``..`` for
    # REPO/.codeseer), so a copied, moved or renamed repository takes its index along; absolute
    # otherwise. In memory they are always absolute.
    def _on_disk(self, state: IndexState) -> dict:
        data = asdict(state)
        if self.remote:
            return data
        here = Path(os.path.abspath(self.directory))

        def stored(root: str) -> str:
            path = Path(root)
            return os.path.relpath(path, here) if path.is_absolute() and here.is_relative_to(path) else root

        data["root"] = stored(state.root)
        if state.roots:
            data["roots"] = {name: stored(root) for name, root in state.roots.items()}
        return data

    def _in_memory(self, state: IndexState) -> IndexState:
        if self.remote:
            return state
        here = Path(os.path.abspath(self.directory))

        def loaded(root: str) -> str:
            return root if Path(root).is_absolute() else os.path.normpath(here / root)

        roots = {name: loaded(root) for name, root in state.roots.items()} if state.roots else None
        root = loaded(state.root)
        # An index written before roots were stored relative, moved with its repository: its one root
        # is where the index now is (REPO/.codeseer), not the folder the repository left.
        single = roots is None or len(roots) == 1
        if single and here.name == INDEX_DIRNAME and not Path(root).exists() and Path(root) != here.parent:
            root = str(here.parent)
            if roots:
                roots = {next(iter(roots)): root}
        return dataclasses.replace(state, root=root, roots=roots)

    def write_state(self, state: IndexState) -> None:
        """Atomic commit point: a reader sees the old state or the new one, never a mix."""
        self._write_json(self.state_path, self._on_disk(state))
        try:  # after the commit point: losing the history only costs --repair a fallback
            history = [self._on_disk(state)] + [
                self._on_disk(s) for s in self.read_history()
                if (s.chunks_version, s.files_version) != (state.chunks_version, state.files_version)
            ]
            self._write_json(self.directory / HISTORY_FILE, history[:HISTORY_KEEP])
        except OSError:
            pass

    def _write_json(self, path: Path, value) -> None:
        if self.remote:  # a temporary key moved over the real one: atomic per object
            path.write_text_atomic(json.dumps(value, indent=2))
            return
        tmp = path.with_suffix(".json.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(value, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                tmp.unlink(missing_ok=True)  # a half-written temp file on a full disk frees its space
            except OSError:
                pass
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read_history(self) -> list[IndexState]:
        """Previously committed states, newest first (unreadable entries are left out)."""
        try:
            raw = json.loads((self.directory / HISTORY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        states = []
        for entry in raw if isinstance(raw, list) else []:
            try:
                states.append(self._in_memory(state_from_json(entry)))
            except (TypeError, ValueError):
                continue
        return states

    # -- tables -------------------------------------------------------------------------------
    @property
    def db(self):
        if self._db is None:
            self._db = lancedb.connect(str(self.directory / "lance"))
        return self._db

    def table_names(self) -> set[str]:
        result = self.db.list_tables()
        names = getattr(result, "tables", result)
        return set(names)

    def snapshot(self, state: IndexState):
        """Read-only chunks and files tables at the committed versions."""
        try:
            chunks = self.db.open_table(CHUNKS)
            chunks.checkout(state.chunks_version)
            files = self.db.open_table(FILES)
            files.checkout(state.files_version)
        except Exception as exc:
            raise damaged(self.directory, exc) from exc
        return chunks, files

    def verify(self, state: IndexState) -> str | None:
        """Why the snapshot of ``state`` cannot be served (every column read in full), or None if it can."""
        try:
            chunks, files = self.snapshot(state)
            chunk_table = chunks.to_arrow()
            file_table = files.to_arrow()
            if len(chunk_table) != state.chunks or len(file_table) != state.files:
                return (f"{len(chunk_table)} chunks and {len(file_table)} files on disk, "
                        f"{state.chunks} and {state.files} committed")
            problem = consistency_problem(chunk_table, file_table)
            if problem:
                return problem
            if chunk_table.schema.field("vector").type != vector_type(state.dim, state.precision):
                return "vectors do not match the committed dimension or precision"
            for table, rows in ((chunks, len(chunk_table)), (files, len(file_table))):
                for column in fts_columns(table):
                    if rows:
                        table.search("probe", query_type="fts", fts_columns=column).limit(1).to_arrow()
        except DamagedIndex as exc:
            return one_line(exc.__cause__ or exc)
        except Exception as exc:
            return one_line(exc)
        return None

    def writable_tables(self, state: IndexState | None, dim: int, precision: str = "float32"):
        """Tables rolled back to the committed state (undoing a killed writer's partial work)."""
        names = self.table_names()
        if state is None:
            for name in (CHUNKS, FILES):
                if name in names:
                    self._drop_quietly(name)
            chunks = self.db.create_table(CHUNKS, schema=chunk_schema(dim, precision))
            files = self.db.create_table(FILES, schema=FILE_SCHEMA)
            return chunks, files
        chunks = self.db.open_table(CHUNKS)
        files = self.db.open_table(FILES)
        for table, version in ((chunks, state.chunks_version), (files, state.files_version)):
            if table.version != version:
                table.restore(version)
        return chunks, files

    def ensure_repo_column(self, tables, repo: str) -> None:
        """Give the tables of an index built before the ``repo`` column one, holding its single repo.

        Part of a write (before the commit point): a killed run's added column is rolled back
        with the rest of its work, and older snapshots keep reading as they were.
        """
        for table in tables:
            if "repo" not in table.schema.names:
                table.add_columns({"repo": sql_quote(repo)})

    @staticmethod
    def has_file_level(table) -> bool:
        """Whether a files table holds the file-level columns (indexes from before them do not)."""
        return all(name in table.schema.names for name in FILE_LEVEL_COLUMNS)

    def upgrade_tables(self, chunks, files) -> None:
        """Add the file-level columns (empty) to the tables of an index from before them.

        Part of a write (before the commit point), like :meth:`ensure_repo_column`; the run that
        calls this rewrites every row, so none stays empty.
        """
        for table, schema in ((chunks, chunk_schema(1)), (files, FILE_SCHEMA)):
            missing = [field for field in schema
                       if field.name in FILE_LEVEL_COLUMNS and field.name not in table.schema.names]
            if missing:
                table.add_columns(pa.schema(missing))

    def journal(self, model: str, dim: int):
        """Vectors embedded by the current (possibly killed) run, so a rerun need not redo them.

        The journal is only a cache: one a killed run left half-created (a folder without a
        manifest) or unreadable is dropped and started again rather than blocking every later run.
        """
        name = _journal_name(model, dim)
        if name in self.table_names():
            try:
                table = self.db.open_table(name)
                if table.schema == journal_schema(dim):
                    table.count_rows()
                    return table
            except Exception:
                pass
            self._drop_quietly(name)
        return self.db.create_table(name, schema=journal_schema(dim))

    def drop_journal(self, model: str, dim: int) -> None:
        """Forget the journal of ``model``/``dim`` (it is only a cache); :meth:`journal` starts a new one."""
        self._drop_quietly(_journal_name(model, dim))

    def journal_vectors(self, model: str, dim: int) -> dict:
        """content hash -> vector from the journal of ``model``/``dim``, as far as it reads."""
        try:
            table = self.journal(model, dim).to_arrow()
        except Exception:
            return {}
        return dict(zip(table["content_hash"].to_pylist(), table["vector"].to_pylist()))

    def drop_journals(self) -> None:
        for name in self.table_names():
            if name.startswith("journal_"):
                self._drop_quietly(name)

    def _drop_quietly(self, name: str) -> None:
        try:
            self.db.drop_table(name)
        except Exception:
            import shutil

            if self.remote:
                (self.directory / "lance" / f"{name}.lance").rmtree()
                return
            shutil.rmtree(self.directory / "lance" / f"{name}.lance", ignore_errors=True)

    def drop_all(self) -> None:
        # History and state go first: a rebuild killed half-way leaves "no index", never a dangling state.
        (self.directory / HISTORY_FILE).unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)
        for name in self.table_names():
            self._drop_quietly(name)

    # -- locking ------------------------------------------------------------------------------
    @contextmanager
    def write_lock(self):
        created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.remote:  # no flock on object stores: one writer at a time is the user's job
            yield
            return
        path = self.directory / LOCK_FILE
        try:
            yield from self._locked(path)
        finally:
            # A first run that failed before anything was written (an empty folder): leave no trace.
            if created and not is_index_dir(self.directory):
                path.unlink(missing_ok=True)
                try:
                    self.directory.rmdir()
                except OSError:  # it holds something (a killed run's vectors): keep it for the next run
                    pass

    def _locked(self, path: Path):
        fh = open(path, "a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise CodeseerError(
                    f"index {self.directory} is being written by {holder}; wait for it to finish"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
            yield
        finally:
            fh.close()


def open_store(index_dir: Path | str | None = None, *, cwd: Path | None = None) -> IndexStore:
    """``index_dir`` when given, else the index of the repository around ``cwd`` (``.codeseer``)."""
    if index_dir:
        return IndexStore.open_existing(Path(index_dir).expanduser())
    return IndexStore.find(cwd or Path.cwd())
