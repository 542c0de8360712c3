"""`codeseer train` end to end on a tiny random BERT: loss falls, checkpoints resume, the model reloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codeseer.errors import CodeseerError
from codeseer.train.config import TrainConfig
from codeseer.train.negatives import BM25, mine_hard_negatives, normalise
from codeseer.train.trainer import load_pairs, prepare_rows, train

from conftest import run_cli

OPS = [
    ("add two numbers", "a + b"), ("subtract one number from another", "a - b"),
    ("multiply two values", "a * b"), ("divide a by b", "a / b"), ("integer division", "a // b"),
    ("remainder of a division", "a % b"), ("raise a to the power b", "a ** b"),
    ("larger of two numbers", "max(a, b)"), ("smaller of two numbers", "min(a, b)"),
    ("check two values are equal", "a == b"), ("bitwise and of two integers", "a & b"),
    ("bitwise or of two integers", "a | b"), ("exclusive or", "a ^ b"),
    ("shift bits to the left", "a << b"), ("average of two numbers", "(a + b) / 2"),
    ("absolute difference", "abs(a - b)"),
]
STYLES = [
    ("{q}", "def {n}(a, b):\n    return {e}"),
    ("python function to {q}", "def {n}_values(a, b):\n    result = {e}\n    return result"),
    ("how to {q} in javascript", "function {n}(a, b) {{ return {e}; }}"),
    ("lambda that does: {q}", "{n} = lambda a, b: {e}"),
]


def _name(query: str) -> str:
    return "_".join(query.split()[:2])


def synthetic_pairs(n: int = 64) -> list[dict]:
    pairs = []
    for s, (qt, ct) in enumerate(STYLES):
        for q, e in OPS:
            pairs.append({"query": qt.format(q=q), "positive": ct.format(n=_name(q), e=e), "task": "nl2code",
                          "kind": "function", "language": "javascript" if "function" in ct else "python"})
    assert len({p["positive"] for p in pairs}) == len(pairs)
    return pairs[:n]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_beir(root: Path) -> Path:
    """A BEIR folder: 6 queries over 24 code documents."""
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": p["positive"]} for i, p in enumerate(synthetic_pairs(24))]
    queries = [{"_id": f"q{i}", "text": synthetic_pairs(24)[i]["query"]} for i in range(0, 24, 4)]
    write_jsonl(root / "corpus.jsonl", docs)
    write_jsonl(root / "queries.jsonl", queries)
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(0, 24, 4)), encoding="utf-8")
    (root / "meta.json").write_text(json.dumps({"task": "nl2code"}))
    return root


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from tiny_models import build_bert

    return build_bert(tmp_path_factory.mktemp("tiny-bert-st"), st_pooling="mean")


@pytest.fixture()
def pairs_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "pairs.jsonl", synthetic_pairs())


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]


COMMON = dict(batch_size=8, lr=1e-3, warmup_ratio=0.0, max_seq_length=48, log_every=1, progress=False)


def test_train_resume_reload(tiny_bert, pairs_file, tmp_path):
    dev = tiny_beir(tmp_path / "dev")
    out = tmp_path / "model"
    report = train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=out, max_steps=30, eval_every=10,
                               save_every=10, dev_dataset=dev, matryoshka_dims=[32, 16], freeze_layers=1,
                               **COMMON))
    assert report["global_step"] == 30
    assert report["counts"]["pairs"] == 64 and report["counts"]["train_rows"] == 64
    assert report["parameters"]["frozen_parameters"] > 0
    log = _log(out)
    losses = [r["loss"] for r in log if r["kind"] == "train"]
    assert len(losses) >= 25
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses
    evals = [r for r in log if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 10, 20, 30]
    assert all(0.0 <= r["ndcg@10"] <= 1.0 and 0.0 <= r["mrr@10"] <= 1.0 for r in evals)
    assert all({"step", "elapsed"} <= set(r) for r in log) and all("lr" in r for r in log if r["kind"] == "train")
    assert report["dev"]["queries"] == 6 and report["dev"]["docs"] == 24
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("checkpoint-"))
    assert ckpts == ["checkpoint-20", "checkpoint-30"]  # save_total_limit 2

    # weights on disk are float16 safetensors; loaders still compute in float32
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        dtypes = {str(fh.get_tensor(k).dtype) for k in fh.keys()}
    assert dtypes == {"torch.float16"}
    config = json.loads((out / "training_config.json").read_text())
    assert config["config"]["matryoshka_dims"] == [32, 16] and config["config"]["freeze_layers"] == 1
    assert config["counts"]["by_task"] == {"nl2code": 64} and config["train_seconds"] > 0
    assert config["weights_dtype"] == "float16" and config["config"]["loss"] == "infonce"

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(out), device="cpu")
    assert str(next(st.parameters()).dtype) == "torch.float32"
    vecs = st.encode(["add two numbers", "def add(a, b): return a + b"])
    assert vecs.shape == (2, 32) and np.isfinite(vecs).all()

    from codeseer.models.embedder import Embedder

    emb = Embedder(str(out), backend="torch")
    q = emb.encode_queries(["add two numbers"])
    d = emb.encode_documents(["def add(a, b):\n    return a + b"])
    assert q.shape == (1, 32) and d.shape == (1, 32)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)

    # a fresh run into the same folder is refused; --resume continues the step count
    with pytest.raises(CodeseerError, match="--resume"):
        train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=out, max_steps=30, eval_every=0, **COMMON))
    again = train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=out, max_steps=36, eval_every=0,
                              save_every=6, resume=True, matryoshka_dims=[32, 16], freeze_layers=1, **COMMON))
    assert again["resumed_from"].endswith("checkpoint-30")
    assert again["global_step"] == 36
    steps = [r["step"] for r in _log(out) if r["kind"] == "train"]
    assert steps[-1] == 36 and min(s for s in steps[steps.index(30) + 1:]) > 30
    assert "checkpoint-36" in {p.name for p in (out / "checkpoints").iterdir()}


def test_dev_subset_does_not_follow_the_run_seed(tiny_bert, pairs_file, tmp_path, monkeypatch):
    """Runs with different --seed must be scored on the same dev documents, or their curves are not comparable."""
    from codeseer.train import trainer

    dev = tiny_beir(tmp_path / "dev")
    build = trainer.build_dev_evaluator
    sampled = {seed: set(build(dev, None, max_docs=10, max_queries=None, seed=seed)[0].corpus) for seed in (0, 1, 2)}
    assert sampled[1] != sampled[2] and all(len(s) == 10 for s in sampled.values())  # the sample depends on its seed
    used = []

    def spy(*args, **kwargs):
        evaluator, info = build(*args, **kwargs)
        used.append(set(evaluator.corpus))
        return evaluator, info

    monkeypatch.setattr(trainer, "build_dev_evaluator", spy)
    for seed in (1, 2):
        train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=tmp_path / f"seed{seed}", max_steps=1,
                          eval_every=1, dev_dataset=dev, dev_max_docs=10, seed=seed, **COMMON))
    assert used == [sampled[0], sampled[0]]  # ... but train() always draws it with the fixed one


def test_kinds_max_pairs_and_merge_with_base(tiny_bert, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    rows = [dict(p, kind="search" if i % 2 else "name") for i, p in enumerate(synthetic_pairs(64))]
    path = write_jsonl(tmp_path / "kinds.jsonl", rows)
    runs = {}
    for merge in (1.0, 0.5):
        out = tmp_path / f"merge{merge}"
        runs[merge] = train(TrainConfig(base=str(tiny_bert), pairs=path, out=out, max_steps=8, eval_every=0,
                                        kinds=["search"], max_pairs=20, merge_base=merge, **COMMON))
        saved = [json.loads(line) for line in (out / "train_pairs.jsonl").read_text().splitlines()]
        assert len(saved) == 20 and {p["kind"] for p in saved} == {"search"}
        assert runs[merge]["config"]["merge_base"] == merge and runs[merge]["config"]["kinds"] == ["search"]
    weights = {m: SentenceTransformer(str(tmp_path / f"merge{m}"), device="cpu").state_dict() for m in (1.0, 0.5)}
    base = SentenceTransformer(str(tiny_bert), device="cpu").state_dict()
    name = next(k for k in base if k.endswith("encoder.layer.1.attention.self.query.weight"))
    moved = (weights[1.0][name].float() - base[name].float()).abs().max().item()
    assert moved > 1e-3  # training changed the layer ...
    # ... and the merged model sits halfway (float16 storage rounds it)
    assert torch.allclose(weights[0.5][name].float(), (weights[1.0][name].float() + base[name].float()) / 2, atol=2e-3)
    with pytest.raises(CodeseerError, match="no pairs of kind"):
        train(TrainConfig(base=str(tiny_bert), pairs=path, out=tmp_path / "none", kinds=["code2nl"], **COMMON))
    with pytest.raises(CodeseerError, match="merge-base"):
        train(TrainConfig(base=str(tiny_bert), pairs=path, out=tmp_path / "bad", merge_base=0.0, **COMMON))


def test_gist_loss_trains_and_its_guide_stays_frozen(tiny_bert, pairs_file, tmp_path):
    from sentence_transformers import SentenceTransformer

    from codeseer.train.losses import build_loss

    model = SentenceTransformer(str(tiny_bert), device="cpu")
    loss = build_loss(model, "gist")
    assert loss.guide is not model and not any(p.requires_grad for p in loss.guide.parameters())
    assert abs(loss.temperature - 0.05) < 1e-9
    report = train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=tmp_path / "gist", loss="gist",
                               max_steps=12, eval_every=0, **COMMON))
    assert report["config"]["loss"] == "gist" and report["last_loss"] < report["first_loss"]


def test_oasis_with_bm25_negatives_and_prefixes(tiny_bert, pairs_file, tmp_path):
    out = tmp_path / "oasis"
    recipe = "jinaai/jina-code-embeddings-0.5b"  # a recipe whose prefixes depend on the task
    report = train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=out, recipe=recipe, loss="oasis",
                               hard_negatives=2, max_steps=6, eval_every=0, mini_batch_size=4, **COMMON))
    assert report["global_step"] == 6 and np.isfinite(report["last_loss"])
    assert report["query_prefixes"]["nl2code"].startswith("Find the most relevant code snippet")
    assert report["document_prefixes"]["nl2code"] == "Candidate code snippet:\n"
    rows = load_pairs(out / "train_pairs.jsonl")
    assert all(len(r["negatives"]) == 2 and len(r["negative_grades"]) == 2 for r in rows)
    assert all(0.0 <= g <= 1.0 for r in rows for g in r["negative_grades"])
    assert all(normalise(n) != normalise(r["positive"]) for r in rows for n in r["negatives"])
    assert (out / "model.safetensors").is_file()


def test_distill_from_a_teacher_ensemble_trains_and_resumes_without_encoding_again(tiny_bert, pairs_file, tmp_path):
    from tiny_models import build_bert
    from codeseer.train.teachers import TEACHER_FILE, load_or_encode

    other = build_bert(tmp_path / "other-teacher", seed=3, st_pooling="cls")
    out = tmp_path / "distill"
    said: list[str] = []
    report = train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=out, loss="distill",
                               teachers=["base", str(other)], hard_negatives=1, max_steps=12, save_every=6,
                               eval_every=0, mini_batch_size=4, **COMMON), echo=said.append)
    assert report["config"]["teachers"] == ["base", str(other)] and report["last_loss"] < report["first_loss"]
    assert report["negatives"]["teacher"]["dim"] == 64  # two 32-d teachers side by side
    assert sum("encoding" in line for line in said) == 2
    with np.load(out / TEACHER_FILE) as saved:  # one row per pair for the query, positive and negative columns
        assert [saved[f"col{c}"].shape for c in range(3)] == [(64, 64)] * 3
        # each teacher's half is a unit vector scaled by sqrt(1/2), so rows have norm 1
        np.testing.assert_allclose(np.linalg.norm(saved["col1"], axis=1), 1.0, atol=1e-5)
    said.clear()
    again = train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=out, loss="distill",
                              teachers=["base", str(other)], hard_negatives=1, max_steps=18, eval_every=0,
                              mini_batch_size=4, resume=True, **COMMON), echo=said.append)
    assert again["global_step"] == 18 and again["negatives"]["teacher"]["reused"].endswith(TEACHER_FILE)
    assert not any("encoding" in line for line in said)
    rows = load_pairs(out / "train_pairs.jsonl")  # same count and teachers, one query changed: not reused
    rows[0] = {**rows[0], "query": rows[0]["query"] + " quickly"}
    said.clear()
    _, note = load_or_encode(out, rows, 1, ["base", str(other)], base=str(tiny_bert), max_seq_length=48,
                             echo=said.append)
    assert "reused" not in note and sum("encoding" in line for line in said) == 2
    with pytest.raises(CodeseerError, match="--teacher"):
        train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=tmp_path / "no-teacher", loss="distill",
                          max_steps=1, eval_every=0, **COMMON))
    with pytest.raises(CodeseerError, match="distill only"):
        train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=tmp_path / "teacher-infonce",
                          teachers=["base"], max_steps=1, eval_every=0, **COMMON))


def test_prepare_rows_applies_task_prefixes():
    from codeseer.models.registry import get_recipe

    pairs = [{"query": "sort a list", "positive": "sorted(xs)", "task": "nl2code", "negatives": ["len(xs)"],
              "negative_grades": [0.25]},
             {"query": "def f(x): return x", "positive": "identity function", "task": "code2nl",
              "negatives": ["adds one"], "negative_grades": [0.5]}]
    jina = get_recipe("jinaai/jina-code-embeddings-0.5b")
    cols = prepare_rows(pairs, jina, 1)
    assert cols["anchor"][0] == jina.prefix("nl2code", "query") + "sort a list"
    assert cols["positive"][0] == "Candidate code snippet:\nsorted(xs)"
    assert cols["negative_1"][0] == "Candidate code snippet:\nlen(xs)"
    assert cols["anchor"][1].startswith("Find the most relevant comment")
    assert cols["positive"][1] == "Candidate comment:\nidentity function"
    assert cols["label"] == [[0.25], [0.5]]
    plain = prepare_rows(pairs, get_recipe("minilm"), 0)  # MiniLM: no prefixes
    assert plain == {"anchor": ["sort a list", "def f(x): return x"], "positive": ["sorted(xs)", "identity function"]}


def test_bm25_mining_respects_margin_and_duplicates():
    pairs = [
        {"query": "parse a json file", "positive": "def load(path):\n    return json.load(open(path))", "task": "nl2code"},
        # scores above the positive for the first query: a likely false negative, must be dropped
        {"query": "something else", "positive": "def parse_json_file(path):\n    # parse a json file\n    return parse(path)", "task": "nl2code"},
        # the first positive again, reformatted: not a negative
        {"query": "read config", "positive": "def load(path):  return json.load(open(path))", "task": "nl2code"},
        # share a word with the query, score below the positive: the hard negatives
        *[{"query": f"writer {i}", "positive": f"def write_{i}(path, text):\n    with open(path, 'w') as handle:\n"
                                               f"        handle.write(text)  # write file number {i}", "task": "nl2code"}
          for i in range(8)],
    ]
    mined = mine_hard_negatives(pairs, 3, source="bm25", margin=0.95)
    first = mined[0]
    assert len(first["negatives"]) == 3
    assert all(normalise(n) != normalise(first["positive"]) for n in first["negatives"])
    assert not any("parse_json_file" in n for n in first["negatives"])
    docs = list({normalise(p["positive"]): p["positive"] for p in pairs}.values())
    scores = BM25(docs).scores([first["query"]])[0]
    index = {normalise(d): i for i, d in enumerate(docs)}
    pos = scores[index[normalise(first["positive"])]]
    assert scores[index[normalise(pairs[1]["positive"])]] >= 0.95 * pos  # the guard had something to do
    assert all(scores[index[normalise(n)]] < 0.95 * pos for n in first["negatives"])
    for row in mined:
        assert all(normalise(n) != normalise(row["positive"]) for n in row["negatives"])
        assert len({normalise(n) for n in row["negatives"]}) == len(row["negatives"])
    with pytest.raises(CodeseerError, match="margin"):
        mine_hard_negatives(pairs, 2, margin=1.5)


def test_dense_mining_with_base_model(tiny_bert):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_bert), device="cpu")
    pairs = synthetic_pairs(16)
    mined = mine_hard_negatives(pairs, 2, source="model", model=model, margin=1.0)
    assert all(len(r["negatives"]) == 2 for r in mined)
    assert all(normalise(n) != normalise(r["positive"]) for r in mined for n in r["negatives"])


def test_cli_json_and_errors(tiny_bert, pairs_file, tmp_path):
    from typer.testing import CliRunner

    from codeseer.cli import app

    out = tmp_path / "cli-model"
    general = write_jsonl(tmp_path / "general.jsonl", [{"query": f"what is {w}", "positive": f"{w} is a word"}
                                                       for w in ("tea", "rain", "moss", "iron", "salt")])
    result = CliRunner().invoke(app, ["train", "--pairs", str(pairs_file), "--out", str(out), "--base", str(tiny_bert),
                                      "--max-steps", "3", "--batch-size", "8", "--max-seq-length", "32",
                                      "--eval-every", "0", "--lr", "1e-4", "--mix-general", str(general), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout holds the report and nothing else
    assert report["global_step"] == 3 and report["out"] == str(out)
    assert report["counts"]["general_pairs"] == 5 and report["counts"]["train_rows"] == 69
    assert report["config"]["dev_dataset"] is None
    assert (out / "training_config.json").is_file()

    help_text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    for option in ("--hard-negatives", "--mini-batch-size", "--matryoshka-dims", "--resume", "--freeze-layers"):
        assert option in help_text

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "q", "positive": "p"}) + "\n{not json\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    cases = [
        (["--pairs", str(tmp_path / "missing.jsonl")], "pairs file not found"),
        (["--pairs", str(empty)], "pairs file is empty"),
        (["--pairs", str(bad)], "bad.jsonl:2: invalid JSON"),
        (["--pairs", str(pairs_file), "--loss", "triplet"], "unknown loss 'triplet'"),
        (["--pairs", str(pairs_file), "--base", str(tmp_path / "no-such-model")], "base model not found"),
    ]
    for args, message in cases:
        res = CliRunner().invoke(app, ["train", *args, "--out", str(tmp_path / "x"), "--json"])
        assert res.exit_code != 0
        assert isinstance(res.exception, CodeseerError) and message in str(res.exception), (args, res.exception)

    # as a user sees it: one line on stderr, exit status 1
    proc = run_cli("train", "--pairs", str(bad), "--out", str(tmp_path / "y"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: {bad}:2: invalid JSON (Expecting property name enclosed in double quotes)"]


def test_train_config_holds_the_defaults_and_the_checks():
    import re

    from codeseer.train.config import DEV_ENV
    from codeseer.train.losses import DEFAULT_GRADE_MARGIN, DEFAULT_ORDER_WEIGHT
    from codeseer.train.negatives import DEFAULT_MARGIN

    default = TrainConfig()  # config.py cannot import these (torch, lancedb): the values must agree
    assert (default.margin, default.order_weight, default.grade_margin) == (DEFAULT_MARGIN, DEFAULT_ORDER_WEIGHT,
                                                                            DEFAULT_GRADE_MARGIN)
    assert default.dev_dataset is None and DEV_ENV == "CODESEER_DEV_DATASET"  # no dev set unless one is named
    recorded = default.recorded()  # the report's "config": the knobs, not where or how the run happened
    assert list(recorded)[0] == "base" and list(recorded)[-1] == "distill_weight"
    assert not {"out", "device", "progress"} & set(recorded)
    ok = TrainConfig(pairs=Path("p.jsonl"), out="m", loss=" InfoNCE ", mix_general="g.jsonl").validate()
    assert (ok.loss, ok.pairs, ok.mix_general, ok.teachers, ok.out) == ("infonce", ["p.jsonl"], ["g.jsonl"], None,
                                                                        Path("m"))
    cases = [
        ({"loss": "triplet"}, "unknown loss 'triplet': choose infonce or gist or oasis or distill"),
        ({"negatives_from": "web"}, "unknown --negatives-from 'web': choose bm25 or model"),
        ({"grades": "gut"}, "unknown --grades 'gut': choose edit or teacher"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"max_seq_length": 0}, "--max-seq-length must be at least 1"),
        ({"mini_batch_size": 0}, "--mini-batch-size must be at least 1"),
        ({"hard_negatives": -1}, "--hard-negatives and --freeze-layers must be >= 0"),
        ({"max_steps": 0}, "--max-steps must be at least 1"),
        ({"merge_base": 0.0}, "--merge-base must be in (0, 1]"),
        ({"mix_fraction": 1.0}, "--mix-fraction must be in [0, 1)"),
        ({"loss": "distill", "teachers": [" "]}, "--loss distill needs at least one --teacher MODEL (or 'base')"),
        ({"teachers": ["base"]}, "--teacher is used by --loss distill only"),
        ({"distill_weight": -1.0}, "--distill-weight must be >= 0"),
        ({"max_pairs": 0}, "--max-pairs must be at least 1"),
        ({"out": None}, "no output folder given (--out)"),
    ]
    for knobs, message in cases:
        with pytest.raises(CodeseerError, match=f"^{re.escape(message)}$"):
            TrainConfig(**{"pairs": ["p.jsonl"], "out": "m", **knobs}).validate()


def test_cli_dev_set_comes_from_dev_or_the_environment_only(tiny_bert, pairs_file, tmp_path):
    """No dev set is found through the checkout layout: --dev, else $CODESEER_DEV_DATASET, else no dev metric."""
    from typer.testing import CliRunner

    from codeseer.cli import app
    from codeseer.train.config import DEV_ENV

    dev = tiny_beir(tmp_path / "dev")
    args = ["train", "--pairs", str(pairs_file), "--base", str(tiny_bert), "--max-steps", "2", "--batch-size", "8",
            "--max-seq-length", "32", "--eval-every", "2"]
    runner = CliRunner()

    def run(name: str, *extra: str, env_dev: str | None) -> tuple[dict, str]:
        out = tmp_path / name
        result = runner.invoke(app, [*args, "--out", str(out), *extra], env={DEV_ENV: env_dev})
        assert result.exit_code == 0, result.output
        return json.loads((out / "training_config.json").read_text()), result.output

    from_env, _ = run("env", "--json", env_dev=str(dev))
    assert from_env["dev"]["queries"] == 6 and from_env["config"]["dev_dataset"] == str(dev)
    from_option, _ = run("option", "--dev", str(dev), "--json", env_dev=None)
    assert from_option["dev"]["queries"] == 6 and from_option["config"]["dev_dataset"] == str(dev)
    skipped, _ = run("skipped", "--dev", "none", "--json", env_dev=str(dev))
    assert skipped["dev"] is None and skipped["config"]["dev_dataset"] is None
    neither, printed = run("neither", env_dev=None)  # the printed report says there is no dev metric, and why
    assert neither["dev"] is None and neither["config"]["dev_dataset"] is None
    assert "no dev metric: no dev set given (--dev or $CODESEER_DEV_DATASET)" in printed


def test_bf16_autocast_on_the_cpu_where_it_has_native_bf16(tiny_bert, pairs_file, tmp_path, monkeypatch):
    """--precision auto trains under bf16 autocast on a CPU with AVX-512 BF16 / AMX (several times faster
    there), fp32 elsewhere; the same steps under bf16 give close but not identical losses."""
    import codeseer.models.embedder as embedder_module
    import torch
    from codeseer.train.trainer import uses_bf16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native in (True, False):
        monkeypatch.setattr(embedder_module, "native_bf16", lambda native=native: native)
        assert uses_bf16("auto", None) is native
    assert uses_bf16("bf16", None) and not uses_bf16("fp32", None)
    runs = {}
    for precision in ("bf16", "fp32"):
        out = tmp_path / precision
        runs[precision] = train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=out, max_steps=4, eval_every=0,
                                            precision=precision, **COMMON))
        assert runs[precision]["config"]["precision"] == precision
    assert runs["bf16"]["bf16"] is True and runs["fp32"]["bf16"] is False
    first = {p: [r["loss"] for r in _log(tmp_path / p) if r["kind"] == "train"][0] for p in runs}
    assert np.isfinite(first["bf16"]) and first["bf16"] != first["fp32"]  # autocast really ran
    assert abs(first["bf16"] - first["fp32"]) < 0.05 * first["fp32"]
    with pytest.raises(CodeseerError, match="unknown --precision"):
        TrainConfig(pairs=[pairs_file], out=tmp_path / "x", precision="fp8").validate()


def test_a_decoder_trained_with_the_jina_recipe_is_queried_with_its_prefixes_as_the_recipe_says(tmp_path):
    """The published recipe end to end, for users with a GPU: a tiny random Qwen2 trained with
    jina-code-embeddings' recipe (last-token pooling, per-task prefixes, Matryoshka dims) encodes, once
    saved, exactly as `codeseer embed --recipe` does for that recipe, and as the card's reference does."""
    import warnings

    import torch
    from test_models_encoding import last_token_pool
    from tiny_models import build_qwen2
    from transformers import AutoModel, AutoTokenizer

    from codeseer.models.embedder import Embedder
    from codeseer.models.registry import get_recipe

    jina = get_recipe("jinaai/jina-code-embeddings-0.5b")
    base = build_qwen2(tmp_path / "qwen", padding_side="left", eos_in_template=True)
    pairs = write_jsonl(tmp_path / "p.jsonl", synthetic_pairs())
    out = tmp_path / "trained"
    report = train(TrainConfig(base=str(base), recipe=jina.hub_id, pairs=pairs, out=out, max_steps=3,
                               eval_every=0, matryoshka_dims=[32, 16], **COMMON))
    assert report["global_step"] == 3 and report["config"]["recipe"] == jina.hub_id
    texts = ["sort a list of dicts by key", "def add(a, b):\n    return a + b"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recipe's licence is non-commercial: a warning, not an error
        for task in ("nl2code", "code2code"):
            saved, explicit = Embedder(str(out), task=task), Embedder(str(out), recipe=jina.hub_id, task=task)
            assert saved.recipe is jina and (saved.pooling, saved.tokenizer.padding_side) == ("last", "left")
            assert saved.query_prefix == jina.prefix(task, "query") != ""
            np.testing.assert_array_equal(saved.encode_queries(texts), explicit.encode_queries(texts))
            np.testing.assert_array_equal(saved.encode_documents(texts), explicit.encode_documents(texts))
        queries = Embedder(str(out)).encode_queries(texts)
    tok = AutoTokenizer.from_pretrained(str(out))
    model = AutoModel.from_pretrained(str(out), dtype=torch.float32).eval()
    batch = tok([jina.prefix("nl2code", "query") + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = torch.nn.functional.normalize(
            last_token_pool(model(**batch).last_hidden_state, batch["attention_mask"]), dim=-1).numpy()
    np.testing.assert_allclose(queries, expected, atol=1e-4)


def test_mixed_rows_keep_their_own_hard_negatives_and_the_rest_are_filled_at_random(tmp_path):
    import random

    from codeseer.train.data import _with_negatives

    mined = [dict(p, negatives=[f"def near_{i}_{j}(): pass" for j in range(2 + i % 2)])
             for i, p in enumerate(synthetic_pairs(8))]  # commit pairs: 2 or 3 same-file negatives
    general = synthetic_pairs(16)[8:]  # docstring pairs: none
    rows = [dict(p) for p in mined + general]
    cfg = TrainConfig(pairs=tmp_path / "p.jsonl", out=tmp_path / "out")
    out, k, note = _with_negatives(cfg, rows, None, None, random.Random(0), lambda _: None)
    assert k == 2
    assert all(len(r["negatives"]) == 2 for r in out)
    for r, m in zip(out[:8], mined):  # their own hardest (first) negatives, unchanged
        assert r["negatives"] == m["negatives"][:2]
    positives = {p["positive"] for p in mined + general}
    for r in out[8:]:  # topped up with other rows' positives, never their own
        assert set(r["negatives"]) <= positives and r["positive"] not in r["negatives"]
    assert note["random_fill"] == 2 * len(general)


def test_a_trained_model_is_saved_float16_with_its_card_and_no_card_error(tiny_bert, pairs_file, tmp_path, caplog):
    import logging

    from safetensors import safe_open

    with caplog.at_level(logging.WARNING):
        train(TrainConfig(base=str(tiny_bert), pairs=pairs_file, out=tmp_path / "out", max_steps=2, eval_every=0,
                          **COMMON))
    assert not [r.getMessage() for r in caplog.records if "usage snippet" in r.getMessage()]
    assert (tmp_path / "out" / "README.md").is_file()
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "np") as fh:
        assert {str(fh.get_tensor(k).dtype) for k in fh.keys()} == {"float16"}
