"""What an index run is asked to do, checked before any work: which repos, and with which settings.

Its own room because these are the user's mistakes to catch, not indexing: a missing folder, two
roots with one name, a repo pointed at another folder, a model or precision the index was not
built with. Each fails with one line naming the fix, before a file is read or a vector computed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codeseer.errors import CodeseerError
from codeseer.index.location import INDEX_DIRNAME
from codeseer.index.quantize import PRECISIONS
from codeseer.index.store import IndexState, IndexStore, default_repo_name
from codeseer.models.embedder import resolve_model

_BAD_NAME_CHARS = ("/", "\\", ":", "\0", "\n")


def root_specs(root) -> list[tuple[str | None, Path]]:
    """The roots asked for, as ``(name or None, resolved directory)``, each checked to exist."""
    if root is None:
        return []
    items = list(root) if isinstance(root, (list, tuple)) else [root]  # items: paths or (name, path)
    specs = []
    for item in items:
        name, path = item if isinstance(item, tuple) else (None, item)
        path = Path(path).expanduser()
        if not path.exists():
            raise CodeseerError(f"path does not exist: {path}")
        if not path.is_dir():
            raise CodeseerError(f"not a directory: {path}")
        specs.append((name, path.resolve()))
    if not specs:
        raise CodeseerError("no folder to index")
    return specs


def resolve_repos(specs, known: IndexState | None, store: IndexStore) -> list[tuple[str, Path]]:
    """(name, root) of each repo to index: names default to the folder's (or the name the index
    already gives that folder), must be unique, and may not point a known repo at another folder."""
    existing = known.repo_roots() if known is not None else {}
    if not specs:
        if not existing:
            raise CodeseerError(f"no index at {store.directory} yet: say which folder(s) to index")
        specs = []
        for name, path in existing.items():
            if not Path(path).is_dir():
                raise CodeseerError(f"repo {name!r} of index {store.directory} is gone: {path} is not a directory")
            specs.append((name, Path(path)))
    if len(existing) == 1 and len(specs) == 1 and specs[0][0] is None:
        (name, old), = existing.items()
        path = specs[0][1]
        if Path(old) != path and Path(os.path.abspath(store.directory)) == path / INDEX_DIRNAME:
            existing = {name: str(path)}  # the repository was copied or moved, its index with it: same repo
    by_path = {Path(path): name for name, path in existing.items()}
    chosen: dict[str, Path] = {}
    for name, path in specs:
        if name is None:
            name = by_path.get(path) or default_repo_name(path)
        if name in (".", "..") or any(c in name for c in _BAD_NAME_CHARS) or not name.strip():
            raise CodeseerError(f"invalid repo name {name!r}: it is the first part of paths (REPO/PATH), "
                                "so no '/', '\\', ':' and not '.' or '..'")
        if name in chosen:
            raise CodeseerError(f"two roots are named {name!r} ({chosen[name]} and {path}); "
                                "repo names must be unique: name one with NAME=PATH")
        if name in existing and Path(existing[name]) != path:
            raise CodeseerError(f"index {store.directory} has repo {name!r} at {existing[name]}, not {path}; "
                                f"give this one another name with NAME=PATH")
        if by_path.get(path, name) != name:
            raise CodeseerError(f"{path} is already in index {store.directory} as repo {by_path[path]!r}")
        chosen[name] = path
    return list(chosen.items())


@dataclass(frozen=True)
class IndexSettings:
    """What an index is built with; fixed for its lifetime (changing one needs --rebuild)."""

    model: str | None
    recipe: str | None
    dim: int | None
    precision: str


def settings_for(state: IndexState | None, *, model, precision, recipe, dim) -> IndexSettings:
    """The user's settings for a new index, or the committed ones, refusing silent changes."""
    if precision is not None and precision not in PRECISIONS:
        raise CodeseerError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if state is None:
        return IndexSettings(model, recipe, dim, precision or "float32")
    asked = {
        "model": (resolve_model(model).name if model is not None else None, state.model),
        "precision": (precision, state.precision),
        "dim": (dim, state.dim),
        "recipe": (recipe, state.recipe),
    }
    for name, (wanted, built) in asked.items():
        if wanted is not None and wanted != built:
            raise CodeseerError(
                f"index was built with {name} {built}, not {wanted}; "
                f"re-create it with `codeseer index --rebuild --{name} {wanted}`"
            )
    return IndexSettings(state.model, state.recipe, state.dim, state.precision)
