"""The static --fast tier: distillation, fitting to the teacher on texts, the bundled model, `index --fast`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codeseer.errors import CodeseerError
from codeseer.models.distill import code_vocabulary, distill_static, fit_to_teacher
from codeseer.models.embedder import BUNDLED_DIR, STATIC_MODEL, Embedder, resolve_model

from conftest import run_cli, write_files

TEXTS = [f"def {verb}_{noun}(path):\n    return {verb}({noun}, path)" for verb in
         ("read", "write", "parse", "load", "save", "open", "close", "sort", "merge", "split")
         for noun in ("file", "config", "table", "user", "image", "socket", "cache", "token")]
TEXTS += [f"{verb} the {noun} from disk" for verb in ("read", "load", "parse") for noun in ("file", "config", "cache")]


def test_code_vocabulary_counts_identifiers():
    vocab = code_vocabulary(["isinstance(x, int) and isinstance(y, str)", "isinstance(z, int)", "x = 1"],
                            size=10, min_count=2)
    assert vocab[0] == "isinstance" and "int" in vocab and "str" not in vocab and "x" not in vocab  # too short


@pytest.fixture(scope="module")
def distilled(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("static")
    report = distill_static(str(tiny_model_dir), out, pca_dims=16)
    return out, report


def test_distill_writes_a_model2vec_folder(distilled):
    out, report = distilled
    assert report["dim"] == 16 and report["tokens"] > 29000 and report["added_words"] == 0
    assert json.loads((out / "config.json").read_text())["model_type"] == "model2vec"
    vectors = Embedder(str(out)).encode_documents(["def read_file(path): ..."])
    assert vectors.shape == (1, 16) and np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-3)


def test_fit_to_teacher_recovers_a_static_teacher(distilled, tmp_path):
    """A teacher that is itself a (hidden) static table: a perfect fit exists, so cosine must climb."""
    from model2vec import StaticModel

    static_dir, _ = distilled
    ids = StaticModel.from_pretrained(str(static_dir)).tokenize(TEXTS)
    hidden = np.random.default_rng(0).normal(size=(30522, 12)).astype(np.float32)
    targets = np.stack([hidden[t].mean(axis=0) for t in ids])
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    report = fit_to_teacher(static_dir, targets, TEXTS, tmp_path / "fitted", epochs=40, lr=0.05, batch_size=16,
                            holdout=0.2)
    # the least-squares start map already fits roughly; training cuts the held-out error (1 - cosine) 4x or more
    assert 1 - report["held_cosine_best"] < (1 - report["held_cosine_start"]) / 4
    assert report["best_epoch"] >= 1 and len(report["history"]) == 40 and report["dim"] == 12
    got = Embedder(str(tmp_path / "fitted")).encode_documents(TEXTS)
    assert got.shape == targets.shape  # saved in the teacher's dimension: E @ W folded in
    assert float(np.mean(np.sum(got * targets, axis=1))) > report["held_cosine_best"] - 0.01
    with pytest.raises(CodeseerError, match="teacher vectors"):
        fit_to_teacher(static_dir, targets[:3], TEXTS, tmp_path / "bad")


def test_bundled_static_model_resolves_and_embeds():
    resolved = resolve_model(STATIC_MODEL)
    assert resolved.name == STATIC_MODEL and resolved.location == str(BUNDLED_DIR / STATIC_MODEL)
    card = (BUNDLED_DIR / STATIC_MODEL / "README.md").read_text(encoding="utf-8")
    assert "nDCG@10" in card and "all-MiniLM-L6-v2" in card
    emb = Embedder(STATIC_MODEL)
    q, d, other = emb.encode_queries(["read a json file"])[0], *emb.encode_documents(
        ["def load_json(path):\n    with open(path) as fh:\n        return json.load(fh)",
         "def area(radius):\n    return math.pi * radius ** 2"])
    assert float(q @ d) > float(q @ other)


def test_index_fast_uses_the_static_model(tmp_path):
    repo = write_files(tmp_path / "repo", {
        "io_utils.py": '''
            import json

            def load_json(path):
                """Read a JSON file."""
                with open(path) as fh:
                    return json.load(fh)
        ''',
        "geometry.py": '''
            import math

            def circle_area(radius):
                return math.pi * radius ** 2
        ''',
    })
    done = run_cli("index", str(repo), "--fast", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == STATIC_MODEL
    hits = run_cli("search", "read json from a file", "--index", str(repo / ".codeseer"), "--json", "--mode", "dense")
    assert hits.returncode == 0, hits.stderr
    assert json.loads(hits.stdout)[0]["symbol"] == "load_json"
    clash = run_cli("index", str(repo), "--fast", "--model", "minilm")
    assert clash.returncode != 0 and "--fast" in clash.stderr


def test_cli_distill_with_pairs(tiny_model_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": f"query {i}: {t.split('(')[0]}", "positive": t, "task": "nl2code"}) + "\n"
                             for i, t in enumerate(TEXTS)), encoding="utf-8")
    out = tmp_path / "static"
    done = run_cli("distill", "--base", str(tiny_model_dir), "--pairs", str(pairs), "--code-texts", "50",
                   "--query-texts", "9", "--pca-dims", "16", "--epochs", "2", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fit"]["texts"] == 59 and report["fit"]["dim"] == 32 and report["distill"]["dim"] == 16
    assert Embedder(str(out)).encode_queries(["read the file"]).shape == (1, 32)
    missing = run_cli("distill", "--pairs", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 1 and "pairs file not found" in missing.stderr
