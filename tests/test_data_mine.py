"""`codeseer data mine`: pairs from docstrings / doc comments / names, filters, dedup, exclusion, CLI."""

from __future__ import annotations

import json
import re
import os
import textwrap
from pathlib import Path

import pytest

from codeseer.data.dedup import LSHIndex, MinHasher, normalise_code
from codeseer.data.filters import doc_reason, is_test_code, split_identifier
from codeseer.data.mine import describe, mine_pairs, split_function
from codeseer.errors import CodeseerError

UTIL_PY = '''
import os


def parse_config_file(path, strict=False):
    """Read a configuration file and return its settings.

    Lines starting with a hash are ignored.

    Args:
        path: the file to read.
        strict: fail on lines without an equals sign.
    """
    settings = {}
    for line in open(path):
        if line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    return settings


def build_widget_tree(root):
    """Auto-generated method stub for the widget tree."""
    nodes = [root]
    while nodes:
        nodes.pop()
    return root


def merge_dicts(first, second):
    """
    :param first: the first mapping
    :param second: the second mapping
    """
    out = dict(first)
    out.update(second)
    return out


class Account:
    def get_user_name(self):
        """Get the user name."""
        name = self._name
        name = name.strip()
        return name

    def settings_summary(self):
        """返回配置文件中的所有设置项。"""
        items = sorted(self._settings.items())
        lines = [f"{k}={v}" for k, v in items]
        return "\\n".join(lines)


def tidy(text):
    """Do it."""
    text = text.strip()
    text = text.lower()
    return text


def short_helper(x):
    """Return twice the given value, as an integer."""
    return 2 * x


def test_roundtrip():
    """Check that parsing and writing give back the same file."""
    data = parse_config_file("a.cfg")
    assert data
    assert isinstance(data, dict)


def flatten_nested_lists(lists):
    """Flatten a list of lists into one list, keeping the order."""
    out = []
    for inner in lists:
        for item in inner:
            out.append(item)
    return out


def chunk_text_windows(text, size, overlap):
    """Cut a text into windows of size characters that overlap."""
    step = max(1, size - overlap)
    windows = []
    for start in range(0, len(text), step):
        windows.append(text[start:start + size])
        if start + size >= len(text):
            break
    return windows


def normalise_header_names(headers, lower=True, strip=True, drop_empty=True, sort=False):
    """Clean HTTP header names so that lookups ignore case and stray spaces."""
    cleaned = {}
    for name, value in headers.items():
        if strip:
            name = name.strip()
        if lower:
            name = name.lower()
        if drop_empty and not name:
            continue
        cleaned[name] = value
    if sort:
        cleaned = dict(sorted(cleaned.items()))
    return cleaned
'''

# The same flatten function, reformatted with another comment and docstring: an exact duplicate.
# A near-duplicate of normalise_header_names (one more statement). A copy of chunk_text_windows
# (excluded: the corpus holds it), and a near copy of a corpus function.
COPIES_PY = '''
def flatten_nested_lists(lists):
    """Turn nested lists into a flat list."""
    out = []   # the result
    for inner in lists:
        for item in inner:
            out.append(item)
    return out


def normalise_header_names(headers, lower=True, strip=True, drop_empty=True, sort=False):
    """Tidy the names of HTTP headers before they are compared."""
    cleaned = {}
    for name, value in headers.items():
        if strip:
            name = name.strip()
        if lower:
            name = name.lower()
        if drop_empty and not name:
            continue
        cleaned[name] = value
    if sort:
        cleaned = dict(sorted(cleaned.items()))
    cleaned.pop("", None)
    return cleaned


def read_json_lines(path, skip_blank=True, encoding="utf-8", strict=True, limit=None):
    """Read a JSON lines file into a list of records, one per line."""
    records = []
    with open(path, encoding=encoding) as handle:
        for line in handle:
            if skip_blank and not line.strip():
                continue
            records.append(json.loads(line, strict=strict))
            if limit is not None and len(records) >= limit:
                break
    return records
'''

