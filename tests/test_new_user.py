"""What a new user tripped over (issue 20): each case failed before its fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codeseer.apps.context import build_pack, render_blocks
from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore
from codeseer.search.searcher import Hit, Searcher

from conftest import run_cli, write_files

DUPLICATE = '''
    def normalise_whitespace(text):
        """Collapse runs of spaces into one."""
        words = text.split()
        return " ".join(words)
    '''


def test_a_failed_first_index_leaves_nothing_behind(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("index", str(empty))
    assert result.returncode == 1 and "no source files found" in result.stderr
    assert not (empty / ".codeseer").exists()


def test_unknown_language_is_an_error_naming_the_known_ones(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", {"a.py": "def add(a, b):\n    return a + b\n"})
    index_repository(repo, model=str(tiny_model_dir))
    result = run_cli("search", "add", "--lang", "cobol", "--mode", "lexical", cwd=repo)
    assert result.returncode == 1
    assert "unknown language 'cobol' for --lang; known: " in result.stderr and "python" in result.stderr
    searcher = Searcher(IndexStore(repo / ".codeseer"))
    assert searcher.search("add", mode="lexical", languages=["py"])  # aliases still work
    assert searcher.search("add", mode="lexical", languages=["go"]) == []  # known, just not indexed


def _hit(path, start, end, text, score=1.0):
    return Hit(path=path, start_line=start, end_line=end, symbol="f", language="python", kind="function",
               score=score, text=text)


def test_a_budget_under_the_first_line_gets_its_start_and_one_under_the_header_an_error(tmp_path, tiny_model_dir):
    count = lambda text: len(text.split())  # noqa: E731  (a word counter: easy to reason about)
    long_line = "def handle(" + ", ".join(f"argument_{n}" for n in range(40)) + "):"
    hits = [_hit("src/app.py", 10, 12, long_line + "\n    return 1\n")]
    header_only = count(render_blocks(build_pack(hits, 10_000, count).blocks[:0]) or "### src/app.py:10-10\n```python\n …\n```\n")
    pack = build_pack(hits, header_only + 5, count)
    assert len(pack.blocks) == 1 and pack.tokens <= header_only + 5
    text = pack.blocks[0].text
    assert text.startswith("def handle(argument_0,") and text.endswith(" …") and "\n" not in text
    tiny = build_pack(hits, 2, count)
    assert tiny.blocks == [] and tiny.smallest == header_only
    # through the app and the CLI: one error line with the budget the header needs
    repo = write_files(tmp_path / "repo", {"app.py": long_line + "\n    return 1\n"})
    index_repository(repo, model=str(tiny_model_dir))
    result = run_cli("context", "handle", "--budget", "3", cwd=repo)
    assert result.returncode == 1 and "does not hold even the best chunk's header" in result.stderr
    assert "give --budget" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_equal_scores_come_back_in_path_order_whatever_the_write_history(tmp_path, tiny_model_dir):
    names = [f"pkg{n}/dup.py" for n in range(14)]
    clean = write_files(tmp_path / "clean", {name: DUPLICATE for name in names})
    index_repository(clean, model=str(tiny_model_dir))
    # the same files, written in another order over several runs: other storage order in LanceDB
    messy = tmp_path / "messy"
    for batch in (names[7:], names[:3], names[3:7]):
        write_files(messy, {name: DUPLICATE for name in reversed(batch)})
        index_repository(messy, model=str(tiny_model_dir))
    for mode in ("dense", "lexical", "hybrid"):
        a = Searcher(IndexStore(clean / ".codeseer")).search("collapse spaces in text", k=10, mode=mode)
        b = Searcher(IndexStore(messy / ".codeseer")).search("collapse spaces in text", k=10, mode=mode)
        assert [(h.path, h.start_line) for h in a] == [(h.path, h.start_line) for h in b], mode
        assert [h.path for h in a] == sorted(names)[:10], mode
    from codeseer.apps.similar import similar

    s_a = similar(Searcher(IndexStore(clean / ".codeseer")), code=DUPLICATE, k=5).hits
    s_b = similar(Searcher(IndexStore(messy / ".codeseer")), code=DUPLICATE, k=5).hits
    assert [h.path for h in s_a] == [h.path for h in s_b] == sorted(names)[:5]


@pytest.mark.slow
def test_counts_read_right_in_one_and_many(tmp_path, tiny_model_dir):
    from codeseer.render import counted

    assert (counted(1, "hit"), counted(2, "hit"), counted(0, "block")) == ("1 hit", "2 hits", "0 blocks")
    repo = write_files(tmp_path / "repo", {"a.py": "def add(a, b):\n    return a + b\n"})
    index_repository(repo, model=str(tiny_model_dir))
    located = run_cli("locate", "add two numbers", cwd=repo)
    assert "(1 hit)" in located.stdout and "(1 hits)" not in located.stdout
    context = run_cli("context", "add", "--budget", "200", cwd=repo)
    assert "1 block from 1 chunk" in context.stderr


@pytest.mark.parametrize("command", [["locate"], ["eval-repo"], ["search"], ["index"], ["data", "repo-tasks"]])
def test_help_labels_values_by_name_and_keeps_sentences_whole(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "<bool>" not in result.stdout and "<list[str]>" not in result.stdout and "<str>  " not in result.stdout.split("Options")[-1]
    if command == ["locate"]:
        assert ("Source files are ranked by whole-file BM25, path words, the best chunks' similarity, the modules and "
                "identifiers the text names") in result.stdout  # one paragraph, not the docstring's hard wraps
        assert "--lang       -l      LANG" in result.stdout and "--top        -k      N" in result.stdout


LONG_NAME = "compute_the_weighted_moving_average_of_a_very_long_series_of_measurements_with_missing_values_filled"


@pytest.mark.slow
def test_piped_output_keeps_each_result_on_one_line(tmp_path, tiny_model_dir):
    body = "    return [sum(window) / len(window) for window in zip(values, values[1:], values[2:])]  # " + "x" * 200
    repo = write_files(tmp_path / "repo", {
        "deep/nested/folder/structure/for/a/very/long/path/module.py": f"def {LONG_NAME}(values):\n{body}\n",
        "deep/nested/folder/structure/for/a/very/long/path/copy.py": f"def {LONG_NAME}(values):\n{body}\n",
    })
    index_repository(repo, model=str(tiny_model_dir))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # a pipe: rich would wrap at 80 columns
    import subprocess
    import sys

    for args in (["search", "moving average", "-k", "2"], ["similar", "deep/nested/folder/structure/for/a/very/long/path/module.py:1"],
                 ["dupes", "--min-lines", "1", "--threshold", "0.5"]):
        done = subprocess.run([sys.executable, "-m", "codeseer.cli", *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        headers = [line for line in done.stdout.splitlines() if "long/path/" in line]
        assert headers, done.stdout
        for line in headers:  # path, lines, the whole symbol and the score on one line
            assert LONG_NAME in line and line.rstrip().split()[-1].replace(".", "").isdigit(), line
        if args[0] != "dupes":
            long_lines = [line for line in done.stdout.splitlines() if "xxxx" in line]
            assert long_lines and all(line.endswith("…") and len(line) < 180 for line in long_lines)


def test_models_fits_80_columns_and_shows_one_model_in_full():
    env_run = lambda *args: run_cli(*args)  # noqa: E731
    import subprocess
    import sys

    narrow = subprocess.run([sys.executable, "-m", "codeseer.cli", "models"], capture_output=True, text=True,
                            env=dict(os.environ, COLUMNS="80", NO_COLOR="1"), timeout=120)
    lines = narrow.stdout.splitlines()
    assert narrow.returncode == 0 and max(len(line) for line in lines) <= 80 and len(lines) < 40
    assert "codeseer-code-mini" in narrow.stdout and "jinaai/jina-code-embeddings-0.5b" in narrow.stdout
    assert all("…" not in line for line in lines)  # nothing cut
    wide = env_run("models", "--wide")
    assert "licence" in wide.stdout and "remote code" in wide.stdout
    one = env_run("models", "coderankembed")
    assert "nomic-ai/CodeRankEmbed (recipe)" in one.stdout and "prompt nl2code query:" in one.stdout
    data = json.loads(env_run("models", "codeseer-code-mini", "--json").stdout)
    assert data["offline"]["name"] == "codeseer-code-mini" and data["recipe"] is None
    missing = env_run("models", "nope")
    assert missing.returncode == 1 and "no model 'nope'; known: codeseer-code-mini" in missing.stderr


def _many_functions(root: Path, files: int, per_file: int) -> Path:
    for i in range(files):
        body = "".join(
            f"def step_{i}_{j}(values, scale={j}):\n"
            f"    \"\"\"Scale every value by {j} and add the offset of module {i}.\"\"\"\n"
            + "".join(f"    values = [v * scale + {k} for v in values if v is not None]\n" for k in range(6))
            + "    return values\n\n\n"
            for j in range(per_file))
        write_files(root, {f"pkg{i % 7}/mod{i}.py": body})
    return root


@pytest.mark.slow
def test_without_a_terminal_index_prints_progress_lines_and_ctrl_c_says_what_was_kept(tmp_path):
    import signal
    import subprocess
    import sys

    repo = _many_functions(tmp_path / "repo", files=90, per_file=8)  # 720 chunks: three slabs of 256
    env = dict(os.environ, CODESEER_PROGRESS_EVERY="0", CODESEER_VECTOR_CACHE="off", CODESEER_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "codeseer.cli", "index", str(repo)], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = []
    for line in proc.stderr:  # a pipe: no terminal, so plain lines
        lines.append(line.rstrip("\n"))
        if line.startswith("embedding: 256/"):
            proc.send_signal(signal.SIGINT)
            break
    lines += proc.stderr.read().splitlines()  # the same buffered reader: nothing it read ahead is lost
    proc.wait(timeout=120)
    output = "\n".join(lines)
    assert any(line.startswith("chunking: ") and " files, " in line for line in lines), output
    assert "embedding: 256/720 chunks, " in output and "/s, ETA " in output
    assert proc.returncode == 130, output
    tail = [line for line in output.splitlines() if line.startswith("interrupted: ")]
    kept = int(tail[-1].split()[1])
    assert kept >= 256 and "vectors kept; re-run `codeseer index` to finish" in tail[-1]
    done = subprocess.run([sys.executable, "-m", "codeseer.cli", "index", str(repo), "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["chunks"] == 720 and report["embedded_chunks"] == 720 - kept  # nothing computed twice


def test_search_shows_code_first_even_when_docs_score_higher(tmp_path):
    repo = write_files(tmp_path / "repo", {
        "docs/retries.md": "# How retries work\n\nHow retries work: a failed call is retried with backoff, "
                           "how retries work explained for users.\n",
        "tests/test_retry.py": "def test_how_retries_work():\n    assert retry(lambda: 1) == 1\n",
        "net/retry.py": "import time\n\n\ndef retry(operation, attempts=3):\n    for n in range(attempts):\n"
                        "        try:\n            return operation()\n        except OSError:\n"
                        "            time.sleep(2 ** n)\n",
    })
    index_repository(repo)  # the default model
    flat = json.loads(run_cli("search", "how retries work", "--flat", "--json", "-k", "3", cwd=repo).stdout)
    assert flat[0]["file_kind"] in ("docs", "test")  # by score, prose wins
    grouped = json.loads(run_cli("search", "how retries work", "--json", "-k", "3", cwd=repo).stdout)
    assert grouped[0]["path"] == "net/retry.py" and grouped[0]["file_kind"] == "source"
    assert {h["file_kind"] for h in grouped[1:]} <= {"source", "docs", "test"}
    assert [h["file_kind"] for h in grouped].index("docs") > 0
    text = run_cli("search", "how retries work", "-k", "3", cwd=repo).stdout
    assert text.index("net/retry.py") < text.index("-- docs and tests --") < text.index("docs/retries.md")
    only_docs = json.loads(run_cli("search", "how retries work", "--json", "--kind", "docs", cwd=repo).stdout)
    assert {h["file_kind"] for h in only_docs} == {"docs"}
