"""The HTTP API against a real uvicorn server on 127.0.0.1 (random free port, in a thread):
endpoints, limits, path safety, auth, and a server that survives every bad request."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from codeseer.apps.service import Service  # noqa: E402
from codeseer.serve.auth import is_loopback, resolve_token  # noqa: E402
from codeseer.serve.http import MAX_BODY_BYTES, create_app  # noqa: E402

from test_apps_helpers import build_index, make_repo, running  # noqa: E402


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_model_dir) -> Path:
    base = tmp_path_factory.mktemp("serve-http")
    root = make_repo(base / "repo")
    (base / "outside").mkdir()
    (base / "outside" / "secret.py").write_text("def secret():\n    return 42\n")
    os.symlink(base / "outside", root / "link")  # the walker skips it; the API must refuse it
    build_index(root, str(tiny_model_dir))
    return root


@pytest.fixture(scope="module")
def service(repo) -> Service:
    return Service(repo / ".codeseer")


@pytest.fixture(scope="module")
def url(service):
    with running(create_app(service)) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def detail(response) -> str:
    return response.json()["detail"]


# --------------------------------------------------------------------------- happy paths


def test_page_status_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>codeseer</title>" in page.text
    status = client.get("/status").json()
    assert status["files"] == 7 and status["languages"]["python"] == 4 and status["limits"]["k"] == 1000
    schema = client.get("/openapi.json").json()
    assert {"/status", "/search", "/similar", "/locate", "/context", "/docs"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["SearchRequest"]["properties"]["k"]["maximum"] == 1000


def test_search_similar_locate_docs(client):
    hits = client.post("/search", json={"query": "retry with backoff", "k": 3}).json()["hits"]
    assert len(hits) == 3 and {"path", "start_line", "end_line", "symbol", "score", "text"} <= set(hits[0])
    filtered = client.post("/search", json={"query": "total", "languages": ["cs"], "path": "shop/**"}).json()["hits"]
    assert filtered and {h["path"] for h in filtered} == {"shop/Cart.cs"}

    similar = client.post("/similar", json={"location": "util/text.py:6", "k": 2}).json()
    assert similar["query"]["symbol"] == "slugify" and similar["task"] == "code2code"
    assert (similar["hits"][0]["path"], similar["hits"][0]["symbol"]) == ("legacy/text_utils.py", "slugify")
    by_path = client.post("/similar", json={"path": "util/text.py", "line": 6, "k": 2}).json()
    assert by_path["hits"] == similar["hits"]
    snippet = client.post("/similar", json={"code": "def f(x):\n    return x + 1\n", "k": 2})
    assert snippet.status_code == 200 and len(snippet.json()["hits"]) == 2

    located = client.post("/locate", json={"query": "retry_with_backoff never sleeps", "k": 2}).json()
    assert located["files"][0]["path"] == "net/retry.py" and located["files"][0]["kind"] == "source"
    assert "ident_defined" in located["files"][0]["features"]
    widened = client.post("/locate", json={"query": "retry guide", "k": 20, "include": ["docs"]}).json()["files"]
    assert "docs" in {f["kind"] for f in widened}
    docs_only = client.post("/search", json={"query": "retry", "kinds": ["docs"]}).json()["hits"]
    assert docs_only and {h["file_kind"] for h in docs_only} == {"docs"}
    bad = client.post("/search", json={"query": "retry", "kinds": ["tset"]})
    assert bad.status_code == 422 and "unknown file kind 'tset'" in detail(bad)
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "include" in schema["LocateRequest"]["properties"]
    assert all("kinds" in schema[name]["properties"] for name in ("SearchRequest", "SimilarRequest", "ContextRequest"))
    docs = client.post("/docs", json={"location": "net/retry.py:8"}).json()
    assert any(h["own"] for h in docs["hits"])


def test_one_vocabulary_and_the_old_names_still_accepted(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("SearchRequest", "LocateRequest", "ContextRequest"):
        assert "query" in schema[name]["properties"] and "path" in schema[name]["properties"], name
    for name in ("SimilarRequest", "DocsRequest"):
        assert {"location", "file", "line"} <= set(schema[name]["properties"]), name
    assert "path" in schema["SimilarRequest"]["properties"]  # the glob, as in search, locate and context
    old_names = {"text", "task", "path_glob", "functions_per_file"}
    assert not old_names & {p for s in schema.values() for p in s.get("properties", {})}
    for route, new, old in [
        ("/locate", {"query": "retry never sleeps", "functions": 1}, {"text": "retry never sleeps", "functions_per_file": 1}),
        ("/context", {"query": "cart total", "budget": 300}, {"task": "cart total", "budget": 300}),
        ("/similar", {"file": "util/text.py", "line": 6, "path": "legacy/**"},
         {"path": "util/text.py", "line": 6, "path_glob": "legacy/**"}),
        ("/docs", {"file": "net/retry.py", "line": 8}, {"path": "net/retry.py", "line": 8}),
    ]:
        a, b = client.post(route, json=new), client.post(route, json=old)
        assert a.status_code == b.status_code == 200, (route, a.text, b.text)
        assert a.json() == b.json(), route
    similar = client.post("/similar", json={"file": "util/text.py", "line": 6, "path": "legacy/**"}).json()
    assert {h["path"] for h in similar["hits"]} == {"legacy/text_utils.py"}


def test_context_never_exceeds_the_budget(client, service):
    from codeseer.apps.context import token_counter

    count = token_counter(service.searcher().embedder.tokenizer)
    for budget in (1, 7):  # not even a header fits: a 422 saying what would
        too_small = client.post("/context", json={"query": "sum the prices of the cart items", "budget": budget})
        assert too_small.status_code == 400 and "does not hold even the best chunk's header" in detail(too_small)
    for budget in (40, 150, 600, 5000):
        pack = client.post("/context", json={"query": "sum the prices of the cart items", "budget": budget}).json()
        assert count(pack["markdown"]) == pack["tokens"] <= budget
        assert [b["header"] for b in pack["blocks"]] == re.findall(r"^### (\S+)$", pack["markdown"], re.M)


# --------------------------------------------------------------------------- limits and bad input


@pytest.mark.parametrize(
    "route,body,status,fragment",
    [
        ("/search", {"query": "x", "k": 1001}, 422, "k: Input should be less than or equal to 1000"),
        ("/search", {"query": "x", "k": 0}, 422, "k:"),
        ("/search", {"query": ""}, 422, "query:"),
        ("/search", {"query": "x" * 50_001}, 413, "at most 50000 characters"),
        ("/search", {"query": "x", "mode": "fuzzy"}, 422, "mode:"),
        ("/search", {"query": "x", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
        ("/search", {"query": "x", "path": "../**"}, 400, "must not contain '..'"),
        ("/search", {"query": "x", "path": "/etc/**"}, 400, "relative"),
        ("/similar", {"location": "../outside/secret.py:1"}, 400, "must not contain '..'"),
        ("/similar", {"path": "/etc/passwd", "line": 1}, 400, "not absolute"),
        ("/similar", {"location": "link/secret.py:1"}, 400, "symlink"),
        ("/similar", {"location": "util/nope.py:1"}, 400, "not in the index"),
        ("/similar", {"location": "util/text.py:9999"}, 400, "outside every indexed chunk"),
        ("/similar", {"location": "util/text.py"}, 400, "expected PATH:LINE"),
        ("/similar", {"path": "util/**"}, 422, "exactly one"),  # path is a glob, as everywhere
        ("/similar", {"file": "util/text.py"}, 422, "file + line"),
        ("/similar", {"code": ""}, 422, "code:"),
        ("/similar", {"code": "   \n"}, 422, "code must not be empty"),
        ("/similar", {"code": "x", "location": "util/text.py:6"}, 422, "exactly one"),
        ("/similar", {}, 422, "exactly one"),
        ("/context", {"query": "x", "budget": 0}, 422, "budget:"),
        ("/context", {"query": "x", "budget": 100_001}, 422, "budget:"),
        ("/locate", {"query": "x", "k": 1001}, 422, "k:"),
        ("/locate", {"query": "x", "functions": 51}, 422, "functions:"),
        ("/docs", {"location": "net/retry.py:0"}, 400, "line numbers start at 1"),
        ("/docs", {}, 422, "location"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(client, route, body, status, fragment):
    response = client.post(route, json=body)
    assert response.status_code == status, response.text
    assert fragment in detail(response)


def test_malformed_json_and_oversized_bodies(client, url):
    bad = client.post("/search", content=b'{"query": "x", ', headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "JSON" in detail(bad)
    not_object = client.post("/search", json=["x"])
    assert not_object.status_code == 422
    big = client.post("/search", json={"query": "x", "languages": ["y" * 1000] * 300})
    assert big.status_code == 413 and str(MAX_BODY_BYTES) in detail(big)

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(100):
            yield b" " * 8192

    streamed = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.get("/nope").status_code == 404
    assert client.get("/search").status_code == 405


def test_server_survives_errors_and_concurrency(client, service, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(service, "search", boom)
    crashed = client.post("/search", json={"query": "x"})
    assert crashed.status_code == 500 and "kaboom" in detail(crashed)
    monkeypatch.undo()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda i: client.post("/search", json={"query": f"function {i}", "k": 2}), range(16)))
    assert [r.status_code for r in responses] == [200] * 16
    assert client.get("/status").status_code == 200


def test_reopens_the_snapshot_after_reindexing(tmp_path, tiny_model_dir):
    from codeseer.index.indexer import index_repository

    root = make_repo(tmp_path / "repo")
    build_index(root, str(tiny_model_dir))
    svc = Service(root / ".codeseer")
    before = svc.status()["files"]
    first_model = svc.searcher().embedder
    (root / "extra.py").write_text("def brand_new_function():\n    return 'fresh'\n")
    index_repository(root)
    assert svc.status()["files"] == before + 1
    assert svc.searcher().embedder is first_model  # the model stays loaded
    hits = svc.search("brand_new_function", k=1, mode="lexical")["hits"]
    assert hits[0]["path"] == "extra.py"


# --------------------------------------------------------------------------- auth


def test_bearer_token(service):
    with running(create_app(service, token="s3cret")) as base, httpx.Client(base_url=base, timeout=60) as c:
        assert c.get("/").status_code == 200  # the page itself is public; it asks for the token
        missing = c.get("/status")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert c.get("/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/search", json={"query": "x"}).status_code == 401
        ok = c.get("/status", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["files"] == 7


def test_dns_rebinding_is_refused_without_a_token(client, url, service):
    port = url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert client.get("/status", headers={"Host": host}).status_code == 200
    for host in (f"evil.example:{port}", "evil.example", "192.168.0.9"):
        refused = client.get("/status", headers={"Host": host})
        assert refused.status_code == 400 and "DNS rebinding" in detail(refused)
    with running(create_app(service, token="t")) as base:  # with a token, the token is the protection
        assert httpx.get(base + "/status", headers={"Host": "codeseer.lan", "Authorization": "Bearer t"}).status_code == 200


def test_host_header_parsing():
    from codeseer.serve.http import host_of

    assert host_of("[::1]:8765") == "::1" and host_of("LOCALHOST:80") == "localhost"
    assert host_of("127.0.0.1") == "127.0.0.1" and host_of("::1") == "::1"


def test_token_rules(monkeypatch):
    monkeypatch.delenv("CODESEER_TOKEN", raising=False)
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.9.10"):
        assert is_loopback(host) and resolve_token(None, host) is None
    from codeseer.errors import CodeseerError

    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com"):
        assert not is_loopback(host)
        with pytest.raises(CodeseerError, match="refusing to serve"):
            resolve_token(None, host)
    assert resolve_token("t", "0.0.0.0") == "t"
    monkeypatch.setenv("CODESEER_TOKEN", "from-env")
    assert resolve_token(None, "0.0.0.0") == "from-env"
    assert resolve_token(None, "127.0.0.1") == "from-env"  # a configured token is always enforced


# --------------------------------------------------------------------------- the command


def _env() -> dict:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env.pop("CODESEER_TOKEN", None)
    return env


def test_serve_refuses_a_public_address_without_a_token(repo):
    result = subprocess.run([sys.executable, "-m", "codeseer.cli", "serve", "--host", "0.0.0.0", "--index", str(repo / ".codeseer")],
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: refusing to serve on 0.0.0.0 without authentication")


def test_serve_command_end_to_end(repo):
    proc = subprocess.Popen([sys.executable, "-m", "codeseer.cli", "serve", "--port", "0", "--no-preload",
                             "--index", str(repo / ".codeseer")], env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                status = httpx.get(base + "/status", timeout=30)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status.status_code == 200 and status.json()["files"] == 7
        hits = httpx.post(base + "/search", json={"query": "slugify", "k": 1, "mode": "lexical"}, timeout=60).json()
        assert hits["hits"][0]["symbol"] == "slugify"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    with socket.socket() as probe:  # the port was released
        probe.bind(("127.0.0.1", int(match.group(1))))
