"""Resource limits: a 50 MB file, 100k tiny files, a 20k-line function; time and peak memory.

Indexing runs in child processes that report their own peak RSS (``VmHWM`` of their address space).
``getrusage`` would not do: a child's ``ru_maxrss`` (``os.wait4``, ``RUSAGE_CHILDREN``) starts at the
RSS of the parent it was forked from (Python spawns with vfork), i.e. the whole pytest process. The
children use a deterministic fake embedder of the right shape (``embedder_factory``), so what is
measured is the walk, chunking, LanceDB writes and BM25 index, not a model. Numbers are printed
(``pytest -s``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import codeseer.index.walker as walker
from codeseer.index.chunking import chunk_source
from codeseer.index.store import IndexStore
from codeseer.index.walker import MAX_FILE_BYTES, WalkStats, read_source, walk
from codeseer.search.searcher import Searcher

from test_torture_crash import cli_env, committed_state, expected_state
from test_torture_input import FakeEmbedder, check_chunks

pytestmark = pytest.mark.slow  # load: 10k-100k files, 50 MB files

MIB = 1 << 20

CHILD = textwrap.dedent('''
    import hashlib, json, os, sys, time
    from pathlib import Path
    import numpy as np
    from codeseer.index.indexer import index_repository

    class Fake:
        dim = 32
        def _v(self, texts):
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            for i, t in enumerate(texts):
                seed = int.from_bytes(hashlib.sha1(t.encode("utf-8", "surrogatepass")).digest()[:8], "little")
                v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
                out[i] = v / np.linalg.norm(v)
            return out
        def fingerprint(self):
            return None  # its vectors stay out of the machine-wide vector cache
        def close(self):
            return {}
        def encode_documents(self, texts, *, slab=256, on_slab=None):
            parts = []
            for s in range(0, len(texts), slab):
                v = self._v(texts[s:s + slab]); parts.append(v)
                if on_slab: on_slab(s, v)
            return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        def encode_queries(self, texts):
            return self._v(texts)

    root, model, touch = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    timings = {}
    t = time.perf_counter()
    first = index_repository(root, model=model, embedder_factory=lambda m: Fake())
    timings["first index"] = time.perf_counter() - t
    t = time.perf_counter()
    index_repository(root, embedder_factory=lambda m: Fake())
    timings["unchanged re-index"] = time.perf_counter() - t
    if touch:
        files = sorted(p for p in root.rglob("*.py") if ".codeseer" not in p.parts)[:touch]
        for p in files:
            p.write_text(p.read_text() + "\\ndef touched_again():\\n    return 0\\n")
        t = time.perf_counter()
        index_repository(root, embedder_factory=lambda m: Fake())
        timings[f"re-index, {len(files)} edited"] = time.perf_counter() - t
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
    peak = int(hwm[0].split()[1]) / 1024 if hwm else None
    print(json.dumps({"files": first.files, "chunks": first.chunks, "skipped": first.skipped, "timings": timings,
                      "peak_rss_mib": peak}))
''')


def index_in_child(root: Path, model_dir: Path, touch: int = 0, timeout: float = 900) -> dict:
    """Index ``root`` in a child process; its result plus its own peak RSS (MiB) and wall time."""
    out = root.parent / f"{root.name}.child.out"
    err = root.parent / f"{root.name}.child.err"
    started = time.perf_counter()
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(model_dir), str(touch)], env=cli_env(),
                                stdout=fo, stderr=fe)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"indexing {root} took over {timeout}s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.read_text()[-3000:]
    result = json.loads(out.read_text().strip().splitlines()[-1])
    if result["peak_rss_mib"] is None:  # no /proc: fall back to rusage (an upper bound, see above)
        result["peak_rss_mib"] = usage.ru_maxrss / 1024
    result["wall_s"] = time.perf_counter() - started
    return result


def report(title: str, result: dict) -> None:
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.get("timings", {}).items())
    print(f"\n[limits] {title}: {result.get('files')} files, {result.get('chunks')} chunks; {timings}; "
          f"child wall {result['wall_s']:.1f}s, peak RSS {result['peak_rss_mib']:.0f} MiB")


def make_tree(root: Path, n: int, per_dir: int = 1000) -> None:
    for i in range(n):
        directory = root / f"pkg{i // per_dir:03d}"
        if i % per_dir == 0:
            directory.mkdir(parents=True, exist_ok=True)
        (directory / f"m{i:06d}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")


# --------------------------------------------------------------------------- tests


def test_50mb_file_is_skipped_without_being_read(tmp_path, tiny_model_dir, monkeypatch):
    small = {f"src/m{i}.py": f"def f{i}(x):\n    return x * {i}\n" for i in range(20)}
    baseline_root = tmp_path / "baseline"
    root = tmp_path / "repo"
    for base in (baseline_root, root):
        for rel, text in small.items():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_text(text)
    line = b"x = 'a long line of generated data that goes on and on and on'\n"
    with open(root / "src" / "huge.py", "wb") as fh:  # 50 MB of real bytes (not a sparse file)
        block = line * (MIB // len(line))
        for _ in range(50):
            fh.write(block)
    shutil.copy(root / "src" / "huge.py", root / "huge_data.json")
    assert (root / "src" / "huge.py").stat().st_size >= 49 * MIB

    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(walker.os, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    started = time.perf_counter()
    stats = WalkStats()
    texts = {s.rel: read_source(s, stats) for s in walk(root, stats)}
    walk_seconds = time.perf_counter() - started
    monkeypatch.undo()
    assert set(texts) == set(small) and stats.skipped["too large"] == 2
    assert not [p for p in opened if "huge" in p], "a file over the size limit was opened"
    assert walk_seconds < 10

    base = index_in_child(baseline_root, tiny_model_dir)
    big = index_in_child(root, tiny_model_dir)
    assert big["files"] == 20 and big["skipped"] == {"too large": 2}
    assert big["peak_rss_mib"] - base["peak_rss_mib"] < 40, (big["peak_rss_mib"], base["peak_rss_mib"])
    assert big["peak_rss_mib"] < 1024
    report("baseline, 20 small files", base)
    report("same + two 50 MB files", big)
    print(f"[limits] walk+read with two 50 MB files: {walk_seconds:.3f}s; files opened by the walker: {len(opened)}")


def test_100k_tiny_files_walk_chunk_and_index(tmp_path, tiny_model_dir):
    import resource

    root = tmp_path / "repo"
    started = time.perf_counter()
    make_tree(root, 100_000)
    made = time.perf_counter() - started
    try:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        stats = WalkStats()
        sources = list(walk(root, stats))
        walked = time.perf_counter() - started
        started = time.perf_counter()
        chunks = 0
        for source in sources:
            text = read_source(source, stats)
            chunks += len(chunk_source(source.rel, text, source.language))
        chunked = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert len(sources) == 100_000 and chunks == 100_000 and not stats.skipped
        assert walked < 120 and chunked < 600  # generous for a loaded 2-core CI machine
        print(f"\n[limits] 100k tiny files: created in {made:.1f}s, walked in {walked:.1f}s "
              f"({len(sources) / walked:,.0f} files/s), read+chunked in {chunked:.1f}s "
              f"({len(sources) / chunked:,.0f} files/s); test process peak RSS {rss_before:.0f} -> {rss_after:.0f} MiB")
        if os.environ.get("TORTURE_FULL"):  # about 30 s more; the 10k test below runs the same path in CI
            result = index_in_child(root, tiny_model_dir, touch=1000)
            assert result["files"] == 100_000 and result["chunks"] == 100_000
            assert result["timings"]["unchanged re-index"] < 60
            assert result["peak_rss_mib"] < 2048
            report("100k tiny files, full index (fake embedder)", result)
    finally:
        shutil.rmtree(root)


def test_10k_files_full_index_and_reindex(tmp_path, tiny_model_dir):
    root = tmp_path / "repo"
    make_tree(root, 10_000)
    result = index_in_child(root, tiny_model_dir, touch=100)
    assert result["files"] == 10_000 and result["chunks"] == 10_000
    assert result["timings"]["unchanged re-index"] < 30
    assert result["peak_rss_mib"] < 1024
    report("10k tiny files (fake embedder)", result)
    rows, files = committed_state(root / ".codeseer")
    assert (rows, files) == expected_state(root)
    hits = Searcher(IndexStore(root / ".codeseer"), embedder=FakeEmbedder()).search("f1234", k=5, mode="lexical")
    assert hits and hits[0].path == "pkg001/m001234.py"


def test_20k_line_function_is_chunked_in_bounded_parts_and_indexed(tmp_path, tiny_model_dir):
    body = "".join(f"    v{i} = f(v{i - 1}, {i})\n" for i in range(1, 20_001))
    python = "def enormous(v0):\n" + body + "    return v20000\n"
    js = "function enormous(v) {\n" + "".join(f"  if (v > {i}) {{\n    v = v - {i};\n  }}\n" for i in range(6_700)) + "  return v;\n}\n"
    timings = {}
    for path, text in (("big.py", python), ("big.js", js)):
        assert len(text.encode()) < MAX_FILE_BYTES
        started = time.perf_counter()
        chunks = chunk_source(path, text)
        timings[path] = time.perf_counter() - started
        check_chunks(path, text, chunks, 120, 6000)  # every part within 120 lines / 6000 chars, all lines covered
        assert len(chunks) >= text.count("\n") // 120 and all(c.symbol == "enormous" for c in chunks)
        assert timings[path] < 30
    root = tmp_path / "repo"
    root.mkdir()
    (root / "big.py").write_text(python)
    (root / "big.js").write_text(js)
    result = index_in_child(root, tiny_model_dir)
    assert result["files"] == 2 and result["chunks"] == len(chunk_source("big.py", python)) + len(chunk_source("big.js", js))
    assert result["peak_rss_mib"] < 1024
    report("a 20k-line Python function and a 20k-line JS function", result)
    print("[limits] chunking: " + ", ".join(f"{p} {t:.2f}s" for p, t in timings.items()))
