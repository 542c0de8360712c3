"""`codeseer eval-repo`: chunk hits -> file ranking, whole-file BM25 baseline by hand, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from codeseer.eval.metrics import evaluate
from codeseer.search.files import FEATURES
from codeseer.eval.repo import FileBM25, build_qrels, file_ranking, load_repo_queries, normalize_path, rank_scores

from conftest import run_cli, write_files

# Every query word occurs only in the files noted, so whole-file BM25 can be worked out by hand.
REPO = {
    "util/text.py": '''
        def slugify(heading):
            """Lower-case words joined by dashes; mangles unicode headings."""
            return "-".join(word.lower() for word in heading.split())
        ''',
    "net/retry.py": '''
        import time


        def retry_with_backoff(operation, attempts=5, base_delay=0.1):
            """Call operation again when it raises, sleeping longer after each failure."""
            for attempt in range(attempts):
                try:
                    return operation()
                except OSError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(base_delay * 2 ** attempt)
        ''',
    "db/pool.py": '''
        class ConnectionPool:
            """Hands out database connections; a leak here means sockets stay open."""

            def __init__(self, size):
                self.size = size
                self.free = []

            def acquire(self):
                return self.free.pop() if self.free else self.open_connection()
        ''',
    # "tombstone": once in this long file ...
    "core/engine.py": '''
        class StorageEngine:
            """Append-only segments with periodic compaction."""

            def __init__(self, path):
                self.path = path
                self.segments = []
                self.memtable = {}

            def write(self, key, value):
                self.memtable[key] = value
                if len(self.memtable) > 1000:
                    self.flush()

            def read(self, key):
                if key in self.memtable:
                    return self.memtable[key]
                for segment in reversed(self.segments):
                    if key in segment:
                        return segment[key]
                return None

            def flush(self):
                self.segments.append(dict(self.memtable))
                self.memtable = {}

            def compact(self):
                """Merge segments; a deleted key leaves a tombstone marker behind."""
                merged = {}
                for segment in self.segments:
                    merged.update(segment)
                self.segments = [merged]
        ''',
    # ... three times in this short one, so BM25 ranks it above core/engine.py.
    "core/gc.py": '''
        def sweep_tombstones(rows):
            """Drop each tombstone past its grace period."""
            return [row for row in rows if not row.tombstone]
        ''',
    "app/errors.py": '''
        class ErrorHandlers:
            """Maps HTTP errors to responses."""

            def handle_internal_server_error(self, request, exc):
                """Render the 500 page and log the exception."""
                self.log(exc)
                return self.render("500.html", status=500)
        ''',
}
QUERIES = [
    {"_id": "q1", "text": "slugify mangles unicode", "files": ["util/text.py"]},  # BM25 rank 1
    {"_id": "q2", "text": "ConnectionPool leaks sockets", "files": ["./db/pool.py"]},  # rank 1
    {"_id": "q3", "text": "tombstones never purged", "files": ["core/engine.py", "core/gone.py"]},  # rank 2
    {"_id": 4, "text": "xylophone calibration drift", "files": ["app/errors.py"]},  # no BM25 hit at all
    {"_id": "q5", "text": "anything", "files": ["does/not/exist.py"]},  # nothing listed exists: skipped
]
# Whole-file BM25 over q1..q4 (q3's core/gone.py and q5 are missing from the repository):
# ranks of the relevant file 1, 1, 2, none.
BASELINE = {"recall@1": 2 / 4, "recall@5": 3 / 4, "recall@10": 3 / 4, "mrr@10": (1 + 1 + 1 / 2 + 0) / 4}


def write_queries(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- units


def hit(path, score):
    return SimpleNamespace(path=path, score=score)


def test_file_ranking_takes_the_best_chunk_and_keeps_first_seen_order_for_ties():
    hits = [hit("b.py", 0.5), hit("a.py", 0.9), hit("c.py", 0.5), hit("a.py", 0.3), hit("b.py", 0.2)]
    assert file_ranking(hits) == [("a.py", 0.9), ("b.py", 0.5), ("c.py", 0.5)]
    assert file_ranking([]) == []
    # Searcher order, equal scores: the first-seen file stays first, although trec_eval would
    # break the tie by path (z before a); rank_scores keeps the order through evaluate().
    ranked = [p for p, _ in file_ranking([hit("a.py", 0.7), hit("z.py", 0.7)])]
    assert ranked == ["a.py", "z.py"]
    run = {"q": rank_scores(ranked)}
    assert evaluate({"q": {"a.py": 1}}, run, k_values=(1,))["recall@1"] == 1.0
    assert evaluate({"q": {"a.py": 1}}, {"q": {"a.py": 0.7, "z.py": 0.7}}, k_values=(1,))["recall@1"] == 0.0


def test_load_queries_and_qrels(tmp_path):
    queries = load_repo_queries(write_queries(tmp_path / "q.jsonl", QUERIES))
    assert [q.qid for q in queries] == ["q1", "q2", "q3", "4", "q5"]
    assert queries[1].files == ("db/pool.py",)
    assert normalize_path(".\\src\\a.py") == "src/a.py"
    qrels, missing = build_qrels(queries, REPO)
    assert qrels["q3"] == {"core/engine.py": 1}
    assert "q5" not in qrels and len(qrels) == 4
    assert missing == [("q3", "core/gone.py"), ("q5", "does/not/exist.py")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "JSON object"),
        ('{"text": "x", "files": ["a.py"]}', "_id"),
        ('{"_id": "2", "text": "", "files": ["a.py"]}', "text"),
        ('{"_id": "2", "text": "x"}', "files"),
        ('{"_id": "2", "text": "x", "files": "a.py"}', "files"),
        ('{"_id": "2", "text": "x", "files": [3]}', "files"),
        ('{"_id": "1", "text": "x", "files": ["a.py"]}', "duplicate"),
    ],
)
def test_malformed_query_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "q.jsonl"
    path.write_text('{"_id": "1", "text": "ok", "files": ["a.py"]}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"q\.jsonl:3: .*{message}"):
        load_repo_queries(path)


def test_whole_file_bm25_by_hand():
    bm25 = FileBM25({
        "long.py": "tombstone " + "filler words about other things " * 20,
        "short.py": "tombstone tombstone tombstone",
        "other.py": "nothing relevant here",
    })
    try:
        ranked = [p for p, _ in bm25.search("tombstones", 10)]
        assert ranked == ["short.py", "long.py"]  # higher term frequency, shorter file
        assert bm25.search("xylophone", 10) == []
        assert bm25.search("!!!", 10) == []  # no words: no query at all
    finally:
        bm25.close()


# ------------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_eval_repo_cli_lexical_then_all_modes(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", REPO)
    queries = write_queries(tmp_path / "changes.jsonl", QUERIES)
    out = tmp_path / "lexical.json"
    result = run_cli("eval-repo", str(repo), str(queries), "--mode", "lexical", "--model", str(tiny_model_dir),
                     "--json", str(out))
    assert result.returncode == 0, result.stderr
    for title in ("Recall@1", "Recall@5", "Recall@10", "MRR@10", "bm25-files", "lexical"):
        assert title in result.stdout
    assert "2 listed file(s)" in result.stderr and "1 query(ies)" in result.stderr

    records = {r["mode"]: r for r in json.loads(out.read_text())}
    assert set(records) == {"lexical", "bm25-files"}
    baseline = records["bm25-files"]
    assert baseline["metrics"]["recall@1"] == pytest.approx(BASELINE["recall@1"])
    assert baseline["metrics"]["recall@5"] == pytest.approx(BASELINE["recall@5"])
    assert baseline["metrics"]["recall@10"] == pytest.approx(BASELINE["recall@10"])
    assert baseline["metrics"]["mrr@10"] == pytest.approx(BASELINE["mrr@10"])
    assert baseline["n_queries"] == 4 and baseline["n_docs"] == len(REPO) and baseline["missing_files"] == 2
    assert baseline["model"] is None and baseline["level"] == "file"
    # chunk BM25 finds q1, q2 and q3's file (only files with the words come back), never q4
    assert records["lexical"]["metrics"]["recall@10"] == pytest.approx(0.75)
    assert records["lexical"]["metrics"]["recall@1"] >= 0.5
    assert (repo / ".codeseer" / "state.json").is_file()

    # Again with the tiny model in every mode: the index is reused (nothing re-embedded).
    out2 = tmp_path / "all.json"
    result = run_cli("eval-repo", str(repo), str(queries), "--model", str(tiny_model_dir), "--json", str(out2),
                     *[arg for mode in ("locate", "hybrid", "dense", "lexical") for arg in ("--mode", mode)])
    assert result.returncode == 0, result.stderr
    assert "0 embedded" in result.stderr
    records = {r["mode"]: r for r in json.loads(out2.read_text())}
    assert set(records) == {"locate", "hybrid", "dense", "lexical", "bm25-files"}
    assert records["locate"]["ranker_weights"]["features"] == list(FEATURES)
    assert records["dense"]["model"] == str(tiny_model_dir.resolve())
    for rec in records.values():
        for key in BASELINE:
            assert 0.0 <= rec["metrics"][key] <= 1.0
    assert records["bm25-files"]["metrics"]["mrr@10"] == pytest.approx(BASELINE["mrr@10"])

    # eval-repo results compare like eval results
    result = run_cli("eval", "--compare", str(out), str(out2))
    assert result.returncode == 0, result.stderr
    assert "recall@5" in result.stdout and "+0.00" in result.stdout


def test_eval_repo_errors_are_one_line(tmp_path):
    repo = write_files(tmp_path / "repo", {"a.py": "def f():\n    return 1\n"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "f", "files": ["a.py"]}\n{"_id": "2", "text": "g"}\n', encoding="utf-8")
    for args, needle in [
        ((str(repo), str(bad)), "bad.jsonl:2"),
        ((str(repo), str(tmp_path / "missing.jsonl")), "missing.jsonl"),
        ((str(repo), str(bad), "--mode", "sparse"), "sparse"),
    ]:
        result = run_cli("eval-repo", *args)
        assert result.returncode == 1, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert not (repo / ".codeseer").exists()  # bad queries are caught before indexing
