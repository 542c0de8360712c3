"""Split source files into search chunks: one per function, method or class header.

Why definition-sized chunks: a code-search query ("where do we retry failed uploads")
is answered by a function, not by an arbitrary 60-line window that starts in the middle
of one function and ends in the middle of the next. So for the 13 languages we have
tree-sitter grammars for, chunks follow definitions; markdown / reStructuredText follow
section headings; everything else (and anything that fails to parse) falls back to
overlapping line windows.

Conventions (see also ``Chunk``):

* Per-language knowledge lives in the ``_SPECS`` table: which node types are functions
  or containers (class / struct / interface / enum / trait / impl / module), how to get
  their name and body, which nodes merely wrap a definition (decorators, ``export``,
  ``template<>``, ``const f = () => ...``) and which are comments / attributes that
  attach to the definition below them.
* A container yields a ``class`` chunk holding its header (decorators, leading doc
  comment, signature, docstring, fields) up to its first member; every member becomes
  its own chunk, qualified through its parents (``Outer.Inner.method``). Code inside a
  container but between members (fields, properties, initialisers) becomes further
  ``class`` chunks with the container's symbol. Namespaces / packages are not
  containers: they are transparent and never part of a symbol (C++, C#, PHP, Java,
  Kotlin, TypeScript ``namespace``); Ruby ``module`` and Rust ``mod`` blocks are.
* Functions are leaves: nested functions and classes defined inside a function stay in
  the enclosing function's chunk (one chunk per top-level callable; no duplicates).
  Definitions nested in other top-level statements (``if TYPE_CHECKING:``, ``#ifdef``,
  an IIFE, ``describe(() => ...)``) are still found.
* A function is a ``method`` when its symbol is qualified by a type: defined in a
  container, a Go receiver (``Server.Serve``), a Rust ``impl`` (``Parser.parse``, trait
  impls too), a C++ out-of-line name (``Foo::bar`` -> ``Foo.bar``), a Kotlin extension
  receiver (``String.shout``) or a JS ``Foo.prototype.bar = function`` assignment.
* Long functions are split on statement boundaries; parts after the first repeat the
  signature followed by a ``    ...`` line (left out when limits are too small to hold it).
  No chunk is longer than ``max_chars`` characters or ``max_lines`` lines (windows:
  ``window_lines``), and none is blank.
* Top-level code outside definitions becomes ``module`` chunks; a few trailing lines that
  hold only closing brackets / ``end`` are appended to the chunk just above them instead
  of becoming chunks of their own. Every non-blank line ends up in at least one chunk.
* Structural files without any definition (scripts) and unparsable input get windows.
* Files with very long lines on average (minified / generated code) are chunked by
  windows; a single line longer than ``max_chars`` is cut into ``max_chars`` pieces that
  all report that line as their range.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .languages import detect_language, get_parser, is_structural

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tree_sitter import Node

__all__ = ["Chunk", "chunk_source"]


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


# --------------------------------------------------------------------------- source


class _Src:
    """The file as lines (split on ``\\n`` only, like tree-sitter rows) plus char sums."""

    __slots__ = ("lines", "n", "cum")

    def __init__(self, text: str) -> None:
        lines = text.split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        self.lines = lines
        self.n = len(lines)
        cum = [0]
        acc = 0
        for line in lines:
            acc += len(line) + 1
            cum.append(acc)
        self.cum = cum

    def chars(self, s: int, e: int) -> int:
        return self.cum[e + 1] - self.cum[s] - 1

    def blank(self, r: int) -> bool:
        return not self.lines[r].strip()

    def text(self, s: int, e: int) -> str:
        return "\n".join(self.lines[s : e + 1])


class _Piece:
    """A chunk under construction (0-based rows; mutable so gaps can extend it)."""

    __slots__ = ("s", "e", "symbol", "kind", "head", "text", "order")

    def __init__(self, s: int, e: int, symbol: str, kind: str, head: str = "", text: str | None = None):
        self.s = s
        self.e = e
        self.symbol = symbol
        self.kind = kind
        self.head = head  # signature + "\n    ...\n" for parts after the first
        self.text = text  # explicit text (slices of an over-long line)
        self.order = 0


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

    def fits(self, s: int, e: int, max_lines: int | None = None, max_chars: int | None = None) -> bool:
        ml = self.max_lines if max_lines is None else max_lines
        mc = self.max_chars if max_chars is None else max_chars
        return e - s + 1 <= ml and self.src.chars(s, e) <= mc

    def fits_with_head(self, head: str, s: int, e: int) -> bool:
        return head.count("\n") + e - s + 1 <= self.max_lines and len(head) + self.src.chars(s, e) <= self.max_chars

    def max_end(self, s: int, max_lines: int, max_chars: int) -> int:
        """Largest row e >= s such that rows s..e fit the limits (s itself always)."""
        cum = self.src.cum
        e = bisect.bisect_right(cum, cum[s] + 1 + max_chars) - 2
        return max(s, min(e, s + max_lines - 1, self.src.n - 1))

    def trim(self, s: int, e: int) -> tuple[int, int]:
        src = self.src
        while s <= e and src.blank(s):
            s += 1
        while e >= s and src.blank(e):
            e -= 1
        return s, e

    def region(self, s: int, e: int, symbol: str, kind: str) -> None:
        """One chunk for rows s..e if it fits, else line windows with the same labels."""
        s, e = self.trim(s, e)
        if s > e:
            return
        if self.fits(s, e):
            self.add(_Piece(s, e, symbol, kind))
        else:
            self.windows(s, e, symbol, kind)

    def windows(self, s: int, e: int, symbol: str, kind: str) -> None:
        """Windows of ``window_lines`` (fewer when over ``max_chars``) with overlap."""
        src = self.src
        start = s
        while start <= e:
            end = min(e, self.max_end(start, self.window_lines, self.max_chars))
            ws, we = self.trim(start, end)
            if ws <= we:
                if ws == we and len(src.lines[ws]) > self.max_chars:
                    self.long_line(ws, symbol, kind)
                else:
                    self.add(_Piece(ws, we, symbol, kind))
            if end >= e:
                break
            start = max(start + 1, end + 1 - self.window_overlap)

    def long_line(self, r: int, symbol: str, kind: str) -> None:
        line = self.src.lines[r]
        step = max(1, self.max_chars)
        for i in range(0, len(line), step):
            part = line[i : i + step]
            if part.strip():
                self.add(_Piece(r, r, symbol, kind, text=part))


# --------------------------------------------------------------------------- rules


_Namer = Callable[["Node", bytes], "str | None"]
_Bodier = Callable[["Node"], "Node | None"]


def _txt(node: Node | None, data: bytes) -> str:
    if node is None:
        return ""
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _field(name: str) -> _Namer:
    def get(node: Node, data: bytes) -> str | None:
        return _clean(_txt(node.child_by_field_name(name), data)) or None

    return get


_GENERIC_ARGS = re.compile(r"<[^<>]*>")


def _clean(name: str) -> str:
    """Identifier-ish text: no whitespace, ``::`` as ``.``, no generic arguments."""
    name = re.sub(r"\s+", "", name)
    if "operator" not in name:
        for _ in range(4):
            stripped = _GENERIC_ARGS.sub("", name)
            if stripped == name or not stripped:  # keep Ruby's `<=>`
                break
            name = stripped
    name = name.replace("::", ".").replace("\\", ".")
    return name.strip(".")


def _last_component(name: str) -> str:
    return name.rsplit(".", 1)[-1] if name else name


def _body_field(node: Node) -> Node | None:
    return node.child_by_field_name("body")


def _child_of_type(*types: str) -> _Bodier:
    def get(node: Node) -> Node | None:
        for child in node.named_children:
            if child.type in types:
                return child
        return None

    return get


def _value_body(value_field: str) -> _Bodier:
    def get(node: Node) -> Node | None:
        value = node.child_by_field_name(value_field)
        return value.child_by_field_name("body") if value is not None else None

    return get


# C / C++ ------------------------------------------------------------------


def _c_declarator_name(node: Node, data: bytes) -> str | None:
    decl = node.child_by_field_name("declarator")
    for _ in range(16):
        if decl is None:
            return None
        if decl.type == "function_declarator":
            inner = decl.child_by_field_name("declarator")
            return _clean(_txt(inner, data)) or None
        decl = decl.child_by_field_name("declarator")
    return None


def _c_type_name(node: Node, data: bytes) -> str | None:
    if node.child_by_field_name("body") is None:
        return None
    name = node.child_by_field_name("name")
    if name is not None:
        return _clean(_txt(name, data)) or None
    parent = node.parent
    if parent is not None and parent.type == "type_definition":
        return _clean(_txt(parent.child_by_field_name("declarator"), data)).lstrip("*") or None
    return None


# Go -------------------------------------------------------------------------


def _go_method_name(node: Node, data: bytes) -> str | None:
    name = _clean(_txt(node.child_by_field_name("name"), data))
    if not name:
        return None
    receiver = node.child_by_field_name("receiver")
    rtype = None
    if receiver is not None:
        for param in receiver.named_children:
            if param.type == "parameter_declaration":
                rtype = param.child_by_field_name("type")
                break
    for _ in range(8):
        if rtype is None or rtype.type == "type_identifier":
            break
        if rtype.type == "generic_type":
            rtype = rtype.child_by_field_name("type")
        else:  # pointer_type, parenthesized_type
            rtype = rtype.named_children[0] if rtype.named_children else None
    recv = _clean(_txt(rtype, data)).lstrip("*")
    return f"{recv}.{name}" if recv else name


# Rust ------------------------------------------------------------------------


def _rust_impl_name(node: Node, data: bytes) -> str | None:
    rtype = node.child_by_field_name("type")
    for _ in range(8):
        if rtype is None:
            return None
        if rtype.type == "generic_type":
            rtype = rtype.child_by_field_name("type")
        elif rtype.type in ("reference_type", "pointer_type"):
            rtype = rtype.child_by_field_name("type")
        else:
            break
    name = _last_component(_clean(_txt(rtype, data)))
    return name or None


# JavaScript / TypeScript --------------------------------------------------

_JS_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)


def _js_value_name(name_field: str, value_field: str) -> _Namer:
    def get(node: Node, data: bytes) -> str | None:
        value = node.child_by_field_name(value_field)
        if value is None or value.type not in _JS_FUNCTION_VALUES:
            return None
        name = node.child_by_field_name(name_field)
        if name is None or name.type not in (
            "identifier", "property_identifier", "private_property_identifier"
        ):
            return None
        return _txt(name, data) or None

    return get


_JS_EXPORT_PREFIX = re.compile(r"^(?:module\.exports|exports|this|window|self|globalThis)(?:\.|$)")


def _js_assignment_name(node: Node, data: bytes) -> str | None:
    right = node.child_by_field_name("right")
    left = node.child_by_field_name("left")
    if right is None or left is None or right.type not in _JS_FUNCTION_VALUES:
        return None
    if left.type not in ("identifier", "member_expression"):
        return None
    name = re.sub(r"\s+", "", _txt(left, data))
    if not re.fullmatch(r"[\w$#.]+", name):
        return None
    if name in ("module.exports", "exports"):
        return "exports"
    name = _JS_EXPORT_PREFIX.sub("", name).replace(".prototype.", ".").removesuffix(".prototype")
    return name or None


# C# ---------------------------------------------------------------------------


def _cs_destructor_name(node: Node, data: bytes) -> str | None:
    name = _txt(node.child_by_field_name("name"), data)
    return f"~{name}" if name else None


def _operator_name(node: Node, data: bytes) -> str | None:
    params = node.child_by_field_name("parameters")
    head = data[node.start_byte : params.start_byte if params is not None else node.end_byte]
    match = re.search(rb"operator\s*([^\s(]+(?:\s*\w+)?)", head)
    if match is None:
        return "operator"
    return "operator" + re.sub(r"\s+", "", match.group(1).decode("utf-8", "replace"))


def _cs_conversion_name(node: Node, data: bytes) -> str | None:
    return "operator " + _clean(_txt(node.child_by_field_name("type"), data))


# Kotlin -----------------------------------------------------------------------

_KOTLIN_TYPES = frozenset({"user_type", "nullable_type", "function_type", "parenthesized_type"})


def _kotlin_function_name(node: Node, data: bytes) -> str | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    receiver = ""
    for child in node.named_children:
        if child.start_byte >= name.start_byte:
            break
        if child.type in _KOTLIN_TYPES:
            receiver = _clean(_txt(child, data)).rstrip("?")
    base = _txt(name, data)
    return f"{receiver}.{base}" if receiver else base


def _const(value: str) -> _Namer:
    return lambda node, data: value


# --------------------------------------------------------------------------- table


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str  # "function" or "class"
    name: _Namer = field(default_factory=lambda: _field("name"))
    body: _Bodier = _body_field
    needs_body: bool = False  # a function without a body is a declaration, not a definition


@dataclass(frozen=True, slots=True)
class _Spec:
    defs: dict[str, _Rule]
    wrappers: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset({"comment"})


def _fn(**kw) -> _Rule:
    return _Rule("function", **kw)


def _cls(**kw) -> _Rule:
    return _Rule("class", **kw)


_JS_DEFS: dict[str, _Rule] = {
    "function_declaration": _fn(),
    "generator_function_declaration": _fn(),
    "method_definition": _fn(needs_body=True),
    "variable_declarator": _fn(name=_js_value_name("name", "value"), body=_value_body("value")),
    "assignment_expression": _fn(name=_js_assignment_name, body=_value_body("right")),
    "field_definition": _fn(name=_js_value_name("property", "value"), body=_value_body("value")),
    "public_field_definition": _fn(name=_js_value_name("name", "value"), body=_value_body("value")),
    "pair": _fn(name=_js_value_name("key", "value"), body=_value_body("value")),  # {key: function(){}}
    "class_declaration": _cls(),
    "abstract_class_declaration": _cls(),
    "interface_declaration": _cls(),
    "type_alias_declaration": _cls(),
    "enum_declaration": _cls(),
}
_JS = _Spec(
    defs=_JS_DEFS,
    wrappers=frozenset(
        {"export_statement", "lexical_declaration", "variable_declaration", "expression_statement"}
    ),
    prefixes=frozenset({"comment", "decorator"}),
)

_C_DEFS: dict[str, _Rule] = {
    "function_definition": _fn(name=_c_declarator_name),
    "struct_specifier": _cls(name=_c_type_name),
    "union_specifier": _cls(name=_c_type_name),
    "enum_specifier": _cls(name=_c_type_name),
}

_SPECS: dict[str, _Spec] = {
    "python": _Spec(
        defs={"function_definition": _fn(), "class_definition": _cls()},
        wrappers=frozenset({"decorated_definition"}),
    ),
    "java": _Spec(
        defs={
            "method_declaration": _fn(needs_body=True),
            "constructor_declaration": _fn(needs_body=True),
            "compact_constructor_declaration": _fn(needs_body=True),
            "class_declaration": _cls(),
            "interface_declaration": _cls(),
            "enum_declaration": _cls(),
            "record_declaration": _cls(),
            "annotation_type_declaration": _cls(),
        },
        prefixes=frozenset({"line_comment", "block_comment"}),
    ),
    "javascript": _JS,
    "typescript": _JS,
    "tsx": _JS,
    "go": _Spec(
        defs={
            "function_declaration": _fn(),
            "method_declaration": _fn(name=_go_method_name),
            "type_spec": _cls(),
            "type_alias": _cls(),
        },
        wrappers=frozenset({"type_declaration"}),
    ),
    "rust": _Spec(
        defs={
            "function_item": _fn(needs_body=True),
            "macro_definition": _fn(body=lambda n: None),
            "struct_item": _cls(),
            "enum_item": _cls(),
            "union_item": _cls(),
            "trait_item": _cls(),
            "impl_item": _cls(name=_rust_impl_name),
            "mod_item": _cls(needs_body=True),
        },
        prefixes=frozenset({"line_comment", "block_comment", "attribute_item"}),
    ),
    "c": _Spec(defs=_C_DEFS, wrappers=frozenset({"type_definition", "declaration"})),
    "cpp": _Spec(
        defs={**_C_DEFS, "class_specifier": _cls(name=_c_type_name)},
        wrappers=frozenset({"type_definition", "declaration", "field_declaration", "template_declaration"}),
    ),
    "csharp": _Spec(
        defs={
            "method_declaration": _fn(needs_body=True),
            "constructor_declaration": _fn(needs_body=True),
            "destructor_declaration": _fn(name=_cs_destructor_name, needs_body=True),
            "operator_declaration": _fn(name=_operator_name, needs_body=True),
            "conversion_operator_declaration": _fn(name=_cs_conversion_name, needs_body=True),
            "class_declaration": _cls(),
            "struct_declaration": _cls(),
            "interface_declaration": _cls(),
            "enum_declaration": _cls(),
            "record_declaration": _cls(),
            "record_struct_declaration": _cls(),
        },
    ),
    "php": _Spec(
        defs={
            "function_definition": _fn(needs_body=True),
            "method_declaration": _fn(needs_body=True),
            "class_declaration": _cls(),
            "interface_declaration": _cls(),
            "trait_declaration": _cls(),
            "enum_declaration": _cls(),
        },
    ),
    "ruby": _Spec(
        defs={
            "method": _fn(),
            "singleton_method": _fn(),
            "class": _cls(),
            "module": _cls(),
        },
    ),
    "kotlin": _Spec(
        defs={
            "function_declaration": _fn(
                name=_kotlin_function_name, body=_child_of_type("function_body"), needs_body=True
            ),
            "secondary_constructor": _fn(name=_const("constructor"), body=_child_of_type("block")),
            "class_declaration": _cls(),
            "object_declaration": _cls(),
        },
        prefixes=frozenset({"line_comment", "block_comment"}),
    ),
}

# --------------------------------------------------------------------------- defs

_MAX_DEPTH = 48  # how deep we look for definitions below a scope (not into functions)
_MAX_NODES = 300_000  # nodes visited per file while looking for definitions
_MAX_SPLIT_DEPTH = 32


def _last_row(node: Node) -> int:
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
        col = node.start_point[1]
        if data[node.start_byte - col : node.start_byte].strip():
            return False
        if node.end_point[1] == 0:  # ends with its newline (Rust `///` comments)
            return True
        nl = data.find(b"\n", node.end_byte)
        rest = data[node.end_byte : nl if nl >= 0 else len(data)]
        return not rest.strip()

    def visit(self, node: Node, qual: tuple[str, ...], out: list[_Def], depth: int) -> None:
        prefixes = self.spec.prefixes
        for child in node.named_children:
            self.budget -= 1
            if self.budget <= 0:
                return
            ctype = child.type
            if ctype in prefixes:
                if self.aligned(child):
                    self.attach[_last_row(child)] = child.start_point[0]
                continue
            hit = self.match(child)
            if hit is not None:
                inner, rule, name = hit
                parts = qual + tuple(p for p in name.split(".") if p) if "." in name else qual + (name,)
                symbol = ".".join(parts)
                if rule.kind == "class":
                    kind = "class"
                else:
                    kind = "method" if len(parts) > 1 else "function"
                start = min(child.start_point[0], inner.start_point[0])
                end = max(_last_row(child), _last_row(inner))
                d = _Def(inner, rule, symbol, kind, start, min(end, self.nrows - 1))
                out.append(d)
                if rule.kind == "class" and depth < _MAX_DEPTH:
                    self.visit(inner, parts, d.children, depth + 1)
                continue
            if depth < _MAX_DEPTH and child.named_child_count:
                self.visit(child, qual, out, depth + 1)


# --------------------------------------------------------------------------- structural


_TRIVIAL_LINE = re.compile(
    r"^\s*(?:(?:[)\]};,]+|end\b|\#\s*endif\b.*)\s*)+(?://.*|\#.*|/\*.*\*/)?\s*$"
)
_MAX_TRIVIAL_GAP = 3


class _Structural:
    def __init__(self, out: _Out, spec: _Spec, data: bytes) -> None:
        self.out = out
        self.src = out.src
        self.spec = spec
        self.data = data

    def run(self, root: Node) -> bool:
        src = self.src
        collector = _Collector(self.spec, self.data, src.n)
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
        for d in defs:
            cs = d.start
            attach = self.attach
            while cs - 1 >= floor and (cs - 1) in attach:
                first = attach[cs - 1]
                if first < floor:
                    break
                cs = first
            d.chunk_start = cs
            if d.children:
                self.set_starts(d.children, floor=d.start + 1)
            floor = max(floor, d.end + 1)

    # -- definitions --------------------------------------------------------------------
    def emit(self, defs: list[_Def], containers: list[_Def]) -> None:
        out = self.out
        for d in defs:
            if d.kind == "class":
                containers.append(d)
                if d.children:
                    head_end = max(d.chunk_start, min(d.end, d.children[0].chunk_start - 1))
                    out.region(d.chunk_start, head_end, d.symbol, "class")
                    self.emit(d.children, containers)
                else:
                    out.region(d.chunk_start, d.end, d.symbol, "class")
            else:
                self.function(d)

    def function(self, d: _Def) -> None:
        out, src = self.out, self.src
        s, e = d.chunk_start, d.end
        s, e = out.trim(s, e)
        if s > e:
            return
        if out.fits(s, e):
            out.add(_Piece(s, e, d.symbol, d.kind))
            return
        node = d.node
        body = d.rule.body(node)
        def_row = node.start_point[0]
        body_row = body.start_point[0] if body is not None else def_row + 1
        sig_end = body_row - 1 if body_row > def_row else def_row
        if sig_end - def_row + 1 > max(3, out.max_lines // 4) or sig_end > e:
            sig_end = def_row
        sig = src.text(def_row, sig_end)
        if len(sig) > out.max_chars // 3:
            sig = src.lines[def_row][: max(1, out.max_chars // 3)]
        head = sig + "\n    ...\n"
        lim_lines = max(1, out.max_lines - (sig_end - def_row + 2))
        lim_chars = max(1, out.max_chars - len(head))

        starts: set[int] = set()
        if body is not None:
            self.unit_starts(body, starts, lim_lines, lim_chars, 0)
        cuts = sorted(r for r in starts if s < r <= e)

        p = s
        first = True
        while p <= e:
            ml, mc = (out.max_lines, out.max_chars) if first else (lim_lines, lim_chars)
            if out.fits(p, e, ml, mc):
                best = e + 1
            else:
                # aim for equal parts (no 2-line tail), never over the limits
                rest = e - p + 1
                n_parts = max(-(-rest // lim_lines), -(-src.chars(p, e) // lim_chars), 2)
                target = p + -(-rest // n_parts)
                best = None
                i = bisect.bisect_right(cuts, p)
                while i < len(cuts) and out.fits(p, cuts[i] - 1, ml, mc):
                    if best is not None and cuts[i] > target:
                        if cuts[i] - target < target - best:
                            best = cuts[i]
                        break
                    best = cuts[i]
                    i += 1
                if best is None:  # no statement boundary fits: cut by lines
                    best = min(e, out.max_end(p, ml, mc)) + 1
            ps, qs = out.trim(p, best - 1)  # a part that is only blank lines is no chunk
            if ps > qs:
                pass
            elif qs == ps and len(src.lines[ps]) > out.max_chars:
                out.long_line(ps, d.symbol, d.kind)  # even a first part: no chunk over max_chars
            elif first or not out.fits_with_head(head, ps, qs):
                out.add(_Piece(ps, qs, d.symbol, d.kind))  # (tiny limits: the head itself would not fit)
            else:
                out.add(_Piece(ps, qs, d.symbol, d.kind, head=head))
            first = False
            p = best

    def unit_starts(self, node: Node, starts: set[int], ml: int, mc: int, depth: int) -> None:
        """Rows where a part may start: statements of the body, recursing into big ones."""
        kids = node.named_children
        while len(kids) == 1 and depth < _MAX_SPLIT_DEPTH:  # e.g. Go's statement_list
            node = kids[0]
            kids = node.named_children
            depth += 1
        for kid in kids:
            s = kid.start_point[0]
            e = min(_last_row(kid), self.src.n - 1)
            starts.add(s)
            if depth < _MAX_SPLIT_DEPTH and s < e and not self.out.fits(s, e, ml, mc):
                self.unit_starts(kid, starts, ml, mc, depth + 1)

    # -- code between definitions ---------------------------------------------------------
    def fill_gaps(self, containers: list[_Def]) -> None:
        src, out = self.src, self.out
        n = src.n
        covered = bytearray(n)
        ends: dict[int, _Piece] = {}
        for piece in out.pieces:
            covered[piece.s : piece.e + 1] = b"\x01" * (piece.e - piece.s + 1)
            ends[piece.e] = piece
        owner: list[_Def | None] = [None] * n
        for c in containers:  # pre-order: inner containers overwrite outer ones
            for r in range(c.chunk_start, min(c.end, n - 1) + 1):
                owner[r] = c
        r = 0
        while r < n:
            if covered[r] or src.blank(r):
                r += 1
                continue
            own = owner[r]
            s = e = r
            r += 1
            while r < n and not covered[r]:
                if not src.blank(r):
                    if owner[r] is not own:
                        break
                    e = r
                r += 1
            self.gap(s, e, own, covered, ends)

    def gap(self, s: int, e: int, own: _Def | None, covered: bytearray, ends: dict[int, _Piece]) -> None:
        src, out = self.src, self.out
        # Leading lines that only close brackets / blocks belong to the chunk above.
        last_trivial = -1
        seen = 0
        for r in range(s, e + 1):
            if src.blank(r):
                continue
            if seen == _MAX_TRIVIAL_GAP or not _TRIVIAL_LINE.match(src.lines[r]):
                break
            seen += 1
            last_trivial = r
        if last_trivial >= 0:
            prev = s - 1
            while prev >= 0 and not covered[prev]:
                prev -= 1
            piece = ends.get(prev) if prev >= 0 else None
            if (
                piece is not None
                and piece.text is None
                and piece.head.count("\n") + (last_trivial - piece.s + 1) <= out.max_lines
                and len(piece.head) + src.chars(piece.s, last_trivial) <= out.max_chars
            ):
                del ends[prev]
                piece.e = last_trivial
                ends[last_trivial] = piece
                covered[s : last_trivial + 1] = b"\x01" * (last_trivial - s + 1)
                s = last_trivial + 1
        if s > e:
            return
        if own is None:
            symbol, kind = "", "module"
        else:
            symbol, kind = own.symbol, "class"
        before = len(out.pieces)
        out.region(s, e, symbol, kind)
        for piece in out.pieces[before:]:
            ends[piece.e] = piece
        covered[s : e + 1] = b"\x01" * (e - s + 1)


# --------------------------------------------------------------------------- docs

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^(?: {4,}|\t|\s*(?:[-*+>|<]|\d+[.)])(?:\s|$))")
_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1*[ \t]*$")


def _markdown_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first row, level, title) for every ATX / setext heading outside code fences."""
    heads: list[tuple[int, int, str]] = []
    fence = ""
    i = 0
    n = len(lines)
    if n and lines[0].strip() == "---":  # YAML front matter
        for j in range(1, min(n, 200)):
            if lines[j].strip() in ("---", "..."):
                i = j + 1
                break
    prev_para = False  # previous line can be the text of a setext heading
    while i < n:
        line = lines[i]
        m = _FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line[m.end():].strip():
                fence = ""
            i += 1
            prev_para = False
            continue
        if m:
            fence = m.group(1)
            i += 1
            prev_para = False
            continue
        if not line.strip():
            prev_para = False
            i += 1
            continue
        m = _ATX.match(line)
        if m:
            heads.append((i, len(m.group(1)), (m.group(2) or "").strip()))
            prev_para = False
            i += 1
            continue
        m = _SETEXT.match(line)
        if m and prev_para:
            level = 1 if m.group(1)[0] == "=" else 2
            heads.append((i - 1, level, lines[i - 1].strip()))
            prev_para = False
            i += 1
            continue
        prev_para = not _NOT_PARAGRAPH.match(line)
        i += 1
    return heads


