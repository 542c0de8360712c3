"""Find the files worth indexing: honour .gitignore/.codeseerignore, skip what is not source.

Skipped on purpose: binary files, files over 1 MiB, generated or minified code, vendored trees
(node_modules, vendor, ...) and anything git would ignore. Symlinked directories are not followed
(no loops, nothing outside the root); symlinked files are kept only if they resolve inside it.

Hostile trees are survived, not trusted: only regular files are ever opened, without blocking (a
FIFO or device swapped in after the walk is skipped, never waited on); no read goes past the size
limit, even for a file that grew after it was listed; symlink loops and names that are not UTF-8
are skipped; directory depth is bounded only by the file system (the walk is iterative).
"""

from __future__ import annotations

import os
import re
import stat as stat_module
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from codeseer.index.languages import detect_language

MAX_FILE_BYTES = 1 << 20
MAX_IGNORE_FILE_BYTES = 1 << 20
IGNORE_FILES = (".gitignore", ".codeseerignore")
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".codeseer", "node_modules", "bower_components", "vendor",
        "third_party", "third-party", ".venv", "venv", "__pycache__", "site-packages", ".tox",
        ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea", ".vscode", ".eggs",
        ".next", ".nuxt", ".gradle", ".terraform",
    }
)
GENERATED_NAME = re.compile(
    r"(\.min\.(js|css)|\.map|\.lock|-lock\.json|_pb2(_grpc)?\.pyi?|\.pb\.(go|cc|h)|\.generated\.\w+|\.g\.dart)$"
)
GENERATED_MARK = re.compile(rb"(@generated|DO NOT EDIT|automatically generated)", re.I)


@dataclass(frozen=True, slots=True)
class SourceFile:
    rel: str  # posix path relative to the root
    abs: Path
    language: str
    size: int
    mtime_ns: int
    repo: str = ""  # the repository it belongs to, in an index of several (see codeseer.index.indexer)
    blob: str | None = None  # git blob id when read from git objects (codeseer.index.gitsource), not disk


@dataclass
class WalkStats:
    skipped: Counter = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1


class _NotRegular(OSError):
    """The path is a FIFO, socket, device or directory: never read it."""


class _TooLarge(OSError):
    """The file is over the size limit (perhaps only since it was listed)."""


def _read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file, opened without blocking (a FIFO never hangs us)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat_module.S_ISREG(st.st_mode):
            raise _NotRegular(f"not a regular file: {path}")
        if st.st_size > limit:
            raise _TooLarge(f"over {limit} bytes: {path}")
        chunks: list[bytes] = []
        remaining = limit + 1  # one byte more tells a file that grew past the limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise _TooLarge(f"over {limit} bytes: {path}")
        return data
    finally:
        os.close(fd)


class _IgnoreRules:
    """Stack of gitignore specs, each anchored at the directory that holds it."""

    def __init__(self) -> None:
        self._specs: list[tuple[str, pathspec.PathSpec]] = []

    def push(self, rel_dir: str, directory: Path) -> int:
        lines: list[str] = []
        for name in IGNORE_FILES:
            try:
                data = _read_regular(directory / name, MAX_IGNORE_FILE_BYTES)
            except OSError:
                continue
            lines += data.decode("utf-8", errors="replace").splitlines()
        if lines:
            self._specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(lines)))
            return 1
        return 0

    def pop(self, count: int) -> None:
        if count:
            del self._specs[-count:]

    def ignored(self, rel: str, is_dir: bool) -> bool:
        for base, spec in self._specs:
            sub = rel[len(base) + 1 :] if base else rel
            if spec.match_file(sub + "/" if is_dir else sub):
                return True
        return False


def looks_generated(head: bytes, text_sample: bytes) -> bool:
    """Generated headers in the first lines, or minified code (very long lines on average)."""
    if GENERATED_MARK.search(head):
        return True
    lines = text_sample.splitlines()
    if not lines:
        return False
    longest = max(len(line) for line in lines)
    return longest > 1000 and len(text_sample) / len(lines) > 200


def walk(root: Path, stats: WalkStats | None = None) -> Iterator[SourceFile]:
    """Yield indexable files under ``root`` in a stable (sorted) order."""
    stats = stats if stats is not None else WalkStats()
    root = root.resolve()
    rules = _IgnoreRules()
    # Depth-first with an explicit stack: a hostile tree thousands of folders deep must not hit
    # Python's recursion limit. Each frame: (rel_dir, sorted entries, ignore specs it pushed).
    stack: list[tuple[str, Iterator[os.DirEntry], int]] = []

    def enter(directory: Path, rel_dir: str) -> None:
        pushed = rules.push(rel_dir, directory)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            stats.skip("unreadable")
            rules.pop(pushed)
            return
        stack.append((rel_dir, iter(entries), pushed))

    enter(root, "")
    while stack:
        rel_dir, entries, pushed = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            rules.pop(pushed)
            continue
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:  # not UTF-8 on disk: the index (Arrow strings, JSON) cannot hold it
            stats.skip("file name not utf-8")
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name in SKIP_DIRS or entry.name.endswith(".egg-info"):
                    continue
                if not rules.ignored(rel, is_dir=True):
                    enter(Path(entry.path), rel)
                continue
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.is_file() or not target.is_relative_to(root):
                    stats.skip("symlink")
                    continue
            elif not entry.is_file(follow_symlinks=False):
                continue  # FIFOs, sockets, devices
            if rules.ignored(rel, is_dir=False):
                continue
            language = detect_language(rel)
            if language is None:
                continue
            st = entry.stat()
        except RuntimeError:  # Python 3.11 reports a symlink loop this way (3.13: OSError)
            stats.skip("symlink")
            continue
        except OSError:
            stats.skip("unreadable")
            continue
        if st.st_size > MAX_FILE_BYTES:
            stats.skip("too large")
            continue
        if GENERATED_NAME.search(entry.name):
            stats.skip("generated")
            continue
        yield SourceFile(rel, Path(entry.path), language, st.st_size, st.st_mtime_ns)


def read_source(file: SourceFile, stats: WalkStats) -> str | None:
    """The file's text, or None (counted in ``stats``) if it is binary, generated or not UTF-8.

    Also None when the file changed since the walk into something we will not read: gone,
    not a regular file any more, or grown past the size limit (read no further than that).
    """
    try:
        data = _read_regular(file.abs, MAX_FILE_BYTES)
    except _TooLarge:
        stats.skip("too large")
        return None
    except _NotRegular:
        stats.skip("not a regular file")
        return None
    except OSError:
        stats.skip("unreadable")
        return None
    return decode_source(data, stats)


def decode_source(data: bytes, stats: WalkStats) -> str | None:
    """A file's bytes as text, or None (counted) if binary, generated or not UTF-8: shared with git ingest."""
    if b"\0" in data[:8192]:
        stats.skip("binary")
        return None
    if looks_generated(data[:600], data[:65536]):
        stats.skip("generated")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        stats.skip("not utf-8")
        return None
    return text.lstrip("\ufeff")
