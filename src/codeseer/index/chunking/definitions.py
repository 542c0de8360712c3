"""Find the definitions of a parsed file, nested as they are nested in the source.

Why a separate walk before any chunk is made: the splitter needs the whole picture first,
i.e. each definition's extent, its qualified symbol and which comment blocks sit directly
above it, to decide where chunks start (a doc comment belongs to the definition below it)
and which lines between definitions are still uncovered. The walk is bounded in depth and in
nodes visited, so a pathological file costs a bounded amount of time instead of hanging a
worker; what it misses still ends up in gap chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .specs import _Rule, _Spec

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tree_sitter import Node

_MAX_DEPTH = 48  # how deep we look for definitions below a scope (not into functions)
_MAX_NODES = 300_000  # nodes visited per file while looking for definitions


def _last_row(node: Node) -> int:
    """The node's last row, not counting a trailing newline that ends it at column 0."""
    end = node.end_point
    start = node.start_point
    if end[1] == 0 and end[0] > start[0]:
        return end[0] - 1
    return end[0]


@dataclass(slots=True, eq=False)
class _Def:
    node: Node
    rule: _Rule
    symbol: str
    kind: str  # function | method | class
    start: int  # first row of the definition (incl. decorators / export / template)
    end: int
    children: list[_Def] = field(default_factory=list)
    chunk_start: int = 0  # start incl. attached leading comments


class _Collector:
    def __init__(self, spec: _Spec, data: bytes, nrows: int) -> None:
        self.spec = spec
        self.data = data
        self.nrows = nrows
        self.attach: dict[int, int] = {}  # last row of a line-aligned comment -> its first row
        self.budget = _MAX_NODES

    def match(self, node: Node, depth: int = 0) -> tuple[Node, _Rule, str] | None:
        """(definition node, rule, name) when ``node`` is, or wraps exactly one, definition."""
        rule = self.spec.defs.get(node.type)
        if rule is not None:
            name = rule.name(node, self.data)
            if not name:
                return None
            if rule.needs_body and rule.body(node) is None:
                return None
            return node, rule, name
        if node.type in self.spec.wrappers and depth < 6:
            found = None
            for child in node.named_children:
                hit = self.match(child, depth + 1)
                if hit is not None:
                    if found is not None:
                        return None
                    found = hit
            return found
        return None

    def aligned(self, node: Node) -> bool:
        """The node is alone on its lines (nothing but whitespace before and after)."""
        data = self.data
        column = node.start_point[1]
        if data[node.start_byte - column : node.start_byte].strip():
            return False
        if node.end_point[1] == 0:  # ends with its newline (Rust `///` comments)
            return True
        newline = data.find(b"\n", node.end_byte)
        rest = data[node.end_byte : newline if newline >= 0 else len(data)]
        return not rest.strip()

    def visit(self, node: Node, qual: tuple[str, ...], out: list[_Def], depth: int) -> None:
        """Append the definitions below ``node`` to ``out``; ``qual`` is the enclosing symbol."""
        prefixes = self.spec.prefixes
        for child in node.named_children:
            self.budget -= 1
            if self.budget <= 0:
                return
            if child.type in prefixes:
                if self.aligned(child):
                    self.attach[_last_row(child)] = child.start_point[0]
                continue
            hit = self.match(child)
            if hit is not None:
                self.add(child, hit, qual, out, depth)
                continue
            if depth < _MAX_DEPTH and child.named_child_count:
                self.visit(child, qual, out, depth + 1)

    def add(
        self, child: Node, hit: tuple[Node, _Rule, str], qual: tuple[str, ...], out: list[_Def], depth: int
    ) -> None:
        """One definition (``child`` may be a wrapper of ``hit``'s node); containers recurse."""
        inner, rule, name = hit
        parts = qual + tuple(part for part in name.split(".") if part) if "." in name else qual + (name,)
        symbol = ".".join(parts)
        if rule.kind == "class":
            kind = "class"
        else:
            kind = "method" if len(parts) > 1 else "function"
        start = min(child.start_point[0], inner.start_point[0])
        end = max(_last_row(child), _last_row(inner))
        definition = _Def(inner, rule, symbol, kind, start, min(end, self.nrows - 1))
        out.append(definition)
        if rule.kind == "class" and depth < _MAX_DEPTH:
            self.visit(inner, parts, definition.children, depth + 1)
