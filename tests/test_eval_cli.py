"""`codeseer eval` end to end on a tiny BEIR fixture, result records, --compare, --dim, --plot, errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codeseer.eval.report import build_record, compare_records, load_records
from codeseer.eval.runner import truncate_dim
from codeseer.eval.significance import paired_from_records

from conftest import run_cli

# Each query names its answer with words no other document contains: BM25 must be perfect.
CORPUS = {
    "d1": "def retry_with_backoff(operation, attempts):\n    \"\"\"Retry a flaky operation, sleeping longer each time.\"\"\"",
    "d2": "def slugify(title):\n    return '-'.join(title.lower().split())",
    "d3": "class ConnectionPool:\n    \"\"\"Reuse database connections instead of opening new ones.\"\"\"",
    "d4": "def parse_iso_date(text):\n    return datetime.fromisoformat(text)",
    "d5": "def checksum_file(path):\n    return hashlib.sha256(open(path, 'rb').read()).hexdigest()",
    "d6": "def render_markdown(source):\n    return markdown.markdown(source)",
}
QUERIES = {
    "q1": ("retry flaky operation", "d1"),
    "q2": ("slugify a title", "d2"),
    "q3": ("database connections pool", "d3"),
    "q4": ("sha256 checksum of a file", "d5"),
}


def write_beir(root: Path, task: str | None = "code2code") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in CORPUS.items()), encoding="utf-8")
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items()), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in QUERIES.items()),
        encoding="utf-8")
    if task:
        (root / "meta.json").write_text(json.dumps({"task": task}), encoding="utf-8")
    return root


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # progress lines may come first
    assert "Traceback" not in result.stderr
    return errors[0]


# ------------------------------------------------------------------------------- --dim


def test_truncate_dim_renormalises_the_prefix():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(5, 16)).astype(np.float32)
    full /= np.linalg.norm(full, axis=1, keepdims=True)
    cut = truncate_dim(full, 4)
    assert cut.shape == (5, 4) and cut.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, rtol=1e-6)
    # proportional to the first 4 dims: same direction, only rescaled
    ratio = full[:, :4] / cut
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(4, axis=1), rtol=1e-5)
    np.testing.assert_allclose(ratio[:, 0], np.linalg.norm(full[:, :4], axis=1), rtol=1e-5)
    assert truncate_dim(full, None) is full
    np.testing.assert_allclose(truncate_dim(full, 16), full, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(truncate_dim(full[0], 3)), 1.0, rtol=1e-6)  # a single vector
    zero = np.zeros((1, 8), dtype=np.float32)
    assert not np.isnan(truncate_dim(zero, 2)).any()
    with pytest.raises(ValueError):
        truncate_dim(full, 17)
    with pytest.raises(ValueError):
        truncate_dim(full, 0)


# ------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_eval_lexical_dense_hybrid_json(tmp_path, tiny_model_dir):
    data = write_beir(tmp_path / "tiny-beir")
    out = tmp_path / "results" / "run.json"
    cache = tmp_path / "cache"
    result = run_cli("eval", str(data), "--model", str(tiny_model_dir), "--mode", "lexical", "--mode", "dense",
                     "--mode", "hybrid", "--json", str(out), "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    for title in ("nDCG@10", "MAP@10", "Recall@10", "Recall@100", "MRR@10", "encode s", "queries/s"):
        assert title in result.stdout
    assert "tiny-beir" in result.stdout

    records = json.loads(out.read_text())
    assert [(r["mode"], r["model"] is None) for r in records] == [("lexical", True), ("dense", False),
                                                                 ("hybrid", False)]
    lexical, dense, hybrid = records
    for rec in records:
        assert rec["dataset"] == "tiny-beir"
        assert rec["task"] == "code2code"  # from meta.json
        assert rec["n_queries"] == 4 and rec["n_docs"] == 6
        assert set(rec["versions"]) == {"codeseer", "torch", "sentence_transformers", "lancedb"}
        assert rec["versions"]["codeseer"]
        assert rec["timestamp"].endswith("+00:00")
        assert rec["queries_per_second"] > 0
        assert rec["encode_seconds"] >= 0
        for key in ("ndcg@10", "map@10", "recall@10", "recall@100", "mrr@10"):
            assert 0.0 <= rec["metrics"][key] <= 1.0
    assert lexical["metrics"]["ndcg@10"] == 1.0
    assert lexical["metrics"]["mrr@10"] == 1.0
    for rec in records:  # per-query scores for later significance tests; their mean is the metric
        per_query = rec["per_query"]
        assert per_query["query_ids"] == ["q1", "q2", "q3", "q4"]
        for key in ("ndcg@10", "mrr@10"):
            assert np.mean(per_query[key]) == pytest.approx(rec["metrics"][key], abs=1e-6)
    assert lexical["per_query"]["ndcg@10"] == [1.0, 1.0, 1.0, 1.0]
    assert lexical["dim"] is None
    assert dense["model"] == str(tiny_model_dir.resolve())
    assert dense["dim"] == 32 and dense["doc_vectors_cached"] is False
    assert dense["metrics"]["recall@100"] == 1.0  # 6 documents: all of them are returned
    assert list(cache.glob("docvec-*.npy"))

    # Second run: document vectors from the cache, truncated to 8 dims; --task overrides meta.json.
    out2 = tmp_path / "dim8.json"
    result = run_cli("eval", str(data), "--model", str(tiny_model_dir), "--mode", "dense", "--dim", "8",
                     "--task", "nl2code", "--json", str(out2), "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    assert "cached" in result.stdout
    (rec,) = json.loads(out2.read_text())
    assert rec["dim"] == 8 and rec["task"] == "nl2code" and rec["doc_vectors_cached"] is True
    assert rec["encode_seconds"] == 0.0

    result = run_cli("eval", str(data), "--model", str(tiny_model_dir), "--mode", "dense", "--dim", "64",
                     "--no-cache")
    assert "64" in one_error_line(result)


@pytest.mark.slow
def test_baseline_table_tests_every_run_against_the_baseline(tmp_path, tiny_model_dir):
    data = write_beir(tmp_path / "tiny-beir")
    saved = tmp_path / "runs.json"
    result = run_cli("eval", str(data), "--model", str(tiny_model_dir), "--baseline", "bm25", "--no-cache",
                     "--json", str(saved))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "against the baseline" in out and "lexical (baseline)" in out
    for title in ("Δ nDCG@10", "95% CI", "Δ MRR@10"):
        assert title in out
    table = out[out.index("against the baseline"):]
    lexical, *runs = json.loads(saved.read_text())
    assert [r["mode"] for r in runs] == ["dense", "hybrid"]
    for rec in runs:  # each row shows the paired test of its run against BM25, from the saved per-query scores
        row = next(line for line in table.splitlines() if f"│ {rec['mode']} " in line)
        test = paired_from_records(lexical, rec, "ndcg@10")
        assert test.exact and test.n == 4  # 2^4 sign assignments: p is a multiple of 1/16
        assert f"{100 * test.mean_diff:+.2f}" in row
        assert f"{test.p_value:.3f}" in row

    # a model baseline that the run does not list is added to it; its mode must be run
    result = run_cli("eval", str(data), "--mode", "dense", "--baseline", f"{tiny_model_dir}:dense", "--no-cache",
                     "--model", str(tiny_model_dir))
    assert result.returncode == 0, result.stderr
    assert "dense (baseline)" in result.stdout
    assert "dense" in one_error_line(run_cli("eval", str(data), "--mode", "lexical", "--baseline",
                                             f"{tiny_model_dir}:dense"))
    assert "--mode lexical" in one_error_line(run_cli("eval", str(data), "--mode", "dense", "--baseline", "bm25"))
    assert "model not found" in one_error_line(run_cli("eval", str(data), "--baseline", "no-such-model:hybrid"))


def test_lexical_only_never_loads_a_model(tmp_path):
    data = write_beir(tmp_path / "tiny-beir", task=None)
    out = tmp_path / "lex.json"
    result = run_cli("eval", str(data), "--mode", "lexical", "--model", str(tmp_path / "no-such-model"),
                     "--json", str(out))
    assert result.returncode == 0, result.stderr
    (rec,) = json.loads(out.read_text())
    assert rec["mode"] == "lexical" and rec["model"] is None and rec["task"] == "nl2code"  # the default task
    assert rec["metrics"]["ndcg@10"] == 1.0


def test_cli_import_does_not_import_torch():
    code = "import sys, codeseer.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------- --compare


def _rec(dataset, model, mode, ndcg, mrr=0.5):
    metrics = {"ndcg@10": ndcg, "map@10": 0.4, "recall@10": 0.7, "recall@100": 0.9, "mrr@10": mrr}
    return build_record(dataset=dataset, model=model, mode=mode, task="nl2code", dim=None, metrics=metrics,
                        encode_seconds=1.0, queries_per_second=10.0, n_queries=3, n_docs=9)


def test_compare_records_pairs_runs_by_dataset_model_mode():
    a = [_rec("cosqa", "m", "dense", 0.60), _rec("cosqa", None, "lexical", 0.38), _rec("old", "m", "dense", 0.1)]
    b = [_rec("cosqa", "m", "dense", 0.65, mrr=0.45), _rec("cosqa", None, "lexical", 0.38),
         _rec("new", "m", "dense", 0.2)]
    comparison = compare_records(a, b)
    rows = {(key, metric): (va, vb, diff) for key, metric, va, vb, diff in comparison.rows}
    assert rows[(("cosqa", "m", "dense"), "ndcg@10")] == pytest.approx((0.60, 0.65, 0.05))
    assert rows[(("cosqa", "m", "dense"), "mrr@10")][2] == pytest.approx(-0.05)
    assert rows[(("cosqa", None, "lexical"), "ndcg@10")][2] == 0.0
    assert {metric for (_, metric) in rows} == {"ndcg@10", "map@10", "recall@10", "recall@100", "mrr@10"}
    assert comparison.only_a == [("old", "m", "dense")]
    assert comparison.only_b == [("new", "m", "dense")]


def test_compare_tests_significance_where_both_files_kept_per_query_scores():
    a, b = _rec("cosqa", "m", "dense", 0.5), _rec("cosqa", "m", "dense", 0.8)
    a["per_query"] = {"query_ids": ["q1", "q2", "q3"], "ndcg@10": [0.5, 0.5, 0.5]}
    b["per_query"] = {"query_ids": ["q2", "q3", "q1"], "ndcg@10": [0.8, 0.8, 0.8]}
    comparison = compare_records([a], [b])
    test = comparison.tests[(("cosqa", "m", "dense"), "ndcg@10")]
    assert test.n == 3 and test.p_value == pytest.approx(2 / 8)  # exact: 3 equal gains
    assert (("cosqa", "m", "dense"), "mrr@10") not in comparison.tests  # no per-query MRR kept
    assert compare_records([_rec("cosqa", "m", "dense", 0.5)], [b]).tests == {}  # an old file: no test


def test_compare_cli(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps([_rec("cosqa", "m", "dense", 0.60), _rec("cosqa", None, "lexical", 0.40)]))
    b.write_text(json.dumps([_rec("cosqa", "m", "dense", 0.65), _rec("cosqa", None, "lexical", 0.35),
                             _rec("java", "m", "dense", 0.9)]))
    result = run_cli("eval", "--compare", str(a), str(b))
    assert result.returncode == 0, result.stderr
    assert "+5.00" in result.stdout and "-5.00" in result.stdout
    assert "60.00" in result.stdout and "65.00" in result.stdout
    assert "only in B" in result.stderr and "java" in result.stderr
    assert load_records(a)[0]["mode"] == "dense"

    bad = tmp_path / "bad.json"
    bad.write_text('[{"dataset": "x"}]')
    assert "bad.json" in one_error_line(run_cli("eval", "--compare", str(a), str(bad)))
    assert "missing.json" in one_error_line(run_cli("eval", "--compare", str(a), str(tmp_path / "missing.json")))


# ------------------------------------------------------------------------------- --plot, errors


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed")
def test_plot_without_matplotlib_is_one_clear_line_and_the_eval_still_runs(tmp_path):
    data = write_beir(tmp_path / "tiny-beir")
    png, out = tmp_path / "ndcg.png", tmp_path / "r.json"
    result = run_cli("eval", str(data), "--mode", "lexical", "--plot", str(png), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "error: matplotlib is not installed: pip install matplotlib" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert not png.exists()
    assert "nDCG@10" in result.stdout and out.is_file()


def test_bad_dataset_is_one_line(tmp_path):
    line = one_error_line(run_cli("eval", str(tmp_path / "nope")))
    assert "dataset not found" in line and "nope" in line

    data = write_beir(tmp_path / "broken")
    (data / "qrels" / "test.tsv").write_text("q1\td1\n", encoding="utf-8")
    line = one_error_line(run_cli("eval", str(data), "--mode", "lexical"))
    assert "test.tsv:1" in line

    assert "dataset" in one_error_line(run_cli("eval"))
    assert "mode" in one_error_line(run_cli("eval", str(tmp_path / "broken"), "--mode", "sparse"))
    assert "task" in one_error_line(run_cli("eval", str(data), "--task", "poetry"))


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None, reason="datasets is installed")
def test_hub_benchmark_without_datasets_package():
    line = one_error_line(run_cli("eval", "coir:cosqa"))
    assert "pip install datasets" in line


def test_compare_pairs_two_models_run_on_the_same_dataset_and_mode():
    a = [_rec("repos/attrs", "code-mini", "dense", 0.60), _rec("repos/attrs", None, "bm25-files", 0.4),
         _rec("cosqa", "code-mini", "dense", 0.5), _rec("cosqa", "other", "dense", 0.5)]
    b = [_rec("repos/attrs", "/runs/commit-mini", "dense", 0.70), _rec("repos/attrs", None, "bm25-files", 0.4),
         _rec("cosqa", "/runs/commit-mini", "dense", 0.55)]
    a[0]["per_query"] = {"query_ids": ["q1", "q2"], "mrr@10": [0.5, 0.7]}
    b[0]["per_query"] = {"query_ids": ["q1", "q2"], "mrr@10": [0.6, 0.8]}
    comparison = compare_records(a, b)
    rows = {(key, metric): diff for key, metric, _, _, diff in comparison.rows}
    key = ("repos/attrs", "code-mini → commit-mini", "dense")
    assert rows[(key, "ndcg@10")] == pytest.approx(0.10)
    assert comparison.tests[(key, "mrr@10")].mean_diff == pytest.approx(0.10)
    assert rows[(("repos/attrs", None, "bm25-files"), "ndcg@10")] == 0.0  # same run: paired as before
    # two models of A left for cosqa dense: which one B's run replaces is unknown, so nothing is paired
    assert not any(k[0] == "cosqa" for (k, _) in rows)
    assert ("cosqa", "/runs/commit-mini", "dense") in comparison.only_b and len(comparison.only_a) == 2
