"""codeseer: train, evaluate and serve code embedding models, and search codebases with them.

The Python front door is :class:`codeseer.Index` (:mod:`codeseer.api`); importing ``codeseer`` stays
light: it loads when first used.
"""

__version__ = "0.1.0"
__all__ = ["Index", "__version__"]


def __getattr__(name: str):
    if name == "Index":
        from codeseer.api import Index

        return Index
    raise AttributeError(f"module 'codeseer' has no attribute {name!r}")
