"""Per-language knowledge: which tree-sitter nodes are definitions, and what they are called.

Why a table of small rules: grammars name the same idea differently (``function_item``,
``method_declaration``, ``function_definition``) and hide names in different places (a C
declarator chain, a Go receiver, a Rust ``impl`` type, a JS ``const f = () => ...``). Keeping
all of that here, as data plus a few namer functions, lets the tree walk and the splitter stay
language-neutral: supporting a language or fixing a symbol is an edit to this module alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tree_sitter import Node

# --------------------------------------------------------------------------- namers

_Namer = Callable[["Node", bytes], "str | None"]  # the definition's name, or None: not a definition
_Bodier = Callable[["Node"], "Node | None"]  # the node whose statements a long definition splits on = Callable[["Node", bytes], "str | None"]
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
    declarator = node.child_by_field_name("declarator")
    for _ in range(16):  # pointer / reference declarators wrap the function declarator
        if declarator is None:
            return None
        if declarator.type == "function_declarator":
            inner = declarator.child_by_field_name("declarator")
            return _clean(_txt(inner, data)) or None
        declarator = declarator.child_by_field_name("declarator")
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
    receiver_type = None
    if receiver is not None:
        for param in receiver.named_children:
            if param.type == "parameter_declaration":
                receiver_type = param.child_by_field_name("type")
                break
    for _ in range(8):
        if receiver_type is None or receiver_type.type == "type_identifier":
            break
        if receiver_type.type == "generic_type":
            receiver_type = receiver_type.child_by_field_name("type")
        else:  # pointer_type, parenthesized_type
            receiver_type = receiver_type.named_children[0] if receiver_type.named_children else None
    type_name = _clean(_txt(receiver_type, data)).lstrip("*")
    return f"{type_name}.{name}" if type_name else name


# Rust ------------------------------------------------------------------------


def _rust_impl_name(node: Node, data: bytes) -> str | None:
    impl_type = node.child_by_field_name("type")
    for _ in range(8):
        if impl_type is None:
            return None
        if impl_type.type == "generic_type":
            impl_type = impl_type.child_by_field_name("type")
        elif impl_type.type in ("reference_type", "pointer_type"):
            impl_type = impl_type.child_by_field_name("type")
        else:
            break
    name = _last_component(_clean(_txt(impl_type, data)))
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


def _fn(**options) -> _Rule:
    return _Rule("function", **options)


def _cls(**options) -> _Rule:
    return _Rule("class", **options)


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
            "macro_definition": _fn(body=lambda node: None),
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
