"""Faults from outside: a full disk while indexing, and an index damaged on disk, then `--repair`.

Disk full is tested twice: on a real size-limited tmpfs when this machine lets us mount one (root,
CAP_SYS_ADMIN), and always by injection: every write the indexer makes (lance ``add``, ``delete``,
``optimize``, ``create_index``, ``restore``, ``create_table``, ``drop_table`` and the state/history
JSON writes) is made to fail with ENOSPC in turn. Each failure must give one clear line, a non-zero
exit, no traceback, the previous index intact (or, after the commit point, the new one), and the
next run must complete and equal a fresh index.

Damage: ``state.json`` garbage / truncated / not an object / wrong fields, a committed data file
deleted or truncated (chunks and files tables), the committed manifest deleted, the BM25 index
deleted, the history gone too. Each gives a one-line error naming ``codeseer index --repair``; the
repair must then make search work and the index equal a fresh one (vectors included).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import codeseer.cli as cli
import codeseer.index.indexer as indexer
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore

from test_torture_crash import assert_same_vectors, cli_env, committed_state, expected_state, package_sources

ENOSPC_LANCE = ("lance error: LanceError(IO): No space left on device (os error 28), "
                "/root/.cargo/registry/src/index.crates.io-0/lance-file-13.0.0/src/writer/structural.rs:258:9")


# --------------------------------------------------------------------------- helpers


def build_repo(root: Path, files: int = 30) -> Path:
    """Real code: the first ``files`` modules of typer (as installed)."""
    for rel, data in [s for s in package_sources() if s[0].startswith("typer/")][:files]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def change_tree(root: Path, tag: str) -> None:
    """A deterministic change set: two edits, one new file, one deletion."""
    files = sorted(p for p in root.rglob("*.py") if ".codeseer" not in p.parts)
    for path in files[:2]:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"\n\ndef changed_{tag}_{path.stem}(x):\n    return x + {len(tag)}\n")
    (root / f"new_{tag}.py").write_text(f"class Added{tag.title()}:\n    def run(self):\n        return '{tag}'\n")
    files[-1].unlink()


def run_main(capfd, *args: str) -> tuple[int, str, str]:
    """The CLI entry point in this process (the model is the cached tiny one): exit code, stdout, stderr."""
    old = sys.argv
    sys.argv = ["codeseer", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def assert_one_clear_error(code: int, err: str, *phrases: str) -> str:
    assert code != 0
    assert "Traceback" not in err and "WARN" not in err, err  # (capfd: Rust's own stderr lines count too)
    message = " ".join(err.split())  # Rich wraps long lines at the terminal width
    assert message.startswith("error:") and not [line for line in err.splitlines()[1:] if line.startswith("error:")], err
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    return message


def committed_files(table_dir: Path, version: int) -> tuple[Path, list[Path]]:
    """The manifest of ``version`` and the data files it references, newest first."""
    versions = table_dir / "_versions"
    manifest = versions / f"{(1 << 64) - 1 - version}.manifest"  # lance's v2 naming
    if not manifest.exists():
        manifest = versions / f"{version}.manifest"
    blob = manifest.read_bytes()
    data = [p for p in (table_dir / "data").iterdir() if p.name.encode() in blob]
    return manifest, sorted(data, key=lambda p: -p.stat().st_mtime_ns)


@pytest.fixture(scope="module")
def tiny_embedder(tiny_model_dir):
    from codeseer.models.embedder import Embedder

    return Embedder(str(tiny_model_dir), backend="auto")  # what `codeseer index` runs by default


@pytest.fixture
def cached_model(monkeypatch, tiny_embedder):
    """The CLI's model loads give the already loaded tiny model (each load would take seconds)."""
    monkeypatch.setattr(indexer, "load_embedder", lambda *a, **k: tiny_embedder)
    monkeypatch.setattr("codeseer.search.searcher.load_embedder", lambda *a, **k: tiny_embedder)
    return tiny_embedder


@pytest.fixture(scope="module")
def two_commits(tmp_path_factory, tiny_model_dir, tiny_embedder):
    """A repository indexed twice (so there is an older snapshot), kept pristine, plus a fresh index of it."""
    base = tmp_path_factory.mktemp("faults")
    repo = build_repo(base / "repo")
    use = dict(embedder_factory=lambda m: tiny_embedder)
    index_repository(repo, model=str(tiny_model_dir), **use)
    change_tree(repo, "second")
    index_repository(repo, **use)
    assert len(IndexStore(repo / ".codeseer").read_history()) == 2
    fresh = base / "fresh"
    index_repository(repo, index_dir=fresh, model=str(tiny_model_dir), **use)
    keep = base / "pristine"
    shutil.copytree(repo, keep, symlinks=True)
    return repo, keep, committed_state(fresh, vectors=True)


