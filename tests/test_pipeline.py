"""Indexing pipeline parallelism: chunking in worker processes, tokenising the next slab during inference.

Both must change nothing but speed: the same chunks in the same order, the same vectors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from codeseer.index import chunk_pool
from codeseer.index.chunk_pool import chunk_files, chunk_workers
from codeseer.index.chunking import chunk_source
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore
from codeseer.models.embedder import Embedder
from conftest import write_files


def _source(i: int) -> str:
    return textwrap.dedent(f"""
        class Widget{i}:
            def render_{i}(self, size):
                total = 0
                for step in range(size):
                    total += step * {i}
                return total

        def helper_{i}(values):
            return sorted(v for v in values if v % {i % 7 + 2})
        """)


def _jobs(n: int) -> list[tuple[str, str, str | None]]:
    jobs = [(f"pkg/mod_{i}.py", _source(i), "python") for i in range(n)]
    jobs[3] = ("notes.md", "# Title\n\nSome words.\n\n## Part\n\nMore words.\n", None)
    jobs[5] = ("lib/x.go", "package x\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n", "go")
    return jobs


def test_workers_give_the_same_chunks_in_order(monkeypatch):
    monkeypatch.setattr(chunk_pool, "WINDOW", 7)  # several windows in flight, a partial last one
    jobs = _jobs(40)
    skipped = {4, 17, 39}  # read() says "nothing to chunk" for these
    read = lambda i: None if i in skipped else jobs[i]  # noqa: E731
    seen = []
    out = list(chunk_files(range(40), read, workers=2, on_file=lambda: seen.append(1)))
    assert [item for item, _, _ in out] == list(range(40))
    assert len(seen) == 40
    for item, job, chunks in out:
        if item in skipped:
            assert job is None and chunks == []
        else:
            assert chunks == chunk_source(*jobs[item]) and chunks
    assert out == list(chunk_files(range(40), read, workers=0))


def test_worker_count_policy(monkeypatch):
    monkeypatch.delenv("CODESEER_CHUNK_WORKERS", raising=False)
    assert chunk_workers(10) == 0  # starting processes costs more than a few files
    many = chunk_workers(10_000)
    assert many == (0 if len(os.sched_getaffinity(0)) < 2 else min(len(os.sched_getaffinity(0)), 8))
    monkeypatch.setenv("CODESEER_CHUNK_WORKERS", "3")
    assert chunk_workers(1) == 3
    monkeypatch.setenv("CODESEER_CHUNK_WORKERS", "nonsense")
    assert chunk_workers(10_000) == 0


def test_index_with_workers_equals_index_without(tmp_path, tiny_model_dir, monkeypatch):
    files = {path: text for path, text, _ in _jobs(30)}
    files["notes.md"] = _jobs(30)[3][1]
    repo = write_files(tmp_path / "repo", files)
    monkeypatch.setenv("CODESEER_CHUNK_WORKERS", "2")
    with_pool = index_repository(repo, index_dir=tmp_path / "a", model=str(tiny_model_dir))
    monkeypatch.setenv("CODESEER_CHUNK_WORKERS", "0")
    without = index_repository(repo, index_dir=tmp_path / "b", model=str(tiny_model_dir))
    assert with_pool.chunk_workers == 2 and without.chunk_workers == 0
    assert with_pool.chunks == without.chunks > 60

    def rows(index_dir):
        store = IndexStore(index_dir)
        table = store.snapshot(store.read_state())[0].to_arrow().sort_by("chunk_id")
        return table.drop_columns(["vector"]).to_pylist(), np.stack(table["vector"].to_numpy(zero_copy_only=False))

    (rows_a, vec_a), (rows_b, vec_b) = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert rows_a == rows_b
    assert np.array_equal(vec_a, vec_b)


def test_workers_exit_when_the_indexer_is_killed(tmp_path):
    """A SIGKILLed parent must not leave chunking workers behind."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from codeseer.index.chunk_pool import chunk_files
        def slow_read(i):
            if i == 300:
                print("workers", *[p for p in os.listdir("/proc") if p.isdigit()
                      and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid())],
                      flush=True)
                time.sleep(60)
            return (f"m{i}.py", "def f():\\n    return 1\\n", "python")
        for _ in chunk_files(range(1000), slow_read, workers=2):
            pass
        """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    line = parent.stdout.readline().split()
    assert line and line[0] == "workers", line
    children = [int(p) for p in line[1:]]
    assert len(children) >= 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") and _alive(p) for p in children):
        time.sleep(0.2)
    assert not [p for p in children if os.path.exists(f"/proc/{p}") and _alive(p)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_tokenising_ahead_changes_no_vector(tiny_model_dir, backend):
    embedder = Embedder(str(tiny_model_dir), backend=backend)
    texts = [f"def f{i}(x):\n    return x + {i}" + " # pad" * (i % 13) for i in range(50)]
    whole = embedder.encode(texts, role="document")
    slabs = []
    pipelined = embedder.encode_documents(texts, slab=8, on_slab=lambda start, v: slabs.append((start, len(v))))
    assert slabs == [(s, min(8, 50 - s)) for s in range(0, 50, 8)]
    assert np.allclose(pipelined, whole, atol=1e-6)
    assert embedder.encode_documents([]).shape == (0, embedder.dim)
