"""Where codeseer keeps things on disk, and how a place in an index is written: one rule each.

Caches (document vectors of ``eval``, the machine-wide vector cache of ``index``, unpacked benchmark
snapshots, exported ONNX graphs) all live under one folder: ``$CODESEER_CACHE``, else
``$XDG_CACHE_HOME/codeseer``, else ``~/.cache/codeseer``, so one variable moves (or isolates) them all.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The folder every codeseer cache lives under."""
    if os.environ.get("CODESEER_CACHE"):
        return Path(os.environ["CODESEER_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "codeseer"


def shown_path(repo: str | None, path: str) -> str:
    """``REPO/PATH`` in an index of several repositories (the form path arguments take), else ``PATH``."""
    return f"{repo}/{path}" if repo else path