def restore(pristine) -> Path:
    repo, keep, _ = pristine
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(keep, repo, symlinks=True)
    return repo


# --------------------------------------------------------------------------- disk full, injected


class DiskFull:
    """Counts every write the indexer makes; makes write number ``fail_at`` fail with ENOSPC."""

    LANCE_TABLE = ("add", "delete", "optimize", "create_index", "restore")
    LANCE_DB = ("create_table", "drop_table")

    def __init__(self, monkeypatch, fail_at: int | None = None) -> None:
        import lancedb.db
        import lancedb.table

        self.fail_at = fail_at
        self.calls: list[tuple[str, str]] = []
        self.phase = "start"
        self.failed: tuple[str, str] | None = None
        real_trace = indexer._trace

        def trace(phase: str) -> None:
            self.phase = phase
            real_trace(phase)

        monkeypatch.setattr(indexer, "_trace", trace)
        for cls, names in ((lancedb.table.LanceTable, self.LANCE_TABLE), (lancedb.db.LanceDBConnection, self.LANCE_DB)):
            for name in names:
                monkeypatch.setattr(cls, name, self._wrap(f"lance {name}", getattr(cls, name), lance=True))
        monkeypatch.setattr(IndexStore, "_write_json", self._wrap("write json", IndexStore._write_json, lance=False))

    def _wrap(self, label: str, real, *, lance: bool):
        def wrapper(*args, **kwargs):
            what = label
            if label == "write json":
                what = f"write {Path(args[1]).name}"
            self.calls.append((what, self.phase))
            if self.fail_at is not None and len(self.calls) - 1 == self.fail_at:
                self.failed = (what, self.phase)
                if lance:
                    raise RuntimeError(ENOSPC_LANCE)
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args, **kwargs)

        return wrapper

    @staticmethod
    def after_commit(call: tuple[str, str]) -> bool:
        what, phase = call
        return phase in ("cleanup", "done") or what == "write history.json"


def test_disk_full_at_every_write_of_an_index_run(two_commits, cached_model, monkeypatch, capfd):
    # A dry run counts the writes of one incremental run over a fixed change set. The machine-wide
    # vector cache is off: it would serve the replays' vectors and skip the journal writes under test.
    monkeypatch.setenv("CODESEER_VECTOR_CACHE", "off")
    repo = restore(two_commits)
    change_tree(repo, "third")
    target = expected_state(repo)
    with monkeypatch.context() as m:
        probe = DiskFull(m)
        code, _, err = run_main(capfd, "index", str(repo))
        assert code == 0, err
    writes = list(probe.calls)
    assert committed_state(repo / ".codeseer") == target
    assert len(writes) >= 8, writes

    outcomes = []
    for n, call in enumerate(writes):
        repo = restore(two_commits)
        change_tree(repo, "third")
        target = expected_state(repo)  # the same change set, but new files have new mtimes
        before = committed_state(repo / ".codeseer")
        with monkeypatch.context() as m:
            fault = DiskFull(m, fail_at=n)
            code, _, err = run_main(capfd, "index", str(repo))
        assert fault.failed == call, (fault.failed, call)
        if DiskFull.after_commit(call):  # housekeeping after the commit point: the run still succeeds
            assert code == 0, err
            assert committed_state(repo / ".codeseer") == target
            outcomes.append(f"{call[0]} ({call[1]}): committed anyway")
        else:
            assert_one_clear_error(code, err, "no space left on device", "previous index is intact")
            assert committed_state(repo / ".codeseer") == before, f"index changed after a failed {call}"
            code, _, err = run_main(capfd, "search", "run", "--index", str(repo / ".codeseer"), "--mode", "lexical")
            assert code == 0, err
            outcomes.append(f"{call[0]} ({call[1]}): refused, old index served")
        # The disk has room again: the next run completes and equals a fresh index of the tree.
        code, _, err = run_main(capfd, "index", str(repo))
        assert code == 0, err
        assert committed_state(repo / ".codeseer") == target
    print(f"\n[disk-full] {len(writes)} injected ENOSPC faults:\n  " + "\n  ".join(outcomes))


def test_disk_full_on_the_first_index(tmp_path, tiny_model_dir, cached_model, monkeypatch, capfd):
    repo = build_repo(tmp_path / "repo", files=8)
    with monkeypatch.context() as m:
        DiskFull(m, fail_at=2)
        code, _, err = run_main(capfd, "index", str(repo), "--model", str(tiny_model_dir))
    assert_one_clear_error(code, err, "no space left on device")
    code, _, err = run_main(capfd, "search", "run", "--index", str(repo / ".codeseer"))
    assert_one_clear_error(code, err, "codeseer index")  # no index yet, and it says what to do
    code, _, err = run_main(capfd, "index", str(repo))
    assert code == 0, err
    assert committed_state(repo / ".codeseer") == expected_state(repo)


