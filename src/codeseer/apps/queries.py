"""The CLI's query commands as data in, JSON-ready data out.

``codeseer search``, ``locate``, ``similar`` and ``context`` run :func:`run` either in the CLI
process or in the warm query process of their index (:mod:`codeseer.serve.warm`); the CLI prints
the returned dictionary the same way in both cases, so the answer is the same byte for byte.
Arguments are plain JSON values (paths relative to ``cwd``, the caller's folder), never objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeseer.errors import CodeseerError

__all__ = ["OPERATIONS", "run"]


def _kinds(values) -> list[str] | None:
    from codeseer.index.filekinds import parse_kinds

    return parse_kinds(values) or None


def _search(searcher, a: dict) -> dict:
    from codeseer.search.searcher import check_model, code_first, code_first_pool

    check_model(searcher.state.model, a.get("model"))
    task = a.get("task") or "nl2code"
    k = a.get("k", 10)
    kinds = _kinds(a.get("kind"))
    grouped = not kinds and not a.get("flat") and "file_kind" in searcher.chunks.schema.names
    hits = searcher.search(a["query"], k=code_first_pool(k) if grouped else k, mode=a.get("mode", "hybrid"),
                           languages=a.get("lang"), path_glob=a.get("path_glob"), fusion=a.get("fusion", "convex"),
                           repos=a.get("repo"), file_kinds=kinds, task=None if task == searcher.task else task)
    if grouped:
        hits = code_first(hits, k)
    return {"hits": [h.to_dict() for h in hits], "grouped": grouped}


def _locate(searcher, a: dict) -> dict:
    from codeseer.apps.locate import locate
    from codeseer.search.files import load_weights

    weights = load_weights(a["weights"]) if a.get("weights") else None
    result = locate(searcher, a["query"], k=a.get("k", 10), functions_per_file=a.get("functions", 3),
                    languages=a.get("lang"), path_glob=a.get("path_glob"), repos=a.get("repo"),
                    include=a.get("include"), weights=weights)
    return result.to_dict()


def _similar(searcher, a: dict) -> dict:
    from codeseer.apps.locations import resolve_location
    from codeseer.apps.similar import similar

    common = dict(k=a.get("k", 10), languages=a.get("lang"), path_glob=a.get("path_glob"), repos=a.get("repo"),
                  file_kinds=_kinds(a.get("kind")))
    if a.get("code") is not None:
        return similar(searcher, code=a["code"], **common).to_dict()
    repo, rel, line = resolve_location(searcher, a["location"], cwd=Path(a["cwd"]) if a.get("cwd") else None)
    return similar(searcher, path=rel, line=line, repo=repo, **common).to_dict()


def _context(searcher, a: dict) -> dict:
    from codeseer.apps.context import FORMATS, context_pack

    fmt = a.get("format", "md")
    if fmt not in FORMATS:
        raise CodeseerError(f"unknown format {fmt!r}; choose md or json")
    pack = context_pack(searcher, a["query"], budget=a["budget"], languages=a.get("lang"),
                        path_glob=a.get("path_glob"), repos=a.get("repo"), file_kinds=_kinds(a.get("kind")))
    return {"text": pack.render(fmt), "tokens": pack.tokens, "budget": pack.budget, "blocks": len(pack.blocks),
            "used_chunks": pack.used_chunks}


OPERATIONS = {"search": _search, "locate": _locate, "similar": _similar, "context": _context}


def run(op: str, searcher, args: dict[str, Any]) -> dict:
    """Answer one CLI query ``op`` (search, locate, similar, context) on ``searcher``."""
    try:
        operation = OPERATIONS[op]
    except KeyError:
        raise CodeseerError(f"unknown operation {op!r}") from None
    return operation(searcher, args)
