"""codeseer: train, evaluate and serve code embedding models, and search codebases with them."""

__version__ = "0.1.0"