# --------------------------------------------------------------------------- disk full, for real


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here ({done.stderr.decode().strip()}); injection covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(mount: Path, leave: int) -> Path:
    """Fill the file system up to ``leave`` free bytes."""
    filler = mount / "filler"
    with open(filler, "wb") as fh:
        block = b"\0" * 65536
        try:
            while True:
                free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
                if free <= leave:
                    break
                fh.write(block[: max(4096, min(len(block), free - leave))])
                fh.flush()
        except OSError:
            pass
    return filler


def test_real_full_disk_refuses_cleanly_and_recovers(small_tmpfs, tmp_path, tiny_model_dir, cached_model, capfd):
    repo = build_repo(tmp_path / "repo", files=12)
    index_dir = small_tmpfs / "idx"
    code, _, err = run_main(capfd, "index", str(repo), "--index", str(index_dir), "--model", str(tiny_model_dir))
    assert code == 0, err
    outcomes = []
    for n, leave in enumerate((0, 8 << 10, 64 << 10)):
        before = committed_state(index_dir)
        change_tree(repo, f"full{n}")
        for i in range(10):  # enough new code that the update cannot fit
            (repo / f"bulk_{n}_{i}.py").write_text("".join(f"def bulk_{n}_{i}_{j}(x):\n    return x * {j}\n\n" for j in range(60)))
        filler = _fill(small_tmpfs, leave)
        if n == 0:  # once as a user runs it: exactly one line on stderr, exit status 1
            done = subprocess.run([sys.executable, "-m", "codeseer.cli", "index", str(repo), "--index", str(index_dir)],
                                  env=cli_env(COLUMNS="1000"), capture_output=True, text=True, timeout=300)
            code, err = done.returncode, done.stderr
            assert len([line for line in err.splitlines() if line.strip()]) == 1, err
        else:
            code, _, err = run_main(capfd, "index", str(repo), "--index", str(index_dir))
        message = assert_one_clear_error(code, err, "no space left on device", "previous index is intact")
        assert committed_state(index_dir) == before
        code, _, err = run_main(capfd, "search", "run", "--index", str(index_dir), "--mode", "lexical")
        assert code == 0, err
        outcomes.append(f"{leave >> 10} KiB free: {message[:70]}...")
        filler.unlink()  # space again: the next run completes
        code, _, err = run_main(capfd, "index", str(repo), "--index", str(index_dir))
        assert code == 0, err
        assert committed_state(index_dir) == expected_state(repo)
    print("\n[disk-full] real tmpfs:\n  " + "\n  ".join(outcomes))


# --------------------------------------------------------------------------- damaged index


def _state(repo: Path) -> Path:
    return repo / ".codeseer" / "state.json"


def _committed(repo: Path, table: str) -> tuple[Path, list[Path]]:
    state = json.loads(_state(repo).read_text())
    return committed_files(repo / ".codeseer" / "lance" / f"{table}.lance", state[f"{table}_version"])


def _delete_newest_data(table: str):
    def damage(repo: Path) -> None:
        _committed(repo, table)[1][0].unlink()
    return damage


def _truncate_data(repo: Path) -> None:
    path = _committed(repo, "chunks")[1][-1]  # the big, older file: every version still uses it
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _delete_manifest(table: str):
    def damage(repo: Path) -> None:
        _committed(repo, table)[0].unlink()
    return damage


def _delete_fts(repo: Path) -> None:
    for index in (repo / ".codeseer" / "lance" / "chunks.lance" / "_indices").iterdir():
        shutil.rmtree(index)


