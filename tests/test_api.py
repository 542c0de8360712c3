"""The Python front door, end to end: codeseer.Index.build/open, then every query, as a user writes it."""

from __future__ import annotations

import pytest

import codeseer
from codeseer.apps.context import ContextPack
from codeseer.apps.locate import LocateResult
from codeseer.errors import CodeseerError
from codeseer.search.searcher import Hit

from conftest import write_files
from test_apps_helpers import REPO


def test_build_query_update_and_open(tmp_path, tiny_model_dir, monkeypatch):
    repo = write_files(tmp_path / "repo", REPO)
    idx = codeseer.Index.build(repo, model=str(tiny_model_dir))
    assert idx.report.files == len(REPO) and idx.directory == repo / ".codeseer"
    assert "codeseer.Index(" in repr(idx)

    hits = idx.search("retry_with_backoff", k=3, mode="lexical")
    assert all(isinstance(h, Hit) for h in hits) and hits[0].path == "net/retry.py"
    assert hits[0].to_dict()["file_kind"] == "source"
    assert {h.path for h in idx.search("retry", k=20, kinds=["docs"])} == {"docs/guide.md"}

    located = idx.locate("retry_with_backoff never sleeps between attempts", k=2, functions=1)
    assert isinstance(located, LocateResult) and located.files[0].path == "net/retry.py"
    assert len(located.files[0].functions) == 1

    monkeypatch.chdir(repo)  # locations are relative to the current folder, as on the command line
    near = idx.similar("util/text.py:6", k=2)
    assert near.query["symbol"] == "slugify" and near.hits[0].path == "legacy/text_utils.py"
    assert len(idx.similar(code="def f(x):\n    return x + 1\n", k=2).hits) == 2
    pack = idx.context("sum of item prices in a shopping cart", budget=300)
    assert isinstance(pack, ContextPack) and 0 < pack.tokens <= 300 and pack.render("md").startswith("### ")
    assert any(h.own for h in idx.docs("net/retry.py:8").hits)
    assert idx.status()["files"] == len(REPO)

    write_files(repo, {"util/hashing.py": "def checksum_of_bytes(data):\n    return sum(data) % 256\n"})
    assert not idx.search("checksum_of_bytes", mode="lexical")
    idx.update()  # re-index; the next query sees the commit
    assert idx.report.changed_files == 1
    assert idx.search("checksum_of_bytes", mode="lexical")[0].path == "util/hashing.py"

    for where in (repo, repo / ".codeseer"):
        assert codeseer.Index.open(where).search("checksum_of_bytes", mode="lexical")[0].path == "util/hashing.py"
    monkeypatch.chdir(repo / "util")
    assert codeseer.Index.open().directory == (repo / ".codeseer").resolve()


def test_errors_are_one_line(tmp_path, tiny_model_dir):
    with pytest.raises(CodeseerError, match="no codeseer index"):
        codeseer.Index.open(tmp_path)
    idx = codeseer.Index.build(write_files(tmp_path / "repo", REPO), model=str(tiny_model_dir))
    with pytest.raises(CodeseerError, match="not both"):
        idx.similar("util/text.py:6", code="x")
    with pytest.raises(CodeseerError, match="unknown file kind"):
        idx.search("x", kinds=["tset"])
    with pytest.raises(CodeseerError, match="empty"):
        idx.locate("   ")


def test_importing_codeseer_stays_light():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import codeseer, sys; print('lancedb' in sys.modules, "
                           "'codeseer.api' in sys.modules)"], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"]
