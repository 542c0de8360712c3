"""Where a path argument points: ``PATH:LINE`` and path arguments resolved inside the indexed roots.

Every front-end (CLI, HTTP, MCP, the Python API) takes paths from people and agents; this is the one
place that turns them into root-relative paths and refuses any that would leave a root (``..``,
absolute paths elsewhere, symlinks out). In an index of several repositories a path names its repo
first: ``REPO/PATH`` (``REPO/PATH:LINE``), the same form hits are shown in; the CLI also takes an
absolute path or one relative to the current folder that lies inside one of the roots.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from codeseer.errors import CodeseerError


class PathOutsideRoot(CodeseerError):
    """A path that is absolute, climbs out with ``..`` or leads out of the root through a symlink."""


def parse_location(spec: str) -> tuple[str, int]:
    """``"src/app.py:42"`` -> ``("src/app.py", 42)``."""
    spec = (spec or "").strip()
    path, sep, line = spec.rpartition(":")
    if not sep or not path or not line.strip().isdigit():
        raise CodeseerError(f"expected PATH:LINE (e.g. src/app.py:42), got {spec!r}")
    number = int(line)
    if number < 1:
        raise CodeseerError(f"line numbers start at 1, got {number} in {spec!r}")
    return path, number


def repo_path(root: Path, path: str, *, cwd: Path | None = None, strict: bool = False) -> str:
    """The root-relative POSIX form of ``path``; never a path that leaves ``root``.

    ``strict`` (network front-ends): ``path`` must be relative to the root, without ``..``, and must
    not lead out of the root through a symlink. Otherwise (the CLI) an absolute path inside the root
    or a path relative to ``cwd`` is accepted too.
    """
    raw = (path or "").strip()
    if not raw:
        raise CodeseerError("empty path")
    if "\x00" in raw:
        raise PathOutsideRoot("path contains a NUL byte")
    root = Path(root)
    root_real = Path(os.path.realpath(root))
    candidate = Path(raw).expanduser() if not strict else Path(raw)
    if strict:
        if candidate.is_absolute() or raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
            raise PathOutsideRoot(f"path must be relative to the indexed root, not absolute: {raw}")
        if ".." in PurePosixPath(raw.replace("\\", "/")).parts:
            raise PathOutsideRoot(f"path must not contain '..': {raw}")
        full = root / raw
    elif candidate.is_absolute():
        full = candidate
    else:
        here = (cwd or Path.cwd()) / candidate
        full = here if here.exists() and _inside(Path(os.path.realpath(here)), root_real) else root / candidate
    lexical = Path(os.path.normpath(full))
    if not (_inside(lexical, root) or _inside(lexical, root_real)):
        raise PathOutsideRoot(f"path is outside the indexed root {root}: {raw}")
    resolved = Path(os.path.realpath(lexical))
    if not _inside(resolved, root_real):
        raise PathOutsideRoot(f"path leads outside the indexed root (symlink): {raw}")
    base = root if _inside(lexical, root) else root_real
    rel = lexical.relative_to(base).as_posix()
    if rel in ("", "."):
        raise CodeseerError(f"{raw} is the indexed root itself, not a file")
    return rel


def locate_path(searcher, path: str, *, cwd: Path | None = None, strict: bool = False) -> tuple[str | None, str]:
    """``(repo, root-relative path)`` of a path argument; repo is None in an index of one repository.

    With several repos the path is ``REPO/PATH``; outside ``strict`` (the CLI) an absolute path, or
    one relative to ``cwd`` that exists, is also matched against every root. Nothing outside a root.
    """
    roots = getattr(searcher, "roots", None) or {None: Path(searcher.root)}
    if len(roots) == 1:
        return (None, repo_path(next(iter(roots.values())), path, cwd=cwd, strict=strict))
    raw = (path or "").strip()
    if not raw:
        raise CodeseerError("empty path")
    if "\x00" in raw:
        raise PathOutsideRoot("path contains a NUL byte")
    if strict and (raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":")):
        raise PathOutsideRoot(f"path must be REPO/PATH, relative to a repo of the index, not absolute: {raw}")
    if not strict:
        candidate = Path(raw).expanduser()
        here = candidate if candidate.is_absolute() else (cwd or Path.cwd()) / candidate
        if candidate.is_absolute() or here.exists():
            for name, root in sorted(roots.items(), key=lambda item: -len(str(item[1]))):  # nested roots: innermost
                try:
                    return name, repo_path(root, str(here), cwd=cwd)
                except PathOutsideRoot:
                    continue
            if candidate.is_absolute():
                raise PathOutsideRoot(f"path is outside every indexed root: {raw}")
    name, _, rest = raw.replace("\\", "/").partition("/")
    if name not in roots:
        if name == "..":
            raise PathOutsideRoot(f"path must not contain '..': {raw}")
        raise CodeseerError(f"this index holds several repos: give the path as REPO/PATH, where REPO is one of "
                            f"{', '.join(sorted(roots))} (got {raw!r})")
    if not rest.strip("/"):
        raise CodeseerError(f"{raw} is the root of repo {name}, not a file")
    return name, repo_path(roots[name], rest, cwd=roots[name], strict=strict)


def resolve_location(searcher, spec: str, *, cwd: Path | None = None) -> tuple[str | None, str, int]:
    """A ``PATH:LINE`` argument as (repo, root-relative path, line); repo is None in an index of one repository."""
    path, line = parse_location(spec)
    repo, rel = locate_path(searcher, path, cwd=cwd or Path.cwd())
    return repo, rel, line


def check_glob(glob: str | None) -> str | None:
    """A path filter for the network front-ends: relative, no ``..``."""
    if glob is None or not glob.strip():
        return None
    glob = glob.strip()
    if glob.startswith(("/", "\\")) or (len(glob) > 1 and glob[1] == ":"):
        raise PathOutsideRoot(f"path filter must be relative to the indexed root: {glob}")
    if ".." in PurePosixPath(glob.replace("\\", "/")).parts:
        raise PathOutsideRoot(f"path filter must not contain '..': {glob}")
    return glob


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False
