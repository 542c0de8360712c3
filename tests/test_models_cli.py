"""`codeseer models` and `codeseer embed` as a user runs them (subprocesses, offline, tiny models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tiny_models as testing
from conftest import run_cli


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    return testing.build_qwen2(tmp_path_factory.mktemp("cli-qwen") / "qwen", padding_side="left")


def test_models_json_lists_offline_models_and_every_recipe_with_all_fields():
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    offline = {m["name"]: m for m in payload["offline"]}
    assert list(offline) == ["codeseer-code-mini", "codeseer-code-static", "sentence-transformers/all-MiniLM-L6-v2"]
    assert [m["name"] for m in offline.values() if m["default"]] == ["codeseer-code-mini"]
    mini, static = offline["codeseer-code-mini"], offline["codeseer-code-static"]
    assert mini["installed"] and mini["dim"] == 384 and mini["max_seq_length"] == 128
    assert 20 < mini["size_mb"] < 60 and 10 < static["size_mb"] < 40  # float16 weights, not fp32
    assert static["dim"] == 384 and "--fast" in static["role"]
    rows = payload["recipes"]
    ids = {r["hub_id"] for r in rows}
    assert {"jinaai/jina-code-embeddings-0.5b", "nomic-ai/CodeRankEmbed", "minishlab/potion-code-16M"} <= ids
    jina = next(r for r in rows if r["hub_id"] == "jinaai/jina-code-embeddings-1.5b")
    assert jina["prompts"]["qa"]["document"] == "Candidate answer:\n" and jina["non_commercial"] is True
    assert jina["matryoshka_dims"] == [128, 256, 512, 1024, 1536]


def test_embed_json_with_pooling_dim_and_recipe(qwen, tmp_path):
    texts = ["def add(a, b): return a + b", "read a csv file"]
    result = run_cli("embed", *texts, "--model", str(qwen), "--pooling", "mean", "--dim", "16", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["text"] for r in rows] == texts
    vectors = np.array([r["vector"] for r in rows])
    assert vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert "Matryoshka" in result.stderr  # untrained truncation is allowed, with a warning

    from codeseer.models.embedder import Embedder

    with pytest.warns(UserWarning):
        expected = Embedder(str(qwen), pooling="mean", dim=16).encode_queries(texts)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)

    from typer.testing import CliRunner

    from codeseer.cli import app

    # in-process (no second torch start-up); the licence warning is printed, not raised
    preview = CliRunner().invoke(app, ["embed", "def f(x): return x", "--model", str(qwen), "--recipe",
                                       "jinaai/jina-code-embeddings-0.5b", "--task", "code2code",
                                       "--role", "document"], catch_exceptions=False)
    assert preview.exit_code == 0, preview.output
    assert "dim=32" in preview.output


def test_embed_user_errors_are_one_line(qwen):
    result = run_cli("embed", "x", "--model", str(qwen), "--pooling", "max")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error:") and "pooling" in result.stderr
    assert "Traceback" not in result.stderr
