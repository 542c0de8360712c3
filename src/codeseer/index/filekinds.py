"""What role a file plays in its repository: source, test, docs, type declarations, build output,
example/benchmark or config.

A bag of words cannot tell ``lib/router.js`` from ``index.d.ts``, ``dist/router.js`` or
``test/router.spec.js``: all four mention the same names. Localisation needs to (the change is
almost always in the source file), and people searching code mostly want code, not its tests or
a changelog quoting the query. The kind comes from path rules that hold across ecosystems (Python,
Go, Rust, JavaScript/TypeScript, Java, Ruby, C/C++), plus a content sniff for compiled
JavaScript that lives outside a ``dist/`` folder (TypeScript or Babel output in ``lib/``).

Rules, first match wins:

- ``docs``: prose (markdown, rst, plain text, asciidoc, tex) anywhere;
- ``types``: type declarations, ``*.d.ts`` and ``*.pyi``;
- ``build``: under ``dist/``; JavaScript, TypeScript, CSS or HTML under a top-level (or monorepo
  package's) ``build/``, ``out/``, ``_build/`` or ``target/``; ``build/lib/`` for Python
  (setuptools' copy); bundles (``*.bundle.js``, ``*.umd.js``, ...); JavaScript whose text shows a
  compiler or bundler made it. Build output is not indexed: it repeats the source it was made from;
- ``test``: a folder ``test``, ``tests``, ``__tests__``, ``spec``, ``testdata``, ``fixtures``,
  ``e2e``, ``*_tests``... or a test file name (``test_*.py``, ``*_test.go``, ``*.spec.ts``,
  ``*Test.java``, ``*_spec.rb``, ``conftest.py``, ...);
- ``example``: under ``examples/``, ``samples/``, ``demo/``, ``bench/``, ``benchmarks/``...;
- ``docs``: anything else under ``docs/`` or ``documentation/`` (Sphinx ``conf.py``, doc snippets);
- ``config``: data and build files (YAML, TOML, JSON, Makefiles, ...) and dot-folders (``.github/``);
- ``source``: the rest.
"""

from __future__ import annotations

import re

__all__ = ["FILE_KINDS", "NON_CODE_KINDS", "SOURCE", "file_kind", "is_build_output", "parse_kinds", "ranked_kinds"]

SOURCE = "source"
RULES_VERSION = 2  # bump when a rule changes: the next `codeseer index` re-classifies every file (vectors reused)
FILE_KINDS: tuple[str, ...] = ("source", "test", "docs", "types", "build", "example", "config")
# What search shows after the code hits. Here, not in the searcher, so that the CLI can lay out a warm
# query process's answer without importing LanceDB.
NON_CODE_KINDS = ("docs", "test")

PROSE_LANGUAGES = frozenset({"markdown", "rst", "text", "asciidoc", "tex"})
CONFIG_LANGUAGES = frozenset({
    "toml", "yaml", "json", "ini", "properties", "xml", "make", "dockerfile", "cmake", "gradle",
    "terraform", "nix",
})
WEB_LANGUAGES = frozenset({"javascript", "typescript", "tsx", "css", "scss", "less", "html"})

