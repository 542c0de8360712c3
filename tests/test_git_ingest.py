"""``codeseer index --rev``: a revision indexed straight from git objects, updated by git diff."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from codeseer.errors import CodeseerError
from codeseer.index.gitsource import GitTree
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore, consistency_problem
from codeseer.index.walker import WalkStats
from codeseer.search.searcher import Searcher

from conftest import run_cli, write_files

V1 = {
    "src/retry.py": '''
        import time


        def retry(operation, attempts=3):
            """Call operation again when it raises."""
            for attempt in range(attempts):
                try:
                    return operation()
                except Exception:
                    time.sleep(0.1)
        ''',
    "src/config.py": '''
        def parse_config(text):
            """Key = value lines into a dict."""
            return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        ''',
    "src/moved.py": '''
        def slugify(title):
            """Lower-case words joined by dashes."""
            return "-".join(title.lower().split())
        ''',
    "src/stays.py": "def untouched():\n    return 'same in both commits'\n",
    "web/app.js": "function handleNotFound(req, res) {\n  res.statusCode = 404;\n}\n",
    "docs/guide.md": "# Guide\n\nHow to retry.\n",
    "gen/generated_code.py": "def from_generator():\n    return 1\n",
    "vendor/lib.py": "def vendored():\n    pass\n",
    "app.min.js": "function a(){return 1}\n",
    ".codeseerignore": "gen/\n",
    ".gitignore": ".codeseer/\n",  # an index kept in the repository is never committed
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
                           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
                          cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_history(root: Path) -> tuple[Path, str, str]:
    """A repository with commits A and B (B: one edit, one add, one delete, one move, an ignore change)."""
    repo = write_files(root, V1)
    (repo / "src" / "blob.py").write_bytes(b"\x00\x01binary" * 10)
    git(repo, "init", "-q")
    a = commit_all(repo, "A")
    config = textwrap.dedent(V1["src/config.py"]).lstrip("\n")
    write_files(repo, {"src/config.py": config + "\n\ndef dump_config(values):\n    return '\\n'.join(f'{k}={v}' for k, v in values.items())\n",
                       "src/added.py": "def brand_new_feature():\n    return 'added in B'\n",
                       ".codeseerignore": "# nothing ignored any more\n"})
    (repo / "web" / "app.js").unlink()
    (repo / "lib").mkdir()
    (repo / "src" / "moved.py").rename(repo / "lib" / "text_utils.py")
    b = commit_all(repo, "B")
    return repo, a, b


def snapshot(index_dir: Path) -> tuple[list[tuple], list[dict]]:
    """Chunk rows (vectors left out) and file rows of the committed snapshot, sorted."""
    chunk_rows, file_rows, _ = snapshot_with_vectors(index_dir)
    return chunk_rows, file_rows


def snapshot_with_vectors(index_dir: Path):
    store = IndexStore(index_dir)
    state = store.read_state()
    chunks, files = store.snapshot(state)
    chunk_table, file_table = chunks.to_arrow(), files.to_arrow()
    assert consistency_problem(chunk_table, file_table) is None
    chunk_rows = sorted(
        (r["chunk_id"], r["repo"], r["path"], r["start_line"], r["end_line"], r["symbol"], r["content_hash"], r["text"])
        for r in chunk_table.to_pylist()
    )
    vectors = dict(zip(chunk_table["chunk_id"].to_pylist(), chunk_table["vector"].to_numpy(zero_copy_only=False)))
    return chunk_rows, sorted(file_table.to_pylist(), key=lambda r: r["path"]), vectors


def test_rev_indexes_the_commit_not_the_working_tree(tmp_path, tiny_model_dir):
    repo, a, b = make_history(tmp_path / "proj")
    # Uncommitted edits, an untracked file and a deleted one: none of it may reach the index.
    write_files(repo, {"src/retry.py": "def working_tree_only_edit():\n    pass\n",
                       "src/untracked.py": "def not_committed():\n    pass\n"})
    (repo / "src" / "stays.py").unlink()
    report = index_repository(repo, rev=a, model=str(tiny_model_dir))
    assert report.rev == a and report.commits == {"proj": a} and report.diff_files is None

    state = IndexStore(repo / ".codeseer").read_state()
    assert state.rev == a and state.revs == {"proj": a} and state.roots == {"proj": str(repo.resolve())}
    _, files = snapshot(repo / ".codeseer")
    assert [f["path"] for f in files] == ["docs/guide.md", "src/config.py", "src/moved.py", "src/retry.py",
                                          "src/stays.py", "web/app.js"]  # gen/ ignored at A, vendor/, min.js, binary skipped
    assert report.skipped == {"binary": 1, "generated": 1}
    assert report.blobs_read == 7  # the six indexed files and the binary one, nothing else
    searcher = Searcher(IndexStore(repo / ".codeseer"))
    symbols = {h.symbol for h in searcher.search("retry operation untouched", k=50, mode="dense")}
    assert "retry" in symbols and "untouched" in symbols
    indexed = "\n".join(h.text for h in searcher.search("working_tree_only_edit not_committed retry", k=100, mode="lexical"))
    assert "def retry(operation" in indexed
    assert "working_tree_only_edit" not in indexed and "not_committed" not in indexed


def test_rev_update_by_diff_reads_only_changed_blobs_and_equals_a_fresh_index(tmp_path, tiny_model_dir):
    repo, a, b = make_history(tmp_path / "proj")
    model = str(tiny_model_dir)
    index_dir = tmp_path / "incremental"
    index_repository(repo, rev=a, index_dir=index_dir, model=model)
    report = index_repository(repo, rev=b, index_dir=index_dir, model=model)

    # git diff A B: config.py (M), added.py (A), app.js (D), moved.py (D), text_utils.py (A), .codeseerignore (M).
    assert report.diff_files == 6
    # Read: config.py, added.py, text_utils.py, plus gen/generated_code.py (un-ignored by the ignore change);
    # not the unchanged retry.py, stays.py, guide.md, nor the binary blob.py.
    assert report.blobs_read == 4
    assert report.commits == {"proj": b}
    assert (report.changed_files, report.deleted_files) == (4, 2)
    # The moved function's vector is reused (same content hash), so only new code is embedded.
    assert (report.embedded_chunks, report.reused_chunks) == (3, 2)  # dump_config, added.py, generated_code.py
    assert IndexStore(index_dir).read_state().rev == b

    fresh_dir = tmp_path / "fresh"
    index_repository(repo, rev=b, index_dir=fresh_dir, model=model)
    updated_rows, updated_files, updated_vectors = snapshot_with_vectors(index_dir)
    fresh_rows, fresh_files, fresh_vectors = snapshot_with_vectors(fresh_dir)
    assert updated_rows == fresh_rows  # same chunk ids, paths, lines, texts
    assert updated_files == fresh_files
    assert set(updated_vectors) == set(fresh_vectors)
    for cid, vector in fresh_vectors.items():
        assert np.allclose(updated_vectors[cid], vector, atol=1e-5), cid

    # Same commit again: nothing read, nothing written.
    report = index_repository(repo, rev="HEAD", index_dir=index_dir, model=model)
    assert (report.diff_files, report.blobs_read, report.changed_files) == (0, 0, 0)


def test_commit_without_source_changes_still_records_the_revision(tmp_path, tiny_model_dir):
    repo, a, b = make_history(tmp_path / "proj")
    index_repository(repo, rev=b, model=str(tiny_model_dir))
    (repo / "data.csv").write_text("a,b\n1,2\n")  # not a language codeseer indexes
    c = commit_all(repo, "C")
    report = index_repository(repo, rev=c, model=str(tiny_model_dir))
    assert (report.diff_files, report.blobs_read, report.changed_files) == (1, 0, 0)
    assert IndexStore(repo / ".codeseer").read_state().rev == c


def test_working_tree_index_after_rev_reads_the_disk_again(tmp_path, tiny_model_dir):
    repo, a, b = make_history(tmp_path / "proj")
    index_repository(repo, rev=a, model=str(tiny_model_dir))
    report = index_repository(repo, model=str(tiny_model_dir))  # the checkout (at B)
    assert report.rev is None
    state = IndexStore(repo / ".codeseer").read_state()
    assert state.rev is None and state.revs is None
    paths = {f["path"] for f in snapshot(repo / ".codeseer")[1]}
    assert "src/added.py" in paths and "web/app.js" not in paths


def test_subfolder_of_a_repository_and_several_roots_at_one_rev(tmp_path, tiny_model_dir):
    repo, a, b = make_history(tmp_path / "proj")
    tree = GitTree(repo / "src", b)
    stats = WalkStats()
    assert [s.rel for s in tree.list_sources(stats)] == ["added.py", "blob.py", "config.py", "retry.py", "stays.py"]
    assert stats.skipped == {} and tree.blobs_read == 0  # listing reads nothing; blob.py is skipped when read
    tree.close()
    other = write_files(tmp_path / "other", {"x.py": "def other_repo():\n    pass\n"})
    git(other, "init", "-q")
    commit_all(other, "first")
    report = index_repository([repo / "src", other], rev="HEAD", index_dir=tmp_path / "idx", model=str(tiny_model_dir))
    assert set(report.commits) == {"src", "other"}
    state = IndexStore(tmp_path / "idx").read_state()
    assert state.revs == report.commits and state.rev is None
    keys = {(f["repo"], f["path"]) for f in snapshot(tmp_path / "idx")[1]}
    assert ("src", "added.py") in keys and ("other", "x.py") in keys


def test_bad_revision_and_non_repository_fail_in_one_line(tmp_path, tiny_model_dir):
    repo, a, b = make_history(tmp_path / "proj")
    with pytest.raises(CodeseerError, match="unknown revision 'no-such-branch'"):
        index_repository(repo, rev="no-such-branch", model=str(tiny_model_dir))
    with pytest.raises(CodeseerError, match="unknown revision"):
        index_repository(repo, rev="--output=/tmp/x", model=str(tiny_model_dir))
    assert not (repo / ".codeseer").exists()  # refused before anything was created
    plain = write_files(tmp_path / "plain", {"a.py": "def a():\n    pass\n"})
    for args, message in ((["index", str(repo), "--rev", "no-such-branch"], "unknown revision 'no-such-branch'"),
                          (["index", str(plain), "--rev", "HEAD"], "not a git repository")):
        done = run_cli(*args, "--model", str(tiny_model_dir))
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
def test_cli_json_reports_the_revision_and_the_diff(tmp_path, tiny_model_dir):
    repo, a, b = make_history(tmp_path / "proj")
    index_dir = tmp_path / "idx"
    done = run_cli("index", str(repo), "--rev", a, "--index", str(index_dir), "--model", str(tiny_model_dir), "--json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert (first["rev"], first["commits"], first["diff_files"]) == (a, {"proj": a}, None)
    done = run_cli("index", str(repo), "--rev", "HEAD", "--index", str(index_dir), "--json")
    assert done.returncode == 0, done.stderr
    second = json.loads(done.stdout)
    assert (second["rev"], second["commits"], second["diff_files"], second["blobs_read"]) == ("HEAD", {"proj": b}, 6, 4)
    done = run_cli("index", str(repo), "--rev", a, "--index", str(index_dir))
    assert done.returncode == 0, done.stderr
    assert f"rev {a}" in done.stderr and "git diff touched 6 files" in done.stderr
