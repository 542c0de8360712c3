"""The warm query process: same answers as the CLI process, re-opening on commit, stale sockets,
other builds, idle exit, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeseer.errors import CodeseerError
from codeseer.index.indexer import index_repository
from codeseer.serve import warm

from conftest import write_files

REPO = {
    "net/retry.py": '''
        import time


        def retry_with_backoff(operation, attempts=5):
            """Call operation again when it raises, sleeping longer each time."""
            for n in range(attempts):
                try:
                    return operation()
                except OSError:
                    time.sleep(2 ** n)
        ''',
    "util/text.py": '''
        def slugify(title):
            """Lower-case words joined by dashes."""
            return "-".join(title.lower().split())
        ''',
    "tests/test_text.py": '''
        from util.text import slugify


        def test_slugify():
            assert slugify("A B") == "a-b"
        ''',
}


@pytest.fixture
def warm_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESEER_WARM", "on")
    monkeypatch.setenv("CODESEER_WARM_DIR", str(tmp_path / "sockets"))
    monkeypatch.setenv("CODESEER_WARM_IDLE", "15")  # a process left behind by a test leaves by itself soon
    yield tmp_path / "sockets"
    for pid_file in (tmp_path / "sockets").glob("*.lock"):
        _kill_holder(pid_file)


def _kill_holder(lock: Path) -> None:
    """Stop the query process that wrote its pid into ``lock`` (if it still runs)."""
    try:
        os.kill(int(lock.read_text().strip()), signal.SIGTERM)
    except (ValueError, OSError):
        pass


@pytest.fixture
def indexed(tmp_path) -> Path:
    repo = write_files(tmp_path / "repo", REPO)
    index_repository(repo)  # the default model: its shipped ONNX graphs, no torch in the query process
    return repo


def _wait_for(path: Path, present: bool = True, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while path.exists() != present:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} {'never appeared' if present else 'is still there'}")
        time.sleep(0.1)


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, NO_COLOR="1", COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "codeseer.cli", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=300)


COMMANDS = [
    ("search", "retry an operation that fails"),
    ("search", "slugify", "--mode", "lexical", "--json"),
    ("search", "dashes", "--kind", "test"),
    ("locate", "retry never sleeps between attempts", "--json"),
    ("locate", "`slugify` drops unicode", "--include", "test"),
    ("similar", "util/text.py:2"),
    ("context", "retry with backoff", "--budget", "120"),
]


@pytest.mark.slow
def test_the_warm_process_answers_byte_for_byte_as_the_cli_process(indexed, warm_env):
    index_dir = indexed / ".codeseer"
    cold = {cmd: _cli(*cmd, cwd=indexed, env={"CODESEER_WARM": "off"}) for cmd in COMMANDS}
    for cmd, done in cold.items():
        assert done.returncode == 0, (cmd, done.stderr)
    first = _cli(*COMMANDS[0], cwd=indexed)  # answers itself, starts the warm process
    assert first.stdout == cold[COMMANDS[0]].stdout
    _wait_for(warm.socket_path(index_dir))
    assert warm.ask(index_dir, "search", {"query": "retry", "k": 1})["hits"][0]["path"] == "net/retry.py"
    for cmd in COMMANDS:
        done = _cli(*cmd, cwd=indexed)
        assert done.returncode == 0, (cmd, done.stderr)
        assert (done.stdout, done.stderr) == (cold[cmd].stdout, cold[cmd].stderr), cmd
    # from a sub-folder, with --index, with a relative PATH:LINE: the same index and the same answer
    sub = _cli("similar", "text.py:2", cwd=indexed / "util")
    assert sub.stdout == cold[("similar", "util/text.py:2")].stdout
    elsewhere = _cli("search", "retry an operation that fails", "--index", str(index_dir), cwd=indexed.parent)
    assert elsewhere.stdout == cold[COMMANDS[0]].stdout


CLIENT = """
import json, sys
from codeseer.cli import main
sys.argv = ["codeseer", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps([m for m in ("lancedb", "onnxruntime", "pyarrow", "torch", "tokenizers") if m in sys.modules]))
"""


def test_a_warm_client_imports_nothing_heavy(indexed, warm_env):
    """Every command, printed for a person as well as --json: laying out the answer must not import
    the index's libraries either (a search printed as text once imported LanceDB for one constant)."""
    index_dir = indexed / ".codeseer"
    warm.start(index_dir)
    _wait_for(warm.socket_path(index_dir))
    for cmd in COMMANDS + [("search", "retry an operation that fails", "--json")]:
        done = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(cmd)], cwd=indexed, capture_output=True,
                              text=True, timeout=120, env=dict(os.environ, NO_COLOR="1", COLUMNS="200"))
        assert done.returncode == 0, (cmd, done.stderr)
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [], cmd
        assert "retry" in done.stdout or "slugify" in done.stdout, (cmd, done.stdout)


