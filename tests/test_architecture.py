"""The rooms of the package and the way imports may point between them (README, Architecture).

cli (and each room's ``commands.py``, the Python API) -> serve -> apps / train -> eval -> data ->
search -> index -> models -> base (errors, limits, paths, render, text, ...). A module may import its
own room and any room below it, never one above: every import is read from the source, the lazy ones
inside functions too, so a cycle cannot hide behind a late import. Module-level imports inside a room
form no cycle either. Sizes are checked too: no module over 600 lines, no function over 80 outside
the declarative command/route/tool tables.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "codeseer"

BASE = {"errors", "extras", "limits", "jsonl", "paths", "render", "text"}
LAYERS = {**{name: 0 for name in BASE}, "models": 1, "index": 2, "search": 3, "data": 4, "eval": 5,
          "train": 6, "apps": 6, "serve": 7, "cli": 8}
# Typer command tables, HTTP routes and MCP tools: one declaration per option is clearer than helpers.
DECLARATIVE = {"commands.py", "cli.py", "http.py", "mcp_server.py"}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def room(module: str) -> str:
    """The layer a module belongs to: a room's ``commands`` module and the front doors are the CLI's."""
    parts = module.split(".")
    if len(parts) == 1 or parts[-1] == "commands" or parts[1] in ("cli", "api", "__main__"):
        return "cli"
    return parts[1]


def imports(path: Path, module: str, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name.startswith("codeseer")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("codeseer"):
                out.add(target)
    return out


def owner(target: str, known: dict[str, Path]) -> str | None:
    """The module an import names (``codeseer.a.b`` may be a module or a name inside ``codeseer.a``)."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def test_imports_point_down_the_layers():
    known = modules()
    wrong = []
    for module, path in known.items():
        here = LAYERS[room(module)]
        for target in imports(path, module):
            target = owner(target, known)
            if target is None or target == "codeseer":
                continue
            there = LAYERS[room(target)]
            if there > here:
                wrong.append(f"{module} ({room(module)}) imports {target} ({room(target)})")
    assert not wrong, "imports that point up a layer:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle_at_module_level():
    known = modules()
    graph = {m: {owner(t, known) for t in imports(p, m, top_level_only=True)} - {None, m, "codeseer"}
             for m, p in known.items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, trail + [node]):
                return True
        state[node] = 2
        return False

    for module in graph:
        if state.get(module) is None and visit(module, []):
            break
    assert not cycle, "module-level import cycle: " + " -> ".join(cycle)


def test_rooms_stay_small():
    too_long = []
    for module, path in modules().items():
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{module}: {lines} lines")
        if path.name in DECLARATIVE:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert not too_long, "too long:\n" + "\n".join(too_long)


@pytest.mark.parametrize("module", ["codeseer.apps.common", "codeseer.models.testing", "codeseer.index.chunker"])
def test_old_rooms_are_gone(module):
    assert module not in modules()
