"""codeseer data mine-git: commit text -> the functions it changed (as at the parent), same-file negatives."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codeseer.data.mine_git import load_excluded_names, mine_git, repo_names
from codeseer.errors import CodeseerError

UTIL = '''def scale_values(values, factor):
    """Multiply every value."""
    out = []
    for value in values:
        out.append(value * factor)
    return out


def clamp_value(x, lo, hi):
    """Keep x within [lo, hi]."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def mean_value(values):
    total = sum(values)
    return total / len(values)
'''


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def _commit(repo: Path, message: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("hist") / "tools-repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "Add value helpers for the report module", {"src/util.py": UTIL})
    renamed = UTIL.replace("factor):", "multiplier):").replace("value * factor", "value * multiplier")
    _commit(repo, "util: rename factor to multiplier in scale values\n\nThe word factor was confusing next to "
                  "the scale factor of the plot.\n\nSigned-off-by: t", {"src/util.py": renamed})
    bumped = renamed.replace("return x\n", "return x  # 1.2\n")
    _commit(repo, "Bump version to 1.2.0", {"src/util.py": bumped})
    _commit(repo, "Add a test for clamping values below the range",
            {"tests/test_util.py": "def test_clamp():\n    assert clamp_value(0, 1, 2) == 1\n"})
    _git(repo, "checkout", "-q", "-b", "side")
    _commit(repo, "Compute the mean of an empty list as zero", {"src/util.py": bumped.replace(
        "    return total / len(values)", "    return total / len(values) if values else 0.0")})
    _git(repo, "checkout", "-q", "main")
    _commit(repo, "Document how clamping treats the bounds", {"docs/clamp.md": "# Clamp\n\nBounds are inclusive.\n"})
    _git(repo, "merge", "-q", "--no-ff", "side", "-m", "Merge branch 'side' with the mean fix for empty lists")
    return repo


def test_a_rename_in_one_function_yields_it_as_it_was_with_its_untouched_neighbours_as_negatives(history):
    pairs = []
    report = mine_git([history], on_pair=pairs.append, max_negatives=5)
    renames = [p for p in pairs if p["query"] == "util: rename factor to multiplier in scale values"]
    assert len(renames) == 1
    pair = renames[0]
    assert pair["symbol"] == "scale_values" and pair["kind"] == "commit" and pair["language"] == "python"
    assert "factor" in pair["positive"] and "multiplier" not in pair["positive"]  # as at the parent commit
    assert pair["positive"].startswith("def scale_values(values, factor):")
    assert pair["negatives"][0].startswith("def clamp_value(") and len(pair["negatives"]) == 2  # nearest first
    assert not any("scale_values" in n for n in pair["negatives"])
    assert pair["path"] == "src/util.py" and pair["source"].startswith("tools-repo@")
    assert pair["repo"] == "tools-repo"  # what `codeseer train --batches repository` groups by
    body = [p for p in pairs if p["kind"] == "commit-body"]
    assert [b["query"] for b in body] == ["The word factor was confusing next to the scale factor of the plot."]
    assert body[0]["positive"] == pair["positive"]
    # the side-branch commit is a plain commit: it qualifies; the merge, the root commit, the bump, the
    # test-only and the docs-only commits give nothing
    assert {p["query"] for p in pairs} == {"util: rename factor to multiplier in scale values",
                                           "The word factor was confusing next to the scale factor of the plot.",
                                           "Compute the mean of an empty list as zero"}
    assert report.pairs == len(pairs) == 3 and report.negatives == 6
    assert report.by_kind == {"commit": 2, "commit-body": 1} and report.by_language == {"python": 3}
    counts = report.commits
    assert counts == {"commits": 7, "kept": 2, "merge or root commit": 2, "no source file changed": 2,
                      "bump/merge/release/typo/lint/format": 1}


def test_an_excluded_repository_is_refused_before_anything_is_read(history, tmp_path):
    _git(history, "remote", "add", "origin", "https://github.com/Some-Org/Eval-Set.git")
    try:
        assert repo_names(history) == ["some-org/eval-set", "tools-repo"]
        listed = tmp_path / "exclude.sha256"
        listed.write_text("# evaluation repositories\n" + hashlib.sha256(b"some-org/eval-set").hexdigest() + "\n")
        with pytest.raises(CodeseerError, match="some-org/eval-set, on the exclusion list"):
            mine_git([history], excluded_names=load_excluded_names(listed), on_pair=lambda p: None)
        by_folder = tmp_path / "folder.sha256"
        by_folder.write_text(hashlib.sha256(b"tools-repo").hexdigest() + "\n")
        with pytest.raises(CodeseerError, match="tools-repo, on the exclusion list"):
            mine_git([history], excluded_names=load_excluded_names(by_folder))
        mirror = tmp_path / "Some-Org+Eval-Set" / "repo"
        mirror.parent.mkdir()
        _git(tmp_path, "clone", "-q", "--bare", str(history), str(mirror))
        assert repo_names(mirror)[0] == "some-org/eval-set"
        with pytest.raises(CodeseerError, match="on the exclusion list"):
            mine_git([mirror], excluded_names=load_excluded_names(listed))
        bad = tmp_path / "bad.sha256"
        bad.write_text("not-a-digest\n")
        with pytest.raises(CodeseerError, match="not a sha256 digest"):
            load_excluded_names(bad)
    finally:
        _git(history, "remote", "remove", "origin")


def test_pairs_of_an_evaluation_corpus_are_dropped(history, tmp_path):
    corpus = tmp_path / "beir"
    (corpus / "qrels").mkdir(parents=True)
    old = UTIL.split("\n\n\n")[0]  # scale_values as it was before the rename: in the "evaluation" corpus
    (corpus / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": old}) + "\n")
    (corpus / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "scale"}) + "\n")
    (corpus / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    pairs = []
    report = mine_git([history], exclude=[corpus], on_pair=pairs.append)
    assert report.exclude_docs == 1 and report.removed["excluded_exact"] == 2
    assert [p["symbol"] for p in pairs] == ["mean_value"]


def test_cli_writes_pairs_train_reads_and_reports_counts(history, tmp_path):
    from codeseer.train.data import load_pairs

    out = tmp_path / "commits.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "CODESEER_EXCLUDE_REPOS"}
    done = subprocess.run([sys.executable, "-m", "codeseer.cli", "data", "mine-git", str(history), "--out", str(out),
                           "--negatives", "1", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["pairs"] == 3 and summary["negatives"] == 3 and summary["out"] == str(out)
    assert "no --exclude-names list" in done.stderr
    rows = load_pairs(out)
    assert len(rows) == 3 and all(len(r["negatives"]) <= 1 for r in rows)
    missing = subprocess.run([sys.executable, "-m", "codeseer.cli", "data", "mine-git", str(tmp_path), "--out",
                              str(tmp_path / "x.jsonl")], capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and "not a git repository" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "x.jsonl").exists()


def test_two_definitions_sharing_a_name_stay_two_while_a_long_functions_parts_are_one():
    from codeseer.data.git_history import definitions
    from codeseer.index.chunking import chunk_source

    long_body = "\n".join(f"    total += {i} * x" for i in range(400))
    text = ("def parse(x):\n    return int(x)\n\n\n"
            + "\n\n\n".join(f"def filler_{i}(x):\n    return x + {i}" for i in range(40))
            + "\n\n\ndef parse(x):  # redefined, far below\n    return float(x)\n\n\n"
            + f"def big(x):\n    total = 0\n{long_body}\n    return total\n")
    chunks = [c for c in chunk_source("m.py", text, "python") if c.symbol]
    assert sum(c.symbol == "big" for c in chunks) > 1  # the splitter cut the long function
    found = definitions(text, chunks)
    parses = [d for d in found if d["symbol"] == "parse"]
    assert [d["text"].splitlines()[-1].strip() for d in parses] == ["return int(x)", "return float(x)"]
    assert all("filler_" not in d["text"] for d in parses)  # not one span from the first to the last
    (big,) = [d for d in found if d["symbol"] == "big"]
    assert big["text"].startswith("def big(x):") and big["text"].endswith("    return total")