CORPUS = [
    # chunk_text_windows exactly as a benchmark would store it (docstring and all)
    'def chunk_text_windows(text, size, overlap):\n    """Cut text into windows."""\n    step = max(1, size - overlap)\n'
    '    windows = []\n    for start in range(0, len(text), step):\n        windows.append(text[start:start + size])\n'
    '        if start + size >= len(text):\n            break\n    return windows',
    # read_json_lines calling json.loads without strict=: a near-duplicate
    'def read_json_lines(path, skip_blank=True, encoding="utf-8", strict=True, limit=None):\n    records = []\n'
    '    with open(path, encoding=encoding) as handle:\n        for line in handle:\n'
    '            if skip_blank and not line.strip():\n                continue\n'
    '            records.append(json.loads(line))\n'
    '            if limit is not None and len(records) >= limit:\n                break\n    return records\n',
    "public int Add(int a, int b) { return a + b; }",
]

PLUGINS_JS = '''
// Copyright 2024 Example Corp.
// SPDX-License-Identifier: MIT
function loadPluginFolder(dir) {
  const names = fs.readdirSync(dir);
  const plugins = names.map((n) => require(path.join(dir, n)));
  return plugins;
}

/**
 * Debounce a callback so that it runs once after calls stop.
 * @param {Function} fn the callback
 * @param {number} wait milliseconds to wait
 * @returns {Function}
 */
function debounceCallback(fn, wait) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}

class Cart {
  /** Add an item to the shopping cart and update the total. */
  addItem(item) {
    this.items.push(item);
    this.total += item.price;
    return this.total;
  }
}
'''

LINES_GO = '''
package lines

// ReadLines reads a file and returns its lines without newline characters.
// It fails when the file cannot be opened.
func ReadLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(data), "\\n"), nil
}
'''

LINES_TEST_GO = '''
package lines

// Check that ReadLines splits on newlines correctly.
func checkSplitsOnNewlines(t *testing.T) {
	got, _ := ReadLines("x")
	if len(got) != 2 {
		t.Fatal("want two lines")
	}
}
'''

HEADER_RS = '''
/// Parse a header line into its key and its value.
///
/// Returns None when the line has no colon.
pub fn parse_header_line(line: &str) -> Option<(&str, &str)> {
    let idx = line.find(':')?;
    let (k, v) = line.split_at(idx);
    Some((k.trim(), v[1..].trim()))
}

#[cfg(test)]
mod tests {
    /// Header lines with a colon are split in two.
    #[test]
    fn splits_header_lines() {
        let got = parse_header_line("a: b");
        assert_eq!(got, Some(("a", "b")));
        assert!(got.is_some());
    }
}
'''

