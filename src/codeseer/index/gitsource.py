"""Index a repository at a git revision straight from git objects: no checkout, no working tree.

Why: indexing a release tag or a branch must not depend on (or disturb) what is checked out, and
an update from one revision to the next should cost only the files that changed. So the listing
comes from ``git ls-tree -r -l -z`` (paths, blob ids, sizes: nothing is read), contents from one
long-lived ``git cat-file --batch``, and an update diffs the two commits (``git diff --raw -z``)
so unchanged blobs are never read or re-chunked.

The same filters as :mod:`codeseer.index.walker` apply: ``.gitignore``/``.codeseerignore`` files
*at that revision* (anchored where they sit), skipped directories, symlinks, files over the size
limit, generated names, unknown languages; after reading, binary, generated/minified and non-UTF-8
contents. A root that is a subfolder of a repository lists only that subfolder, with paths relative
to it (git's own behaviour when run there).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pathspec

from codeseer.errors import CodeseerError
from codeseer.index.languages import detect_language
from codeseer.index.walker import (
    GENERATED_NAME,
    IGNORE_FILES,
    MAX_FILE_BYTES,
    MAX_IGNORE_FILE_BYTES,
    SKIP_DIRS,
    SourceFile,
    WalkStats,
    decode_source,
)

_REGULAR_MODES = ("100644", "100755")
_SYMLINK_MODE = "120000"


def _env() -> dict:
    # No prompts, no index.lock refresh in the repository: reading must not write to it.
    return dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def git(root: Path, *args: str) -> bytes:
    """Run ``git -C root ARGS`` and return its stdout; a failure is one :class:`CodeseerError` line."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, env=_env(),
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CodeseerError("git is not installed (it is needed to index a revision with --rev)") from None
    if done.returncode != 0:
        raise CodeseerError(f"git {args[0]} failed in {root}: {_first_line(done.stderr)}")
    return done.stdout


def resolve_commit(root: Path, rev: str) -> str:
    """The full commit id of ``rev`` in the repository holding ``root``."""
    try:
        git(root, "rev-parse", "--git-dir")
    except CodeseerError as exc:
        if "not a git repository" in str(exc):
            raise CodeseerError(f"not a git repository: {root} (--rev needs one)") from None
        raise
    rev = (rev or "").strip()
    if not rev or rev.startswith("-") or any(c in rev for c in "\0\n\r"):  # never an option to git
        raise CodeseerError(f"unknown revision {rev!r} in {root}")
    try:
        out = git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except CodeseerError:
        raise CodeseerError(f"unknown revision {rev!r} in {root}") from None
    return out.decode("ascii").strip()