def _rst_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first row, level, title) for reStructuredText section titles."""
    heads: list[tuple[int, int, str]] = []
    styles: list[tuple[str, bool]] = []
    n = len(lines)

    def underline_ok(title: str, adorn: str) -> bool:
        return len(adorn) >= len(title) or len(adorn) >= 4

    i = 0
    while i < n - 1:
        line = lines[i]
        if i > 0 and lines[i - 1].strip():
            i += 1
            continue
        m = _ADORNMENT.match(line)
        if m and i + 2 < n and lines[i + 1].strip() and not _ADORNMENT.match(lines[i + 1].strip()):
            under = _ADORNMENT.match(lines[i + 2])
            title = lines[i + 1].strip()
            if under and under.group(1) == m.group(1) and underline_ok(title, line.rstrip()):
                style = (m.group(1), True)
                if style not in styles:
                    styles.append(style)
                heads.append((i, styles.index(style), title))
                i += 3
                continue
        if line.strip() and not line[0].isspace() and not m:
            under = _ADORNMENT.match(lines[i + 1])
            title = line.rstrip()
            if under and underline_ok(title, lines[i + 1].rstrip()):
                style = (under.group(1), False)
                if style not in styles:
                    styles.append(style)
                heads.append((i, styles.index(style), title.strip()))
                i += 2
                continue
        i += 1
    return heads


def _sections(out: _Out, heads: list[tuple[int, int, str]]) -> None:
    n = out.src.n
    if not heads or heads[0][0] > 0:
        out.region(0, (heads[0][0] - 1) if heads else n - 1, "", "section")
    stack: list[tuple[int, str]] = []
    for k, (row, level, title) in enumerate(heads):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = heads[k + 1][0] - 1 if k + 1 < len(heads) else n - 1
        out.region(row, end, " > ".join(t for _, t in stack), "section")


# --------------------------------------------------------------------------- entry

_MINIFIED_AVG_LINE = 400


def chunk_source(
    path: str,
    text: str,
    language: str | None = None,
    *,
    max_lines: int = 120,
    max_chars: int = 6000,
    window_lines: int = 60,
    window_overlap: int = 10,
) -> list[Chunk]:
    """Chunks of one file, sorted by start line. Never raises.

    ``language=None`` detects the language from ``path`` (see ``detect_language``);
    an unknown language gives line windows. Empty or whitespace-only text gives ``[]``.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        text = str(text)
        if not text.strip():
            return []
        max_lines = max(1, int(max_lines))
        max_chars = max(1, int(max_chars))
        window_lines = max(1, int(window_lines))
        window_overlap = max(0, min(int(window_overlap), window_lines - 1))
        if language is None or (language == "c" and str(path).lower().endswith(".h")):
            language = detect_language(path, text) or language  # sniffs C++ headers
        label = language or "text"
        src = _Src(text)
    except Exception:
        return []
    try:
        out = _Out(src, max_lines, max_chars, window_lines, window_overlap)
        _chunk_into(out, src, text, language)
        return _finish(out, str(path), label)
    except Exception:  # parse failure, grammar missing, a bug: never lose the file
        try:
            out = _Out(src, max_lines, max_chars, window_lines, window_overlap)
            out.windows(0, src.n - 1, "", "window")
            return _finish(out, str(path), label)
        except Exception:
            return []


