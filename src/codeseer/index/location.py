"""Where an index lives, found without opening it (no LanceDB import): the CLI's warm query path
(:mod:`codeseer.serve.warm`) must know the index folder before anything heavy loads.

An index is a folder holding ``state.json`` (or, after a lost state, ``history.json``); ``find``
looks in the start folder's ``.codeseer`` and then its parents', as git finds ``.git``.
"""

from __future__ import annotations

from pathlib import Path

INDEX_DIRNAME = ".codeseer"
STATE_FILE = "state.json"
HISTORY_FILE = "history.json"


def is_index_dir(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file() or (directory / HISTORY_FILE).is_file()


def find_index_dir(start: Path) -> Path | None:
    """The index of ``start`` or of its nearest parent that has one, or None."""
    start = Path(start).resolve()
    for directory in (start, *start.parents):
        candidate = directory / INDEX_DIRNAME
        if is_index_dir(candidate):
            return candidate
    return None


def existing_index_dir(directory: Path) -> Path | None:
    """``--index DIR``: DIR itself when it is an index, else ``DIR/.codeseer`` when that is one, else None."""
    directory = Path(directory)
    if is_index_dir(directory):
        return directory
    nested = directory / INDEX_DIRNAME
    return nested if is_index_dir(nested) else None