class GitTree:
    """One repository root at one commit: its filtered listing, its blobs on demand, its diff to an older commit."""

    def __init__(self, root: Path, rev: str, repo: str = "") -> None:
        self.root = Path(root)
        self.rev = rev
        self.repo = repo
        self.commit = resolve_commit(self.root, rev)
        self.blobs_read = 0  # source files read (the cost an update by diff keeps small)
        self.ignore_files_read = 0
        self._cat: subprocess.Popen | None = None

    # -- listing ------------------------------------------------------------------------------
    def _entries(self, commit: str) -> list[tuple[bytes, str, str, int | None]]:
        """(path as bytes, mode, blob id, size) of every file under the root at ``commit``."""
        out = git(self.root, "ls-tree", "-r", "-l", "-z", commit)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, _type, blob, size = meta.decode("ascii").split()
            entries.append((raw_path, mode, blob, int(size) if size.isdigit() else None))
        return entries

    def list_sources(self, stats: WalkStats, commit: str | None = None) -> list[SourceFile]:
        """Indexable files at the commit (or ``commit``), in the walker's sorted order, filtered as it filters."""
        entries = self._entries(commit or self.commit)
        ignore_blobs: dict[str, list[tuple[str, int | None]]] = {}  # dir -> its ignore files
        for raw_path, mode, blob, size in entries:
            path = raw_path.decode("utf-8", "surrogateescape")
            directory, _, name = path.rpartition("/")
            if name in IGNORE_FILES and mode in _REGULAR_MODES:
                ignore_blobs.setdefault(directory, []).append((blob, size))
        dirs: dict[str, tuple[bool, list]] = {}

        def specs_of(directory: str) -> list:
            lines: list[str] = []
            for blob, size in ignore_blobs.get(directory, []):
                if size is None or size > MAX_IGNORE_FILE_BYTES:
                    continue
                data = self._cat_blob(blob, size)
                self.ignore_files_read += 1
                if data is not None:
                    lines += data.decode("utf-8", errors="replace").splitlines()
            return [(directory, pathspec.GitIgnoreSpec.from_lines(lines))] if lines else []

        def info(directory: str) -> tuple[bool, list]:
            """(excluded, ignore specs in force inside it), as the walker has them on entering it."""
            if directory in dirs:
                return dirs[directory]
            if not directory:
                result = (False, specs_of(""))
            else:
                parent, _, name = directory.rpartition("/")
                excluded, specs = info(parent)
                excluded = excluded or name in SKIP_DIRS or name.endswith(".egg-info") or _ignored(specs, directory, True)
                result = (True, specs) if excluded else (False, specs + specs_of(directory))
            dirs[directory] = result
            return result

        found = []
        for raw_path, mode, blob, size in sorted(entries, key=lambda e: e[0].split(b"/")):
            try:
                path = raw_path.decode("utf-8")
            except UnicodeDecodeError:
                stats.skip("file name not utf-8")
                continue
            directory, _, name = path.rpartition("/")
            excluded, specs = info(directory)
            if excluded:
                continue
            if mode == _SYMLINK_MODE:
                stats.skip("symlink")
                continue
            if mode not in _REGULAR_MODES:  # submodules (commits), anything else that is not a file
                continue
            if _ignored(specs, path, False):
                continue
            language = detect_language(path)
            if language is None:
                continue
            if size is None or size > MAX_FILE_BYTES:
                stats.skip("too large")
                continue
            if GENERATED_NAME.search(name):
                stats.skip("generated")
                continue
            found.append(SourceFile(path, self.root / path, language, size, 0, repo=self.repo, blob=blob))
        return found

    # -- diff ---------------------------------------------------------------------------------
    def changed_paths(self, old_commit: str | None) -> set[str] | None:
        """Paths under the root that differ between ``old_commit`` and this commit; None if unknown."""
        if not old_commit:
            return None
        if old_commit == self.commit:
            return set()
        try:  # the old commit may be gone (rebased, gc'd): the caller then compares every file
            out = git(self.root, "diff", "--raw", "-z", "--no-renames", "--relative", "--no-ext-diff",
                      old_commit, self.commit, "--")
        except CodeseerError:
            return None
        changed: set[str] = set()
        parts = out.split(b"\0")
        for n, part in enumerate(parts):
            if part.startswith(b":") and n + 1 < len(parts):
                changed.add(parts[n + 1].decode("utf-8", "surrogateescape"))
        return changed

    # -- contents -----------------------------------------------------------------------------
    def read(self, source: SourceFile, stats: WalkStats) -> str | None:
        """The text of ``source``'s blob, or None (counted in ``stats``) as :func:`read_source` would."""
        if source.size > MAX_FILE_BYTES:
            stats.skip("too large")
            return None
        data = self._cat_blob(source.blob, source.size)
        self.blobs_read += 1
        if data is None:
            stats.skip("unreadable")
            return None
        return decode_source(data, stats)

    def _cat_blob(self, blob: str, size: int | None) -> bytes | None:
        if self._cat is None:
            try:
                self._cat = subprocess.Popen(["git", "-C", str(self.root), "cat-file", "--batch"],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, env=_env())
            except FileNotFoundError:
                raise CodeseerError("git is not installed (it is needed to index a revision with --rev)") from None
        try:
            self._cat.stdin.write(blob.encode("ascii") + b"\n")
            self._cat.stdin.flush()
            header = self._cat.stdout.readline().split()
            if len(header) != 3:  # "<id> missing": a damaged repository
                return None
            length = int(header[2])
            data = self._cat.stdout.read(length)
            self._cat.stdout.read(1)  # the newline after the contents
        except (OSError, ValueError) as exc:
            raise CodeseerError(f"git cat-file failed in {self.root}: {exc}") from None
        if len(data) != length:
            raise CodeseerError(f"git cat-file stopped early in {self.root}")
        return data

    def close(self) -> None:
        if self._cat is not None:
            try:
                self._cat.stdin.close()
                self._cat.wait(timeout=10)
            except Exception:
                self._cat.kill()
            self._cat = None


def _ignored(specs: list, rel: str, is_dir: bool) -> bool:
    for base, spec in specs:
        sub = rel[len(base) + 1 :] if base else rel
        if spec.match_file(sub + "/" if is_dir else sub):
            return True
    return False