def _chunk_into(out: _Out, src: _Src, text: str, language: str | None) -> None:
    if language in ("markdown", "rst"):
        heads = _markdown_headings(src.lines) if language == "markdown" else _rst_headings(src.lines)
        _sections(out, heads)
        return
    spec = _SPECS.get(language or "")
    if spec is not None and is_structural(language) and len(text) / src.n <= _MINIFIED_AVG_LINE:
        data = text.encode("utf-8", "replace")
        tree = get_parser(language).parse(data)
        if _Structural(out, spec, data).run(tree.root_node):
            return
        out.pieces.clear()  # no definitions at all: windows
    out.windows(0, src.n - 1, "", "window")


def _finish(out: _Out, path: str, language: str) -> list[Chunk]:
    src = out.src
    pieces = sorted(out.pieces, key=lambda p: (p.s, p.order))
    chunks = []
    seen: set[Chunk] = set()  # e.g. identical slices of one huge line: one is enough
    for p in pieces:
        if p.text is not None:
            text = p.text
        else:
            text = p.head + src.text(p.s, p.e)
        chunk = Chunk(path, language, p.s + 1, p.e + 1, p.symbol, p.kind, text)
        if chunk not in seen:
            seen.add(chunk)
            chunks.append(chunk)
    return chunks
