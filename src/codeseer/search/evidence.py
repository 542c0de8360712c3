"""Exact cues in an issue or commit text that a bag of words and a small model both blur.

Developers name what they mean: a conventional-commit scope (``globset: ...``, ``fix(res.send): ...``),
a file (``core.py``, a stack frame's ``File "src/app.py", line 3``), an identifier in backticks or
in code shape (``lookup_default()``, ``TextWrapper``, ``__hash__``). BM25 splits these into common
words and stems them; a 22M-parameter encoder sees one more token among many. Here they are pulled
out whole so the file ranker (:mod:`codeseer.search.files`) can match them exactly against paths
and the symbols a file defines.
"""

from __future__ import annotations

import re

__all__ = ["file_mentions", "path_word_set", "quoted_identifiers", "scope_words", "words_match"]

MAX_IDENTIFIERS = 16
MIN_IDENTIFIER = 3

_BACKTICK = re.compile(r"`([^`\n]{1,200})`")
_DOTTED = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_CALL = re.compile(r"([A-Za-z_$][\w$]*)\(")
_FRAME = re.compile(r"""File "[^"\n]+", line \d+, in ([A-Za-z_]\w*)|^\s*at (?:[\w$]+\.)*([\w$]+) \(""", re.MULTILINE)
_CAMEL = re.compile(r"[a-z0-9][A-Z]|^[A-Z][a-z0-9]+[A-Z]")
# Conventional-commit prefixes: "scope: ...", "type(scope): ...", "type(scope)!: ..."
_SCOPE = re.compile(r"^\s*(?:(?P<type>[A-Za-z]+)\((?P<inner>[^)]{1,60})\)|(?P<bare>[A-Za-z0-9_./,-]{2,60}))!?:\s")
_GENERIC_SCOPES = frozenset({
    "fix", "fixes", "fixed", "feat", "feature", "chore", "docs", "doc", "refactor", "perf", "test", "tests", "style",
    "build", "ci", "revert", "wip", "bug", "bugfix", "hotfix", "deps", "dep", "release", "merge", "security",
    "breaking", "change", "changes", "update", "note", "todo", "ng", "typo", "lint", "format", "cleanup",
    "http", "https",
})
_SOURCE_EXTENSIONS = (
    "py|pyi|go|rs|js|mjs|cjs|jsx|ts|tsx|mts|java|kt|kts|rb|php|cs|c|h|cc|cpp|cxx|hpp|hh|swift|scala|m|mm|"
    "lua|pl|pm|ex|exs|erl|hs|ml|clj|dart|jl|zig|vue|svelte|sh|bash"
)
_FILE_MENTION = re.compile(rf"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]*\w\.(?:{_SOURCE_EXTENSIONS}))(?![\w])")
_WORD_SPLIT = re.compile(r"[_\-.]+")


def _fold(word: str) -> str:
    """Lower case without a plural ``s``: ``completions`` and ``completion`` are one word here."""
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _code_shaped(word: str) -> bool:
    inner = word.strip("_")
    return ("_" in inner) or bool(_CAMEL.search(word)) or (word.startswith("__") and word.endswith("__"))


def quoted_identifiers(text: str) -> list[str]:
    """Identifiers the text names in code form, in order of appearance (at most ``MAX_IDENTIFIERS``).

    Everything inside backticks; outside them calls (``partial()``), both parts of dotted names
    (``res.send``), snake_case, camelCase/PascalCase and dunder names. Plain English words are not
    identifiers here, even capitalised ones ("Fix", "Python").
    """
    found: dict[str, None] = {}

    def add(word: str) -> None:
        word = word.strip("$")
        if len(word) >= MIN_IDENTIFIER and not word.isdigit():
            found.setdefault(word, None)

    scope = _SCOPE.match(text)
    if scope:  # "fix(res.send): ..." names res.send, but "fix(" is no call
        text = (scope.group("inner") or scope.group("bare")) + " " + text[scope.end():]
    for python_frame, js_frame in _FRAME.findall(text):  # stack frames name their function
        add(python_frame or js_frame)
    text = _FILE_MENTION.sub(" ", text)  # file names are matched against paths, not symbols
    for span in _BACKTICK.findall(text):
        for dotted in _DOTTED.findall(span):
            for part in dotted.split("."):
                add(part)
    rest = _BACKTICK.sub(" ", text)
    calls = set(_CALL.findall(rest))
    for dotted in _DOTTED.findall(rest):
        parts = dotted.split(".")
        for part in parts:
            if len(parts) > 1 or _code_shaped(part) or part in calls:
                add(part)
    return list(found)[:MAX_IDENTIFIERS]


def scope_words(text: str) -> set[str]:
    """The words of a conventional-commit scope: ``ignore/types: ...`` -> ``{ignore, type}`` (folded)."""
    match = _SCOPE.match(text)
    if not match:
        return set()
    scope = match.group("inner") or match.group("bare")
    if match.group("bare") and scope[:1].isupper() and not any(c in scope for c in "/._-"):
        return set()  # "Traceback: ...", "BUG: ...": a word of prose, not a module
    words = {_fold(w) for w in re.split(r"[/,.\s\-_]+", scope) if w}
    return {w for w in words if w and w not in _GENERIC_SCOPES and not w.isdigit()}


def file_mentions(text: str) -> list[str]:
    """File names and paths with a source extension that the text mentions (``core.py``, ``src/app.py:12``)."""
    seen: dict[str, None] = {}
    for match in _FILE_MENTION.finditer(text):
        mention = match.group(1).lstrip("./")
        if mention and "/" not in mention[:1]:
            seen.setdefault(mention, None)
    return list(seen)


def path_word_set(path: str) -> frozenset[str]:
    """Folded words of a path's folders and file name (no extension): what a scope or module word can match."""
    words: set[str] = set()
    for part in path.split("/"):
        base = part.rsplit(".", 1)[0] if "." in part[1:] else part
        if not base:
            continue
        words.add(_fold(base))
        words.update(_fold(w) for w in _WORD_SPLIT.split(base) if w)
    return frozenset(words)


def words_match(words: set[str], path_words: frozenset[str]) -> float:
    """Share of ``words`` that name a folder or the file (0 when there are none)."""
    if not words:
        return 0.0
    return len(words & path_words) / len(words)
