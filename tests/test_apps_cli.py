"""The retrieval commands as a user runs them: JSON/markdown output, reports, and one clear line
(exit 1, no traceback) for every bad input.

Two tests run the real ``python -m codeseer.cli`` in a subprocess; the others invoke the same Typer
app in-process (a subprocess costs seconds of imports and a model load per command).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_apps_helpers import build_index, make_repo


def cli(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed CLI in a subprocess, exactly as a user runs it."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "codeseer.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, input=stdin if stdin is not None else "")


def invoke(*args: str, cwd: Path, stdin: str | None = None):
    """The same Typer app in-process; a CodeseerError comes back as ``result.exception``."""
    from typer.testing import CliRunner

    from codeseer.cli import app

    here = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), input=stdin)
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_model_dir) -> Path:
    root = make_repo(tmp_path_factory.mktemp("apps-cli") / "repo")
    build_index(root, str(tiny_model_dir))
    return root


def _clean_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert fragment in lines[0], lines[0]


def test_similar_json_from_a_subfolder_and_from_stdin(repo):
    result = cli("similar", "Cart.java:9", "--json", "-k", "3", cwd=repo / "shop")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["query"]["path"] == "shop/Cart.java" and data["query"]["symbol"] == "Cart.totalPrice"
    assert len(data["hits"]) == 3
    assert all((h["path"], h["start_line"]) != ("shop/Cart.java", data["query"]["start_line"]) for h in data["hits"])

    snippet = "def total(items):\n    return sum(i.price * i.quantity for i in items)\n"
    piped = cli("similar", "--code", "-", "--json", "-k", "2", "--lang", "py", cwd=repo, stdin=snippet)
    assert piped.returncode == 0, piped.stderr
    data = json.loads(piped.stdout)
    assert data["query"] == {"code": snippet} and [h["language"] for h in data["hits"]] == ["python", "python"]


def test_dupes_json_and_reports(repo, tmp_path):
    md, page = tmp_path / "dupes.md", tmp_path / "out" / "dupes.html"
    result = invoke("dupes", "--threshold", "0.9999", "--json", "--report", str(md), cwd=repo)
    assert result.exit_code == 0, result.output
    clusters = json.loads(result.stdout)["clusters"]
    assert any({m["path"] for m in c["members"]} == {"util/text.py", "legacy/text_utils.py"} for c in clusters)
    assert "legacy/text_utils.py:4-10" in md.read_text()
    result = invoke("dupes", "--threshold", "0.9999", "--report", str(page), "--limit", "1", cwd=repo)
    assert result.exit_code == 0, result.output
    assert page.read_text().startswith("<!doctype html>") and "1." in result.stdout


def test_locate_context_docs_and_stale_docs(repo, tiny_model_dir, tmp_path):
    located = invoke("locate", "-", "--json", "-k", "2", cwd=repo, stdin="retry_with_backoff never sleeps between attempts")
    assert located.exit_code == 0, located.output
    files = json.loads(located.stdout)["files"]
    assert files[0]["path"] == "net/retry.py" and files[0]["functions"][0]["symbol"] == "retry_with_backoff"

    packed = invoke("context", "total price of the items in a cart", "--budget", "120", cwd=repo)
    assert packed.exit_code == 0, packed.output
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokens = len(tokenizer(packed.stdout, add_special_tokens=False)["input_ids"])
    assert 0 < tokens <= 120 and packed.stdout.startswith("### ")
    assert f"{tokens}/120 tokens" in packed.stderr
    as_json = invoke("context", "total price", "--budget", "200", "--format", "json", cwd=repo)
    assert json.loads(as_json.stdout)["tokens"] <= 200

    docs = invoke("docs", "net/retry.py:8", "--json", cwd=repo)
    assert docs.exit_code == 0, docs.output
    assert any(h["own"] and h["kind"] == "docstring" for h in json.loads(docs.stdout)["hits"])
    text = invoke("docs", "net/retry.py:8", cwd=repo)
    assert "docstring: retry_with_backoff (own)" in text.stdout

    report = tmp_path / "stale.md"
    stale = invoke("stale-docs", "--report", str(report), "--percentile", "50", "--z", "0", cwd=repo)
    assert stale.exit_code == 0, stale.output
    assert report.read_text().startswith("# Docstrings that may be stale") and "| `" in report.read_text()
    assert stale.stdout == report.read_text()


@pytest.mark.parametrize(
    "args,stdin,fragment",
    [
        (("similar", "shop/Nope.java:3"), None, "not in the index"),
        (("similar", "shop/Cart.java:999"), None, "outside every indexed chunk"),
        (("similar", "shop/Cart.java"), None, "expected PATH:LINE"),
        (("similar", "../../etc/passwd:1"), None, "outside the indexed root"),
        (("similar", "--code", "-"), "   \n", "empty code snippet"),
        (("similar", "shop/Cart.java:9", "--code", "x"), None, "not both"),
        (("similar",), None, "give PATH:LINE or --code"),
        (("context", "anything", "--budget", "0"), None, "budget must be at least 1"),
        (("context", "anything", "--budget", "10", "--format", "xml"), None, "unknown format"),
        (("dupes", "--report", "dupes.txt"), None, "must end in .md or .html"),
        (("docs", "net/retry.py:0"), None, "line numbers start at 1"),
        (("stale-docs", "--report", "x.html"), None, "must end in .md"),
        (("locate", "  "), None, "empty issue text"),
    ],
)
def test_bad_input_raises_a_user_error(repo, args, stdin, fragment):
    from codeseer.errors import CodeseerError

    result = invoke(*args, cwd=repo, stdin=stdin)
    assert isinstance(result.exception, CodeseerError), (result.exception, result.output)
    assert fragment in str(result.exception)


def test_errors_print_one_line_and_exit_1(repo, tmp_path):
    _clean_error(cli("similar", "../../etc/passwd:1", cwd=repo), "outside the indexed root")
    _clean_error(cli("similar", "a.py:1", cwd=tmp_path), "no codeseer index")
