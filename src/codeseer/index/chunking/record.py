"""The chunk record, on its own so that the index, the workers and the miners can name the
type without importing the tree-sitter machinery that produces it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable piece of a file.

    ``symbol`` is the qualified name within the file (no module path): ``Flask.handle``,
    ``Outer.Inner.method``; ``""`` for windows and module code; the heading path for doc
    sections (``"Install > From source"``). ``kind`` is one of ``function``, ``method``,
    ``class``, ``section``, ``window``, ``module``. ``text`` is the exact source of lines
    ``start_line..end_line`` (1-based, inclusive), except for parts 2+ of a split function,
    whose text is the signature, a ``    ...`` line, then the part's own lines.
    """

    path: str
    language: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    text: str
