"""`--index URI`: an index kept at file:// or s3:// (a moto server on loopback) must equal a local one.

Search servers are meant to be stateless readers of such a URI, so the tests read the URI index back
through a fresh IndexStore/Searcher, update it incrementally, and rebuild it, as a writer would.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore
from codeseer.index.uri import as_uri, index_location
from codeseer.search.searcher import Searcher

from conftest import run_cli, write_files

FILES = {
    f"pkg/mod_{n}.py": f'''
        def parse_record_{n}(line):
            """Split a CSV line number {n} into fields."""
            return line.strip().split(",")


        class Store{n}:
            """Keeps records of kind {n} in memory."""

            def add(self, record):
                self.items = getattr(self, "items", []) + [record]
        '''
    for n in range(12)
}


def chunk_rows(index) -> tuple[list, np.ndarray]:
    store = IndexStore(index)
    chunks, _ = store.snapshot(store.read_state())
    table = chunks.to_arrow().sort_by("chunk_id")
    rows = list(zip(*(table[c].to_pylist() for c in ("chunk_id", "path", "start_line", "end_line", "text"))))
    return rows, np.stack(table["vector"].to_numpy(zero_copy_only=False))


def state_without_time(index) -> dict:
    state = IndexStore(index).read_state().__dict__.copy()
    state.pop("updated_at")
    return state


def test_as_uri_undoes_path_folding_and_leaves_local_paths_alone():
    assert as_uri("s3://bucket/a/idx/") == "s3://bucket/a/idx"
    assert as_uri(Path("s3://bucket/a/idx")) == "s3://bucket/a/idx"  # typer hands --index over as a Path
    assert as_uri(Path("file:///tmp/idx")) == "file:///tmp/idx"
    assert as_uri(Path("gs://b/k")) == "gs://b/k"
    for local in ("idx", "./a/b", "/tmp/x", Path("C:/x"), Path("weird:name/dir")):
        assert as_uri(local) is None
    assert index_location("rel") == Path("rel").resolve()


def _check_uri_index(uri: str, repo: Path, tmp_path: Path, model: str) -> None:
    """Build at ``uri`` and locally; compare; read back; update; rebuild."""
    local = tmp_path / "local"
    expected = index_repository(repo, index_dir=local, model=model)
    report = index_repository(repo, index_dir=uri, model=model)
    assert report.index_dir == uri
    assert report.embedded_chunks == report.chunks == expected.chunks > 20
    rows, vectors = chunk_rows(uri)
    want_rows, want_vectors = chunk_rows(local)
    assert rows == want_rows
    np.testing.assert_allclose(vectors, want_vectors, atol=1e-5)
    assert state_without_time(uri) == state_without_time(local)

    # A stateless reader: a fresh store on the URI, hybrid search included.
    hits = Searcher(IndexStore(uri)).search("split a CSV line into fields", k=3)
    assert hits and hits[0].path.startswith("pkg/mod_")
    assert [h.path for h in Searcher(IndexStore(uri)).search("parse_record_7", mode="lexical", k=1)] == ["pkg/mod_7.py"]

    # Incremental: one edited file is re-embedded, the rest reused; history keeps both commits.
    path = repo / "pkg/mod_3.py"
    path.write_text(path.read_text().replace("in memory", "in a dictionary"))
    again = index_repository(repo, index_dir=uri)
    assert again.changed_files == 1 and 0 < again.embedded_chunks < again.chunks
    assert len(IndexStore(uri).read_history()) == 2
    assert any("dictionary" in h.text for h in Searcher(IndexStore(uri)).search("dictionary", mode="lexical", k=2))

    # Rebuild drops state, history and tables at the URI, then builds again.
    rebuilt = index_repository(repo, index_dir=uri, rebuild=True, model=model)
    assert rebuilt.embedded_chunks == rebuilt.chunks
    assert len(IndexStore(uri).read_history()) == 1


def test_index_at_a_file_uri_equals_a_local_index(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("CODESEER_VECTOR_CACHE", "off")
    repo = write_files(tmp_path / "repo", FILES)
    target = tmp_path / "at-uri"
    uri = f"file://{target}"
    _check_uri_index(uri, repo, tmp_path, str(tiny_model_dir))
    # No lock file at a URI (one writer at a time is the user's job), no temporary files left behind.
    assert sorted(p.name for p in target.iterdir()) == ["history.json", "lance", "state.json"]
    # The state is plain JSON like a local index's.
    assert json.loads((target / "state.json").read_text())["chunks"] > 20

    # Through the CLI, whose --index is a Path (typer folds file:///x into file:/x).
    result = run_cli("search", "dictionary", "--mode", "lexical", "--index", uri, "--json", "-k", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["path"] == "pkg/mod_3.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """A moto S3 server on 127.0.0.1 with bucket ``codeseer``; the AWS_* variables pyarrow and LanceDB read."""
    pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                            "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true"}.items():
            monkeypatch.setenv(name, value)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the moto S3 server did not start")
                time.sleep(0.2)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="codeseer")
        yield client
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_index_at_an_s3_uri_equals_a_local_index(tmp_path, tiny_model_dir, monkeypatch, s3_server):
    monkeypatch.setenv("CODESEER_VECTOR_CACHE", "off")
    repo = write_files(tmp_path / "repo", FILES)
    _check_uri_index("s3://codeseer/team/idx", repo, tmp_path, str(tiny_model_dir))
    keys = sorted(o["Key"] for o in s3_server.list_objects_v2(Bucket="codeseer", Prefix="team/idx/")["Contents"])
    top = sorted({k for k in keys if "/lance/" not in k and not k.endswith("/")})
    assert top == ["team/idx/history.json", "team/idx/state.json"]  # no lock, no leftover temporary keys
    state = json.loads(s3_server.get_object(Bucket="codeseer", Key="team/idx/state.json")["Body"].read())
    assert state["chunks"] > 20 and state["model"] == str(tiny_model_dir)
