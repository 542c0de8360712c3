"""Commits as (what the developer wrote, what they changed): the raw material of repository
benchmarks (``codeseer data repo-tasks``) and of training pairs from history.

A commit qualifies when it is not a merge, its subject reads like a change description (no
version bumps, merges, releases, typo/lint/format fixes, dependency updates...) and it changes
between 1 and ``max_files`` source files (by :func:`codeseer.index.filekinds.file_kind`: no tests,
docs, type stubs or config) in a language codeseer parses; tests and docs may change alongside.
The functions a commit touched are read from its diff hunks, mapped onto the chunks of each file
*as it was at the parent commit*.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from codeseer.errors import CodeseerError
from codeseer.index.filekinds import SOURCE, file_kind
from codeseer.index.gitsource import git, resolve_commit
from codeseer.index.languages import detect_language, is_structural

__all__ = ["Commit", "CommitFilter", "changed_functions", "clean_subject", "definitions", "iter_commits",
           "subject_problem"]

MIN_WORDS = 3
MAX_SUBJECT_CHARS = 200
_PR_SUFFIX = re.compile(r"\s*(?:\((?:#|GH-|gh-)\d+\)|\[#\d+\]|#\d+)\s*$")
_PR_PREFIX = re.compile(r"^\s*(?:\[#?\d+\]|#\d+:?)\s*")
_SKIP_SUBJECT = re.compile(
    r"^\s*(?:merge\b|revert\b|release\b|releasing\b|bump\b|version\b|v?\d+(?:\.\d+)+\b|prepare\b|wip\b|"
    r"chore\(deps|build\(deps|deps\b|update (?:changelog|readme|docs|copyright|dependencies)|changelog\b|"
    r"\[?skip ci|auto-?update|pre-commit|dependabot|initial commit)"
    r"|\b(?:typos?|lint(?:ing|er)?|reformat(?:ted)?|formatting|format code|fix(?:ed)? spelling|whitespace|"
    r"copyright year|bump(?:ed)? (?:version|to)|release notes|clippy|rustfmt|gofmt|prettier|black|isort|flake8)\b",
    re.IGNORECASE,
)


def clean_subject(subject: str) -> str:
    """The subject without its pull-request number (``Fix x (#123)`` -> ``Fix x``)."""
    subject = _PR_PREFIX.sub("", subject.strip())
    return _PR_SUFFIX.sub("", subject).strip()


def subject_problem(subject: str) -> str | None:
    """Why a subject is not a change description (a filter's name), or None when it is one."""
    if not subject:
        return "empty message"
    if _SKIP_SUBJECT.search(subject):
        return "bump/merge/release/typo/lint/format"
    if len(re.findall(r"[A-Za-z]{2,}", subject)) < MIN_WORDS:
        return "too short"
    if len(subject) > MAX_SUBJECT_CHARS:
        return "too long"
    return None


@dataclass
class Commit:
    commit: str
    parents: list[str]
    subject: str  # cleaned
    body: str
    files: list[str]  # every path the commit changed
    source_files: list[str] = field(default_factory=list)  # the non-test source files among them

    @property
    def first_paragraph(self) -> str:
        """The body's first paragraph (a second way the developer said what changed), or ``""``."""
        for paragraph in re.split(r"\n\s*\n", self.body.strip()):
            text = " ".join(paragraph.split())
            if text and not re.match(r"^(?:signed-off-by|co-authored-by|fixes|closes|refs?)\b", text, re.I):
                return text
        return ""


@dataclass
class CommitFilter:
    """Which commits qualify, and counts of why the others did not."""

    max_files: int = 3
    present: set[str] | None = None  # source files must exist here (a snapshot's paths), when given
    counts: Counter = field(default_factory=Counter)

    def source_files(self, files: list[str]) -> list[str]:
        out = []
        for path in files:
            language = detect_language(path)
            if is_structural(language) and file_kind(path, language) == SOURCE:
                out.append(path)
        return out

    def accept(self, commit: Commit) -> bool:
        self.counts["commits"] += 1
        if len(commit.parents) != 1:
            return self._no("merge or root commit")
        problem = subject_problem(commit.subject)
        if problem:
            return self._no(problem)
        commit.source_files = self.source_files(commit.files)
        if not commit.source_files:
            return self._no("no source file changed")
        if len(commit.source_files) > self.max_files:
            return self._no(f"more than {self.max_files} source files")
        if self.present is not None and any(f not in self.present for f in commit.source_files):
            return self._no("a changed file is gone at the snapshot")
        self.counts["kept"] += 1
        return True

    def _no(self, why: str) -> bool:
        self.counts[why] += 1
        return False


def iter_commits(root: Path, rev: str = "HEAD") -> Iterator[Commit]:
    """Every commit reachable from ``rev``, newest first, with the paths it changed (renames as delete + add)."""
    commit = resolve_commit(root, rev)
    out = git(root, "-c", "core.quotepath=off", "log", "--no-renames", "--no-color", "--no-ext-diff",
              "--format=%x1e%H%x1f%P%x1f%s%x1f%b%x1f", "--name-only", commit, "--")
    for record in out.decode("utf-8", "replace").split("\x1e"):
        if not record.strip():
            continue
        fields = record.split("\x1f")
        if len(fields) < 5:
            continue
        sha, parents, subject, body, names = fields[0], fields[1], fields[2], fields[3], fields[-1]
        yield Commit(sha.strip(), parents.split(), clean_subject(subject), body,
                     [line for line in names.splitlines() if line.strip()])


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", re.MULTILINE)


def old_line_ranges(root: Path, parent: str, commit: str, path: str) -> list[tuple[float, float]]:
    """Line ranges of ``path`` at ``parent`` that ``commit`` changed.

    A pure insertion after line ``a`` is the point ``a + 0.5``: it changes a function only when it
    lands inside one, not when it adds a new function after the last line of another.
    """
    diff = git(root, "diff", "-U0", "--no-color", "--no-ext-diff", "--no-renames", parent, commit, "--", path)
    ranges: list[tuple[float, float]] = []
    for start, count in _HUNK.findall(diff.decode("utf-8", "replace")):
        first, n = int(start), int(count) if count else 1
        if n == 0:
            ranges.append((first + 0.5, first + 0.5))
        else:
            ranges.append((first, first + n - 1))
    return ranges


def read_at(root: Path, commit: str, path: str) -> str | None:
    """The text of ``path`` at ``commit``, or None (absent, binary or not UTF-8)."""
    try:
        data = git(root, "cat-file", "blob", f"{commit}:{path}")
    except CodeseerError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def changed_functions(root: Path, commit: Commit) -> list[dict]:
    """The functions, methods (or, with none of those, classes) each source file's diff touched, as
    they were at the parent commit: ``{"path", "symbol", "kind", "start_line", "end_line", "text"}``."""
    from codeseer.index.chunking import chunk_source

    if len(commit.parents) != 1:
        return []
    parent = commit.parents[0]
    found = []
    for path in commit.source_files:
        text = read_at(root, parent, path)
        if text is None:  # a new file: nothing existed to change
            continue
        ranges = old_line_ranges(root, parent, commit.commit, path)
        chunks = [c for c in chunk_source(path, text, detect_language(path)) if c.symbol]
        touched = [c for c in chunks if any(c.start_line <= end and start <= c.end_line for start, end in ranges)]
        functions = [c for c in touched if c.kind in ("function", "method")]
        for entry in definitions(text, functions or [c for c in touched if c.kind == "class"]):
            found.append({"path": path, **entry})
    return found


def definitions(text: str, chunks) -> list[dict]:
    """Whole definitions from chunks: the parts a long function was split into are one function, but only
    where they adjoin: two definitions that share a name (overloads, a header's many ``operator==``) stay
    two, rather than one span from the first to the last (a whole file, in simdjson's headers)."""
    merged: list[dict] = []
    last: dict[str, dict] = {}
    for c in sorted(chunks, key=lambda c: (c.start_line, c.end_line)):
        entry = last.get(c.symbol)
        if entry is not None and c.start_line <= entry["end_line"] + 2:
            entry["end_line"] = max(entry["end_line"], c.end_line)
            continue
        last[c.symbol] = {"symbol": c.symbol, "kind": c.kind, "start_line": c.start_line, "end_line": c.end_line}
        merged.append(last[c.symbol])
    lines = text.split("\n")
    for entry in merged:
        entry["text"] = "\n".join(lines[entry["start_line"] - 1: entry["end_line"]])
    return merged
