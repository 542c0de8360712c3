"""Size limits and overlapping line windows.

Why one collector for every strategy: the limits (``max_lines``, ``max_chars``) are a promise
to the embedder, whose context is fixed, so they are enforced in a single place. Windows are
both the strategy for text without structure and the fallback of the others: a section or a
block of module code that does not fit becomes windows with the same labels, and a single line
longer than ``max_chars`` is cut into character slices that all report that line.
"""

from __future__ import annotations

import bisect

from .source import _Piece, _Src


class _Out:
    """Collects pieces while respecting the size limits."""

    def __init__(self, src: _Src, max_lines: int, max_chars: int, window_lines: int, window_overlap: int):
        self.src = src
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.window_lines = window_lines
        self.window_overlap = window_overlap
        self.pieces: list[_Piece] = []

    def add(self, piece: _Piece) -> _Piece:
        piece.order = len(self.pieces)
        self.pieces.append(piece)
        return piece

    def fits(self, first: int, last: int, max_lines: int | None = None, max_chars: int | None = None) -> bool:
        line_limit = self.max_lines if max_lines is None else max_lines
        char_limit = self.max_chars if max_chars is None else max_chars
        return last - first + 1 <= line_limit and self.src.chars(first, last) <= char_limit

    def fits_with_head(self, head: str, first: int, last: int) -> bool:
        return (
            head.count("\n") + last - first + 1 <= self.max_lines
            and len(head) + self.src.chars(first, last) <= self.max_chars
        )

    def max_end(self, first: int, max_lines: int, max_chars: int) -> int:
        """Largest row ``last >= first`` such that rows first..last fit the limits (first itself always)."""
        char_sums = self.src.char_sums
        last = bisect.bisect_right(char_sums, char_sums[first] + 1 + max_chars) - 2
        return max(first, min(last, first + max_lines - 1, self.src.n_rows - 1))

    def trim(self, first: int, last: int) -> tuple[int, int]:
        """Rows first..last without leading and trailing blank rows (first > last: all blank)."""
        src = self.src
        while first <= last and src.blank(first):
            first += 1
        while last >= first and src.blank(last):
            last -= 1
        return first, last

    def region(self, first: int, last: int, symbol: str, kind: str) -> None:
        """One chunk for rows first..last if it fits, else line windows with the same labels."""
        first, last = self.trim(first, last)
        if first > last:
            return
        if self.fits(first, last):
            self.add(_Piece(first, last, symbol, kind))
        else:
            self.windows(first, last, symbol, kind)

    def windows(self, first: int, last: int, symbol: str, kind: str) -> None:
        """Windows of ``window_lines`` (fewer when over ``max_chars``) with overlap."""
        src = self.src
        window_start = first
        while window_start <= last:
            window_end = min(last, self.max_end(window_start, self.window_lines, self.max_chars))
            kept_first, kept_last = self.trim(window_start, window_end)
            if kept_first <= kept_last:
                if kept_first == kept_last and len(src.lines[kept_first]) > self.max_chars:
                    self.long_line(kept_first, symbol, kind)
                else:
                    self.add(_Piece(kept_first, kept_last, symbol, kind))
            if window_end >= last:
                break
            window_start = max(window_start + 1, window_end + 1 - self.window_overlap)

    def long_line(self, row: int, symbol: str, kind: str) -> None:
        """A line over ``max_chars``: slices of ``max_chars`` characters, blank slices dropped."""
        line = self.src.lines[row]
        step = max(1, self.max_chars)
        for offset in range(0, len(line), step):
            part = line[offset : offset + step]
            if part.strip():
                self.add(_Piece(row, row, symbol, kind, text=part))
