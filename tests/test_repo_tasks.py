"""`codeseer data repo-tasks` on a git history made here, and `eval-repo` on benchmarks of several repositories."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from codeseer.data.git_history import clean_subject, subject_problem
from codeseer.data.repo_tasks import write_repo_tasks
from codeseer.errors import CodeseerError
from codeseer.search.files import FEATURES

from conftest import run_cli

CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "GIT_AUTHOR_DATE": "2020-01-01T00:00:00", "GIT_COMMITTER_DATE": "2020-01-01T00:00:00", "HOME": str(repo)}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def commit(repo: Path, message: str, files: dict[str, str | None]) -> str:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            git(repo, "rm", "-q", rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def history(tmp_path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "calc"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    ids = {}
    commit(repo, "Initial commit", {"src/calc.py": CALC, "tests/test_calc.py": "def test_add():\n    assert True\n",
                                    "src/old.py": "def legacy():\n    return 0\n"})
    ids["rename"] = commit(repo, "Make subtraction store its result first",
                           {"src/calc.py": CALC.replace("    return a - b", "    result = a - b\n    return result")})
    commit(repo, "Bump version to 1.2.3", {"README.md": "v1.2.3\n", "src/calc.py": CALC.replace(
        "    return a - b", "    result = a - b\n    return result") + "VERSION = '1.2.3'\n"})
    commit(repo, "Cover subtraction with a test of its own", {"tests/test_calc.py": "def test_sub():\n    assert True\n"})
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, "Document the side branch work here", {"docs/side.md": "side\n"})
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch side into main for real", "side")
    commit(repo, "Rename the helpers across all of the modules", {f"src/m{n}.py": f"def f{n}():\n    return {n}\n"
                                                                   for n in range(4)})
    commit(repo, "Teach the legacy helper a new trick", {"src/old.py": "def legacy():\n    return 1\n"})
    commit(repo, "Remove the legacy module entirely now", {"src/old.py": None})
    ids["mul"] = commit(repo, "Add multiplication helper to calc (#12)",
                        {"src/calc.py": (repo / "src/calc.py").read_text() + "\n\ndef mul(a, b):\n    return a * b\n"})
    return repo, ids


def test_subject_filters():
    assert clean_subject("Fix x in y (#123)") == "Fix x in y" and clean_subject("[#9] Fix x in y") == "Fix x in y"
    for subject in ("Merge pull request #1 from a/b", "Bump version to 2.0", "Fix typo in docs", "Release 1.2.0",
                    "Run black over the code", "chore(deps): update foo", "v1.2.3"):
        assert subject_problem(subject) == "bump/merge/release/typo/lint/format", subject
    assert subject_problem("Fix it") == "too short"
    assert subject_problem("printer: fix duplicative replacement in multiline mode") is None


def test_repo_tasks_keeps_descriptive_commits_that_change_few_source_files(history, tmp_path):
    repo, ids = history
    report = write_repo_tasks(repo, tmp_path / "tasks", functions=True)
    rows = [json.loads(line) for line in (tmp_path / "tasks" / "queries.jsonl").read_text().splitlines()]
    assert [(r["commit"], r["text"], r["files"]) for r in rows] == [
        (ids["mul"], "Add multiplication helper to calc", ["src/calc.py"]),  # PR number stripped
        (ids["rename"], "Make subtraction store its result first", ["src/calc.py"]),
    ]
    assert [r["_id"] for r in rows] == ["q0", "q1"]
    # the function the diff touched, as it was at the parent commit; its untouched neighbour is not listed
    assert rows[1]["functions"] == [{"path": "src/calc.py", "symbol": "sub", "kind": "function", "start_line": 5,
                                     "end_line": 6}]
    assert rows[0]["functions"] == []  # a new function added after the last one changes no existing one
    assert report.counts == {"commits": 10, "kept": 2, "merge or root commit": 2,
                             "bump/merge/release/typo/lint/format": 1, "no source file changed": 2,
                             "more than 3 source files": 1, "a changed file is gone at the snapshot": 2}
    with tarfile.open(tmp_path / "tasks" / "snapshot.tar.gz") as archive:
        names = sorted(archive.getnames())
        calc = archive.extractfile("src/calc.py").read().decode()
    assert names == ["README.md", "docs/side.md", "src/calc.py", "src/m0.py", "src/m1.py", "src/m2.py", "src/m3.py",
                     "tests/test_calc.py"]
    assert calc == (repo / "src/calc.py").read_text()
    sample = write_repo_tasks(repo, tmp_path / "one", max_queries=1, seed=3)
    assert sample.queries == 1


def test_repo_tasks_errors(tmp_path, history):
    repo, _ = history
    with pytest.raises(CodeseerError, match="not a git repository"):
        write_repo_tasks(tmp_path, tmp_path / "x")
    with pytest.raises(CodeseerError, match="unknown revision"):
        write_repo_tasks(repo, tmp_path / "x", rev="nope")
    with pytest.raises(CodeseerError, match="no commit of .* qualifies"):
        write_repo_tasks(repo, tmp_path / "x", rev="HEAD~8")  # the root commit alone
    result = run_cli("data", "repo-tasks", str(repo), "--out", str(tmp_path / "cli"), "--max-files", "0")
    assert result.returncode != 0


@pytest.mark.slow
def test_eval_repo_on_a_benchmark_of_repositories(history, tmp_path, tiny_model_dir):
    """Two task folders in one benchmark: per repository, pooled, leave-one-repo-out, saved weights."""
    repo, _ = history
    bench = tmp_path / "bench"
    write_repo_tasks(repo, bench / "calc")
    other = tmp_path / "geo"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    commit(other, "Initial commit", {"geo/shapes.py": "def area(r):\n    return 3 * r * r\n",
                                     "geo/units.py": "def metres(x):\n    return x\n"})
    commit(other, "geo: compute the circle area with pi", {"geo/shapes.py": "def area(r):\n    return 3.14159 * r * r\n"})
    commit(other, "Convert feet to metres in units", {"geo/units.py": "def metres(x):\n    return x * 0.3048\n"})
    write_repo_tasks(other, bench / "geo")

    out = tmp_path / "results.json"
    weights = tmp_path / "weights.json"
    result = run_cli("eval-repo", str(bench), "--model", str(tiny_model_dir), "--loro", "--work", str(tmp_path / "w"),
                     "--json", str(out), "--save-weights", str(weights))
    assert result.returncode == 0, result.stderr
    assert "bench (pooled)" in result.stdout and "leave-one-repo-out" in result.stdout
    assert "against the baseline" in result.stdout
    records = json.loads(out.read_text())
    by = {(r["dataset"], r["mode"]): r for r in records}
    assert set(by) == {(d, m) for d in ("bench/calc", "bench/geo", "bench (pooled)") for m in ("locate", "bm25-files")}
    calc, geo, pooled = by["bench/calc", "locate"], by["bench/geo", "locate"], by["bench (pooled)", "locate"]
    assert (calc["n_queries"], geo["n_queries"], pooled["n_queries"]) == (2, 2, 4)
    for metric in ("mrr@10", "recall@1", "recall@10"):
        values = calc["per_query"][metric] + geo["per_query"][metric]
        assert pooled["metrics"][metric] == pytest.approx(sum(values) / 4)
    assert calc["loro"] is True and calc["ranker_weights"]["fitted_on"] == "geo"  # held out: fitted on the other
    assert geo["ranker_weights"]["fitted_on"] == "calc"
    saved = json.loads(weights.read_text())
    assert set(saved["weights"]) == set(FEATURES) and saved["fitted_on"] == "calc, geo"
    # geo's answers are its only file of that name: whole-file BM25 finds both at rank 1
    assert by["bench/geo", "bm25-files"]["metrics"]["mrr@10"] == pytest.approx(1.0)
    # the saved weights drive `locate --weights` and `eval-repo --weights`
    again = run_cli("eval-repo", str(bench / "geo"), "--model", str(tiny_model_dir), "--work", str(tmp_path / "w"),
                    "--weights", str(weights), "--no-baseline")
    assert again.returncode == 0, again.stderr and "locate" in again.stdout
    single = run_cli("eval-repo", str(bench / "geo"), "--loro", "--work", str(tmp_path / "w"))
    assert single.returncode == 1 and "--loro needs a benchmark of at least two repositories" in single.stderr
