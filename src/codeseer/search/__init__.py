"""Search over a codeseer index: dense, lexical (BM25) and their fusion."""
