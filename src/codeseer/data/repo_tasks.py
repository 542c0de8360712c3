"""Build a localisation benchmark from any git history: ``codeseer data repo-tasks GIT_DIR --out DIR``.

Each kept commit (:mod:`codeseer.data.git_history`) becomes a query: its subject as ``text``,
the non-test source files it changed as ``files`` (all present at the snapshot), optionally the
functions it changed (at the parent commit) for function-level scoring. ``DIR/queries.jsonl`` and
``DIR/snapshot.tar.gz`` (the repository's indexable files at the revision) are the layout of
``repos-dev``, so ``codeseer eval-repo DIR`` scores codeseer on the user's own repository, and a
folder of several such ``DIR``\\ s is a benchmark of several repositories.
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from codeseer.data.git_history import CommitFilter, changed_functions, iter_commits
from codeseer.errors import CodeseerError
from codeseer.index.gitsource import GitTree
from codeseer.index.walker import WalkStats

__all__ = ["RepoTasksReport", "write_repo_tasks"]

QUERIES_FILE = "queries.jsonl"
SNAPSHOT_FILE = "snapshot.tar.gz"


@dataclass
class RepoTasksReport:
    out: str
    commit: str
    queries: int
    snapshot_files: int
    counts: dict[str, int] = field(default_factory=dict)  # commits seen, kept, and why others were not
    seconds: float = 0.0


def _snapshot(tree: GitTree, target: Path) -> tuple[set[str], int]:
    """Write the indexable files at the tree's commit into ``target`` (tar.gz); their paths and count."""
    stats = WalkStats()
    paths: set[str] = set()
    mtime = int(time.time())
    with tarfile.open(target, "w:gz") as archive:
        for source in tree.list_sources(stats):
            text = tree.read(source, stats)
            if text is None:
                continue
            data = text.encode("utf-8")
            info = tarfile.TarInfo(source.rel)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
            paths.add(source.rel)
    return paths, len(paths)


def write_repo_tasks(
    root: str | Path,
    out: str | Path,
    *,
    rev: str = "HEAD",
    max_files: int = 3,
    max_queries: int | None = None,
    seed: int = 0,
    functions: bool = False,
    on_commit: Callable[[int], None] | None = None,
) -> RepoTasksReport:
    """Write ``out/queries.jsonl`` and ``out/snapshot.tar.gz`` for the repository at ``root``."""
    started = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise CodeseerError(f"not a folder: {root}")
    if max_files < 1:
        raise CodeseerError("--max-files must be at least 1")
    if max_queries is not None and max_queries < 1:
        raise CodeseerError("--max-queries must be at least 1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CodeseerError(f"--out {out} exists and is not a folder")
    tree = GitTree(root, rev)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / (SNAPSHOT_FILE + ".partial")
    try:
        present, n_files = _snapshot(tree, partial)
    finally:
        tree.close()
    keep = CommitFilter(max_files=max_files, present=present)
    kept = []
    for n, commit in enumerate(iter_commits(root, tree.commit), 1):
        if keep.accept(commit):
            kept.append(commit)
        if on_commit is not None:
            on_commit(n)
    if max_queries is not None and len(kept) > max_queries:
        chosen = set(random.Random(seed).sample(range(len(kept)), max_queries))
        kept = [c for i, c in enumerate(kept) if i in chosen]
    lines = []
    for n, commit in enumerate(kept):
        row = {"_id": f"q{n}", "commit": commit.commit, "text": commit.subject, "files": commit.source_files}
        if commit.first_paragraph:
            row["body"] = commit.first_paragraph
        if functions:
            row["functions"] = [{k: v for k, v in f.items() if k != "text"} for f in changed_functions(root, commit)]
        lines.append(json.dumps(row, ensure_ascii=False))
    if not lines:
        partial.unlink(missing_ok=True)
        why = ", ".join(f"{why} {n}" for why, n in keep.counts.most_common() if why not in ("commits", "kept"))
        raise CodeseerError(f"no commit of {root} at {rev} qualifies ({keep.counts['commits']} commits: {why})")
    queries = out / QUERIES_FILE
    tmp = queries.with_suffix(".jsonl.partial")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, queries)
    os.replace(partial, out / SNAPSHOT_FILE)
    return RepoTasksReport(str(out), tree.commit, len(lines), n_files, dict(keep.counts),
                           time.perf_counter() - started)