TESTS_PY = '''
def helper_for_checks(value):
    """Make sure the value round-trips through the parser."""
    parsed = str(value)
    assert parsed
    return parsed
'''


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write(tmp_path / "src", {
        "pkg/util.py": UTIL_PY, "pkg/copies.py": COPIES_PY, "web/plugins.js": PLUGINS_JS,
        "go/lines.go": LINES_GO, "go/lines_test.go": LINES_TEST_GO, "rs/header.rs": HEADER_RS,
        "tests/test_util.py": TESTS_PY,
    })


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    beir = tmp_path / "bench"
    beir.mkdir()
    lines = [json.dumps({"_id": f"d{i}", "title": "", "text": t}) for i, t in enumerate(CORPUS)]
    (beir / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return beir


def by_symbol(pairs):
    out: dict[str, dict[str, dict]] = {}
    for p in pairs:
        out.setdefault(p["symbol"], {})[p["kind"]] = p
    return out


# --------------------------------------------------------------------------- the pairs


def test_pairs_python_docstring_first_sentence_name_code2nl(tree, corpus):
    report = mine_pairs([tree], exclude=[corpus])
    got = by_symbol(report.pairs)["parse_config_file"]
    body = textwrap.dedent('''\
        def parse_config_file(path, strict=False):
            settings = {}
            for line in open(path):
                if line.startswith("#"):
                    continue
                key, _, value = line.partition("=")
                settings[key.strip()] = value.strip()
            return settings''')
    desc = "Read a configuration file and return its settings. Lines starting with a hash are ignored."
    source = f"{tree}/pkg/util.py:4"
    common = {"language": "python", "symbol": "parse_config_file", "source": source}
    search = got.pop("search")
    assert search.pop("doc_in_code") is (search["positive"] != body)
    if search["positive"] != body:  # the whole function, its docstring kept
        assert '"""Read a configuration file' in search["positive"] and search["positive"].endswith("return settings")
    query = search.pop("query")
    assert re.search(r"read (a )?configuration file", query) and query == query.lower() and "." not in query
    assert search == {"positive": search["positive"], "task": "nl2code", "kind": "search", **common}
    assert got == {
        "docstring": {"query": desc, "positive": body, "task": "nl2code", "kind": "docstring", **common},
        "first_sentence": {"query": "Read a configuration file and return its settings.", "positive": body,
                           "task": "nl2code", "kind": "first_sentence", **common},
        "code2nl": {"query": body, "positive": desc, "task": "code2nl", "kind": "code2nl", **common},
        "name": {"query": "parse config file", "positive": body, "task": "nl2code", "kind": "name", **common},
    }
    # the order of one function's pairs
    kinds = [p["kind"] for p in report.pairs if p["symbol"] == "parse_config_file"]
    assert kinds == ["docstring", "first_sentence", "code2nl", "search", "name"]


def test_search_queries_read_like_developer_searches():
    import random

    from codeseer.data.queries import search_query

    def q(sentence, language="python", seed=1):
        return search_query(sentence, language, random.Random(seed))

    rewrites = [q("Returns True if the path is a symbolic link.", seed=s) for s in range(20)]
    assert all("check if" in r and "symbolic link" in r and "true" not in r for r in rewrites)
    assert any(r.startswith("python ") for r in rewrites) and any(r.endswith(" python") for r in rewrites)
    assert any("python" not in r for r in rewrites)  # the language is sometimes left out
    # markup and parentheses go, the verb becomes an imperative, articles are dropped at random
    session = [q("Creates the ``Session`` object (see :func:`connect`).", seed=s) for s in range(20)]
    assert all("`" not in r and "connect" not in r and "see" not in r for r in session)
    assert {next(w for w in r.split() if w not in ("python", "py", "how", "to")) for r in session} == {"create"}
    assert any("the session" in r for r in session) and any("create session" in r for r in session)
    go = [q("Parses a duration string.", "go", s) for s in range(30)]
    assert all("parse" in r and "duration string" in r for r in go)
    assert {"go", "golang"} <= {w for r in go for w in r.split()} and not any("python" in r for r in go)
    assert q("...") == "" and q("(internal)") == ""
    assert len(q(" ".join(["word"] * 40)).split()) <= 12 + 3


def test_doc_in_code_share(tree):
    kept = {share: [p["doc_in_code"] for p in mine_pairs([tree], doc_in_code=share).pairs if p["kind"] == "search"]
            for share in (0.0, 1.0)}
    assert kept[0.0] and not any(kept[0.0]) and all(kept[1.0])
    with_doc = [p for p in mine_pairs([tree], doc_in_code=1.0).pairs if p["kind"] == "search"]
    bare = {p["symbol"]: p["positive"] for p in mine_pairs([tree], doc_in_code=0.0).pairs if p["kind"] == "search"}
    assert all(len(p["positive"]) > len(bare[p["symbol"]]) for p in with_doc)


def test_pairs_js_go_rust_doc_comments_removed(tree, corpus):
    pairs = by_symbol(mine_pairs([tree], exclude=[corpus]).pairs)
    debounce = pairs["debounceCallback"]
    assert debounce["docstring"]["query"] == "Debounce a callback so that it runs once after calls stop."
    assert "first_sentence" not in debounce  # one sentence: the same as the docstring pair
    assert debounce["docstring"]["positive"] == textwrap.dedent('''\
        function debounceCallback(fn, wait) {
          let timer = null;
          return (...args) => {
            clearTimeout(timer);
            timer = setTimeout(() => fn(...args), wait);
          };
        }''')
    assert debounce["name"]["query"] == "debounce callback"
    add = pairs["Cart.addItem"]
    assert add["docstring"]["query"] == "Add an item to the shopping cart and update the total."
    # a method: dedented, and without the class's closing brace the chunker appends
    assert add["docstring"]["positive"] == "addItem(item) {\n  this.items.push(item);\n  this.total += item.price;\n  return this.total;\n}"
    assert add["name"]["query"] == "add item"
    go = pairs["ReadLines"]
    assert go["docstring"]["query"] == ("ReadLines reads a file and returns its lines without newline characters. "
                                        "It fails when the file cannot be opened.")
    assert go["first_sentence"]["query"] == "ReadLines reads a file and returns its lines without newline characters."
    assert go["docstring"]["positive"].startswith("func ReadLines(path string) ([]string, error) {\n\tdata, err")
    assert "//" not in go["docstring"]["positive"]
    assert go["name"]["query"] == "read lines" and go["docstring"]["language"] == "go"
    rs = pairs["parse_header_line"]
    assert rs["docstring"]["query"] == "Parse a header line into its key and its value. Returns None when the line has no colon."
    assert rs["first_sentence"]["query"] == "Parse a header line into its key and its value."
    assert rs["docstring"]["positive"].startswith("pub fn parse_header_line(line: &str)")
    assert "///" not in rs["docstring"]["positive"]
    assert rs["code2nl"] ["query"] == rs["docstring"]["positive"]
    assert rs["code2nl"]["positive"] == rs["docstring"]["query"]
    assert rs["docstring"]["source"] == f"{tree}/rs/header.rs:1"


def test_filter_dedup_and_exclusion_counts(tree, corpus):
    report = mine_pairs([tree], exclude=[corpus])
    assert dict(report.removed) == {
        "test_code": 4,  # tests/test_util.py, test_roundtrip, lines_test.go, Rust #[test] in mod tests
        "short_body": 1,  # short_helper
        "boilerplate_doc": 2,  # "Auto-generated method stub", the :param-only doc
        "licence": 1,  # loadPluginFolder's Copyright / SPDX comment
        "non_english": 1,  # settings_summary
        "repeats_name": 1,  # "Get the user name." on get_user_name
        "short_doc": 1,  # "Do it."
        "name_one_word": 1,  # tidy
        "exact_duplicate": 1,  # flatten_nested_lists, again in util.py
        "near_duplicate": 1,  # normalise_header_names, one statement apart
        "excluded_exact": 1,  # chunk_text_windows is in the corpus (there with another docstring)
        "excluded_near": 1,  # read_json_lines is a near copy of a corpus document
    }
    assert report.exclude_docs == 3 and report.files == 7 and report.functions == 22
    assert report.kept_functions == 12
    symbols = {p["symbol"] for p in report.pairs}
    assert "chunk_text_windows" not in symbols and "read_json_lines" not in symbols
    assert not symbols & {"test_roundtrip", "helper_for_checks", "checkSplitsOnNewlines", "tests.splits_header_lines", "short_helper"}
    # filtered docs still leave the split-name pair
    assert {p["kind"] for p in report.pairs if p["symbol"] in ("build_widget_tree", "merge_dicts", "loadPluginFolder",
                                                            "Account.get_user_name", "Account.settings_summary")} == {"name"}
    # the first copy met (walk order: copies.py before util.py) is the one kept
    flatten = [p for p in report.pairs if p["symbol"] == "flatten_nested_lists"]
    assert {p["source"] for p in flatten} == {f"{tree}/pkg/copies.py:1"}
    assert flatten[0]["query"] == "Turn nested lists into a flat list."
    assert {p["source"] for p in report.pairs if p["symbol"] == "normalise_header_names"} == {f"{tree}/pkg/copies.py:10"}
    assert report.by_kind == {"docstring": 7, "first_sentence": 3, "code2nl": 7, "name": 12, "search": 7}
    assert report.by_language == {"python": 17, "javascript": 9, "go": 5, "rust": 5}
    assert report.pair_count == len(report.pairs) == 36


def test_without_exclusion_the_corpus_functions_stay(tree):
    report = mine_pairs([tree])
    assert "excluded_exact" not in report.removed and "excluded_near" not in report.removed
    assert {"chunk_text_windows", "read_json_lines"} <= {p["symbol"] for p in report.pairs}


def test_exclude_takes_a_corpus_file_and_rejects_bad_ones(tree, corpus, tmp_path):
    report = mine_pairs([tree], exclude=[corpus / "corpus.jsonl"])
    assert report.removed["excluded_exact"] == 1 and report.removed["excluded_near"] == 1
    globbed = mine_pairs([tree], exclude=[str(tmp_path / "b*" / "corpus.jsonl")])
    assert globbed.exclude_docs == 3 and globbed.removed["excluded_exact"] == 1
    with pytest.raises(CodeseerError, match="matches nothing"):
        mine_pairs([tree], exclude=[str(tmp_path / "z*" / "corpus.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "x = 1"}\nnot json\n')
    with pytest.raises(CodeseerError, match="bad.jsonl:2"):
        mine_pairs([tree], exclude=[bad])
    with pytest.raises(CodeseerError, match="not a corpus.jsonl"):
        mine_pairs([tree], exclude=[tmp_path / "missing"])


def test_langs_and_errors(tree, tmp_path):
    langs = {p["language"] for p in mine_pairs([tree], langs=["js,go"]).pairs}
    assert langs == {"javascript", "go"}
    assert {p["language"] for p in mine_pairs([tree], langs=["rs"]).pairs} == {"rust"}
    with pytest.raises(CodeseerError, match="unknown language 'cobol'"):
        mine_pairs([tree], langs=["py,cobol"])
    with pytest.raises(CodeseerError, match="no such file or folder"):
        mine_pairs([tmp_path / "nowhere"])


def test_single_file_progress_and_streaming(tree):
    seen: list[dict] = []
    ticks: list[tuple[int, int]] = []
    report = mine_pairs([tree / "go" / "lines.go"], on_pair=seen.append, progress=lambda d, t: ticks.append((d, t)))
    assert report.pairs == [] and len(seen) == report.pair_count == 5
    assert seen[0]["source"] == f"{tree / 'go' / 'lines.go'}:3"
    assert ticks == [(1, 1)]


def test_max_per_file_and_max_files_are_seeded(tree):
    a = mine_pairs([tree], max_per_file=1, seed=3)
    b = mine_pairs([tree], max_per_file=1, seed=3)
    assert a.pairs == b.pairs
    assert a.removed["max_per_file"] > 0
    per_file = {}
    for p in a.pairs:
        per_file.setdefault(p["source"].rsplit(":", 1)[0], set()).add(p["symbol"])
    assert all(len(s) == 1 for s in per_file.values())
    few = mine_pairs([tree], max_files=2, seed=1)
    assert few.files == 2 and few.pairs == mine_pairs([tree], max_files=2, seed=1).pairs


def test_site_packages_root_is_walked_and_vendored_dirs_on_request(tmp_path):
    sp = write(tmp_path / "lib" / "site-packages", {
        "pkg/core.py": UTIL_PY,
        "pkg/node_modules/dep/index.js": PLUGINS_JS,
    })
    report = mine_pairs([sp])
    assert report.files == 1 and "parse_config_file" in {p["symbol"] for p in report.pairs}
    more = mine_pairs([sp], include_vendored=True)
    assert more.files == 2
    assert any(p["source"] == f"{sp}/pkg/node_modules/dep/index.js:9" for p in more.pairs)


# --------------------------------------------------------------------------- pieces


def test_split_identifier():
    assert split_identifier("parse_config_file") == ["parse", "config", "file"]
    assert split_identifier("parseHTTPResponse2") == ["parse", "http", "response", "2"]
    assert split_identifier("__init__") == ["init"]
    assert split_identifier("ReadLines") == ["read", "lines"]


def test_describe_stops_at_fields_and_sections():
    doc = "Compute the mean, e.g. of a column. Skips NaNs.\n\nMore text here.\n\nParameters\n----------\nx : array\n"
    assert describe(doc) == ("Compute the mean, e.g. of a column. Skips NaNs. More text here.", "Compute the mean, e.g. of a column.")
    assert describe("Return a :class:`Foo` for ``name``.\n:param name: the name") == ("Return a Foo for `name`.",) * 2
    assert describe("Open it.\n\n>>> open_it()\n") == ("Open it.", "Open it.")
    assert describe("\\brief Cast a size to int32.\n\\param n the size\n\\return the value") == ("Cast a size to int32.",) * 2
    assert describe("@brief Cast a size.\n@details Fails when it\nis too large.\n@param n the size") == (
        "Cast a size. Fails when it is too large.", "Cast a size.")
    assert doc_reason("Cast a size to int32.", "\\brief Cast a size to int32.\n\\param n", "cast") is None
    assert doc_reason("", "\\param n the size\n\\return the value", "cast") == "boilerplate_doc"


def test_doc_reasons():
    assert doc_reason("", "", "f") == "no_doc"
    assert doc_reason("TODO: write this later please", "TODO: write this later please", "f") == "boilerplate_doc"
    assert doc_reason("Initialize self. See help(type(self)) for accurate signature.",
                      "Initialize self. See help(type(self)) for accurate signature.", "__init__") == "boilerplate_doc"
    assert doc_reason("Constructor for the widget class", "Constructor for the widget class", "__init__") == "boilerplate_doc"
    assert doc_reason("Licensed under the Apache License, Version 2.0", "Licensed under the Apache License, Version 2.0", "f") == "licence"
    assert doc_reason("Returns the parsed value of a header.", "Returns the parsed value of a header.", "parse_header") is None


def test_is_test_code():
    assert is_test_code("a/tests/helpers.py", "helper", "")
    assert is_test_code("a/test_x.py", "helper", "")
    assert is_test_code("pkg/x_test.go", "Helper", "")
    assert is_test_code("web/x.spec.ts", "helper", "")
    assert is_test_code("pkg/x.py", "TestParser.check", "")
    assert is_test_code("pkg/x.go", "TestParse", "")
    assert is_test_code("src/lib.rs", "check", "#[test]\nfn check() {\n}")
    assert not is_test_code("pkg/x.py", "testimony", "")
    assert not is_test_code("pkg/x.py", "Parser.parse", "")


def test_split_function_python_and_comment_styles():
    doc, code = split_function('    def f(self):\n        """Doc here.\n\n        More."""\n        return 1\n', "python")
    assert (doc, code) == ("Doc here.\n\nMore.", "def f(self):\n    return 1")
    doc, code = split_function("/*\n * Block doc.\n */\nint f(void) {\n  return 1;\n}", "c")
    assert (doc, code) == ("Block doc.", "int f(void) {\n  return 1;\n}")
    doc, code = split_function("int g(void) {\n  return 2;\n}", "c")
    assert (doc, code) == ("", "int g(void) {\n  return 2;\n}")


def test_normalise_and_minhash():
    py = 'def f(x):\n    """Doc."""\n    # comment\n    return x // 2  # halve\n'
    assert normalise_code(py, "python") == "def f(x): return x // 2"
    assert normalise_code(py) == "def f(x): return x // 2"  # a corpus document: Python guessed
    assert normalise_code("int f() { /* c */ return 1; // one\n}", "c") == "int f() { return 1; }"
    a, b = MinHasher(), MinHasher()
    text = normalise_code(UTIL_PY, "python")
    assert (a.signature(text) == b.signature(text)).all()  # deterministic across instances / runs
    index = LSHIndex()
    index.add(a.signature(text), "util")
    assert index.query(a.signature(text)) == 0 and index.labels[0] == "util"
    assert index.query(a.signature(normalise_code(PLUGINS_JS, "javascript"))) is None


# --------------------------------------------------------------------------- CLI


def _invoke(*args: str):
    from typer.testing import CliRunner

    from codeseer.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_mine_json(tree, corpus, tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = _invoke("data", "mine", str(tree), "--out", str(out), "--exclude", str(corpus), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pairs"] == 36 and summary["files"] == 7
    assert summary["removed"]["excluded_exact"] == 1 and summary["removed"]["near_duplicate"] == 1
    assert summary["by_kind"] == {"code2nl": 7, "docstring": 7, "first_sentence": 3, "name": 12, "search": 7}
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 36
    assert set(lines[0]) == {"query", "positive", "task", "kind", "language", "source", "symbol"}
    assert lines == mine_pairs([tree], exclude=[corpus]).pairs
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_cli_mine_table_and_langs(tree, tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = _invoke("data", "mine", str(tree), "--out", str(out), "--langs", "py", "--max-per-file", "2")
    assert result.exit_code == 0, result.output
    assert "pairs per kind" in result.output and "max_per_file" in result.output
    assert {json.loads(line)["language"] for line in out.read_text().splitlines()} == {"python"}


def test_cli_mine_errors_keep_the_old_output(tree, tmp_path):
    out = tmp_path / "pairs.jsonl"
    out.write_text("old\n")
    result = _invoke("data", "mine", str(tmp_path / "nowhere"), "--out", str(out))
    assert isinstance(result.exception, CodeseerError) and "no such file or folder" in str(result.exception)
    result = _invoke("data", "mine", str(tree), "--out", str(tmp_path / "no" / "dir" / "p.jsonl"))
    assert isinstance(result.exception, CodeseerError) and "does not exist" in str(result.exception)
    result = _invoke("data", "mine", str(tree), "--out", str(out), "--langs", "klingon")
    assert isinstance(result.exception, CodeseerError)
    result = _invoke("data", "mine", str(tree), str(out), "--out", str(out))  # `--exclude a.jsonl b.jsonl`
    assert isinstance(result.exception, CodeseerError) and "its own --exclude" in str(result.exception)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "src"]


def test_a_crash_while_mining_leaves_the_old_output(tree, tmp_path):
    from codeseer.data.mine import AtomicJsonlWriter

    out = tmp_path / "pairs.jsonl"
    out.write_text("old\n")
    writer = AtomicJsonlWriter(out)

    def boom(pair):
        writer.write(pair)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        try:
            mine_pairs([tree], on_pair=boom)
        finally:
            writer.abort()
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "src"]
