"""Turn the definitions of a parsed file into chunks within the size limits.

Why this is separate from finding definitions: the rules here are about chunk shape, not
about any language. A function that does not fit is cut on statement boundaries (recursing
into big statements) into roughly equal parts, because a part that ends mid-statement or a
two-line tail is a poor search result; parts after the first repeat the signature so each
still says which function it belongs to. Lines no definition covers (imports, fields, module
code) become their own chunks, so every non-blank line stays findable, except that a few lines
of closing brackets are folded into the chunk above instead of becoming noise chunks.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .definitions import _Collector, _Def, _last_row
from .source import _Piece
from .specs import _Spec
from .windows import _Out

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tree_sitter import Node

_MAX_SPLIT_DEPTH = 32
_TRIVIAL_LINE = re.compile(
    r"^\s*(?:(?:[)\]};,]+|end\b|\#\s*endif\b.*)\s*)+(?://.*|\#.*|/\*.*\*/)?\s*$"
)
_MAX_TRIVIAL_GAP = 3


@dataclass(frozen=True, slots=True)
class _Head:
    """What parts 2+ of a split function start with, and the room left for their own lines."""

    text: str  # signature + "\n    ...\n"
    line_limit: int
    char_limit: int


class _Structural:
    def __init__(self, out: _Out, spec: _Spec, data: bytes) -> None:
        self.out = out
        self.src = out.src
        self.spec = spec
        self.data = data

    def run(self, root: Node) -> bool:
        """Chunk the file into ``out``; False (and nothing added) when it has no definitions."""
        collector = _Collector(self.spec, self.data, self.src.n_rows)
        top: list[_Def] = []
        collector.visit(root, (), top, 0)
        if not top:
            return False
        self.attach = collector.attach
        self.set_starts(top, floor=0)
        containers: list[_Def] = []
        self.emit(top, containers)
        self.fill_gaps(containers)
        return True

    # -- leading comments ---------------------------------------------------------
    def set_starts(self, defs: list[_Def], floor: int) -> None:
        """Extend each definition's chunk up over the aligned comments directly above it,
        never above ``floor`` (the end of the previous sibling or the parent's first row)."""
        attach = self.attach
        for definition in defs:
            chunk_start = definition.start
            while chunk_start - 1 >= floor and (chunk_start - 1) in attach:
                comment_start = attach[chunk_start - 1]
                if comment_start < floor:
                    break
                chunk_start = comment_start
            definition.chunk_start = chunk_start
            if definition.children:
                self.set_starts(definition.children, floor=definition.start + 1)
            floor = max(floor, definition.end + 1)

    # -- definitions --------------------------------------------------------------------
    def emit(self, defs: list[_Def], containers: list[_Def]) -> None:
        out = self.out
        for definition in defs:
            if definition.kind == "class":
                containers.append(definition)
                if definition.children:
                    first_member = definition.children[0].chunk_start
                    head_end = max(definition.chunk_start, min(definition.end, first_member - 1))
                    out.region(definition.chunk_start, head_end, definition.symbol, "class")
                    self.emit(definition.children, containers)
                else:
                    out.region(definition.chunk_start, definition.end, definition.symbol, "class")
            else:
                self.function(definition)

    def function(self, definition: _Def) -> None:
        """One chunk, or parts cut on statement boundaries when the function is over the limits."""
        out = self.out
        start, end = out.trim(definition.chunk_start, definition.end)
        if start > end:
            return
        if out.fits(start, end):
            out.add(_Piece(start, end, definition.symbol, definition.kind))
            return
        body = definition.rule.body(definition.node)
        head = self.split_head(definition.node, body, end)
        cuts = self.statement_cuts(body, head, start, end)
        part_start = start
        first = True
        while part_start <= end:
            line_limit, char_limit = (out.max_lines, out.max_chars) if first else (head.line_limit, head.char_limit)
            next_start = self.next_part_start(part_start, end, cuts, head, line_limit, char_limit)
            self.add_part(definition, part_start, next_start - 1, head.text, first)
            first = False
            part_start = next_start

    def split_head(self, node: Node, body: Node | None, end: int) -> _Head:
        """The signature (the rows before the body, or just the first row when that is long)
        that parts after the first repeat, and the limits left for their own rows."""
        out, src = self.out, self.src
        def_row = node.start_point[0]
        body_row = body.start_point[0] if body is not None else def_row + 1
        signature_end = body_row - 1 if body_row > def_row else def_row
        if signature_end - def_row + 1 > max(3, out.max_lines // 4) or signature_end > end:
            signature_end = def_row
        signature = src.text(def_row, signature_end)
        if len(signature) > out.max_chars // 3:
            signature = src.lines[def_row][: max(1, out.max_chars // 3)]
        text = signature + "\n    ...\n"
        line_limit = max(1, out.max_lines - (signature_end - def_row + 2))
        char_limit = max(1, out.max_chars - len(text))
        return _Head(text, line_limit, char_limit)

    def statement_cuts(self, body: Node | None, head: _Head, start: int, end: int) -> list[int]:
        """Sorted rows after ``start`` where a part may begin."""
        starts: set[int] = set()
        if body is not None:
            self.unit_starts(body, starts, head.line_limit, head.char_limit, 0)
        return sorted(row for row in starts if start < row <= end)

    def next_part_start(
        self, part_start: int, end: int, cuts: list[int], head: _Head, line_limit: int, char_limit: int
    ) -> int:
        """Where the part that starts at ``part_start`` ends (exclusive): the rest when it fits,
        else the statement boundary nearest an equal split, else as many rows as fit."""
        out = self.out
        if out.fits(part_start, end, line_limit, char_limit):
            return end + 1
        # aim for equal parts (no 2-line tail), never over the limits
        rest = end - part_start + 1
        n_parts = max(-(-rest // head.line_limit), -(-self.src.chars(part_start, end) // head.char_limit), 2)
        target = part_start + -(-rest // n_parts)
        best = None
        index = bisect.bisect_right(cuts, part_start)
        while index < len(cuts) and out.fits(part_start, cuts[index] - 1, line_limit, char_limit):
            cut = cuts[index]
            if best is not None and cut > target:
                if cut - target < target - best:
                    best = cut
                break
            best = cut
            index += 1
        if best is None:  # no statement boundary fits: cut by lines
            best = min(end, out.max_end(part_start, line_limit, char_limit)) + 1
        return best

    def add_part(self, definition: _Def, part_start: int, part_end: int, head: str, first: bool) -> None:
        out = self.out
        symbol, kind = definition.symbol, definition.kind
        first_row, last_row = out.trim(part_start, part_end)  # a part that is only blank lines is no chunk
        if first_row > last_row:
            return
        if first_row == last_row and len(self.src.lines[first_row]) > out.max_chars:
            out.long_line(first_row, symbol, kind)  # even a first part: no chunk over max_chars
        elif first or not out.fits_with_head(head, first_row, last_row):
            out.add(_Piece(first_row, last_row, symbol, kind))  # (tiny limits: the head itself would not fit)
        else:
            out.add(_Piece(first_row, last_row, symbol, kind, head=head))

    def unit_starts(self, node: Node, starts: set[int], line_limit: int, char_limit: int, depth: int) -> None:
        """Rows where a part may start: statements of the body, recursing into big ones."""
        kids = node.named_children
        while len(kids) == 1 and depth < _MAX_SPLIT_DEPTH:  # e.g. Go's statement_list
            node = kids[0]
            kids = node.named_children
            depth += 1
        for kid in kids:
            first_row = kid.start_point[0]
            last_row = min(_last_row(kid), self.src.n_rows - 1)
            starts.add(first_row)
            if depth < _MAX_SPLIT_DEPTH and first_row < last_row and not self.out.fits(
                first_row, last_row, line_limit, char_limit
            ):
                self.unit_starts(kid, starts, line_limit, char_limit, depth + 1)

    # -- code between definitions ---------------------------------------------------------
    def fill_gaps(self, containers: list[_Def]) -> None:
        """Chunk every run of uncovered non-blank rows that share one innermost container."""
        src, out = self.src, self.out
        n_rows = src.n_rows
        covered = bytearray(n_rows)
        ends: dict[int, _Piece] = {}  # last row -> the piece ending there
        for piece in out.pieces:
            covered[piece.start : piece.end + 1] = b"\x01" * (piece.end - piece.start + 1)
            ends[piece.end] = piece
        owner: list[_Def | None] = [None] * n_rows
        for container in containers:  # pre-order: inner containers overwrite outer ones
            for row in range(container.chunk_start, min(container.end, n_rows - 1) + 1):
                owner[row] = container
        row = 0
        while row < n_rows:
            if covered[row] or src.blank(row):
                row += 1
                continue
            own = owner[row]
            start = end = row
            row += 1
            while row < n_rows and not covered[row]:
                if not src.blank(row):
                    if owner[row] is not own:
                        break
                    end = row
                row += 1
            self.gap(start, end, own, covered, ends)

    def gap(self, start: int, end: int, own: _Def | None, covered: bytearray, ends: dict[int, _Piece]) -> None:
        start = self.fold_closers(start, end, covered, ends)
        if start > end:
            return
        if own is None:
            symbol, kind = "", "module"
        else:
            symbol, kind = own.symbol, "class"
        out = self.out
        before = len(out.pieces)
        out.region(start, end, symbol, kind)
        for piece in out.pieces[before:]:
            ends[piece.end] = piece
        covered[start : end + 1] = b"\x01" * (end - start + 1)

    def fold_closers(self, start: int, end: int, covered: bytearray, ends: dict[int, _Piece]) -> int:
        """Leading lines that only close brackets / blocks belong to the chunk above: extend it
        over them when it stays within the limits. Returns the gap's new first row."""
        src, out = self.src, self.out
        last_trivial = -1
        seen = 0
        for row in range(start, end + 1):
            if src.blank(row):
                continue
            if seen == _MAX_TRIVIAL_GAP or not _TRIVIAL_LINE.match(src.lines[row]):
                break
            seen += 1
            last_trivial = row
        if last_trivial < 0:
            return start
        prev = start - 1
        while prev >= 0 and not covered[prev]:
            prev -= 1
        piece = ends.get(prev) if prev >= 0 else None
        if (
            piece is not None
            and piece.text is None
            and piece.head.count("\n") + (last_trivial - piece.start + 1) <= out.max_lines
            and len(piece.head) + src.chars(piece.start, last_trivial) <= out.max_chars
        ):
            del ends[prev]
            piece.end = last_trivial
            ends[last_trivial] = piece
            covered[start : last_trivial + 1] = b"\x01" * (last_trivial - start + 1)
            return last_trivial + 1
        return start
