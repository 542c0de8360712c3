"""Hostile input: the chunker, the walker, search filters and queries, and model folders with code in them.

Property tests use hypothesis with bounded, derandomized examples so CI stays fast and repeatable.
The chunker must never raise and every chunk must be honest about its lines; the walker must not
hang, loop, crash or read what it should not; search filters must never reach outside the root
and never crash; a model folder's own code must not run unless ``trust_remote_code`` is asked for.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codeseer.index.walker as walker
from codeseer.errors import CodeseerError
from codeseer.index.chunking import chunk_source
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore
from codeseer.index.walker import MAX_FILE_BYTES, WalkStats, read_source, walk
from codeseer.search.searcher import MAX_K, MAX_QUERY_CHARS, Searcher

from conftest import write_files
from test_torture_crash import cli_env, committed_state, expected_state

# CI: fixed examples (derandomized), few enough to stay fast. TORTURE_EXPLORE=N explores N times as
# many fresh random examples per property, for a longer hunt on a developer machine.
EXPLORE = int(os.environ.get("TORTURE_EXPLORE", "0") or 0)
SETTINGS = dict(deadline=None, derandomize=not EXPLORE, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def examples(n: int) -> int:
    return n * max(1, EXPLORE)

# One file name per chunking path: 13 tree-sitter languages (+ .h and .tsx), docs, windows.
PATHS = ["x.py", "x.java", "x.js", "x.ts", "x.tsx", "x.go", "x.rs", "x.c", "x.h", "x.cpp", "x.cs", "x.php", "x.rb",
         "x.kt", "x.md", "x.rst", "x.txt", "x.yaml", "x.sql", "Makefile"]

SNIPPETS = {
    "py": "import os\n\n@decorator\nclass A(B):\n    '''Doc.'''\n    x = 1\n\n    def m(self, a):\n        return a\n\n"
          "async def f(*args, **kw):\n    def inner():\n        pass\n    return inner\n",
    "java": "package p;\n/** doc */\npublic class A extends B {\n  int x;\n  @Override\n  public int m(int a) { return a; }\n"
            "  class Inner { void g() {} }\n}\n",
    "js": "export default function f(a) {\n  return a;\n}\nconst g = (x) => x * 2;\nclass A {\n  m() { return 1; }\n}\n"
          "A.prototype.n = function () {};\n",
    "go": "package main\n\ntype S struct{ x int }\n\nfunc (s *S) M(a int) int {\n\treturn a\n}\n\nfunc main() {}\n",
    "rs": "/// doc\npub struct S { x: i32 }\nimpl S {\n    pub fn m(&self) -> i32 { self.x }\n}\nmod m { fn f() {} }\n",
    "c": "#include <stdio.h>\nstruct s { int x; };\nstatic int f(int a) {\n  return a;\n}\n#ifdef X\nvoid g(void) {}\n#endif\n",
    "cpp": "namespace n {\ntemplate<typename T>\nclass A {\n public:\n  T m() const { return T(); }\n};\n}\n"
           "int A::f() { return 1; }\n",
    "cs": "namespace N {\n  public class A : B {\n    public int P { get; set; }\n    public void M() { }\n  }\n}\n",
    "php": "<?php\nnamespace N;\nclass A {\n  public function m($a) { return $a; }\n}\nfunction f() {}\n",
    "rb": "module M\n  class A < B\n    def m(a)\n      a\n    end\n  end\nend\ndef f; end\n",
    "kt": "package p\nclass A(val x: Int) {\n  fun m(a: Int): Int = a\n}\nfun String.shout() = uppercase()\n",
    "md": "# Title\n\ntext\n\n## Section\n\n```py\ncode\n```\n\nSetext\n======\n",
    "rst": "Title\n=====\n\ntext\n\nSection\n-------\n\n.. code:: python\n\n   x = 1\n",
}
SNIPPET_OF = {"x.py": "py", "x.java": "java", "x.js": "js", "x.ts": "js", "x.tsx": "js", "x.go": "go", "x.rs": "rs",
              "x.c": "c", "x.h": "c", "x.cpp": "cpp", "x.cs": "cs", "x.php": "php", "x.rb": "rb", "x.kt": "kt",
              "x.md": "md", "x.rst": "rst"}
FRAGMENTS = [
    "def ", "class ", "function ", "fn ", "func ", "fun ", "sub ", "end", "begin", "impl ", "struct ", "interface ",
    "namespace ", "module ", "template<", "public ", "static ", "async ", "@deco", "=>", "->", "::", "<?php", "?>",
    "{", "}", "(", ")", "[", "]", ";", ":", ",", "=", "\n", "\n\n", "    ", "\t", "\"", "'", "`", "'''", '"""',
    "/*", "*/", "//", "#", "--", "\\", "\r\n", "\r", "\x00", "\ufeff", "\u2028", "\x0c", "é", "日本", "😀", "# H\n",
    "===\n", "```\n", "name", "x1", "_", "A" * 300, " " * 200,
]


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def check_chunks(path: str, text: str, chunks, max_lines: int, max_chars: int) -> None:
    """Ranges valid, text is what the range holds, limits kept, every non-blank line covered, sorted."""
    lines = _lines(text)
    covered = bytearray(len(lines))
    previous = 0
    for c in chunks:
        assert c.path == path
        assert 1 <= c.start_line <= c.end_line <= len(lines), (c.start_line, c.end_line, len(lines))
        assert c.start_line >= previous, "chunks must be sorted by start line"
        previous = c.start_line
        body = "\n".join(lines[c.start_line - 1 : c.end_line])
        if c.text != body:
            if c.start_line == c.end_line and c.text in body and len(body) > max_chars:
                pass  # a slice of an over-long line
            else:
                assert c.text.endswith(body), (c.start_line, c.end_line, c.text[:200], body[:200])
                head = c.text[: len(c.text) - len(body)]
                assert head.endswith("\n    ...\n"), head[-50:]  # a later part of a split function
                assert head[: -len("\n    ...\n")] in text, "the repeated signature must come from the file"
        assert c.text.strip(), "no blank chunks"
        assert len(c.text) <= max_chars, (len(c.text), max_chars, c.kind, c.start_line, c.end_line)
        assert c.end_line - c.start_line + 1 <= max_lines and c.text.count("\n") + 1 <= max_lines
        covered[c.start_line - 1 : c.end_line] = b"\x01" * (c.end_line - c.start_line + 1)
    for i, line in enumerate(lines):
        if line.strip():
            assert covered[i], f"line {i + 1} is in no chunk: {line[:80]!r}"


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (a FIFO read would block forever)."""
    def hung(*_):
        raise TimeoutError(f"still running after {seconds}s: it hangs")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- chunker

def _mutated_snippet(path: str):
    base = SNIPPETS.get(SNIPPET_OF.get(path, ""), SNIPPETS["py"])
    edits = st.lists(st.tuples(st.integers(0, len(base)), st.integers(0, 40), st.sampled_from(FRAGMENTS)), max_size=12)

    def apply(changes):
        text = base * 2
        for pos, cut, insert in changes:
            pos = min(pos, len(text))
            text = text[:pos] + insert + text[pos + cut :]
        return text
    return edits.map(apply)


def _hostile_text(path: str):
    fragment = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12), st.from_regex(r"[A-Za-z_]\w{0,8}", fullmatch=True))
    return st.one_of(
        _mutated_snippet(path),
        st.lists(fragment, max_size=150).map("".join),
        st.binary(max_size=2500).map(lambda b: b.decode("utf-8", "replace")),  # random bytes, decoded leniently
        st.binary(max_size=2500).map(lambda b: b.decode("latin-1")),
        st.binary(max_size=1500).map(lambda b: b.decode("utf-8", "surrogateescape")),  # lone surrogates
        st.tuples(st.text(max_size=300), st.text(max_size=300)).map(  # mixed encodings in one file
            lambda t: t[0] + "\n" + t[1].encode("utf-8").decode("latin-1") + "\n" + t[0].encode("utf-16-le").decode("latin-1")),
        st.tuples(_mutated_snippet(path), st.integers(1000, 30000), st.sampled_from("x({ ")).map(  # one huge line
            lambda t: t[0] + "\nz = " + t[2] * t[1] + "\n" + t[0]),
    )


LIMITS = st.one_of(st.just((120, 6000)), st.tuples(st.integers(2, 25), st.integers(40, 600)))


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=examples(30), **SETTINGS)
@given(data=st.data())
def test_chunker_never_raises_and_every_chunk_is_honest(path, data):
    text = data.draw(_hostile_text(path), label="text")
    max_lines, max_chars = data.draw(LIMITS, label="limits")
    chunks = chunk_source(path, text, max_lines=max_lines, max_chars=max_chars,
                          window_lines=max(1, max_lines // 2), window_overlap=min(10, max_lines // 4))
    check_chunks(path, text, chunks, max_lines, max_chars)


def _deep(path: str, depth: int) -> str:
    ext = path.rsplit(".", 1)[-1]
    if ext == "py":
        return "".join("    " * i + f"def f{i}(x):\n" for i in range(depth)) + "    " * depth + "return x\n"
    if ext == "rb":
        return "".join(f"class C{i}\n" for i in range(depth)) + "end\n" * depth
    if ext in ("md", "rst", "txt", "yaml", "sql") or path == "Makefile":
        return "".join(">" * min(i, 500) + f" level {i}\n" for i in range(depth))
    opener = {"go": "func f() {\n", "rs": "fn f() {\n", "kt": "fun f() {\n", "php": "<?php function f() {\n"}.get(ext, "void f() {\n")
    return opener + "".join("  if (x) {\n" for _ in range(depth)) + "}\n" * (depth + 1) + "x = " + "(" * depth * 10 + ")" * depth * 10 + ";\n"


@pytest.mark.parametrize("path", PATHS)
def test_chunker_survives_deep_nesting_huge_lines_and_nul_bytes(path):
    cases = {
        "deep nesting": _deep(path, 3000),
        "huge line": "a = '" + "x" * 1_500_000 + "'\n" + SNIPPETS.get(SNIPPET_OF.get(path, ""), ""),
        "NUL bytes": ("\x00" * 10 + "def f():\n    return '\x00'\n") * 200,
        "CR only": "def f():\r    return 1\r" * 500,
        "closing brackets": "}\n" * 20000,
        "one long function": "def f():\n" + "".join(f"    x{i} = {i}\n" for i in range(5000)),
    }
    for name, text in cases.items():
        started = time.perf_counter()
        chunks = chunk_source(path, text)
        elapsed = time.perf_counter() - started
        check_chunks(path, text, chunks, 120, 6000)
        assert elapsed < 20, f"{path} {name}: {elapsed:.1f}s"
    assert chunk_source(path, b"def f():\n    return 1\n\xff\xfe")  # bytes are decoded leniently
    assert chunk_source(path, "") == [] and chunk_source(path, " \n\t\n") == []


def test_function_with_an_overlong_first_line_is_cut_within_the_limit():
    text = "def f(" + "a, " * 5000 + "):\n" + "    x = 1\n" * 300
    chunks = chunk_source("a.py", text)
    check_chunks("a.py", text, chunks, 120, 6000)
    assert all(len(c.text) <= 6000 for c in chunks)


# --------------------------------------------------------------------------- walker


def _walk(root: Path):
    stats = WalkStats()
    found = {}
    for source in walk(root, stats):
        text = read_source(source, stats)
        if text is not None:
            found[source.rel] = text
    return found, stats


def test_symlink_loops_dangling_links_and_odd_names(tmp_path):
    root = write_files(tmp_path / "repo", {"a.py": "a = 1\n", "sub/b.py": "b = 2\n"})
    os.symlink("loop.py", root / "loop.py")  # a link to itself
    os.symlink("two.py", root / "one.py")
    os.symlink("one.py", root / "two.py")  # a cycle of two
    os.symlink("missing.py", root / "dangling.py")
    os.symlink("..", root / "sub" / "up")  # a directory loop
    os.symlink(root / "sub", root / "sub" / "self")
    (root / "new\nline.py").write_text("nl = 1\n")
    (root / "quo'te.py").write_text("q = 1\n")
    (root / os.fsdecode(b"caf\xe9.py")).write_text("latin1_name = 1\n")  # not UTF-8: cannot be indexed
    with deadline(30):
        found, stats = _walk(root)
    assert set(found) == {"a.py", "sub/b.py", "new\nline.py", "quo'te.py"}
    assert stats.skipped["symlink"] == 6 and stats.skipped["file name not utf-8"] == 1


def test_fifos_never_hang_the_walk_or_the_read(tmp_path):
    root = write_files(tmp_path / "repo", {"a.py": "a = 1\n", "b.py": "b = 2\n"})
    os.mkfifo(root / "pipe.py")
    os.mkfifo(root / ".gitignore")  # even an ignore file that is a FIFO
    os.symlink(root / "pipe.py", root / "link_to_pipe.py")
    with deadline(30):
        found, stats = _walk(root)
        assert set(found) == {"a.py", "b.py"}
        # A FIFO swapped in after the walk listed a regular file: skipped, not waited on.
        sources = {s.rel: s for s in walk(root, WalkStats())}
        (root / "b.py").unlink()
        os.mkfifo(root / "b.py")
        late = WalkStats()
        assert read_source(sources["b.py"], late) is None
    assert late.skipped["not a regular file"] == 1


def test_file_that_grows_or_disappears_after_the_walk(tmp_path, monkeypatch):
    root = write_files(tmp_path / "repo", {"grow.py": "g = 1\n", "gone.py": "x = 1\n"})
    sources = {s.rel: s for s in walk(root, WalkStats())}
    with open(root / "grow.py", "ab") as fh:
        fh.truncate(50 * MAX_FILE_BYTES)  # now 50 MiB
    (root / "gone.py").unlink()
    read = []
    real_read = os.read
    monkeypatch.setattr(walker.os, "read", lambda fd, n: read.append(n) or real_read(fd, n))
    stats = WalkStats()
    assert read_source(sources["grow.py"], stats) is None
    assert read_source(sources["gone.py"], stats) is None
    assert stats.skipped == {"too large": 1, "unreadable": 1}
    assert sum(read) <= MAX_FILE_BYTES + 1  # never more than the limit, though the file is 50 MiB


def test_unreadable_files_and_directories_are_skipped(tmp_path, monkeypatch):
    root = write_files(tmp_path / "repo", {"ok.py": "ok = 1\n", "secret.py": "s = 1\n", "locked/inner.py": "i = 1\n"})
    os.chmod(root / "secret.py", 0)
    os.chmod(root / "locked", 0)
    try:
        if os.geteuid() == 0:  # root reads mode-000 files anyway: simulate what a user would get
            real_open, real_scandir = os.open, os.scandir

            def deny_open(path, *args, **kwargs):
                if str(path).endswith("secret.py"):
                    raise PermissionError(errno.EACCES, "Permission denied", str(path))
                return real_open(path, *args, **kwargs)

            def deny_scandir(path="."):
                if str(path).endswith("locked"):
                    raise PermissionError(errno.EACCES, "Permission denied", str(path))
                return real_scandir(path)

            monkeypatch.setattr(walker.os, "open", deny_open)
            monkeypatch.setattr(walker.os, "scandir", deny_scandir)
        found, stats = _walk(root)
    finally:
        os.chmod(root / "secret.py", 0o644)
        os.chmod(root / "locked", 0o755)
    assert set(found) == {"ok.py"}
    assert stats.skipped["unreadable"] == 2


def test_very_deep_directory_tree_does_not_hit_the_recursion_limit(tmp_path):
    depth = sys.getrecursionlimit() + 200
    chain = [tmp_path / "repo"]
    chain[0].mkdir()
    try:
        for _ in range(depth):  # (Path.mkdir(parents=True) and os.makedirs would recurse themselves)
            chain.append(chain[-1] / "d")
            os.mkdir(chain[-1])
        (chain[-1] / "bottom.py").write_text("bottom = 1\n")
        found, _ = _walk(tmp_path / "repo")
        assert list(found) == ["/".join(["d"] * depth) + "/bottom.py"]
    finally:  # remove it bottom-up here: shutil.rmtree (pytest's clean-up) recurses and would fail
        for directory in reversed(chain):
            for entry in os.scandir(directory):
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
            os.rmdir(directory)


class FakeEmbedder:
    """Deterministic unit vectors from a hash of the text: the index machinery without a model."""

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim
        self.name = "fake"

    def _vectors(self, texts) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out

    def fingerprint(self):
        return None  # its vectors stay out of the machine-wide vector cache

    def close(self) -> dict:
        return {}

    def encode_documents(self, texts, *, slab=256, on_slab=None):
        parts = []
        for start in range(0, len(texts), slab):
            vectors = self._vectors(texts[start : start + slab])
            parts.append(vectors)
            if on_slab:
                on_slab(start, vectors)
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts):
        return self._vectors(texts)


def test_files_changing_while_the_index_run_reads_them(tmp_path, tiny_model_dir, monkeypatch):
    """Edited, deleted, or turned into a FIFO between the walk and the read: the run stays consistent."""
    import codeseer.index.indexer as indexer

    files = {f"m{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(30)}
    root = write_files(tmp_path / "repo", files)
    fake = FakeEmbedder()
    index_repository(root, model=str(tiny_model_dir), embedder_factory=lambda m: fake)
    for i in range(30):
        (root / f"m{i}.py").write_text(f"def f{i}(x):\n    return x - {i}\n")
    real_read = indexer.read_source

    def racing_read(source, stats):
        n = int(source.rel[1:-3])
        if n % 3 == 0:
            source.abs.write_text(f"def raced{n}():\n    return {n}\n")  # changed again mid-run
        elif n % 3 == 1 and n < 10:
            source.abs.unlink()  # gone
        elif n == 29:
            source.abs.unlink()
            os.mkfifo(source.abs)  # replaced by a FIFO
        return real_read(source, stats)

    monkeypatch.setattr(indexer, "read_source", racing_read)
    with deadline(120):
        index_repository(root, embedder_factory=lambda m: fake)
    monkeypatch.undo()
    committed_state(root / ".codeseer")  # consistent
    os.unlink(root / "m29.py")
    index_repository(root, embedder_factory=lambda m: fake)  # the next run catches up with the tree
    assert committed_state(root / ".codeseer") == expected_state(root)


def test_a_file_rewritten_continuously_during_indexing(tmp_path, tiny_model_dir):
    files = {f"pkg/m{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(200)}
    root = write_files(tmp_path / "repo", files)
    fake = FakeEmbedder()
    stop = threading.Event()

    def rewrite():
        n = 0
        while not stop.is_set():
            n += 1
            (root / "pkg" / "hot.py").write_text("".join(f"def hot_{n}_{i}():\n    return {i}\n\n" for i in range(n % 50)))
            (root / "pkg" / "flicker.py").unlink(missing_ok=True) if n % 2 else (root / "pkg" / "flicker.py").write_text("f = 1\n")

    thread = threading.Thread(target=rewrite, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            index_repository(root, model=str(tiny_model_dir), embedder_factory=lambda m: fake)
            committed_state(root / ".codeseer")
    finally:
        stop.set()
        thread.join()
    index_repository(root, embedder_factory=lambda m: fake)
    assert committed_state(root / ".codeseer") == expected_state(root)


# --------------------------------------------------------------------------- search input


@pytest.fixture(scope="module")
def searchable(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("search") / "repo"
    write_files(root, {
        "src/app.py": "def run_app(config):\n    return config\n",
        "src/util/helpers.py": "def run_helper(x):\n    return x\n",
        "web/run.js": "function runWeb() {\n  return 1;\n}\n",
        "docs/run.md": "# Run\n\nHow to run it.\n",
        "quo'te.py": "def run_quoted():\n    return \"'\"\n",
    })
    outside = root.parent / "outside"
    write_files(outside, {"secret.py": "def run_secret():\n    return 'password'\n"})
    fake = FakeEmbedder()
    index_repository(root, model=str(tiny_model_dir), embedder_factory=lambda m: fake)
    searcher = Searcher(IndexStore(root / ".codeseer"), embedder=fake)
    return root, searcher, set(searcher.files.to_arrow()["path"].to_pylist())


TRAVERSAL = ["../*", "../**", "../../etc/passwd", "/etc/*", "/etc/passwd", "/**", "**/../*", "../outside/*",
             "..", ".", "./*", "*/../../*", "~/*", "\\..\\*", "%2e%2e/*", "src/../../*", "//*", "**", "!*", "!src/**",
             "[", "]", "[!", "\\", "*\\", "[z-a]", "{a,b}", " ", "#comment", "src/**/*.py", "**/*'*", "'; DROP TABLE chunks; --"]


def test_path_globs_never_reach_outside_the_root(searchable):
    root, searcher, indexed = searchable
    for glob in TRAVERSAL + [str(root.parent / "outside" / "*"), str(root.parent / "*"), str(root / "src" / "**")]:
        for mode in ("lexical", "hybrid"):
            try:
                hits = searcher.search("run", k=50, mode=mode, path_glob=glob)
            except CodeseerError:
                continue
            assert {h.path for h in hits} <= indexed, glob
            assert all("secret" not in h.text for h in hits)
    # An absolute path inside the root means the same path relative to it.
    assert {h.path for h in searcher.search("run", k=50, mode="lexical", path_glob=str(root / "src" / "**"))} == {
        "src/app.py", "src/util/helpers.py"}


@settings(max_examples=examples(150), **SETTINGS)
@given(glob=st.one_of(st.text(max_size=40), st.sampled_from(TRAVERSAL).flatmap(lambda g: st.just(g) | st.text(max_size=5).map(lambda t: g + t))),
       languages=st.one_of(st.none(), st.lists(st.text(max_size=12), max_size=4)))
def test_hostile_filters_give_results_from_the_root_or_one_clear_error(searchable, glob, languages):
    _, searcher, indexed = searchable
    try:
        hits = searcher.search("run", k=20, mode="lexical", path_glob=glob, languages=languages)
    except CodeseerError as exc:
        assert "\n" not in str(exc) and "damaged" not in str(exc), str(exc)  # the index is fine: the input is not
        return
    assert {h.path for h in hits} <= indexed


@settings(max_examples=examples(150), **SETTINGS)
@given(query=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
                       st.lists(st.sampled_from(['"', "'", "(", ")", "AND", "OR", "NOT", "*", "~", "^", ":", "+", "-",
                                                 "path:", "\\", "run", "{", "}", "[", "]", "/", "!", "?"]), max_size=30).map(" ".join)),
       mode=st.sampled_from(["lexical", "hybrid", "dense"]), k=st.integers(1, 60))
def test_hostile_queries_never_crash(searchable, query, mode, k):
    _, searcher, indexed = searchable
    try:
        hits = searcher.search(query, k=k, mode=mode)
    except CodeseerError as exc:
        assert "\n" not in str(exc) and "damaged" not in str(exc), str(exc)  # the index is fine: the input is not
        return
    assert len(hits) <= k and {h.path for h in hits} <= indexed


def test_query_size_and_k_limits(searchable):
    _, searcher, _ = searchable
    with pytest.raises(CodeseerError, match="limit is"):
        searcher.search("x" * (MAX_QUERY_CHARS + 1), mode="lexical")
    long_ok = " ".join(f"word{i}" for i in range(MAX_QUERY_CHARS // 8))[:MAX_QUERY_CHARS]
    started = time.perf_counter()
    searcher.search(long_ok, mode="hybrid")  # as long as allowed: still answered
    long_seconds = time.perf_counter() - started
    assert long_seconds < 30
    for k in (0, -1, MAX_K + 1, 10**12):
        with pytest.raises(CodeseerError, match="k must be"):
            searcher.search("run", k=k, mode="lexical")
    for k in (True, 2.5, "10"):
        with pytest.raises(CodeseerError):
            searcher.search("run", k=k, mode="lexical")
    with pytest.raises(CodeseerError, match="NUL"):
        searcher.search("run\0", mode="lexical")
    assert searcher.search("run", k=MAX_K, mode="lexical")
    print(f"\n[input] a {len(long_ok)}-character query took {long_seconds:.2f}s (hybrid)")


@pytest.mark.slow
def test_cli_search_path_traversal(searchable):
    root, _, indexed = searchable
    env = cli_env(COLUMNS="1000")
    for glob in ("../*", "/etc/*", str(root.parent / "outside" / "*"), "[", "*\\"):
        done = subprocess.run([sys.executable, "-m", "codeseer.cli", "search", "run", "--path", glob, "--mode", "lexical",
                               "--json", "--index", str(root / ".codeseer")], env=env, capture_output=True, text=True,
                              timeout=120)
        assert "Traceback" not in done.stderr, done.stderr
        if done.returncode == 0:
            assert {h["path"] for h in json.loads(done.stdout)} <= indexed
        else:
            assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = subprocess.run([sys.executable, "-m", "codeseer.cli", "search", "x" * (MAX_QUERY_CHARS + 1), "--mode",
                           "lexical", "--index", str(root / ".codeseer")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "limit is" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- model folders with code


EVIL = '''
from pathlib import Path
Path({marker!r}).write_text("executed")
from transformers import BertConfig, BertModel
class EvilConfig(BertConfig):
    model_type = "evil-bert"
class EvilModel(BertModel):
    config_class = EvilConfig
'''


def _evil_folder(tmp_path: Path, base: Path, variant: str) -> tuple[Path, Path]:
    folder = tmp_path / f"evil-{variant}"
    shutil.copytree(base, folder)
    marker = tmp_path / f"executed-{variant}"
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    if variant in ("auto_map", "unknown_type"):
        config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
        if variant == "unknown_type":
            config["model_type"] = "evil-bert"
            config["architectures"] = ["EvilModel"]
    (folder / "config.json").write_text(json.dumps(config))
    if variant == "st_module":
        modules = json.loads((folder / "modules.json").read_text())
        modules[0]["type"] = "evil.Transformer"
        (folder / "modules.json").write_text(json.dumps(modules))
    if variant == "tokenizer":
        tok = json.loads((folder / "tokenizer_config.json").read_text())
        tok["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
        tok["tokenizer_class"] = "EvilTokenizer"
        (folder / "tokenizer_config.json").write_text(json.dumps(tok))
    return folder, marker


@pytest.mark.parametrize("variant", ["auto_map", "unknown_type", "st_module", "tokenizer"])
def test_model_folder_code_is_not_executed_by_default(variant, tmp_path, tiny_model_dir):
    from codeseer.models.embedder import Embedder

    folder, marker = _evil_folder(tmp_path, tiny_model_dir, variant)
    try:
        embedder = Embedder(str(folder))
        assert embedder.encode_queries(["x"]).shape == (1, embedder.dim)  # loaded as plain BERT: fine
        outcome = "loaded without the custom code"
    except CodeseerError as exc:
        outcome = f"refused: {str(exc)[:100]}"
    assert not marker.exists(), f"{variant}: the folder's code ran without trust_remote_code"
    print(f"\n[input] model folder with custom code ({variant}): {outcome}")


@pytest.mark.slow
def test_index_cli_does_not_run_model_folder_code_and_trust_remote_code_would(tmp_path, tiny_model_dir):
    folder, marker = _evil_folder(tmp_path, tiny_model_dir, "unknown_type")
    repo = write_files(tmp_path / "repo", {"a.py": "def a():\n    return 1\n"})
    env = cli_env(COLUMNS="1000", HF_MODULES_CACHE=str(tmp_path / "modules"))
    done = subprocess.run([sys.executable, "-m", "codeseer.cli", "index", str(repo), "--model", str(folder)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert not marker.exists()
    # The check above would see execution: with the explicit opt-in, the folder's code does run.
    probe = ("from codeseer.models.embedder import Embedder\ntry:\n    Embedder(%r, trust_remote_code=True)\n"
             "except Exception:\n    pass\n") % str(folder)
    subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert marker.exists(), "control: trust_remote_code=True should have imported the folder's module"
