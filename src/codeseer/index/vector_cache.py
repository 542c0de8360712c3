"""A machine-wide cache of document vectors, keyed by (embedder fingerprint, content hash).

An index already reuses its own vectors; this cache lets *other* indexes reuse them too: a second
clone, another branch checked out elsewhere, a fork, the same vendored library in ten repositories.
It is SQLite (WAL mode) because several ``codeseer index`` processes may read and write it at once,
and it is only ever a cache: any error disables it for the run and indexing goes on.

Location: ``$CODESEER_CACHE/vectors.sqlite`` (default ``~/.cache/codeseer``, shared with the eval
cache); ``CODESEER_VECTOR_CACHE`` names another file, or turns the cache off with ``0``/``off``.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from codeseer.paths import cache_dir

CACHE_FILE = "vectors.sqlite"
_BATCH = 500  # SQLite's default variable limit is 999 on old builds


_OFF = ("0", "false", "no", "off")


def cache_path() -> Path:
    setting = os.environ.get("CODESEER_VECTOR_CACHE", "").strip()
    if setting and setting.lower() not in _OFF + ("1", "true", "yes", "on"):
        return Path(setting).expanduser()
    return cache_dir() / CACHE_FILE


def cache_enabled() -> bool:
    return os.environ.get("CODESEER_VECTOR_CACHE", "1").strip().lower() not in _OFF


class VectorCache:
    """``get``/``put`` float32 vectors for one embedder fingerprint; silent no-ops once broken."""

    def __init__(self, key: str, dim: int, path: Path | None = None) -> None:
        self.key = key
        self.dim = dim
        self.path = path or cache_path()
        self.hits = 0
        self._db: sqlite3.Connection | None = None
        self._broken = not cache_enabled()

    def _connect(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, content_hash TEXT NOT NULL, "
                    "vector BLOB NOT NULL, PRIMARY KEY (model, content_hash)) WITHOUT ROWID"
                )
                self._db = db
            except (sqlite3.Error, OSError) as exc:
                self._disable(exc)
        return self._db

    def _disable(self, exc: BaseException) -> None:
        self._broken = True
        warnings.warn(f"vector cache {self.path} disabled for this run: {exc}", RuntimeWarning, stacklevel=3)
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def get(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        db = self._connect()
        found: dict[str, np.ndarray] = {}
        if db is None:
            return found
        wanted = list(hashes)
        try:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows = db.execute(
                    f"SELECT content_hash, vector FROM vectors WHERE model = ? AND content_hash IN ({marks})",
                    [self.key, *batch],
                )
                for digest, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self.dim,):
                        found[digest] = vector.copy()
        except sqlite3.Error as exc:
            self._disable(exc)
            return {}
        self.hits += len(found)
        return found

    def put(self, hashes: list[str], vectors: np.ndarray) -> None:
        db = self._connect()
        if db is None or not hashes:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR IGNORE INTO vectors (model, content_hash, vector) VALUES (?, ?, ?)",
                [(self.key, h, v.tobytes()) for h, v in zip(hashes, vectors)],
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._disable(exc)

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
