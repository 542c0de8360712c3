"""One way to get an encoder for a model spec: ``a+b`` is an ensemble, anything else one model.

``Embedder`` used to turn itself into its own subclass in ``__new__`` when given ``a+b``; a factory
says the same thing without a base class that knows its subclasses.
"""

from __future__ import annotations

from codeseer.models.embedder import Embedder
from codeseer.models.registry import split_members


def load_embedder(model: str | None = None, **options) -> Embedder:
    """An :class:`Embedder` for ``model`` (a name, alias, folder or hub id), or an
    :class:`~codeseer.models.ensemble.EnsembleEmbedder` for ``a+b[+c...]``; ``options`` as Embedder takes."""
    if split_members(model) is not None:
        from codeseer.models.ensemble import EnsembleEmbedder

        return EnsembleEmbedder(model, **options)
    return Embedder(model, **options)
