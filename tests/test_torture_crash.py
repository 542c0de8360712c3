"""Crash torture: real ``codeseer index`` runs SIGKILLed at random moments, and readers during commits.

The repository is real code (about 150 files of rich, typer and click as installed), changed between
rounds (edits, deletions, additions, renames, touches) so every run has real work. A run is killed
after a random delay from a randomly chosen phase that it reports on stderr (``CODESEER_TRACE=1``).
After every round the committed index must be consistent and must be exactly the committed state
before the round or exactly what a fresh index of the current tree holds (computed without the
model: walk, read and chunk as the indexer does). At the end an uninterrupted run must equal a fresh
index of the same tree, vectors included: nothing a killed run did may leak into the result.

Helpers here (``expected_state``, ``committed_state``, ``check_searches``...) are shared by the
other ``test_torture_*`` modules.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from codeseer.index.chunking import chunk_source
from codeseer.index.indexer import content_hash, embed_text, index_repository
from codeseer.index.store import IndexStore, consistency_problem
from codeseer.index.walker import WalkStats, read_source, walk
from codeseer.search.searcher import Searcher

pytestmark = pytest.mark.slow  # crash torture: processes killed at every step

SEED = 20261122
KILLS_WANTED = 20
QUERIES = ("render a table with columns", "parse command line options", "console width", "style")
PHASES = ("lock", "walk", "chunk", "model", "embed", "write", "fts", "commit", "cleanup")
PACKAGES = ("rich", "typer", "click", "pygments", "markdown_it")  # installed with codeseer's dependencies
SOURCE_FILES = 160
REPO_FILES = 140  # the rest of the ~150 source files are kept back and added during the rounds


# --------------------------------------------------------------------------- shared helpers


def package_sources(limit: int = SOURCE_FILES) -> list[tuple[str, bytes]]:
    """(relative path, content) of installed packages' .py files, in a stable order: real code."""
    import importlib.util

    found = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        base = Path(spec.origin).parent
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            found.append((f"{name}/{path.relative_to(base).as_posix()}", path.read_bytes()))
            if len(found) >= limit:
                return found
    return found


_CHUNK_CACHE: dict[tuple[str, str, str], list[tuple]] = {}


def expected_state(root: Path) -> tuple[list[tuple], list[tuple]]:
    """What a fresh index of ``root`` holds: chunk rows and file rows (no model needed)."""
    stats = WalkStats()
    chunks: list[tuple] = []
    files: list[tuple] = []
    for source in walk(root, stats):
        text = read_source(source, stats)
        if text is None:
            continue
        digest = content_hash(text)
        key = (source.rel, source.language, digest)
        if key not in _CHUNK_CACHE:
            _CHUNK_CACHE[key] = [
                (c.path, c.start_line, c.end_line, c.symbol, content_hash(embed_text(c.symbol, c.text)))
                for c in chunk_source(source.rel, text, source.language)
            ]
        rows = _CHUNK_CACHE[key]
        chunks += rows
        files.append((source.rel, source.language, source.size, source.mtime_ns, digest, len(rows)))
    return sorted(chunks), sorted(files)


def committed_state(index_dir: Path, *, vectors: bool = False):
    """The committed snapshot's chunk and file rows, after checking it is internally consistent."""
    store = IndexStore(index_dir)
    state = store.read_state()
    assert state is not None, "no committed state"
    chunks, files = store.snapshot(state)
    chunk_table = chunks.to_arrow()
    file_table = files.to_arrow()
    assert consistency_problem(chunk_table, file_table) is None, consistency_problem(chunk_table, file_table)
    assert (len(chunk_table), len(file_table)) == (state.chunks, state.files)
    rows = sorted(zip(*(chunk_table[c].to_pylist() for c in ("path", "start_line", "end_line", "symbol", "content_hash"))))
    file_rows = sorted(zip(*(file_table[c].to_pylist() for c in ("path", "language", "size", "mtime_ns", "file_hash", "chunks"))))
    if not vectors:
        return rows, file_rows
    by_hash = dict(zip(chunk_table["content_hash"].to_pylist(), chunk_table["vector"].to_numpy(zero_copy_only=False)))
    return rows, file_rows, by_hash