def test_errors_come_back_as_one_line(indexed, warm_env):
    index_dir = indexed / ".codeseer"
    warm.start(index_dir)
    _wait_for(warm.socket_path(index_dir))
    with pytest.raises(CodeseerError, match="outside every indexed chunk|no chunk|not indexed"):
        warm.ask(index_dir, "similar", {"location": "util/text.py:999", "cwd": str(indexed)})
    done = _cli("similar", "nope/missing.py:3", cwd=indexed)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    cold = _cli("similar", "nope/missing.py:3", cwd=indexed, env={"CODESEER_WARM": "off"})
    assert cold.stderr == done.stderr


def test_a_commit_is_seen_without_a_restart(indexed, warm_env):
    index_dir = indexed / ".codeseer"
    warm.start(index_dir)
    _wait_for(warm.socket_path(index_dir))
    assert not warm.ask(index_dir, "search", {"query": "checksum_of_bytes", "mode": "lexical"})["hits"]
    write_files(indexed, {"util/hashing.py": "def checksum_of_bytes(data):\n    return sum(data) % 256\n"})
    index_repository(indexed)
    hits = warm.ask(index_dir, "search", {"query": "checksum_of_bytes", "mode": "lexical"})["hits"]
    assert hits and hits[0]["path"] == "util/hashing.py"


@pytest.mark.slow
def test_a_dead_socket_is_replaced(indexed, warm_env):
    index_dir = indexed / ".codeseer"
    path = warm.socket_path(index_dir)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # a socket file nobody listens on: a process that died
    dead.close()
    assert warm.ask(index_dir, "search", {"query": "retry"}) is None  # answered in-process, new process started
    deadline = time.monotonic() + 60
    while warm.ask(index_dir, "search", {"query": "retry"}) is None:
        assert time.monotonic() < deadline, (warm_env / (path.stem + ".log")).read_text()
        time.sleep(0.2)


@pytest.mark.slow
def test_another_build_or_setting_makes_the_process_step_aside(indexed, warm_env, monkeypatch):
    index_dir = indexed / ".codeseer"
    warm.start(index_dir)
    path = warm.socket_path(index_dir)
    _wait_for(path)
    assert warm.ask(index_dir, "search", {"query": "retry"}) is not None
    monkeypatch.setenv("CODESEER_THREADS", "1")  # another setting: another key
    assert warm.ask(index_dir, "search", {"query": "retry"}) is None
    deadline = time.monotonic() + 60  # the old process left, a new one with this key took its place
    while warm.ask(index_dir, "search", {"query": "retry"}) is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.mark.slow
def test_an_idle_process_exits_and_removes_its_socket(indexed, warm_env, monkeypatch):
    monkeypatch.setenv("CODESEER_WARM_IDLE", "1")
    index_dir = indexed / ".codeseer"
    warm.start(index_dir)
    path = warm.socket_path(index_dir)
    _wait_for(path)
    _wait_for(path, present=False, seconds=30)


def test_off_and_uri_indexes_answer_in_process(indexed, monkeypatch, tmp_path):
    monkeypatch.setenv("CODESEER_WARM_DIR", str(tmp_path / "sockets"))
    monkeypatch.setenv("CODESEER_WARM", "off")
    assert not warm.enabled() and warm.ask(indexed / ".codeseer", "search", {"query": "x"}) is None
    assert not list((tmp_path / "sockets").glob("*.sock"))
    assert warm.index_dir_for("s3://bucket/idx") is None
    assert warm.index_dir_for(None, cwd=indexed / "util") == (indexed / ".codeseer").resolve()
    assert warm.index_dir_for(indexed) == (indexed / ".codeseer").resolve()
