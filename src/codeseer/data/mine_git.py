"""Training pairs from git histories: what a developer wrote (commit subject, body) -> the code it changed.

Docstring -> function pairs teach a model what it already saw (CodeSearchNet); commit messages are
how people say what they want changed ("printer: fix duplicate replacement in multiline mode"), the
text repository localisation has to understand. Each qualifying commit (the filters of
:class:`~codeseer.data.git_history.CommitFilter`: no merges, bumps, typo/lint fixes; 1..N non-test
source files) gives one pair per function or method its diff touched, *as it was at the parent
commit* (the code the developer was looking at), with the functions of the same files it did not
touch as hard negatives: exactly the confusion localisation suffers. The body's first paragraph, when
there is one, is a second query for the same code.

Repositories whose names are on an exclusion list (sha256 of the lowercased ``owner/name`` from the
remote URL, or of the folder name) are refused before anything is read: evaluation repositories
must never become training data. Pairs whose code is (nearly) a document of ``--exclude`` BEIR
corpora are dropped too.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeseer.data.dedup import Deduper, MinHasher, exact_key, normalise_code
from codeseer.data.git_history import Commit, CommitFilter, changed_functions, definitions, iter_commits, read_at
from codeseer.errors import CodeseerError
from codeseer.index.gitsource import git, resolve_commit
from codeseer.index.languages import detect_language

EXCLUDE_NAMES_ENV = "CODESEER_EXCLUDE_REPOS"  # a file of sha256 lines, as ../shared/datasets/exclude-repos.sha256
FUNCTION_KINDS = ("function", "method")
_REMOTE = re.compile(r"^(?:[a-z+]+://[^/]+/|[^@/]+@[^:/]+:)(?:.*/)?([^/:]+)/([^/]+?)(?:\.git)?/?$")  # URLs, not paths


@dataclass
class MineGitReport:
    repos: list[str] = field(default_factory=list)
    commits: Counter = field(default_factory=Counter)  # the commit filter's counts, summed over repositories
    pairs: int = 0
    negatives: int = 0  # hard negatives written, over all pairs
    by_language: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)  # commit (subject) / commit-body
    removed: Counter = field(default_factory=Counter)  # pairs dropped, by reason
    exclude_docs: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"repos": self.repos, "commits": dict(self.commits), "pairs": self.pairs, "negatives": self.negatives,
                "by_language": dict(self.by_language), "by_kind": dict(self.by_kind), "removed": dict(self.removed),
                "exclude_docs": self.exclude_docs, "seconds": round(self.seconds, 3)}


def load_excluded_names(path: str | os.PathLike | None) -> set[str]:
    """The sha256 digests in an exclusion file (``#`` comments and blank lines ignored)."""
    if path is None:
        return set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CodeseerError(f"cannot read the exclusion list {path}: {exc.strerror or exc}") from None
    digests = {line.strip().lower() for line in lines if line.strip() and not line.lstrip().startswith("#")}
    bad = [d for d in digests if not re.fullmatch(r"[0-9a-f]{64}", d)]
    if bad:
        raise CodeseerError(f"{path}: not a sha256 digest: {bad[0][:80]!r}")
    return digests


def repo_names(root: Path) -> list[str]:
    """The names a repository goes by: ``owner/name`` of each remote URL (or of an ``OWNER+NAME`` folder,
    as mirrors are laid out), and its folder name."""
    names = []
    try:
        remotes = git(root, "remote", "-v").decode("utf-8", "replace")
    except CodeseerError:
        remotes = ""
    for line in remotes.splitlines():
        parts = line.split()
        match = _REMOTE.search(parts[1]) if len(parts) > 1 else None
        if match:
            names.append(f"{match.group(1)}/{match.group(2)}".lower())
    resolved = root.resolve()
    for folder in (resolved.name, resolved.parent.name):  # a mirror's OWNER+NAME/repo layout
        owner, plus, name = folder.lower().partition("+")
        if plus and owner and name and "+" not in name:
            names.append(f"{owner}/{name}")
    folder = resolved.name.lower()
    names.append(folder[:-4] if folder.endswith(".git") else folder)
    return list(dict.fromkeys(names))


def excluded_name(root: Path, digests: set[str]) -> str | None:
    """The first name of ``root`` on the exclusion list, or None."""
    for name in repo_names(root):
        if hashlib.sha256(name.strip().lower().encode("utf-8")).hexdigest() in digests:
            return name
    return None


def _functions_at(root: Path, commit: str, path: str) -> list[dict]:
    """Each function/method of ``path`` at ``commit`` ({symbol, start_line, end_line, text}), split parts joined."""
    from codeseer.index.chunking import chunk_source

    text = read_at(root, commit, path)
    if text is None:
        return []
    chunks = [c for c in chunk_source(path, text, detect_language(path)) if c.kind in FUNCTION_KINDS and c.symbol]
    return definitions(text, chunks)


def commit_pairs(root: Path, commit: Commit, *, label: str, max_negatives: int) -> list[dict[str, Any]]:
    """The pairs of one qualifying commit: (subject | body paragraph) -> each touched function at the parent,
    the same file's untouched functions (nearest first) as negatives."""
    touched = [f for f in changed_functions(root, commit) if f["kind"] in FUNCTION_KINDS]
    queries = [("commit", commit.subject)] + ([("commit-body", commit.first_paragraph)]
                                             if commit.first_paragraph else [])
    files: dict[str, list[dict]] = {}
    pairs = []
    for function in touched:
        path = function["path"]
        if path not in files:
            files[path] = _functions_at(root, commit.parents[0], path)
        hit = {f["symbol"] for f in touched if f["path"] == path}
        others = sorted((entry for entry in files[path] if entry["symbol"] not in hit),
                        key=lambda e: abs(e["start_line"] - function["start_line"]))
        negatives = [e["text"] for e in others[:max_negatives]]
        for kind, query in queries:
            pairs.append({"query": query, "positive": function["text"], "negatives": negatives, "task": "nl2code",
                          "kind": kind, "language": detect_language(path) or "",
                          "source": f"{label}@{commit.commit[:12]}:{path}:{function['start_line']}",
                          "symbol": function["symbol"], "path": path, "repo": label})
    return pairs


def mine_git(
    git_dirs: Iterable[str | os.PathLike],
    *,
    rev: str = "HEAD",
    max_files: int = 5,
    max_negatives: int = 7,
    max_commits: int | None = None,
    exclude: Iterable[str | os.PathLike] = (),
    excluded_names: set[str] | frozenset[str] = frozenset(),
    near_dup_jaccard: float = 0.8,
    on_pair: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> MineGitReport:
    """Mine commit -> changed-function pairs from each repository; every repository is checked against
    ``excluded_names`` (sha256 digests) before any is read. ``on_pair`` receives each pair."""
    from codeseer.data.mine import load_exclusion

    started = time.perf_counter()
    roots = [Path(d) for d in git_dirs]
    if not roots:
        raise CodeseerError("nothing to mine: give at least one GIT_DIR")
    if max_files < 1 or max_negatives < 0:
        raise CodeseerError("--max-files must be at least 1 and --negatives at least 0")
    heads = {}
    for root in roots:
        if not root.is_dir():
            raise CodeseerError(f"not a folder: {root}")
        heads[root] = resolve_commit(root, rev)
        name = excluded_name(root, set(excluded_names))
        if name is not None:
            raise CodeseerError(f"{root} is {name}, on the exclusion list (an evaluation repository): it must "
                                "not be used for training")
    report = MineGitReport()
    hasher = MinHasher()
    excluder = None
    if list(exclude):
        excluder, report.exclude_docs = load_exclusion(list(exclude), hasher)
        excluder.lsh.threshold = near_dup_jaccard
    seen: set[bytes] = set()
    for root in roots:
        label = repo_names(root)[0]
        report.repos.append(label)
        keep = CommitFilter(max_files=max_files)
        for n, commit in enumerate(iter_commits(root, heads[root]), 1):
            if max_commits is not None and keep.counts["kept"] >= max_commits:
                break
            if progress is not None:
                progress(label, n)
            if not keep.accept(commit):
                continue
            for pair in commit_pairs(root, commit, label=label, max_negatives=max_negatives):
                reason = _drop(pair, seen, hasher, excluder)
                if reason:
                    report.removed[reason] += 1
                    continue
                report.pairs += 1
                report.negatives += len(pair["negatives"])
                report.by_language[pair["language"]] += 1
                report.by_kind[pair["kind"]] += 1
                if on_pair is not None:
                    on_pair(pair)
        report.commits.update(keep.counts)
    report.seconds = time.perf_counter() - started
    return report


def _drop(pair: dict[str, Any], seen: set[bytes], hasher: MinHasher, excluder: Deduper | None) -> str | None:
    """Why a pair is not written: its code is (nearly) an evaluation document, or it was written already."""
    code = normalise_code(pair["positive"], pair["language"])
    if excluder is not None:
        key = exact_key(code)
        if key in excluder.exact:
            return "excluded_exact"
        if excluder.lsh.query(hasher.signature(code)) is not None:
            return "excluded_near"
    key = exact_key(pair["query"] + "\0" + code)
    if key in seen:
        return "duplicate"
    seen.add(key)
    return None
