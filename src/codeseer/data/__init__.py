"""Training data for codeseer's own code embedder: mine (query, code) pairs from source trees, filter
and deduplicate them (and keep benchmark code out), and synthesise developer-style queries with an
OpenAI-compatible LLM endpoint.

``codeseer data mine`` / ``codeseer data synth`` are the command-line front-ends
(:mod:`codeseer.data.commands`); :func:`mine_pairs` and :func:`synth_queries` are the Python API.
"""

from __future__ import annotations

__all__ = ["MineReport", "SynthReport", "mine_pairs", "synth_queries", "write_jsonl_atomic"]

_HOMES = {"MineReport": "mine", "mine_pairs": "mine", "write_jsonl_atomic": "mine", "SynthReport": "synth", "synth_queries": "synth"}


def __getattr__(name: str):
    """Lazy: ``codeseer`` (the CLI) imports this package, numpy and httpx load only when used."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"codeseer.data.{_HOMES[name]}"), name)
    raise AttributeError(name)
