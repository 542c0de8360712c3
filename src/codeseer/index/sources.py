"""Listing a repo's source files, and reading them: from the disk (the walker) or from a git commit.

Its own room because an index run should not care where files come from. Both listings answer the
same three questions: which files there are (``sources``), which of them may have changed since the
committed snapshot (``candidates``: by size/mtime on disk, by ``git diff`` between commits), and
what a file says (``read``). The run decides what to do with the answers; the state it commits
records where they came from (:func:`record_sources`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from codeseer.index.store import IndexState
from codeseer.index.walker import IGNORE_FILES, SourceFile, WalkStats, read_source, walk


class DiskListing:
    """A repo's files as they are on disk (the walker); a file is read again when its mtime or size moved.

    ``read_file`` reads one file (the walker's :func:`~codeseer.index.walker.read_source` unless the
    caller hands its own).
    """

    changed = None

    def __init__(self, name: str, root: Path, stats: WalkStats,
                 read_file: Callable[[SourceFile, WalkStats], str | None] = read_source) -> None:
        self.sources = [dataclasses.replace(s, repo=name) for s in walk(root, stats)]
        self._read_file = read_file

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
        return self._read_file(source, stats)

    def close(self) -> None:
        pass


class GitListing:
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


def record_sources(state: IndexState, committed: IndexState | None, repos: list[tuple[str, Path]],
                   commits: dict[str, str]) -> IndexState:
    """``state`` recording where its sources came from: every repo's root, git commits, the legacy ``root``.

    ``committed``: the state the run started from (its other repos are kept); ``repos``: (name, root)
    of the repos the run indexed; ``commits``: the commit each repo was read at (``--rev``).
    """
    roots = committed.repo_roots() if committed is not None else {}
    revs = dict(committed.revs or {}) if committed is not None else {}
    for name, root in repos:
        roots[name] = str(root)
        if name in commits:
            revs[name] = commits[name]
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
