"""A repository copied, moved, renamed under its parent or reached through a symlink takes its index
along; an index whose repository is gone says so in one line; indexes written before roots were
stored relative heal the same way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codeseer.errors import CodeseerError
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore
from codeseer.search.searcher import Searcher

from conftest import run_cli, write_files

FILES = {
    "src/app.py": "def handle_request(request):\n    return respond(request.path)\n",
    "src/util.py": "def respond(path):\n    return 'ok ' + path\n",
}


@pytest.fixture
def repo(tmp_path, tiny_model_dir) -> Path:
    root = write_files(tmp_path / "home" / "flask", FILES)
    index_repository(root, model=str(tiny_model_dir))
    return root


def _state(repo: Path) -> dict:
    return json.loads((repo / ".codeseer" / "state.json").read_text())


def _check(repo: Path, expect_root: Path, tiny_model_dir) -> None:
    """The index answers with paths of this repository, and updating it changes nothing."""
    searcher = Searcher(IndexStore(repo / ".codeseer"))
    assert searcher.roots == {"flask": expect_root.resolve()}
    hits = searcher.search("handle_request", mode="lexical")
    assert hits and hits[0].path == "src/app.py" and hits[0].repo is None
    report = index_repository(repo, model=str(tiny_model_dir))
    assert (report.files, report.changed_files, report.embedded_chunks) == (len(FILES), 0, 0)
    assert set(_state(repo)["roots"]) == {"flask"}
    similar = run_cli("similar", "src/app.py:1", "--json", cwd=repo)
    assert similar.returncode == 0, similar.stderr
    assert json.loads(similar.stdout)["query"]["path"] == "src/app.py"


def test_roots_inside_are_stored_relative(repo):
    state = _state(repo)
    assert state["root"] == ".." and state["roots"] == {"flask": ".."}


def test_copy(repo, tmp_path, tiny_model_dir):
    copy = tmp_path / "home" / "flask2"
    shutil.copytree(repo, copy, symlinks=True)
    _check(copy, copy, tiny_model_dir)
    _check(repo, repo, tiny_model_dir)  # the original is untouched


def test_move(repo, tmp_path, tiny_model_dir):
    moved = tmp_path / "home" / "renamed"
    repo.rename(moved)
    _check(moved, moved, tiny_model_dir)


def test_rename_parent(repo, tmp_path, tiny_model_dir):
    (tmp_path / "home").rename(tmp_path / "elsewhere")
    _check(tmp_path / "elsewhere" / "flask", tmp_path / "elsewhere" / "flask", tiny_model_dir)


def test_symlinked_path(repo, tmp_path, tiny_model_dir):
    link = tmp_path / "link"
    link.symlink_to(repo.parent)
    through = link / "flask"
    hits = run_cli("search", "handle_request", "--mode", "lexical", "--json", cwd=through)
    assert hits.returncode == 0 and json.loads(hits.stdout)[0]["path"] == "src/app.py"
    report = index_repository(through, model=str(tiny_model_dir))
    assert report.changed_files == 0 and set(_state(repo)["roots"]) == {"flask"}


def _make_absolute(repo: Path) -> None:
    """An index as codeseer wrote it before roots were stored relative."""
    state_path = repo / ".codeseer" / "state.json"
    state = json.loads(state_path.read_text())
    state["root"] = str(repo.resolve())
    state["roots"] = {"flask": str(repo.resolve())}
    state_path.write_text(json.dumps(state))
    (repo / ".codeseer" / "history.json").unlink(missing_ok=True)


def test_an_older_index_copied_with_its_repository_is_one_repository(repo, tmp_path, tiny_model_dir):
    _make_absolute(repo)
    copy = tmp_path / "home" / "flask2"
    shutil.copytree(repo, copy, symlinks=True)
    report = index_repository(copy, model=str(tiny_model_dir))  # before: a second repo, every hit twice
    assert report.files == len(FILES) and report.embedded_chunks == 0
    assert _state(copy)["roots"] == {"flask": ".."}
    hits = Searcher(IndexStore(copy / ".codeseer")).search("respond", k=10, mode="lexical")
    assert len({(h.path, h.start_line) for h in hits}) == len(hits) and all(h.repo is None for h in hits)


def test_an_older_index_moved_with_its_repository_follows_it(repo, tmp_path, tiny_model_dir):
    _make_absolute(repo)
    moved = tmp_path / "home" / "renamed"
    repo.rename(moved)
    _check(moved, moved, tiny_model_dir)
    assert _state(moved)["roots"] == {"flask": ".."}


def test_an_index_whose_repository_is_gone_says_so(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "project", FILES)
    index_dir = tmp_path / "indexes" / "project"
    index_repository(repo, index_dir=index_dir, model=str(tiny_model_dir))
    assert Path(_state_at(index_dir)["root"]).is_absolute()  # outside the repository: absolute
    shutil.rmtree(repo)
    with pytest.raises(CodeseerError, match=r"the repository of index .* is gone .*moved or deleted"):
        Searcher(IndexStore(index_dir))
    result = run_cli("search", "x", "--index", str(index_dir))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "is gone" in lines[0]


def _state_at(index_dir: Path) -> dict:
    return json.loads((index_dir / "state.json").read_text())
