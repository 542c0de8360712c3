"""The retrieval applications in-process on a tiny random model: mechanics, limits and invariants."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from codeseer.apps.locations import PathOutsideRoot, parse_location, repo_path
from codeseer.apps.context import build_pack, context_pack, merge_hits, render_blocks, token_counter
from codeseer.apps.docs import docs_for, stale_docs
from codeseer.text.docstrings import split_doc
from codeseer.apps.dupes import UnionFind, find_dupes, render_html, render_markdown, similar_pairs
from codeseer.apps.locate import locate
from codeseer.search.files import FEATURES
from codeseer.apps.similar import similar
from codeseer.errors import CodeseerError
from codeseer.search.searcher import Hit

from test_apps_helpers import build_index, make_repo


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, tiny_model_dir):
    repo = make_repo(tmp_path_factory.mktemp("apps") / "repo")
    return build_index(repo, str(tiny_model_dir))


@pytest.fixture(scope="module")
def count(searcher):
    return token_counter(searcher.embedder.tokenizer)


# --------------------------------------------------------------------------- locations and paths


def test_parse_location():
    assert parse_location("src/a.py:42") == ("src/a.py", 42)
    assert parse_location("C:/x/a.py:7") == ("C:/x/a.py", 7)
    for bad in ("src/a.py", "src/a.py:", ":3", "a.py:x", "a.py:0", ""):
        with pytest.raises(CodeseerError):
            parse_location(bad)


def test_chunk_at_picks_the_innermost_chunk_and_explains_misses(searcher):
    chunk = searcher.chunk_at("shop/Cart.java", 9)
    assert (chunk.symbol, chunk.kind) == ("Cart.totalPrice", "method")
    assert chunk.start_line <= 9 <= chunk.end_line
    assert chunk.vector is not None and np.isclose(np.linalg.norm(chunk.vector), 1.0, atol=1e-4)
    assert searcher.chunk_at("shop/Cart.java", 5).kind == "class"
    with pytest.raises(CodeseerError, match="outside every indexed chunk"):
        searcher.chunk_at("shop/Cart.java", 500)
    with pytest.raises(CodeseerError, match="not in the index"):
        searcher.chunk_at("shop/Nope.java", 1)


def test_repo_path_never_leaves_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x = 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("s = 1\n")
    os.symlink(outside, root / "link")
    assert repo_path(root, "src/a.py", strict=True) == "src/a.py"
    assert repo_path(root, "./src/../src/a.py", strict=False) == "src/a.py"
    for bad in ("../outside/secret.py", "src/../../outside/secret.py", "/etc/passwd", str(root / "src/a.py"),
                "link/secret.py", "C:\\windows\\x.py"):
        with pytest.raises(PathOutsideRoot):
            repo_path(root, bad, strict=True)
    # the CLI accepts an absolute path inside the root and a path relative to the current folder
    assert repo_path(root, str(root / "src" / "a.py")) == "src/a.py"
    assert repo_path(root, "a.py", cwd=root / "src") == "src/a.py"
    with pytest.raises(PathOutsideRoot):
        repo_path(root, str(outside / "secret.py"))
    with pytest.raises(PathOutsideRoot):
        repo_path(root, "link/secret.py")


# --------------------------------------------------------------------------- similar


def test_similar_excludes_the_query_chunk_and_filters_languages(searcher):
    result = similar(searcher, path="shop/Cart.java", line=9, k=50)
    assert result.task == "code2code"
    assert result.query["symbol"] == "Cart.totalPrice"
    spans = [(h.path, h.start_line, h.end_line) for h in result.hits]
    assert ("shop/Cart.java", result.query["start_line"], result.query["end_line"]) not in spans
    assert all(h.kind != "section" for h in result.hits)
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    only_cs = similar(searcher, path="shop/Cart.java", line=9, k=5, languages=["cs"])
    assert only_cs.hits and {h.language for h in only_cs.hits} == {"csharp"}
    assert similar(searcher, path="shop/Cart.java", line=9, path_glob="nothing/**").hits == []


def test_similar_identical_code_scores_one(searcher):
    """The exact copy of slugify in another file is its nearest neighbour at cosine 1."""
    result = similar(searcher, path="util/text.py", line=6, k=1)
    assert result.hits[0].path == "legacy/text_utils.py" and result.hits[0].symbol == "slugify"
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_similar_snippet_and_bad_input(searcher):
    result = similar(searcher, code="def f(x):\n    return x * 2\n", k=3)
    assert len(result.hits) == 3 and result.query == {"code": "def f(x):\n    return x * 2\n"}
    with pytest.raises(CodeseerError, match="empty code"):
        similar(searcher, code="  \n ")
    with pytest.raises(CodeseerError, match="either"):
        similar(searcher, code="x", path="a.py", line=1)
    with pytest.raises(CodeseerError, match="either"):
        similar(searcher)
    with pytest.raises(CodeseerError, match="k must"):
        similar(searcher, code="x", k=0)


# --------------------------------------------------------------------------- dupes


def _brute_pairs(vectors, threshold):
    sims = vectors @ vectors.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return {(int(a), int(b)) for a, b in zip(i, j)}


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_blocked_pairs_equal_brute_force(block):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((40, 16)).astype(np.float32)
    vectors = np.concatenate([base, base[:15] + 0.05 * rng.standard_normal((15, 16)).astype(np.float32)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = set()
    for i, j, s in similar_pairs(vectors, 0.9, block=block):
        assert np.all(i < j) and np.all(s >= 0.9)
        found |= {(int(a), int(b)) for a, b in zip(i, j)}
    assert found == _brute_pairs(vectors, 0.9)
    assert len(found) >= 15


def test_union_find_clusters():
    uf = UnionFind(6)
    for a, b in [(0, 1), (1, 2), (4, 5)]:
        uf.union(a, b)
    assert uf.find(0) == uf.find(2) != uf.find(3)
    assert uf.find(4) == uf.find(5)


def test_pairs_scale_to_many_vectors_in_blocks():
    """20k vectors: planted copies are found, block by block, in seconds (never an n x n matrix)."""
    rng = np.random.default_rng(2)
    n, dim = 20_000, 64
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    planted = rng.choice(n, size=(50, 2), replace=False)
    vectors[planted[:, 1]] = vectors[planted[:, 0]] + 0.01 * rng.standard_normal((50, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    found = set()
    for i, j, _ in similar_pairs(vectors, 0.95, block=4096):
        found |= {(int(a), int(b)) for a, b in zip(i, j)}
    assert {tuple(sorted(map(int, p))) for p in planted} <= found
    assert len(found) == 50  # random 64-d vectors are never that close by chance
    assert time.perf_counter() - started < 60


def test_find_dupes_clusters_exact_copies(searcher, tmp_path):
    result = find_dupes(searcher, threshold=0.9999, min_lines=5)
    assert result.candidates >= 10
    slug = [c for c in result.clusters if {m.symbol for m in c.members} == {"slugify"}]
    assert len(slug) == 1
    assert {m.path for m in slug[0].members} == {"util/text.py", "legacy/text_utils.py"}
    assert slug[0].min_similarity == pytest.approx(1.0, abs=1e-4)
    sizes = [c.size for c in result.clusters]
    assert sizes == sorted(sizes, reverse=True)
    # min-lines drops short functions; a threshold of 1 still keeps identical copies
    assert find_dupes(searcher, threshold=0.9999, min_lines=100).candidates == 0
    md, page = render_markdown(result), render_html(result)
    assert "util/text.py:4-10" in md and "legacy/text_utils.py:4-10" in md
    assert "<table>" in page and "util/text.py:4-10" in page
    with pytest.raises(CodeseerError):
        find_dupes(searcher, threshold=0)
    with pytest.raises(CodeseerError):
        find_dupes(searcher, min_lines=0)
    # blocking does not change the answer
    small = find_dupes(searcher, threshold=0.9999, min_lines=5, block=3)
    assert [c.to_dict()["members"] for c in small.clusters] == [c.to_dict()["members"] for c in result.clusters]


# --------------------------------------------------------------------------- locate


def test_locate_ranks_files_with_their_functions(searcher):
    result = locate(searcher, "retry_with_backoff does not sleep between attempts", k=3)
    assert 1 <= len(result.files) <= 3
    assert result.files[0].path == "net/retry.py"
    assert result.files[0].functions[0].symbol == "retry_with_backoff"
    assert all(f.path != "docs/guide.md" for f in result.files)
    scores = [f.score for f in result.files]
    assert scores == sorted(scores, reverse=True)
    for f in result.files:
        assert len(f.functions) <= 3 and f.kind == "source"
        assert set(f.features) == set(FEATURES)
    with pytest.raises(CodeseerError, match="empty"):
        locate(searcher, " ")


# --------------------------------------------------------------------------- context


def _hit(path, start, end, text=None, score=1.0, symbol="f"):
    text = text if text is not None else "\n".join(f"line {n}" for n in range(start, end + 1))
    return Hit(path=path, start_line=start, end_line=end, symbol=symbol, language="python", kind="function",
               score=score, text=text)


def test_merge_overlapping_and_adjacent_chunks():
    hits = [_hit("b.py", 10, 12), _hit("a.py", 5, 9), _hit("a.py", 1, 6), _hit("a.py", 10, 11), _hit("a.py", 20, 22)]
    blocks = merge_hits(hits)
    assert [(b.path, b.start_line, b.end_line) for b in blocks] == [
        ("a.py", 1, 11), ("a.py", 20, 22), ("b.py", 10, 12)]
    assert blocks[0].text.split("\n") == [f"line {n}" for n in range(1, 12)]
    # a later part of a split function carries its signature first: the merged text drops it
    part2 = _hit("c.py", 4, 5, text="def g():\n    ...\nline 4\nline 5")
    assert merge_hits([_hit("c.py", 1, 3), part2])[0].text.split("\n") == [f"line {n}" for n in range(1, 6)]


def test_merge_random_intervals_property():
    rng = random.Random(0)
    for _ in range(200):
        hits = []
        for _ in range(rng.randint(1, 12)):
            s = rng.randint(1, 60)
            hits.append(_hit(rng.choice(["a.py", "b.py"]), s, s + rng.randint(0, 8)))
        blocks = merge_hits(hits)
        for path in ("a.py", "b.py"):
            mine = [b for b in blocks if b.path == path]
            covered = {n for b in mine for n in range(b.start_line, b.end_line + 1)}
            assert covered == {n for h in hits if h.path == path for n in range(h.start_line, h.end_line + 1)}
            for left, right in zip(mine, mine[1:]):
                assert left.end_line + 1 < right.start_line  # disjoint and not adjacent
        assert [(b.path, b.start_line) for b in blocks] == sorted((b.path, b.start_line) for b in blocks)


def test_context_budget_is_never_exceeded_over_many_budgets(searcher, count):
    hits = searcher.search("compute totals, parse configuration and retry failed calls", k=60)
    assert len(hits) >= 20
    rng = random.Random(3)
    budgets = list(range(1, 80)) + sorted(rng.randint(80, 3000) for _ in range(80)) + [10_000]
    previous_tokens = -1
    for budget in budgets:
        pack = build_pack(hits, budget, count)
        text = render_blocks(pack.blocks)
        assert count(text) == pack.tokens <= budget, budget
        for block in pack.blocks:
            assert f"### {block.path}:{block.start_line}-{block.end_line}\n" in text
        keys = [(b.path, b.start_line) for b in pack.blocks]
        assert keys == sorted(keys)
        if budget >= 10_000:
            assert pack.used_chunks == len({(h.path, h.start_line, h.end_line) for h in hits})
        previous_tokens = pack.tokens
    assert previous_tokens > 0


def test_context_small_budget_truncates_the_best_chunk(count):
    big = _hit("a.py", 1, 40, text="\n".join(f"value_{n} = compute(value_{n - 1})" for n in range(1, 41)))
    pack = build_pack([big], 60, count)
    assert len(pack.blocks) == 1 and pack.blocks[0].truncated
    assert 1 <= pack.blocks[0].end_line < 40 and pack.tokens <= 60
    assert build_pack([big], 1, count).blocks == []  # not even a header fits


def test_context_pack_end_to_end_and_errors(searcher, count):
    pack = context_pack(searcher, "sum of item prices in a shopping cart", budget=300)
    md = pack.render("md")
    assert count(md) == pack.tokens <= 300 and pack.blocks
    data = pack.to_dict()
    assert data["budget"] == 300 and data["blocks"][0]["header"].startswith(data["blocks"][0]["path"] + ":")
    for bad in (0, -5):
        with pytest.raises(CodeseerError, match="budget"):
            context_pack(searcher, "x", budget=bad)
    with pytest.raises(CodeseerError, match="empty task"):
        context_pack(searcher, "   ", budget=100)
    with pytest.raises(CodeseerError, match="format"):
        pack.render("xml")


def test_fences_survive_backticks_in_code(count):
    pack = build_pack([_hit("r.md", 1, 3, text="```\ncode\n```")], 500, count)
    md = render_blocks(pack.blocks)
    assert "````" in md and md.count("````") == 2


# --------------------------------------------------------------------------- docs


@pytest.mark.parametrize(
    "language,text,doc,body_has",
    [
        ("python", 'def f(x):\n    """Double it.\n\n    Really."""\n    return 2 * x', "Double it. Really.", "return 2 * x"),
        ("python", "    @cache\n    def m(self):\n        '''Cached value.'''\n        return 1", "Cached value.", "@cache"),
        ("python", "def f(x):\n    return x", "", "return x"),
        ("java", "/**\n * Adds two numbers.\n * @param a first\n */\n@Override\npublic int add(int a, int b) { return a + b; }",
         "Adds two numbers. a first", "public int add"),
        ("csharp", "/// <summary>Sum.</summary>\n[Pure]\npublic int Sum() { return 1; }", "<summary>Sum.</summary>", "public int Sum"),
        ("rust", "#[inline]\n/// Adds one.\nfn inc(x: i32) -> i32 { x + 1 }", "Adds one.", "fn inc"),
        ("go", "// Max returns the larger value.\nfunc Max(a, b int) int { return a }", "Max returns the larger value.", "func Max"),
        ("ruby", "# Greets a person.\ndef greet(name)\n  puts name\nend", "Greets a person.", "def greet"),
        ("c", "#include <x.h>\nint f(void) { return 0; }", "", "int f"),
    ],
)
def test_split_doc(language, text, doc, body_has):
    split = split_doc(text, language)
    assert split.doc == doc
    assert body_has in split.body
    if doc:
        assert doc not in split.body


def test_split_doc_of_a_partial_python_function():
    text = 'def long(x):\n    """Part one docs."""\n    for i in range(x):\n        if i:'
    split = split_doc(text, "python")
    assert split.doc == "Part one docs." and "Part one" not in split.body


def test_docs_for_returns_sections_and_docstrings(searcher):
    result = docs_for(searcher, "net/retry.py", 8, k=10)
    assert result.task == "code2nl" and result.query["symbol"] == "retry_with_backoff"
    kinds = {h.kind for h in result.hits}
    assert kinds == {"section", "docstring"}
    own = [h for h in result.hits if h.own]
    assert own and own[0].text.startswith("Call operation again")
    assert all(h.path == "docs/guide.md" for h in result.hits if h.kind == "section")
    with pytest.raises(CodeseerError):
        docs_for(searcher, "net/retry.py", 999)


def test_stale_docs_mechanics(searcher):
    result = stale_docs(searcher, percentile=50, z_threshold=0.0)
    assert result.documented >= 12  # every documented function and method, across languages
    assert len(result.flagged) >= 1
    assert all(s.similarity <= result.cutoff and s.z <= 0 for s in result.flagged)
    assert [s.similarity for s in result.lowest] == sorted(s.similarity for s in result.lowest)
    with pytest.raises(CodeseerError):
        stale_docs(searcher, percentile=0)
    assert stale_docs(searcher, path_glob="nothing/**").documented == 0


def test_status_like_fields(searcher):
    status = searcher.status()
    assert status["files"] == 7 and status["chunks"] > 10
    assert status["languages"]["python"] == 4 and status["languages"]["java"] == 1
    assert Path(status["root"]).is_dir()


def test_task_embedder_reuses_a_model_without_instructions(searcher):
    assert searcher.embedder_for("code2code") is searcher.embedder
    assert searcher.stored_vectors_are_queries("code2code")


def test_task_embedder_loads_task_prefixes_for_an_instruction_model(searcher, monkeypatch):
    """For a recipe with per-task prompts, code2code gets its own task-specific embedder, made once."""
    import codeseer.search.searcher as searcher_module
    from codeseer.search.searcher import Searcher

    monkeypatch.setattr(searcher_module, "task_prefixes",
                        lambda model, recipe, task: (f"{task}:query: ", f"{task}:document: "))
    created = []

    def make(model, *, recipe, task, dim):
        created.append(task)
        return SimpleNamespace(task=task, dim=dim)

    monkeypatch.setattr(searcher_module, "load_embedder", make)
    fresh = Searcher(searcher.store)
    got = fresh.embedder_for("code2code")
    assert got.task == "code2code" and created == ["code2code"]
    assert fresh.embedder_for("code2code") is got  # cached
    assert fresh.embedder_for("nl2code").task == "nl2code" and created == ["code2code", "nl2code"]
    assert not fresh.stored_vectors_are_queries("code2code")


@pytest.mark.parametrize("precision", ["float16", "int8", "binary"])
def test_apps_on_compact_indexes(tmp_path, tiny_model_dir, precision):
    """Indexes storing float16, int8 or binary vectors: decoded for dupes, scanned for similar."""
    import inspect

    from codeseer.index.indexer import index_repository
    from codeseer.index.store import IndexStore
    from codeseer.search.searcher import Searcher

    if "precision" not in inspect.signature(index_repository).parameters:
        pytest.skip("this index has no compact precisions")
    repo = make_repo(tmp_path / "repo")
    report = index_repository(repo, model=str(tiny_model_dir), precision=precision)
    compact = Searcher(IndexStore(Path(report.index_dir)))
    result = similar(compact, path="util/text.py", line=6, k=3)
    assert (result.hits[0].path, result.hits[0].symbol) == ("legacy/text_utils.py", "slugify")
    assert all((h.path, h.start_line) != ("util/text.py", 4) for h in result.hits)
    assert len(similar(compact, code="def f(x):\n    return x\n", k=4).hits) == 4
    clusters = find_dupes(compact, threshold=0.999).clusters
    assert any({("util/text.py", "slugify"), ("legacy/text_utils.py", "slugify")} <= {(m.path, m.symbol) for m in c.members}
               for c in clusters)
    assert docs_for(compact, "net/retry.py", 8).hits
