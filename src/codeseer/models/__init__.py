"""Embedding models: loading (offline-first) and encoding."""

from codeseer.models.embedder import DEFAULT_MODEL, Embedder, resolve_model

__all__ = ["DEFAULT_MODEL", "Embedder", "resolve_model"]
