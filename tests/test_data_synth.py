"""`codeseer data synth` against a small fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codeseer.data.synth import chat_url, clean_query, synth_queries
from codeseer.errors import CodeseerError

FUNCS = {
    "alpha": "def load_settings(path):\n    # marker:alpha\n    with open(path) as f:\n        return json.load(f)",
    "flaky": "def retry_upload(blob):\n    # marker:flaky\n    for _ in range(3):\n        send(blob)",
    "garbage": "def garbage_in(x):\n    # marker:garbage\n    return x\n    pass",
    "copy": "def copy_name_query(x):\n    # marker:copy\n    return x\n    pass",
    "gamma": "function mergeArrays(a, b) {\n  // marker:gamma\n  return a.concat(b);\n}",
}
ANSWERS = {"alpha": '"how to load json settings from a file"', "flaky": "retry sending a blob three times",
           "copy": "copy_name_query helper", "gamma": "Query: concatenate two arrays js"}


class FakeOpenAI(BaseHTTPRequestHandler):
    """Chat completions keyed by the ``marker:NAME`` comment in the code; 'flaky' fails once with 500."""

    calls: Counter = Counter()
    requests: list = []
    lock = threading.Lock()

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/v1/models":
            self._send(200, json.dumps({"object": "list", "data": [{"id": "fake-coder"}]}).encode())
        else:
            self._send(404, b"{}")

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            self._send(404, b'{"error": "not found"}')
            return
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = payload["messages"][-1]["content"]
        marker = prompt.split("marker:", 1)[1].split()[0]
        with self.lock:
            self.calls[marker] += 1
            n = self.calls[marker]
            self.requests.append({"marker": marker, "model": payload["model"], "auth": self.headers.get("Authorization")})
        if marker == "flaky" and n == 1:
            self._send(500, b'{"error": "overloaded"}')
        elif marker == "garbage":
            self._send(200, b"<html>this is not a chat completion</html>", "text/html")
        else:
            answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWERS[marker]}}]}
            self._send(200, json.dumps(answer).encode())


@pytest.fixture
def server():
    FakeOpenAI.calls = Counter()
    FakeOpenAI.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    lines = []
    for i, (marker, code) in enumerate(FUNCS.items()):
        symbol = code.split("(")[0].split()[-1]
        lang = "javascript" if code.startswith("function") else "python"
        base = {"positive": code, "task": "nl2code", "language": lang, "source": f"x.py:{i + 1}", "symbol": symbol}
        lines.append({"query": f"doc {marker}", "kind": "docstring", **base})
        lines.append({"query": f"name {marker}", "kind": "name", **base})  # the same positive: asked once
        lines.append({"query": code, "positive": f"doc {marker}", "task": "code2nl", "kind": "code2nl"})  # not code
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in lines), encoding="utf-8")
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_synth_retries_skips_malformed_and_resumes(server, pairs_file, tmp_path):
    out = tmp_path / "syn.jsonl"
    ticks = []
    report = synth_queries(pairs_file, out, base_url=server, concurrency=3, backoff=0.01, api_key="sk-test",
                           progress=lambda d, t: ticks.append((d, t)))
    assert report.functions == 5 and report.already_done == 0
    assert report.written == 3 and report.malformed == 1 and report.failed == 0
    assert dict(report.rejected) == {"name_copied": 1}  # "copy_name_query helper" repeats the identifier
    assert report.retries == 1 and report.model == "fake-coder"  # from GET /v1/models
    assert FakeOpenAI.calls == {"alpha": 1, "flaky": 2, "garbage": 1, "copy": 1, "gamma": 1}
    assert {r["auth"] for r in FakeOpenAI.requests} == {"Bearer sk-test"}
    rows = {r["symbol"]: r for r in read(out)}
    assert rows["load_settings"] == {"query": "how to load json settings from a file", "positive": FUNCS["alpha"],
                                     "task": "nl2code", "kind": "synthetic", "language": "python", "source": "x.py:1",
                                     "symbol": "load_settings", "model": "fake-coder"}
    assert rows["retry_upload"]["query"] == "retry sending a blob three times"
    assert rows["mergeArrays"]["query"] == "concatenate two arrays js" and rows["mergeArrays"]["language"] == "javascript"
    assert ticks[-1] == (5, 5)

    # a second run asks only about the functions not in OUT yet
    FakeOpenAI.calls.clear()
    again = synth_queries(pairs_file, out, base_url=server, model="other", backoff=0.01)
    assert again.already_done == 3 and again.written == 0 and again.malformed == 1
    assert FakeOpenAI.calls == {"garbage": 1, "copy": 1}
    assert len(read(out)) == 3


def test_synth_limit_and_torn_last_line(server, pairs_file, tmp_path):
    out = tmp_path / "syn.jsonl"
    first = synth_queries(pairs_file, out, base_url=server, model="m", limit=1, backoff=0.01)
    assert first.functions == 1 and first.written == 1 and FakeOpenAI.calls == {"alpha": 1}
    with out.open("a") as f:
        f.write('{"query": "torn", "posi')  # a crash mid-line
    FakeOpenAI.calls.clear()
    second = synth_queries(pairs_file, out, base_url=server, model="m", limit=2, backoff=0.01)
    assert second.already_done == 1 and second.written == 1 and FakeOpenAI.calls == {"flaky": 2}
    assert [r["symbol"] for r in read(out)] == ["load_settings", "retry_upload"]


def test_synth_bad_urls(pairs_file, tmp_path, server):
    out = tmp_path / "syn.jsonl"
    with pytest.raises(CodeseerError, match="not an http"):
        synth_queries(pairs_file, out, base_url="ftp://example", model="m")
    with pytest.raises(CodeseerError, match="not an http"):
        synth_queries(pairs_file, out, base_url="localhost:8000", model="m")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(CodeseerError, match="cannot reach"):
        synth_queries(pairs_file, out, base_url=f"http://127.0.0.1:{port}/v1", model="m", backoff=0.01)
    with pytest.raises(CodeseerError, match="404"):
        synth_queries(pairs_file, out, base_url=server.replace("/v1", "/nope/v1"), model="m", backoff=0.01)
    with pytest.raises(CodeseerError, match="no such pairs file"):
        synth_queries(tmp_path / "missing.jsonl", out, base_url=server, model="m")
    with pytest.raises(CodeseerError, match="does not exist"):
        synth_queries(pairs_file, tmp_path / "no" / "syn.jsonl", base_url=server, model="m")


def test_synth_timeout_counts_as_failure(pairs_file, tmp_path):
    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            import time

            time.sleep(1.0)
            self.send_response(200)
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        report = synth_queries(pairs_file, tmp_path / "syn.jsonl", base_url=f"http://127.0.0.1:{httpd.server_address[1]}",
                               model="m", limit=1, timeout=0.2, retries=1, backoff=0.01)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert report.failed == 1 and report.written == 0 and report.retries == 1


def test_chat_url_and_clean_query():
    assert chat_url("http://h:8000/v1") == ("http://h:8000/v1/chat/completions", "http://h:8000/v1/models")
    assert chat_url("http://h:8000/") == ("http://h:8000/v1/chat/completions", "http://h:8000/v1/models")
    assert chat_url("https://h/v1/chat/completions")[0] == "https://h/v1/chat/completions"
    assert clean_query("<think>hmm</think>\n\n- `parse a toml file`\nmore") == ("parse a toml file", None)
    assert clean_query("") == ("", "empty")
    assert clean_query(" ".join(["word"] * 40))[1] == "too_long"
    assert clean_query("how to use load_settings", "Cfg.load_settings")[1] == "name_copied"
    assert clean_query("how to load settings", "Cfg.load_settings") == ("how to load settings", None)
    assert clean_query("how to read a file", "read") == ("how to read a file", None)  # one-word names may appear


def test_cli_synth_json(server, pairs_file, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from codeseer.cli import app

    monkeypatch.setenv("MY_KEY", "sk-cli")
    out = tmp_path / "syn.jsonl"
    result = CliRunner().invoke(app, ["data", "synth", str(pairs_file), "--out", str(out), "--base-url", server,
                                      "--model", "fake-coder", "--api-key-env", "MY_KEY", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["written"] == 2 and summary["retries"] == 1 and summary["model"] == "fake-coder"
    assert {r["auth"] for r in FakeOpenAI.requests} == {"Bearer sk-cli"}
    assert len(read(out)) == 2
    monkeypatch.delenv("MY_KEY")
    result = CliRunner().invoke(app, ["data", "synth", str(pairs_file), "--out", str(out), "--base-url", server,
                                      "--api-key-env", "MY_KEY"])
    assert isinstance(result.exception, CodeseerError) and "MY_KEY" in str(result.exception)
