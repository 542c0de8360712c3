"""The CLI as a user meets it: index + search end to end, and one clear line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, write_files

REPO = {
    "net/retry.py": '''
        import random
        import time


        def retry_with_backoff(operation, attempts=5, base_delay=0.1):
            """Call operation again when it raises, sleeping longer after each failure."""
            for attempt in range(attempts):
                try:
                    return operation()
                except ConnectionError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(base_delay * 2 ** attempt + random.random() / 10)
        ''',
    "app/errors.py": '''
        class ErrorHandlers:
            """Maps HTTP errors to responses."""

            def handle_internal_server_error(self, request, exc):
                """Render the 500 page and log the exception."""
                self.log(exc)
                return self.render("500.html", status=500)
        ''',
    "util/text.py": '''
        def slugify(title):
            """Turn a title into a URL slug: lower case, words joined by dashes."""
            return "-".join(word.lower() for word in title.split())


        def parse_config_file(path):
            """Read key=value lines into a dict."""
            with open(path) as fh:
                return dict(line.strip().split("=", 1) for line in fh if "=" in line)
        ''',
    "web/Cart.java": '''
        package shop;

        public class Cart {
            /** Sum of item prices times quantities. */
            public double totalPrice(java.util.List<Item> items) {
                double total = 0;
                for (Item item : items) {
                    total += item.price * item.quantity;
                }
                return total;
            }
        }
        ''',
    "docs/guide.md": '''
        # Guide

        ## Installing

        Run pip install to set everything up.
        ''',
}


@pytest.fixture(scope="module")
def indexed_repo(tmp_path_factory) -> Path:
    repo = write_files(tmp_path_factory.mktemp("cli") / "repo", REPO)
    result = run_cli("index", str(repo))
    assert result.returncode == 0, result.stderr
    assert "indexed 5 files" in result.stderr
    return repo


def search_json(repo: Path, *args: str) -> list[dict]:
    result = run_cli("search", *args, "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("query", "expected_symbol"),
    [
        ("retry an operation that sometimes fails", "retry_with_backoff"),
        ("render the 500 error page", "ErrorHandlers.handle_internal_server_error"),
        ("parse_config_file", "parse_config_file"),
        ("make a url slug from a title", "slugify"),
        ("total price of the items in a shopping cart", "Cart.totalPrice"),
    ],
)
def test_hybrid_search_finds_the_known_answer(indexed_repo, query, expected_symbol):
    hits = search_json(indexed_repo, query, "-k", "3")
    assert hits[0]["symbol"] == expected_symbol
    assert set(hits[0]) >= {"path", "start_line", "end_line", "symbol", "language", "score", "text"}


def test_json_fields_filters_and_modes(indexed_repo):
    hits = search_json(indexed_repo, "retry", "--mode", "lexical")
    top = hits[0]
    assert top["path"] == "net/retry.py" and top["language"] == "python"
    assert top["start_line"] == 5 and top["end_line"] == 13
    assert not Path(top["path"]).is_absolute()
    assert all(h["language"] == "java" for h in search_json(indexed_repo, "total price", "--lang", "java"))
    assert {h["path"] for h in search_json(indexed_repo, "error", "--path", "app/**")} == {"app/errors.py"}
    assert search_json(indexed_repo, "retry", "--path", "nothing/**") == []
    dense = search_json(indexed_repo, "retry an operation that sometimes fails", "--mode", "dense", "-k", "2")
    assert len(dense) == 2 and dense[0]["symbol"] == "retry_with_backoff"


def test_search_from_a_subdirectory_finds_the_index(indexed_repo):
    result = run_cli("search", "slug", "--json", cwd=indexed_repo / "util")
    assert result.returncode == 0 and json.loads(result.stdout)


def test_human_output_has_location_symbol_and_snippet(indexed_repo):
    result = run_cli("search", "retry an operation that sometimes fails", "-k", "1", cwd=indexed_repo)
    assert result.returncode == 0
    assert "net/retry.py:5-13 retry_with_backoff" in result.stdout
    assert "def retry_with_backoff" in result.stdout


def _assert_clean_error(result, fragment: str) -> None:
    assert result.returncode != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_errors_are_one_line_without_traceback(tmp_path, indexed_repo, tiny_model_dir):
    _assert_clean_error(run_cli("index", str(tmp_path / "missing")), "path does not exist")
    (tmp_path / "file.py").write_text("x = 1\n")
    _assert_clean_error(run_cli("index", str(tmp_path / "file.py")), "not a directory")
    (tmp_path / "empty").mkdir()
    _assert_clean_error(run_cli("index", str(tmp_path / "empty"), "--model", str(tiny_model_dir)), "no source files")
    _assert_clean_error(run_cli("search", "anything", cwd=tmp_path / "empty"), "no codeseer index found")
    _assert_clean_error(run_cli("search", "x", "--index", str(tmp_path / "empty")), "no codeseer index")
    _assert_clean_error(run_cli("search", "   ", cwd=indexed_repo), "empty query")
    _assert_clean_error(run_cli("search", "x", "--model", str(tiny_model_dir), cwd=indexed_repo), "built with model")
    _assert_clean_error(run_cli("index", str(indexed_repo), "--model", str(tiny_model_dir)), "built with model")
    _assert_clean_error(run_cli("search", "x", "--mode", "magic", cwd=indexed_repo), "unknown mode")
    _assert_clean_error(run_cli("index", str(tmp_path), "--model", str(tmp_path / "nope")), "model not found")


def test_unreadable_and_non_utf8_files_are_skipped_with_a_count(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", {"ok.py": "def ok():\n    return 1\n"})
    (repo / "latin1.py").write_bytes("s = 'café'\n".encode("latin-1"))
    (repo / "blob.c").write_bytes(b"\x00\x01binary")
    result = run_cli("index", str(repo), "--model", str(tiny_model_dir), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["files"] == 1
    assert report["skipped"] == {"not utf-8": 1, "binary": 1}
