"""Retrieval applications built on a committed index: similar code, near-duplicates, issue
localisation, token-budgeted context packs, code-to-docs and stale docstrings.

Each application is a plain function over a :class:`~codeseer.search.searcher.Searcher` that
returns dataclasses; the CLI (:mod:`codeseer.apps.commands`), the MCP server and the HTTP API
(:mod:`codeseer.serve`) are thin front-ends over the same functions. Importing this package is
cheap: nothing heavy (torch, lancedb) is imported until a function runs.
"""
