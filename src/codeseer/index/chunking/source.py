"""The file as rows, and chunks under construction.

Why rows and not ``str.splitlines``: tree-sitter counts rows by ``\\n`` only, so splitting the
same way keeps node positions and our line numbers in agreement (a ``\\r`` or form feed inside
a line must not shift everything below it). Character sums per row make "does rows a..b fit
``max_chars``" a constant-time question, which the splitter asks many times per function.
Pieces are mutable because trailing closing-bracket lines are appended to the piece above
them after it has been emitted.
"""

from __future__ import annotations


class _Src:
    """The file as lines (split on ``\\n`` only, like tree-sitter rows) plus char sums."""

    __slots__ = ("lines", "n_rows", "char_sums")

    def __init__(self, text: str) -> None:
        lines = text.split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        self.lines = lines
        self.n_rows = len(lines)
        char_sums = [0]
        total = 0
        for line in lines:
            total += len(line) + 1
            char_sums.append(total)
        self.char_sums = char_sums  # char_sums[row]: characters (with newlines) before row

    def chars(self, first: int, last: int) -> int:
        """Characters of rows first..last joined by newlines."""
        return self.char_sums[last + 1] - self.char_sums[first] - 1

    def blank(self, row: int) -> bool:
        return not self.lines[row].strip()

    def text(self, first: int, last: int) -> str:
        return "\n".join(self.lines[first : last + 1])


class _Piece:
    """A chunk under construction (0-based rows; mutable so gaps can extend it)."""

    __slots__ = ("start", "end", "symbol", "kind", "head", "text", "order")

    def __init__(self, start: int, end: int, symbol: str, kind: str, head: str = "", text: str | None = None):
        self.start = start  # first row
        self.end = end  # last row (inclusive)
        self.symbol = symbol
        self.kind = kind
        self.head = head  # signature + "\n    ...\n" for parts after the first
        self.text = text  # explicit text (slices of an over-long line)
        self.order = 0
