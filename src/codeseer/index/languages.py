"""Which files we index, as what language, and how to get a tree-sitter parser for them.

Why a table instead of a library: language detection for a code index only needs the
file name (plus one cheap content sniff for ``.h``), and it has to be fast and
predictable, because it runs for every file of a repository before any parsing happens.
Grammars are imported lazily and cached per language, so importing this module (for
``detect_language`` alone, e.g. while walking a tree) costs nothing, and a broken or
missing grammar wheel only affects files of that one language.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import tree_sitter

__all__ = [
    "DOC_LANGUAGES",
    "STRUCTURAL_LANGUAGES",
    "detect_language",
    "get_language",
    "get_parser",
    "is_structural",
]

# language name -> (grammar module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "java": ("tree_sitter_java", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "php": ("tree_sitter_php", "language_php"),
    "ruby": ("tree_sitter_ruby", "language"),
    "kotlin": ("tree_sitter_kotlin", "language"),
}

STRUCTURAL_LANGUAGES: frozenset[str] = frozenset(_GRAMMARS)
"""Languages chunked by definitions (function / method / class) via tree-sitter."""

DOC_LANGUAGES: frozenset[str] = frozenset({"markdown", "rst"})
"""Languages chunked by section headings."""

# lower-cased extension (with the dot) -> language. Everything that is neither
# structural nor a doc language is chunked by line windows.
_EXTENSIONS: dict[str, str] = {
    # structural
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".java": "java",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".c": "c", ".h": "c",
    ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp", ".inl": "cpp",
    ".cs": "csharp",
    ".php": "php", ".phtml": "php",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby", ".ru": "ruby",
    ".kt": "kotlin", ".kts": "kotlin",
    # docs
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".rst": "rst",
    # line windows
    ".txt": "text", ".text": "text", ".adoc": "asciidoc", ".tex": "tex",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
    ".json": "json", ".jsonc": "json", ".json5": "json",
    ".cfg": "ini", ".ini": "ini", ".conf": "ini", ".properties": "properties",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".fish": "shell",
    ".ps1": "powershell", ".bat": "batch", ".cmd": "batch",
    ".sql": "sql",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".css": "css", ".scss": "scss", ".sass": "scss", ".less": "less",
    ".swift": "swift", ".scala": "scala", ".sc": "scala", ".groovy": "groovy",
    ".gradle": "gradle", ".lua": "lua", ".r": "r", ".m": "objc", ".mm": "objc",
    ".pl": "perl", ".pm": "perl", ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".hrl": "erlang", ".hs": "haskell", ".ml": "ocaml", ".mli": "ocaml",
    ".clj": "clojure", ".cljs": "clojure", ".dart": "dart", ".jl": "julia", ".zig": "zig",
    ".nim": "nim", ".vue": "vue", ".svelte": "svelte",
    ".xml": "xml", ".xsd": "xml", ".xsl": "xml", ".proto": "proto",
    ".graphql": "graphql", ".gql": "graphql", ".tf": "terraform", ".hcl": "terraform",
    ".nix": "nix", ".cmake": "cmake", ".mk": "make", ".dockerfile": "dockerfile",
    ".j2": "jinja", ".jinja": "jinja", ".jinja2": "jinja",
}

# exact (case-sensitive) base names without a useful extension
_FILENAMES: dict[str, str] = {
    "Makefile": "make", "makefile": "make", "GNUmakefile": "make",
    "Dockerfile": "dockerfile", "Containerfile": "dockerfile",
    "CMakeLists.txt": "cmake",
    "Rakefile": "ruby", "Gemfile": "ruby", "Vagrantfile": "ruby", "Podfile": "ruby",
    "Jenkinsfile": "groovy",
    "README": "text", "LICENSE": "text", "LICENCE": "text", "COPYING": "text",
    "NOTICE": "text", "AUTHORS": "text", "CHANGELOG": "text", "CONTRIBUTING": "text",
    "Procfile": "text",
}

KNOWN_LANGUAGES: frozenset[str] = frozenset(_EXTENSIONS.values()) | frozenset(_FILENAMES.values())
"""Every language name an index can hold (what ``--lang`` accepts, besides aliases such as ``py``)."""

# Cheap signals that a ``.h`` header is C++ rather than C.
_CPP_HEADER_HINT = re.compile(
    r"^\s*(?:namespace\s+\w|template\s*<|class\s+\w+[^;]*\{|(?:public|private|protected)\s*:)"
    r"|std::|#\s*include\s*<(?:iostream|string|vector|memory|map|unordered_map|functional)>",
    re.MULTILINE,
)


def detect_language(path: str, text: str | None = None) -> str | None:
    """Language name for ``path``, or None when it is not a text/code file we index.

    ``text`` is optional and only used to tell C++ headers from C headers (``.h``).
    """
    name = os.path.basename(str(path).replace("\\", "/"))
    if not name:
        return None
    lang = _FILENAMES.get(name)
    if lang is not None:
        return lang
    if name.startswith("Dockerfile.") or name.startswith("Containerfile."):
        return "dockerfile"
    ext = os.path.splitext(name)[1].lower()
    lang = _EXTENSIONS.get(ext)
    if lang == "c" and ext == ".h" and text and _CPP_HEADER_HINT.search(text[:200_000]):
        return "cpp"
    return lang


def is_structural(language: str | None) -> bool:
    """True for languages chunked by definitions through a tree-sitter grammar."""
    return language in _GRAMMARS


@functools.cache
def get_language(language: str) -> "tree_sitter.Language":
    """The tree-sitter ``Language`` for a structural language (imported on first use)."""
    spec = _GRAMMARS.get(language)
    if spec is None:
        raise ValueError(f"no tree-sitter grammar for language {language!r}")
    import tree_sitter

    module = importlib.import_module(spec[0])
    return tree_sitter.Language(getattr(module, spec[1])())


_local = threading.local()


def get_parser(language: str) -> "tree_sitter.Parser":
    """A tree-sitter parser for ``language``, cached per language and per thread.

    Parsers are not thread-safe, so every thread gets its own; the ``Language`` objects
    are shared.
    """
    cache: dict[str, tree_sitter.Parser] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    parser = cache.get(language)
    if parser is None:
        import tree_sitter

        parser = tree_sitter.Parser(get_language(language))
        cache[language] = parser
    return parser
