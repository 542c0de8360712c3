"""Several repositories in one index: a ``repo`` column, (repo, path) as the file key, repo filters,
``REPO/PATH`` path arguments, partial updates, and indexes built before the column existed."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from codeseer.apps.locations import PathOutsideRoot, locate_path
from codeseer.apps.service import Service
from codeseer.errors import CodeseerError
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore, consistency_problem
from codeseer.search.searcher import Searcher

from conftest import run_cli, write_files

ALPHA = {
    "src/util.py": '''
        def checksum(data):
            """Add up the bytes of data, modulo 65536."""
            total = 0
            for byte in data:
                total = (total + byte) % 65536
            return total
        ''',
    "src/alpha_only.py": '''
        class Greeter:
            """Says hello."""

            def greet(self, name):
                return "hello " + name
        ''',
    "README.md": "# Alpha\n\nThe checksum helper adds up bytes.\n",
}
BETA = {
    "src/util.py": '''
        def checksum(data):
            """Multiply the bytes of data together, modulo 65521."""
            product = 1
            for byte in data:
                product = (product * (byte or 1)) % 65521
            return product
        ''',
    "lib/beta_only.py": '''
        def parse_header(line):
            key, _, value = line.partition(":")
            return key.strip().lower(), value.strip()
        ''',
}


def rows(index_dir: Path) -> tuple[list[dict], list[dict], object]:
    """Committed chunk rows (vectors as lists) and file rows, sorted, after a consistency check."""
    store = IndexStore(index_dir)
    state = store.read_state()
    chunks, files = store.snapshot(state)
    chunk_table, file_table = chunks.to_arrow(), files.to_arrow()
    assert consistency_problem(chunk_table, file_table) is None
    chunk_rows = sorted(chunk_table.to_pylist(), key=lambda r: r["chunk_id"])
    for row in chunk_rows:
        row["vector"] = [round(float(x), 6) for x in row["vector"]]
    file_rows = sorted(file_table.to_pylist(), key=lambda r: (r.get("repo") or "", r["path"]))
    return chunk_rows, file_rows, state


@pytest.fixture()
def two_repos(tmp_path, tiny_model_dir):
    alpha = write_files(tmp_path / "alpha", ALPHA)
    beta = write_files(tmp_path / "beta", BETA)
    index_dir = tmp_path / "idx"
    report = index_repository([alpha, beta], index_dir=index_dir, model=str(tiny_model_dir))
    assert report.roots == {"alpha": str(alpha.resolve()), "beta": str(beta.resolve())}
    return alpha, beta, index_dir


def test_same_path_in_two_repos_coexists_and_the_repo_filter_keeps_to_one(two_repos):
    alpha, beta, index_dir = two_repos
    chunk_rows, file_rows, state = rows(index_dir)
    assert state.roots == {"alpha": str(alpha.resolve()), "beta": str(beta.resolve())}
    assert state.root == str(alpha.resolve().parent)  # older readers: the folder both share
    keys = [(r["repo"], r["path"]) for r in file_rows]
    assert keys == [("alpha", "README.md"), ("alpha", "src/alpha_only.py"), ("alpha", "src/util.py"),
                    ("beta", "lib/beta_only.py"), ("beta", "src/util.py")]
    util = [r for r in chunk_rows if r["path"] == "src/util.py"]
    assert {r["repo"] for r in util} == {"alpha", "beta"}
    assert len({r["chunk_id"] for r in chunk_rows}) == len(chunk_rows)

    searcher = Searcher(IndexStore(index_dir))
    for mode in ("lexical", "dense", "hybrid"):
        both = searcher.search("checksum of the bytes of data", k=20, mode=mode)
        assert {(h.repo, h.path) for h in both if h.path == "src/util.py"} == {("alpha", "src/util.py"), ("beta", "src/util.py")}
        for name, root in (("alpha", ALPHA), ("beta", BETA)):
            hits = searcher.search("checksum of the bytes of data", k=20, mode=mode, repos=[name])
            assert hits and {h.repo for h in hits} == {name}
            assert {h.path for h in hits} <= set(root)
            assert all(h.to_dict()["repo"] == name for h in hits)
        assert searcher.search("checksum", k=20, mode=mode, repos=["alpha", "beta"]) == searcher.search("checksum", k=20, mode=mode)
    with pytest.raises(CodeseerError, match="unknown repo 'gamma'; this index holds: alpha, beta"):
        searcher.search("checksum", repos=["gamma"])
    # a path glob is relative to each repo; combined with a repo filter it keeps to that repo's files
    hits = searcher.search("checksum", mode="lexical", path_glob="src/util.py", repos=["beta"])
    assert [(h.repo, h.path) for h in hits] == [("beta", "src/util.py")]


def test_updating_one_repo_leaves_the_other_untouched(two_repos, tiny_model_dir):
    alpha, beta, index_dir = two_repos
    before_chunks, before_files, _ = rows(index_dir)
    write_files(alpha, {"src/util.py": "def checksum(data):\n    return sum(data) & 0xFFFF\n",
                        "src/new_module.py": "def brand_new():\n    return 42\n"})
    (alpha / "src" / "alpha_only.py").unlink()
    write_files(beta, {"lib/beta_only.py": "def changed_but_not_indexed():\n    pass\n"})  # beta is not re-indexed

    report = index_repository(alpha, index_dir=index_dir, model=str(tiny_model_dir))
    assert (report.changed_files, report.deleted_files) == (2, 1)
    after_chunks, after_files, state = rows(index_dir)
    assert set(state.roots) == {"alpha", "beta"}  # beta stays in the index
    assert [r for r in after_chunks if r["repo"] == "beta"] == [r for r in before_chunks if r["repo"] == "beta"]
    assert [r for r in after_files if r["repo"] == "beta"] == [r for r in before_files if r["repo"] == "beta"]
    assert {r["path"] for r in after_files if r["repo"] == "alpha"} == {"README.md", "src/util.py", "src/new_module.py"}
    assert not [r for r in after_chunks if r["repo"] == "alpha" and r["path"] == "src/alpha_only.py"]

    # No PATH: every repo of the index is brought up to date, beta's edit included.
    report = index_repository(None, index_dir=index_dir, model=str(tiny_model_dir))
    assert (report.changed_files, report.deleted_files) == (1, 0)
    assert set(report.roots) == {"alpha", "beta"}
    hits = Searcher(IndexStore(index_dir)).search("changed_but_not_indexed", mode="lexical", repos=["beta"])
    assert hits[0].symbol == "changed_but_not_indexed"


def test_repo_names_must_be_unique_and_keep_to_their_folder(tmp_path, tiny_model_dir):
    one = write_files(tmp_path / "one" / "pkg", {"a.py": "def a():\n    pass\n"})
    two = write_files(tmp_path / "two" / "pkg", {"b.py": "def b():\n    pass\n"})
    model = str(tiny_model_dir)
    with pytest.raises(CodeseerError, match="two roots are named 'pkg'.*NAME=PATH"):
        index_repository([one, two], index_dir=tmp_path / "idx", model=model)
    with pytest.raises(CodeseerError, match="--index DIR"):
        index_repository([one, ("other", two)], model=model)
    index_repository([one, ("other", two)], index_dir=tmp_path / "idx", model=model)
    assert IndexStore(tmp_path / "idx").read_state().roots == {"other": str(two.resolve()), "pkg": str(one.resolve())}
    with pytest.raises(CodeseerError, match="has repo 'pkg' at .*one/pkg, not .*two/pkg"):
        index_repository([("pkg", two)], index_dir=tmp_path / "idx", model=model)
    with pytest.raises(CodeseerError, match="already in index .* as repo 'other'"):
        index_repository([("again", two)], index_dir=tmp_path / "idx", model=model)
    with pytest.raises(CodeseerError, match="invalid repo name"):
        index_repository([("a/b", two)], index_dir=tmp_path / "idx2", model=model)
    # A folder the index knows keeps its name when given again without one.
    report = index_repository(two, index_dir=tmp_path / "idx", model=model)
    assert report.roots == {"other": str(two.resolve())}


@pytest.mark.slow
def test_cli_repo_names_filter_display_and_errors(tmp_path, tiny_model_dir):
    alpha = write_files(tmp_path / "alpha", ALPHA)
    beta = write_files(tmp_path / "beta", BETA)
    index_dir = tmp_path / "idx"
    done = run_cli("index", str(alpha), f"b={beta}", "--index", str(index_dir), "--model", str(tiny_model_dir), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["roots"] == {"alpha": str(alpha.resolve()), "b": str(beta.resolve())}

    done = run_cli("search", "checksum bytes", "--index", str(index_dir), "--repo", "b", "--json")
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert hits and {h["repo"] for h in hits} == {"b"}
    done = run_cli("search", "checksum", "--index", str(index_dir), "--mode", "lexical")
    assert "alpha/src/util.py:1-" in done.stdout and "b/src/util.py:1-" in done.stdout
    done = run_cli("search", "checksum", "--index", str(index_dir), "--repo", "nope")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "unknown repo 'nope'" in done.stderr and len(done.stderr.strip().splitlines()) == 1

    # PATH:LINE arguments name their repo first; an absolute path inside a root works too.
    done = run_cli("similar", "b/src/util.py:2", "--index", str(index_dir), "--json")
    assert done.returncode == 0, done.stderr
    query = json.loads(done.stdout)["query"]
    assert (query["repo"], query["path"]) == ("b", "src/util.py") and "product" in query["text"]
    done = run_cli("similar", f"{alpha / 'src' / 'util.py'}:2", "--index", str(index_dir), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["query"]["repo"] == "alpha"
    done = run_cli("similar", "src/util.py:2", "--index", str(index_dir), cwd=tmp_path)
    assert done.returncode == 1 and "REPO/PATH" in done.stderr
    done = run_cli("docs", "alpha/../beta/src/util.py:2", "--index", str(index_dir))
    assert done.returncode == 1 and "outside" in done.stderr
    done = run_cli("locate", "add up the bytes", "--index", str(index_dir), "--repo", "alpha", "--json")
    assert done.returncode == 0, done.stderr
    assert {f["repo"] for f in json.loads(done.stdout)["files"]} == {"alpha"}
    done = run_cli("index", str(alpha), str(beta), "--model", str(tiny_model_dir))
    assert done.returncode == 1 and "--index DIR" in done.stderr


def test_service_paths_are_repo_relative_and_never_escape(two_repos):
    alpha, beta, index_dir = two_repos
    service = Service(index_dir)
    result = service.similar(location="beta/src/util.py:3", k=5)
    assert (result["query"]["repo"], result["query"]["path"]) == ("beta", "src/util.py")
    assert all("repo" in h for h in result["hits"])
    assert not any(h["repo"] == "beta" and h["path"] == "src/util.py" and h["start_line"] == result["query"]["start_line"]
                   for h in result["hits"])
    docs = service.docs(location="alpha/src/util.py:2", k=3)
    assert docs["query"]["repo"] == "alpha"
    for bad in ("../alpha/src/util.py:1", "alpha/../beta/src/util.py:1", f"{alpha}/src/util.py:1", "beta/../../x.py:1"):
        with pytest.raises(PathOutsideRoot):
            service.similar(location=bad)
    with pytest.raises(CodeseerError, match="REPO/PATH"):
        service.similar(location="src/util.py:1")
    hits = service.search("checksum", repos=["alpha"], mode="lexical")["hits"]
    assert hits and {h["repo"] for h in hits} == {"alpha"}
    pack = service.context("checksum of bytes", budget=400, repos=["beta"])
    assert pack["blocks"] and all(b["header"].startswith("beta/") for b in pack["blocks"])
    located = service.locate("checksum of bytes", repos=["alpha", "beta"])
    assert {f["repo"] for f in located["files"]} == {"alpha", "beta"}
    status = service.status()
    assert set(status["repos"]) == {"alpha", "beta"}


def test_http_and_mcp_take_a_repos_filter(two_repos):
    from fastapi.testclient import TestClient

    from codeseer.serve.http import create_app

    _alpha, _beta, index_dir = two_repos
    service = Service(index_dir)
    client = TestClient(create_app(service), base_url="http://127.0.0.1")
    answer = client.post("/search", json={"query": "checksum", "mode": "lexical", "repos": ["beta"]})
    assert answer.status_code == 200, answer.text
    assert {h["repo"] for h in answer.json()["hits"]} == {"beta"}
    answer = client.post("/search", json={"query": "checksum", "repos": ["nope"]})
    assert answer.status_code == 400 and "unknown repo" in answer.json()["detail"]
    answer = client.post("/similar", json={"location": "alpha/../../etc/passwd:1"})
    assert answer.status_code == 400

    pytest.importorskip("mcp")
    import asyncio

    from codeseer.serve.mcp_server import build_server

    tools = asyncio.run(build_server(service).list_tools())
    schemas = {t.name: getattr(t, "input_schema", None) or getattr(t, "inputSchema") for t in tools}
    for name in ("search", "similar", "locate", "context"):
        assert "repos" in schemas[name]["properties"], name


def test_single_repo_index_is_unchanged_for_users(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "proj", ALPHA)
    index_repository(repo, model=str(tiny_model_dir))
    searcher = Searcher(IndexStore(repo / ".codeseer"))
    assert searcher.state.roots == {"proj": str(repo.resolve())} and searcher.state.root == str(repo.resolve())
    hits = searcher.search("checksum", mode="lexical")
    assert hits and all(h.repo is None and "repo" not in h.to_dict() for h in hits)
    assert searcher.search("checksum", mode="lexical", repos=["proj"]) == hits
    assert locate_path(searcher, "src/util.py", strict=True) == (None, "src/util.py")


def _make_legacy(index_dir: Path) -> None:
    """Turn an index into one as codeseer wrote it before the repo column (and ``roots``) existed."""
    store = IndexStore(index_dir)
    state = store.read_state()
    chunks, files = store.writable_tables(state, state.dim, state.precision)
    chunks.drop_columns(["repo"])
    files.drop_columns(["repo"])
    raw = asdict(state) | {"chunks_version": chunks.version, "files_version": files.version}
    for key in ("roots", "revs", "rev"):
        raw.pop(key)
    (index_dir / "state.json").write_text(json.dumps(raw), encoding="utf-8")
    (index_dir / "history.json").unlink(missing_ok=True)


def test_index_from_before_the_repo_column_still_searches_and_updates(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "proj", ALPHA)
    index_dir = repo / ".codeseer"
    index_repository(repo, model=str(tiny_model_dir))
    _make_legacy(index_dir)
    store = IndexStore(index_dir)
    assert "repo" not in store.snapshot(store.read_state())[0].schema.names

    searcher = Searcher(store)
    assert not searcher.has_repo and searcher.roots == {"proj": repo.resolve()}
    hits = searcher.search("checksum", mode="hybrid")
    assert hits and searcher.search("checksum", mode="hybrid", repos=["proj"]) == hits
    with pytest.raises(CodeseerError, match="unknown repo"):
        searcher.search("checksum", repos=["other"])
    service = Service(index_dir)
    assert service.similar(location="src/util.py:2")["query"]["path"] == "src/util.py"
    assert service.docs(location="src/util.py:2")["query"]["path"] == "src/util.py"

    # An update adds the column (holding the one repo), then a second repo can join.
    write_files(repo, {"src/extra.py": "def extra():\n    return 1\n"})
    report = index_repository(repo, model=str(tiny_model_dir))
    assert report.changed_files == 1
    chunk_rows, file_rows, state = rows(index_dir)
    assert {r["repo"] for r in chunk_rows} == {"proj"} and {r["repo"] for r in file_rows} == {"proj"}
    assert state.roots == {"proj": str(repo.resolve())}
    other = write_files(tmp_path / "other", BETA)
    index_repository([other], index_dir=index_dir, model=str(tiny_model_dir))
    chunk_rows, file_rows, state = rows(index_dir)
    assert set(state.roots) == {"proj", "other"}
    assert ("other", "src/util.py") in {(r["repo"], r["path"]) for r in file_rows}
    assert ("proj", "src/util.py") in {(r["repo"], r["path"]) for r in file_rows}


def test_dupes_tells_the_same_path_in_two_repos_apart(tmp_path, tiny_model_dir):
    from codeseer.apps.dupes import find_dupes

    same = {"src/same.py": '''
        def normalise_whitespace(text):
            """Collapse runs of spaces."""
            words = text.split()
            joined = " ".join(words)
            return joined.strip()
        '''}
    alpha = write_files(tmp_path / "alpha", same)
    beta = write_files(tmp_path / "beta", same)
    index_repository([alpha, beta], index_dir=tmp_path / "idx", model=str(tiny_model_dir))
    result = find_dupes(Searcher(IndexStore(tmp_path / "idx")), threshold=0.99, min_lines=3)
    assert len(result.clusters) == 1
    members = result.clusters[0].to_dict()["members"]
    assert [(m["repo"], m["path"]) for m in members] == [("alpha", "src/same.py"), ("beta", "src/same.py")]
    assert result.clusters[0].members[1].location == "beta/src/same.py:1-5"
