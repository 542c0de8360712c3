"""Find the files worth indexing: honour .gitignore/.codeseerignore, skip what is not source.

Skipped on purpose: binary files, files over 1 MiB, generated or minified code, vendored trees
(node_modules, vendor, ...) and anything git would ignore. Symlinked directories are not followed
(no loops, nothing outside the root); symlinked files are kept only if they resolve inside it.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from codeseer.index.languages import detect_language

MAX_FILE_BYTES = 1 << 20
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


@dataclass
class WalkStats:
    skipped: Counter = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1


class _IgnoreRules:
    """Stack of gitignore specs, each anchored at the directory that holds it."""

    def __init__(self) -> None:
        self._specs: list[tuple[str, pathspec.PathSpec]] = []

    def push(self, rel_dir: str, directory: Path) -> int:
        lines: list[str] = []
        for name in IGNORE_FILES:
            try:
                lines += (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
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

    def visit(directory: Path, rel_dir: str) -> Iterator[SourceFile]:
        pushed = rules.push(rel_dir, directory)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            stats.skip("unreadable")
            rules.pop(pushed)
            return
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name in SKIP_DIRS or entry.name.endswith(".egg-info"):
                        continue
                    if not rules.ignored(rel, is_dir=True):
                        yield from visit(Path(entry.path), rel)
                    continue
                if entry.is_symlink():
                    target = Path(entry.path).resolve()
                    if not target.is_file() or not target.is_relative_to(root):
                        stats.skip("symlink")
                        continue
                elif not entry.is_file(follow_symlinks=False):
                    continue
                if rules.ignored(rel, is_dir=False):
                    continue
                language = detect_language(rel)
                if language is None:
                    continue
                st = entry.stat()
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
        rules.pop(pushed)

    yield from visit(root, "")


def read_source(file: SourceFile, stats: WalkStats) -> str | None:
    """The file's text, or None (counted in ``stats``) if it is binary, generated or not UTF-8."""
    try:
        data = file.abs.read_bytes()
    except OSError:
        stats.skip("unreadable")
        return None
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