DAMAGE = {
    "state.json garbage": lambda repo: _state(repo).write_bytes(b"\x00\xff{{garbage"),
    "state.json deleted": lambda repo: _state(repo).unlink(),
    "state.json truncated": lambda repo: _state(repo).write_text(_state(repo).read_text()[:57]),
    "state.json not an object": lambda repo: _state(repo).write_text("[1, 2, 3]"),
    "state.json missing fields": lambda repo: _state(repo).write_text('{"format": 1, "root": "x"}'),
    "state.json wrong types": lambda repo: _state(repo).write_text(
        json.dumps({**json.loads(_state(repo).read_text()), "chunks_version": "nine"})),
    "chunks data file deleted": _delete_newest_data("chunks"),
    "chunks data file truncated": _truncate_data,
    "files data file deleted": _delete_newest_data("files"),
    "chunks manifest deleted": _delete_manifest("chunks"),
    "files manifest deleted": _delete_manifest("files"),
    "BM25 index deleted": _delete_fts,
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_index_says_repair_and_repair_restores_it(kind, two_commits, cached_model, capfd):
    repo = restore(two_commits)
    fresh_rows, fresh_files, fresh_vectors = two_commits[2]
    DAMAGE[kind](repo)
    index_dir = str(repo / ".codeseer")
    failed = []
    attempts = {mode: ("search", "render the output", "--index", index_dir, "--mode", mode) for mode in ("hybrid", "lexical", "dense")}
    attempts["--path"] = ("search", "render the output", "--index", index_dir, "--path", "typer/**")
    attempts["index"] = ("index", str(repo))  # reads the committed files table
    for name, args in attempts.items():
        code, _, err = run_main(capfd, *args)
        if code != 0:
            assert_one_clear_error(code, err, "codeseer index --repair")
            failed.append(name)
    assert failed, f"{kind}: nothing noticed the damage"

    code, _, err = run_main(capfd, "index", str(repo), "--repair")
    assert code == 0, err
    assert "Traceback" not in err
    repair_lines = [line for line in err.splitlines() if line.startswith("repair:")]
    assert repair_lines, err
    for mode in ("hybrid", "lexical", "dense"):
        code, out, err = run_main(capfd, "search", "render the output", "--index", index_dir, "--mode", mode, "--json")
        assert code == 0, err
        assert json.loads(out), f"{kind}: no results after repair"
    rows, files, vectors = committed_state(repo / ".codeseer", vectors=True)
    assert (rows, files) == (fresh_rows, fresh_files)
    assert_same_vectors(vectors, fresh_vectors)
    print(f"\n[damage] {kind}: noticed by {failed}; " + " | ".join(line[8:] for line in repair_lines))


def test_repair_without_any_record_of_the_model_asks_for_it(two_commits, tiny_model_dir, cached_model, capfd):
    repo = restore(two_commits)
    _state(repo).write_text("{")
    (repo / ".codeseer" / "history.json").unlink()
    code, _, err = run_main(capfd, "index", str(repo), "--repair")
    assert_one_clear_error(code, err, "--repair --model")
    code, _, err = run_main(capfd, "index", str(repo), "--repair", "--model", str(tiny_model_dir))
    assert code == 0, err
    assert "rebuilding the index from scratch" in err
    assert committed_state(repo / ".codeseer") == two_commits[2][:2]


def test_repair_with_no_older_snapshot_rebuilds_reusing_readable_vectors(tmp_path, tiny_model_dir, cached_model, capfd):
    repo = build_repo(tmp_path / "repo", files=10)
    index_repository(repo, model=str(tiny_model_dir), embedder_factory=lambda m: cached_model)
    first = committed_state(repo / ".codeseer", vectors=True)
    _delete_manifest("chunks")(repo)
    (repo / ".codeseer" / "history.json").unlink()
    code, _, err = run_main(capfd, "search", "x", "--index", str(repo / ".codeseer"))
    assert_one_clear_error(code, err, "codeseer index --repair")
    code, out, err = run_main(capfd, "index", str(repo), "--repair", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert any("rebuilding" in line for line in report["repaired"]), report
    rows, files, vectors = committed_state(repo / ".codeseer", vectors=True)
    assert (rows, files) == first[:2]
    assert_same_vectors(vectors, first[2])
    print(f"\n[damage] single commit, manifest deleted: embedded {report['embedded_chunks']} of {report['chunks']} "
          f"again; {report['repaired']}")


def test_repair_of_a_healthy_index_changes_nothing(two_commits, cached_model, capfd):
    repo = restore(two_commits)
    before = committed_state(repo / ".codeseer")
    started = time.perf_counter()
    code, _, err = run_main(capfd, "index", str(repo), "--repair")
    assert code == 0, err
    assert "nothing to repair" in err
    assert committed_state(repo / ".codeseer") == before
    print(f"\n[damage] healthy index verified by --repair in {time.perf_counter() - started:.2f}s")


def test_a_journal_whose_drop_was_cut_short_is_reset(tmp_path, tiny_model_dir, tiny_embedder):
    """A kill during drop_journals can leave a journal's manifest without its data files: the next
    run must start a fresh journal (it is only a cache), not refuse with DamagedIndex."""
    import pyarrow as pa

    repo = build_repo(tmp_path / "repo", files=6)
    use = dict(embedder_factory=lambda m: tiny_embedder)
    first = index_repository(repo, model=str(tiny_model_dir), **use)
    store = IndexStore(repo / ".codeseer")
    journal = store.journal(first.model, 32)
    journal.add(pa.Table.from_pydict({"content_hash": ["h1"], "vector": [[0.0] * 32]}, schema=journal.schema))
    data = [p for p in (repo / ".codeseer" / "lance").glob("journal_*.lance/data/*") if p.is_file()]
    assert data
    for p in data:
        p.unlink()
    change_tree(repo, "after-kill")
    again = index_repository(repo, **use)
    assert again.chunks > 0 and again.embedded_chunks > 0
    assert store.journal(first.model, 32).count_rows() == 0  # dropped again after the commit