_TEST_DIR = re.compile(
    r"^(?:tests?|__tests__|__mocks__|specs?|testdata|test[-_]?data|fixtures?|e2e|testutils?|test[-_]utils?"
    r"|test[-_]helpers?|test[-_]support|integration[-_]tests?|unit[-_]tests?)$"
    r"|[-_]tests?$|^tests?[-_]",
    re.IGNORECASE,
)
_TEST_NAME = re.compile(
    r"^test_.+\.py$|_test\.py$|^conftest\.py$"          # python
    r"|_test\.go$"                                       # go
    r"|\.(?:test|spec)\.[cm]?[jt]sx?$|-(?:test|spec)\.[cm]?[jt]sx?$|\.test-d\.[cm]?tsx?$"  # javascript / typescript (tsd)
    r"|_(?:spec|test)\.rb$"                              # ruby
    r"|(?:Test|Tests|IT|Spec)\.(?:java|kt|cs|scala|groovy)$|^Test[A-Z]\w*\.(?:java|kt|cs)$"
    r"|(?:_test|_tests|_unittest)\.(?:c|cc|cpp|cxx|rs|h|hpp)$|^test_.+\.(?:c|cc|cpp|rs)$"
    r"|Tests?\.swift$|_test\.(?:exs|dart)$|_test\.php$|Test\.php$"
)
_TYPES_NAME = re.compile(r"\.d\.[cm]?ts$|\.pyi$")
_BUNDLE_NAME = re.compile(r"\.(?:min|bundle|umd|prod|production)\.[cm]?js$|[.-]bundle\.[cm]?js$|\.chunk\.[cm]?js$")
_EXAMPLE_DIRS = frozenset({
    "examples", "example", "samples", "sample", "demo", "demos", "_examples", "bench", "benches",
    "benchmark", "benchmarks", "benchsuite", "cookbook",
})
_DOC_DIRS = frozenset({"docs", "documentation"})
_BUILD_DIRS_ANY = frozenset({"dist"})
_BUILD_DIRS_WEB = frozenset({"build", "out", "_build", "target", "lib-cov", "coverage"})
# What compilers and bundlers write into the JavaScript they emit (checked in the first 4 KB and
# the last 512 bytes): TypeScript/Babel CommonJS output, webpack's runtime, a source-map trailer.
_COMPILED_JS = re.compile(
    r'Object\.defineProperty\(exports,\s*["\']__esModule["\']|__webpack_require__|/\*{6}/'
    r"|^//# sourceMappingURL=|var __awaiter = \(this && this\.__awaiter\)|__importDefault = \(this",
    re.MULTILINE,
)


def is_build_output(path: str, language: str | None, text: str | None = None) -> bool:
    """Whether the file is generated from other sources (a bundle, a compiled copy): not indexed by default."""
    parts = path.split("/")
    dirs = [p.lower() for p in parts[:-1]]
    if any(d in _BUILD_DIRS_ANY for d in dirs):
        return True
    # build/, out/, target/ hold output at a project's top (or a monorepo package's top); deeper,
    # a folder of that name is as likely source (src/build/ of a build tool).
    tops = dirs[:1] + (dirs[2:3] if dirs[:1] in (["packages"], ["apps"], ["libs"]) else [])
    if language in WEB_LANGUAGES and any(d in _BUILD_DIRS_WEB for d in tops):
        return True
    if language == "python" and "/".join(dirs[:2]) == "build/lib":
        return True
    if language in ("javascript", "typescript") and _BUNDLE_NAME.search(parts[-1]):
        return True
    if text is not None and language == "javascript":
        return bool(_COMPILED_JS.search(text[:4096]) or _COMPILED_JS.search(text[-512:]))
    return False


def file_kind(path: str, language: str | None, text: str | None = None) -> str:
    """The kind of the file at repository-relative posix ``path`` (one of :data:`FILE_KINDS`)."""
    parts = path.split("/")
    name = parts[-1]
    dirs = [p.lower() for p in parts[:-1]]
    if language in PROSE_LANGUAGES:
        return "docs"
    if _TYPES_NAME.search(name):
        return "types"
    if is_build_output(path, language, text):
        return "build"
    if _TEST_NAME.search(name) or any(_TEST_DIR.search(d) for d in dirs):
        return "test"
    if any(d in _EXAMPLE_DIRS for d in dirs):
        return "example"
    if any(d in _DOC_DIRS for d in dirs):
        return "docs"
    if language in CONFIG_LANGUAGES or name.startswith(".") or any(d.startswith(".") for d in dirs):
        return "config"
    return SOURCE


def parse_kinds(values, *, what: str = "--kind") -> list[str]:
    """``["source,test", "docs"]`` -> ``["source", "test", "docs"]``; an unknown kind is one clear error."""
    from codeseer.errors import CodeseerError

    kinds: list[str] = []
    for value in values or []:
        for part in str(value).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part in ("tests",):
                part = "test"
            if part in ("examples", "bench", "benchmark", "benchmarks"):
                part = "example"
            if part == "all":
                kinds.extend(k for k in FILE_KINDS if k not in kinds)
                continue
            if part not in FILE_KINDS:
                raise CodeseerError(f"unknown file kind {part!r} for {what}; choose from {', '.join(FILE_KINDS)} or all")
            if part not in kinds:
                kinds.append(part)
    return kinds


def ranked_kinds(include) -> list[str]:
    """The file kinds ``locate`` ranks: source, then those ``--include`` adds."""
    return [SOURCE] + [kind for kind in parse_kinds(include, what="--include") if kind != SOURCE]
