"""The on-disk index: LanceDB tables plus a small ``state.json`` naming the committed versions.

Crash safety comes from one rule: readers only ever open the table versions recorded in
``state.json``, and a writer replaces that file atomically (write, fsync, rename) as its very last
step. Whatever a killed writer left behind is newer than the committed versions, invisible to
readers, and rolled back by the next writer. A file lock (released by the kernel even on SIGKILL)
keeps two writers apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from codeseer.errors import CodeseerError

os.environ.setdefault("LANCE_LOG", "error")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="lancedb")

import lancedb  # noqa: E402  (LANCE_LOG must be set first)

INDEX_DIRNAME = ".codeseer"
STATE_FILE = "state.json"
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
    ]
)


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

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")


def column_values(table, column: str) -> list:
    """One column of a table, read without the others (vectors stay on disk)."""
    return table.search().select([column]).limit(None).to_arrow().column(column).to_pylist()


def sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(sql_quote(v) for v in values)})"


class IndexStore:
    """One index directory (default ``<repo>/.codeseer``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._db = None

    # -- locating ---------------------------------------------------------------------------
    @classmethod
    def find(cls, start: Path) -> "IndexStore":
        """The index in ``start`` or its nearest parent that has one, as git finds ``.git``."""
        start = start.resolve()
        for directory in (start, *start.parents):
            candidate = directory / INDEX_DIRNAME
            if (candidate / STATE_FILE).is_file():
                return cls(candidate)
        raise CodeseerError(f"no codeseer index found in {start} or its parents; run `codeseer index` first")

    @classmethod
    def open_existing(cls, directory: Path) -> "IndexStore":
        store = cls(directory)
        if not (store.directory / STATE_FILE).is_file():
            nested = store.directory / INDEX_DIRNAME
            if (nested / STATE_FILE).is_file():
                return cls(nested)
            raise CodeseerError(f"no codeseer index at {directory}; run `codeseer index` first")
        return store

    # -- state --------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def read_state(self) -> IndexState | None:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CodeseerError(f"index state {self.state_path} is unreadable ({exc}); rebuild with `codeseer index --rebuild`") from exc
        if raw.get("format") != FORMAT_VERSION:
            raise CodeseerError(f"index at {self.directory} has format {raw.get('format')}, expected {FORMAT_VERSION}; rebuild with `codeseer index --rebuild`")
        return IndexState(**raw)

    def write_state(self, state: IndexState) -> None:
        """Atomic commit point: a reader sees the old state or the new one, never a mix."""
        tmp = self.state_path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(asdict(state), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

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
            raise CodeseerError(f"index at {self.directory} is damaged ({exc}); rebuild with `codeseer index --rebuild`") from exc
        return chunks, files

    def writable_tables(self, state: IndexState | None, dim: int, precision: str = "float32"):
        """Tables rolled back to the committed state (undoing a killed writer's partial work)."""
        names = self.table_names()
        if state is None:
            for name in (CHUNKS, FILES):
                if name in names:
                    self.db.drop_table(name)
            chunks = self.db.create_table(CHUNKS, schema=chunk_schema(dim, precision))
            files = self.db.create_table(FILES, schema=FILE_SCHEMA)
            return chunks, files
        chunks = self.db.open_table(CHUNKS)
        files = self.db.open_table(FILES)
        for table, version in ((chunks, state.chunks_version), (files, state.files_version)):
            if table.version != version:
                table.restore(version)
        return chunks, files

    def journal(self, model: str, dim: int):
        """Vectors embedded by the current (possibly killed) run, so a rerun need not redo them."""
        import hashlib

        name = "journal_" + hashlib.sha1(f"{model}|{dim}".encode()).hexdigest()[:12]
        if name in self.table_names():
            return self.db.open_table(name)
        return self.db.create_table(name, schema=journal_schema(dim))

    def drop_journals(self) -> None:
        for name in self.table_names():
            if name.startswith("journal_"):
                self.db.drop_table(name)

    def drop_all(self) -> None:
        for name in self.table_names():
            self.db.drop_table(name)
        self.state_path.unlink(missing_ok=True)

    # -- locking ------------------------------------------------------------------------------
    @contextmanager
    def write_lock(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_FILE
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