def check_searches(searcher: Searcher, queries=QUERIES, modes=("hybrid", "lexical", "dense")) -> int:
    """Every hit comes from the searcher's own snapshot: its path is a committed file, no duplicates."""
    paths = set(searcher.files.to_arrow()["path"].to_pylist())
    total = 0
    for query in queries:
        for mode in modes:
            hits = searcher.search(query, k=10, mode=mode)
            assert len(hits) <= 10
            keys = [(h.path, h.start_line, h.end_line, h.text) for h in hits]
            assert len(keys) == len(set(keys)), f"duplicate hits for {query!r} ({mode})"
            missing = {h.path for h in hits} - paths
            assert not missing, f"hits from files not in the committed files table: {missing}"
            total += len(hits)
    return total


def assert_same_vectors(a: dict, b: dict, atol: float = 1e-4) -> None:
    assert set(a) == set(b)
    keys = sorted(a)
    if keys:
        left = np.stack([np.asarray(a[k], dtype=np.float32) for k in keys])
        right = np.stack([np.asarray(b[k], dtype=np.float32) for k in keys])
        assert np.allclose(left, right, atol=atol), float(np.abs(left - right).max())


def cli_env(**extra: str) -> dict:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.update(extra)
    return env


class TracedRun:
    """``codeseer index`` in a child process whose ``phase:`` lines we watch as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codeseer.cli", "index", *args], env=cli_env(CODESEER_TRACE="1"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._waiting_for: str | None = None
        self._seen = threading.Event()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            with self._lock:
                self.lines.append(line)
                if self._waiting_for and line.startswith(self._waiting_for):
                    self._seen.set()
        self._seen.set()  # EOF: the run is over, whatever we waited for

    def wait_for(self, phase: str, timeout: float = 120) -> bool:
        with self._lock:
            self._waiting_for = f"phase:{phase}"
            if any(line.startswith(self._waiting_for) for line in self.lines):
                return True
        self._seen.wait(timeout)
        with self._lock:
            return any(line.startswith(f"phase:{phase}") for line in self.lines)

    def kill(self) -> bool:
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        return True

    def finish(self, timeout: float = 300) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        return rc

    @property
    def phases(self) -> list[str]:
        return [line[len("phase:"):] for line in self.lines if line.startswith("phase:")]


class Mutator:
    """Random but seeded edits of a source tree: every round leaves real work for the indexer."""

    def __init__(self, root: Path, reserve: list[tuple[str, bytes]], rng: random.Random) -> None:
        self.root, self.reserve, self.rng = root, list(reserve), rng
        self.counter = 0

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.py") if ".codeseer" not in p.parts)

    def round(self) -> list[str]:
        done = []
        for _ in range(self.rng.randint(2, 5)):
            done.append(self.rng.choice((self.append, self.edit, self.cut, self.delete, self.add, self.rename, self.touch,
                                         self.append, self.edit))())
        return done

    def _pick(self) -> Path:
        return self.rng.choice(self.files())

    def append(self) -> str:
        path = self._pick()
        self.counter += 1
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"\n\ndef torture_added_{self.counter}(value, factor={self.counter}):\n"
                     f"    \"\"\"Added by torture round {self.counter}.\"\"\"\n    return value * factor\n")
        return f"append {path.name}"

    def edit(self) -> str:
        path = self._pick()
        lines = path.read_text(encoding="utf-8").split("\n")
        candidates = [i for i, line in enumerate(lines) if line.strip().startswith(("return", "if ", "def "))] or [0]
        i = self.rng.choice(candidates)
        self.counter += 1
        lines[i] = lines[i] + f"  # edited {self.counter}"
        path.write_text("\n".join(lines), encoding="utf-8")
        return f"edit {path.name}:{i + 1}"

    def cut(self) -> str:
        path = self._pick()
        lines = path.read_text(encoding="utf-8").split("\n")
        if len(lines) > 10:
            start = self.rng.randrange(0, len(lines) - 5)
            del lines[start : start + self.rng.randint(1, 5)]
            path.write_text("\n".join(lines), encoding="utf-8")
        return f"cut {path.name}"

    def delete(self) -> str:
        path = self._pick()
        path.unlink()
        return f"delete {path.name}"

    def add(self) -> str:
        self.counter += 1
        if self.reserve:
            rel, data = self.reserve.pop(0)
        else:
            rel, data = f"extra/new_{self.counter}.py", f"def new_{self.counter}(x):\n    return x - {self.counter}\n".encode()
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"add {rel}"

    def rename(self) -> str:
        path = self._pick()
        self.counter += 1
        target = path.with_name(f"{path.stem}_moved{self.counter}.py")
        path.rename(target)
        return f"rename {path.name} -> {target.name}"

    def touch(self) -> str:
        path = self._pick()
        now = time.time_ns()
        os.utime(path, ns=(now, now + self.rng.randint(1, 10**9)))
        return f"touch {path.name}"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_embedder(tiny_model_dir):
    from codeseer.models.embedder import Embedder

    return Embedder(str(tiny_model_dir), backend="auto")  # what `codeseer index` runs by default


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, tiny_model_dir, tiny_embedder):
    """A realistic repository indexed once; tests work on a copy at the same path (the root is recorded)."""
    base = tmp_path_factory.mktemp("torture")
    sources = package_sources()
    assert len(sources) >= REPO_FILES + 5, "rich, typer and click should give ~150 source files"
    repo = base / "repo"
    for rel, data in sources[:REPO_FILES]:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    started = time.perf_counter()
    report = index_repository(repo, model=str(tiny_model_dir), embedder_factory=lambda m: tiny_embedder)
    print(f"\n[torture] base index: {report.files} files, {report.chunks} chunks in {time.perf_counter() - started:.1f}s")
    keep = base / "pristine"
    shutil.copytree(repo, keep, symlinks=True)
    return repo, keep, sources[REPO_FILES:]


def fresh_copy(pristine) -> Path:
    repo, keep, _ = pristine
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(keep, repo, symlinks=True)
    return repo


# --------------------------------------------------------------------------- tests


def test_sigkill_torture_never_loses_or_corrupts_the_index(pristine, tiny_model_dir, tiny_embedder, tmp_path):
    repo = fresh_copy(pristine)
    index_dir = repo / ".codeseer"
    rng = random.Random(SEED)
    mutate = Mutator(repo, pristine[2], rng)
    committed = committed_state(index_dir)
    assert committed == expected_state(repo)
    kills: Counter = Counter()
    completed = rounds = 0
    log = []
    started = time.perf_counter()
    while sum(kills.values()) < KILLS_WANTED:
        rounds += 1
        assert rounds <= 3 * KILLS_WANTED, f"too few kills landed: {dict(kills)} in {rounds} rounds"
        if rng.random() < 0.85 or not log:  # now and then re-run on the same tree: resume the killed work
            changes = mutate.round()
        else:
            changes = ["(no change: resume)"]
        target = expected_state(repo)
        phase = rng.choice(PHASES)
        delay = rng.choice((0.0, rng.uniform(0, 0.05), rng.uniform(0, 0.3), rng.uniform(0, 1.0)))
        run = TracedRun(str(repo))
        reached = run.wait_for(phase)
        if reached and delay:
            time.sleep(delay)
        killed = reached and run.kill()
        rc = run.finish()
        last = run.phases[-1] if run.phases else "(start-up)"
        if killed:
            kills[phase] += 1
        else:
            assert rc == 0, f"uninterrupted run failed (rc {rc}):\n" + "\n".join(run.lines[-30:])
            completed += 1
        log.append(f"round {rounds}: {', '.join(changes)} | kill after {phase}+{delay:.3f}s -> "
                   f"{'killed in ' + last if killed else 'completed'}")

        now = committed_state(index_dir)  # consistent, whatever happened
        assert now in (committed, target), "\n".join(log[-5:]) + "\nthe index is neither the old state nor the new one"
        if not killed:
            assert now == target
        committed = now
        check_searches(Searcher(IndexStore(index_dir), embedder=tiny_embedder), queries=QUERIES[:2])
    elapsed = time.perf_counter() - started

    # Finally an uninterrupted run: exactly a fresh index of the same tree, vectors included.
    final = index_repository(repo, embedder_factory=lambda m: tiny_embedder)
    fresh = tmp_path / "fresh"
    index_repository(repo, index_dir=fresh, model=str(tiny_model_dir), embedder_factory=lambda m: tiny_embedder)
    rows, file_rows, vectors = committed_state(index_dir, vectors=True)
    fresh_rows, fresh_files, fresh_vectors = committed_state(fresh, vectors=True)
    assert (rows, file_rows) == (fresh_rows, fresh_files) == expected_state(repo)
    assert_same_vectors(vectors, fresh_vectors)
    assert final.chunks == len(fresh_rows)
    leftovers = sorted(n for n in IndexStore(index_dir).table_names() if n.startswith("journal_"))
    assert not leftovers, f"journals left after a completed run: {leftovers}"
    print(f"\n[torture] {sum(kills.values())} SIGKILLs by phase {dict(sorted(kills.items()))}, "
          f"{completed} runs completed, {rounds} rounds in {elapsed:.0f}s; final: {final.files} files, {final.chunks} chunks")
    print("\n".join("[torture] " + line for line in log))


def test_readers_never_see_a_half_written_state(pristine, tiny_embedder):
    """Searches in a loop (new and long-lived snapshots) while index runs commit several times."""
    repo = fresh_copy(pristine)
    index_dir = repo / ".codeseer"
    rng = random.Random(SEED + 1)
    mutate = Mutator(repo, pristine[2], rng)
    stop = threading.Event()
    errors: list[str] = []
    seen_versions: set[tuple[int, int]] = set()
    stats = Counter()
    long_lived = Searcher(IndexStore(index_dir), embedder=tiny_embedder)

    def reader() -> None:
        while not stop.is_set():
            try:
                searcher = Searcher(IndexStore(index_dir), embedder=tiny_embedder)
                state = searcher.state
                seen_versions.add((state.chunks_version, state.files_version))
                chunk_table = searcher.chunks.to_arrow()
                file_table = searcher.files.to_arrow()
                problem = consistency_problem(chunk_table, file_table)
                if problem or (len(chunk_table), len(file_table)) != (state.chunks, state.files):
                    errors.append(f"inconsistent snapshot {state.chunks_version}/{state.files_version}: {problem}")
                stats["hits"] += check_searches(searcher, modes=("hybrid", "lexical"))
                stats["hits"] += check_searches(long_lived, queries=QUERIES[:1], modes=("lexical",))
                stats["snapshots"] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is what we are looking for
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)  # leave the writer some CPU

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    commits = 0
    try:
        for _ in range(3):
            before = IndexStore(index_dir).read_state()
            mutate.round()
            mutate.append()
            run = TracedRun(str(repo))
            assert run.finish() == 0, "\n".join(run.lines[-20:])
            after = IndexStore(index_dir).read_state()
            commits += (after.chunks_version, after.files_version) != (before.chunks_version, before.files_version)
    finally:
        stop.set()
        thread.join(120)
    assert not errors, errors[:5]
    assert commits == 3
    assert stats["snapshots"] >= 4 and len(seen_versions) >= 2, (stats, seen_versions)
    assert committed_state(index_dir) == expected_state(repo)
    print(f"\n[torture] readers: {stats['snapshots']} snapshots, {len(seen_versions)} committed versions seen, "
          f"{stats['hits']} hits checked during {commits} commits")


def test_half_created_journal_left_by_a_kill_does_not_block_later_runs(pristine, tiny_embedder):
    """A kill inside ``create_table`` leaves a journal folder without a manifest: it must not wedge the index."""
    import hashlib

    repo = fresh_copy(pristine)
    state = IndexStore(repo / ".codeseer").read_state()
    name = "journal_" + hashlib.sha1(f"{state.model}|{state.dim}".encode()).hexdigest()[:12]
    (repo / ".codeseer" / "lance" / f"{name}.lance" / "_versions").mkdir(parents=True)
    (repo / "rich" / "journal_probe.py").write_text("def journal_probe():\n    return 42\n")
    report = index_repository(repo, embedder_factory=lambda m: tiny_embedder)
    assert report.changed_files == 1 and report.embedded_chunks == 1
    assert committed_state(repo / ".codeseer") == expected_state(repo)
