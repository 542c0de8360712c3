"""Incremental re-indexing, crash safety and the writer lock, on a tiny random-weight model."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeseer.errors import CodeseerError
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore
from codeseer.search.searcher import Searcher

from conftest import run_cli, write_files

SAMPLE = {
    "src/retry.py": '''
        import time


        def retry(operation, attempts=3, delay=0.5):
            """Call operation again when it raises, waiting between attempts."""
            for attempt in range(attempts):
                try:
                    return operation()
                except Exception:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(delay)
        ''',
    "src/config.py": '''
        import json


        class ConfigLoader:
            """Reads settings files."""

            def parse_config_file(self, path):
                with open(path) as fh:
                    return json.load(fh)
        ''',
    "web/server.js": '''
        function handleNotFound(req, res) {
          res.statusCode = 404;
          res.end("not found");
        }
        ''',
}


def snapshot_rows(index_dir: Path) -> list[tuple]:
    store = IndexStore(index_dir)
    state = store.read_state()
    chunks, files = store.snapshot(state)
    table = chunks.to_arrow()
    rows = sorted(zip(table["path"].to_pylist(), table["start_line"].to_pylist(), table["end_line"].to_pylist(),
                      table["symbol"].to_pylist(), table["content_hash"].to_pylist()))
    file_rows = sorted(files.to_arrow()["path"].to_pylist())
    return rows, file_rows


def test_incremental_edit_delete_rename(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", SAMPLE)
    model = str(tiny_model_dir)
    first = index_repository(repo, model=model)
    assert first.files == 3 and first.changed_files == 3
    assert first.embedded_chunks == first.chunks > 0

    again = index_repository(repo)
    assert (again.changed_files, again.deleted_files, again.embedded_chunks) == (0, 0, 0)

    # Touch without changing content: no re-chunking, no embedding.
    os.utime(repo / "src/retry.py", ns=(time.time_ns(), time.time_ns() + 10**9))
    touched = index_repository(repo)
    assert (touched.changed_files, touched.embedded_chunks) == (0, 0)

    # Edit one function: only that chunk is embedded again.
    path = repo / "src/config.py"
    path.write_text(path.read_text().replace("json.load(fh)", "json.loads(fh.read())"))
    edited = index_repository(repo)
    assert edited.changed_files == 1
    assert edited.embedded_chunks == 1
    hits = Searcher(IndexStore(repo / ".codeseer")).search("json.loads", mode="lexical", k=3)
    assert hits[0].path == "src/config.py" and "json.loads" in hits[0].text

    # Rename a file: nothing is embedded, the old path disappears.
    (repo / "src/retry.py").rename(repo / "src/retrying.py")
    renamed = index_repository(repo)
    assert renamed.embedded_chunks == 0 and renamed.deleted_files == 1
    rows, files = snapshot_rows(repo / ".codeseer")
    assert "src/retry.py" not in files and "src/retrying.py" in files
    assert all(r[0] != "src/retry.py" for r in rows)

    # Delete a file: its chunks go.
    (repo / "web/server.js").unlink()
    deleted = index_repository(repo)
    assert deleted.deleted_files == 1
    rows, files = snapshot_rows(repo / ".codeseer")
    assert files == ["src/config.py", "src/retrying.py"]
    assert {r[0] for r in rows} == {"src/config.py", "src/retrying.py"}

    # The incremental result equals a from-scratch index of the same tree.
    fresh = index_repository(repo, index_dir=tmp_path / "fresh", model=model)
    assert snapshot_rows(tmp_path / "fresh") == snapshot_rows(repo / ".codeseer")
    assert fresh.chunks == deleted.chunks


def test_unchanged_repo_reindexes_fast_without_loading_a_model(tmp_path, tiny_model_dir):
    files = {f"pkg/m{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(300)}
    repo = write_files(tmp_path / "repo", files)
    index_repository(repo, model=str(tiny_model_dir))

    def explode(_model):
        raise AssertionError("an unchanged repository must not load the model")

    start = time.perf_counter()
    report = index_repository(repo, embedder_factory=explode)
    elapsed = time.perf_counter() - start
    assert report.changed_files == 0 and report.files == 300
    assert elapsed < 3.0  # generous for CI; the benchmark reports the real figure


def test_second_writer_is_refused_with_a_clear_message(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", SAMPLE)
    store = IndexStore(repo / ".codeseer")
    with store.write_lock():
        with pytest.raises(CodeseerError, match="being written by pid"):
            index_repository(repo, model=str(tiny_model_dir))
        result = run_cli("index", str(repo), "--model", str(tiny_model_dir))
    assert result.returncode == 1
    assert "being written by pid" in result.stderr and "Traceback" not in result.stderr


def test_model_mismatch_is_refused(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", SAMPLE)
    index_repository(repo, model=str(tiny_model_dir))
    with pytest.raises(CodeseerError, match="built with model"):
        index_repository(repo, model="sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(CodeseerError, match="built with model"):
        Searcher(IndexStore(repo / ".codeseer"), model="sentence-transformers/all-MiniLM-L6-v2")


def _crash_repo(root: Path, version: int) -> Path:
    files = {}
    for i in range(120):
        body = "\n".join(f"    total += value * {j} + {version}" for j in range(4))
        files[f"pkg/mod{i:03d}.py"] = f"def compute_{i}(value):\n    total = 0\n{body}\n    return total\n"
    return write_files(root, files)


@pytest.mark.slow
def test_killed_indexer_leaves_previous_index_searchable_and_rerun_completes(tmp_path, tiny_model_dir):
    repo = _crash_repo(tmp_path / "repo", version=1)
    model = str(tiny_model_dir)
    index_repository(repo, model=model)
    before = snapshot_rows(repo / ".codeseer")
    _crash_repo(repo, version=2)  # every file changes

    rng = random.Random(1234)
    env = dict(os.environ)
    kills = 0
    for _ in range(6):  # a whole run takes ~3 s here, most of it start-up: kill within the first 2.5 s
        proc = subprocess.Popen([sys.executable, "-m", "codeseer.cli", "index", str(repo)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # Whatever happened, the index opens and is consistent: the old state or the new one.
        state_rows = snapshot_rows(repo / ".codeseer")
        hits = Searcher(IndexStore(repo / ".codeseer")).search("compute_7", mode="lexical", k=1)
        assert hits and hits[0].path == "pkg/mod007.py"
        if state_rows != before:
            break
    assert kills >= 1
    final = index_repository(repo)
    index_repository(repo, index_dir=tmp_path / "fresh", model=model)
    assert snapshot_rows(repo / ".codeseer") == snapshot_rows(tmp_path / "fresh")
    assert final.chunks == 120


class _FailingEmbedder:
    """Wraps a real embedder and dies after ``slabs`` slabs, like a process killed mid-embedding."""

    def __init__(self, inner, slabs: int) -> None:
        self.inner, self.slabs = inner, slabs

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_documents(self, texts, *, slab=256, on_slab=None):
        done = 0

        def count(start, vectors):
            nonlocal done
            on_slab(start, vectors)
            done += 1
            if done >= self.slabs:
                raise KeyboardInterrupt("simulated kill")

        return self.inner.encode_documents(texts, slab=slab, on_slab=count)


def test_crash_mid_embedding_keeps_old_index_and_loses_no_model_work(tmp_path, tiny_model_dir):
    from codeseer.models.embedder import Embedder

    repo = _crash_repo(tmp_path / "repo", version=1)
    model = str(tiny_model_dir)
    index_repository(repo, model=model)
    before = snapshot_rows(repo / ".codeseer")
    for i in range(300):  # 300 more files -> two slabs of embedding work
        (repo / f"pkg/extra{i:03d}.py").write_text(f"def extra_{i}(x):\n    return x * {i}\n")
    inner = Embedder(model)
    with pytest.raises(KeyboardInterrupt):
        index_repository(repo, embedder_factory=lambda m: _FailingEmbedder(inner, slabs=1))
    assert snapshot_rows(repo / ".codeseer") == before  # readers still see the committed index
    rerun = index_repository(repo, embedder_factory=lambda m: inner)
    assert rerun.embedded_chunks == 300 - 256  # the first slab came from the journal
    assert rerun.files == 420


def test_crash_just_before_commit_is_rolled_back(tmp_path, tiny_model_dir, monkeypatch):
    repo = _crash_repo(tmp_path / "repo", version=1)
    model = str(tiny_model_dir)
    index_repository(repo, model=model)
    before = snapshot_rows(repo / ".codeseer")
    _crash_repo(repo, version=2)
    (repo / "pkg/mod000.py").unlink()

    def die(self, state):
        raise KeyboardInterrupt("simulated kill before the commit point")

    monkeypatch.setattr(IndexStore, "write_state", die)
    with pytest.raises(KeyboardInterrupt):
        index_repository(repo)
    monkeypatch.undo()
    assert snapshot_rows(repo / ".codeseer") == before
    hits = Searcher(IndexStore(repo / ".codeseer")).search("compute_0", mode="lexical", k=1)
    assert hits[0].path == "pkg/mod000.py"  # the deleted file is still served until the commit
    index_repository(repo)
    index_repository(repo, index_dir=tmp_path / "fresh", model=model)
    assert snapshot_rows(repo / ".codeseer") == snapshot_rows(tmp_path / "fresh")
