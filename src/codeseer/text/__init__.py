"""Text handling every layer needs and none owns: lexical tokens (BM25 over identifiers and paths) and
docstrings. It imports nothing of codeseer, so the index, search, data mining and training can all
use it without pointing at each other."""
