"""File kinds: path rules across ecosystems, the compiled-JavaScript sniff, and --kind parsing."""

from __future__ import annotations

import pytest

from codeseer.errors import CodeseerError
from codeseer.index.filekinds import FILE_KINDS, file_kind, is_build_output, parse_kinds

CASES = [
    # source
    ("src/click/core.py", "python", "source"),
    ("src/click/testing.py", "python", "source"),  # a module named testing is not a test
    ("lib/router.js", "javascript", "source"),
    ("command.go", "go", "source"),
    ("doc/man_docs.go", "go", "source"),  # cobra's doc generator package: code, not docs
    ("crates/globset/src/glob.rs", "rust", "source"),
    ("build.rs", "rust", "source"),
    ("src/build/plan.js", "javascript", "source"),  # a build tool's own build/ folder, not output
    ("src/main/java/app/App.java", "java", "source"),
    ("setup.py", "python", "source"),
    # tests
    ("tests/test_core.py", "python", "test"),
    ("src/pkg/tests/helpers.py", "python", "test"),
    ("test_utils.py", "python", "test"),
    ("conftest.py", "python", "test"),
    ("pkg/server_test.go", "go", "test"),
    ("internal/testutil/fake.go", "go", "test"),
    ("testdata/input.go", "go", "test"),
    ("test/app.router.js", "javascript", "test"),
    ("src/router.spec.ts", "typescript", "test"),
    ("typings/index.test-d.ts", "typescript", "test"),  # tsd type tests
    ("src/__tests__/router.js", "javascript", "test"),
    ("src/test/java/app/AppTest.java", "java", "test"),
    ("spec/models/user_spec.rb", "ruby", "test"),
    ("crates/ignore/tests/gitignore.rs", "rust", "test"),
    ("typing_tests/mypy.py", "python", "test"),
    # docs
    ("README.md", "markdown", "docs"),
    ("docs/conf.py", "python", "docs"),
    ("tests/README.md", "markdown", "docs"),
    ("CHANGES.rst", "rst", "docs"),
    # types
    ("index.d.ts", "typescript", "types"),
    ("src/attr/__init__.pyi", "python", "types"),
    # build output
    ("dist/express.js", "javascript", "build"),
    ("packages/core/dist/index.mjs", "javascript", "build"),
    ("build/app.js", "javascript", "build"),
    ("packages/web/build/main.js", "javascript", "build"),
    ("build/lib/pkg/core.py", "python", "build"),
    ("vendor.bundle.js", "javascript", "build"),
    # examples and benchmarks
    ("examples/hello/main.py", "python", "example"),
    ("benches/bench.rs", "rust", "example"),
    ("benchmarks/run.py", "python", "example"),
    # config
    ("pyproject.toml", "toml", "config"),
    (".github/workflows/ci.yml", "yaml", "config"),
    ("Makefile", "make", "config"),
    (".eslintrc.js", "javascript", "config"),
]


@pytest.mark.parametrize("path,language,kind", CASES)
def test_path_rules(path, language, kind):
    assert file_kind(path, language) == kind


def test_every_kind_is_covered_by_the_cases():
    assert {kind for _, _, kind in CASES} == set(FILE_KINDS)


@pytest.mark.parametrize("text", [
    '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.route = route;\n',
    "/******/ (() => { // webpackBootstrap\nvar __webpack_require__ = {};\n",
    "function a(){}\n//# sourceMappingURL=router.js.map\n",
])
def test_compiled_javascript_outside_dist_is_build_output(text):
    assert is_build_output("lib/router.js", "javascript", text)
    assert file_kind("lib/router.js", "javascript", text) == "build"


def test_hand_written_javascript_is_source():
    text = "'use strict'\n\nvar methods = require('methods')\nmodule.exports = Router\n"
    assert not is_build_output("lib/router.js", "javascript", text)
    assert file_kind("lib/router.js", "javascript", text) == "source"
    # the sniff is for JavaScript only: a Python file may mention the same words
    assert file_kind("lib/webpack.py", "python", "__webpack_require__ = None\n") == "source"


def test_parse_kinds():
    assert parse_kinds(["source,test", "docs", "test"]) == ["source", "test", "docs"]
    assert parse_kinds(["tests", "examples"]) == ["test", "example"]
    assert parse_kinds(["all"]) == list(FILE_KINDS)
    assert parse_kinds(None) == [] and parse_kinds([" , "]) == []
    with pytest.raises(CodeseerError, match=r"unknown file kind 'tset' for --kind; choose from source, test"):
        parse_kinds(["tset"])
