"""`codeseer train --batches repository`: each batch from one repository, no text twice, every row once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeseer.errors import CodeseerError
from codeseer.train.config import TrainConfig
from codeseer.train.data import repository_of


def _dataset(rows: list[dict]):
    from datasets import Dataset

    return Dataset.from_dict({"anchor": [r["query"] for r in rows], "positive": [r["positive"] for r in rows]})


def _rows(repo: str | None, n: int, shared_queries: bool = False) -> list[dict]:
    """n rows of one repository; with ``shared_queries`` rows 2k and 2k+1 share their query (one
    commit that touched two functions)."""
    tag = repo or "loose"
    return [{"query": f"{tag} change {i // 2 if shared_queries else i}", "positive": f"def {tag}_{i}(): pass",
             "repo": repo} for i in range(n)]


def _sampler(rows: list[dict], batch_size: int, drop_last: bool = False, seed: int = 0):
    from codeseer.train.batching import RepositoryBatchSampler

    return RepositoryBatchSampler(_dataset(rows), batch_size=batch_size, drop_last=drop_last, seed=seed,
                                  groups=[r["repo"] for r in rows])


def test_repository_of_reads_the_field_or_mine_gits_source():
    assert repository_of({"repo": "owner/name", "source": "x"}) == "owner/name"
    assert repository_of({"source": "abseil/abseil-cpp@7f04c284484d:absl/strings/escaping.cc:1178"}) == \
        "abseil/abseil-cpp"
    assert repository_of({"source": "tools-repo@0123abcd4567:src/util.py:3"}) == "tools-repo"  # no remote
    assert repository_of({"source": "/venv/lib/python3.11/site-packages/accelerate/local_sgd.py:88"}) is None
    assert repository_of({"source": "node_modules/@types/node/fs.d.ts:3"}) is None
    assert repository_of({"query": "q", "positive": "p"}) is None


def test_each_batch_comes_from_one_repository_and_every_row_once():
    rows = _rows("a/a", 8) + _rows("b/b", 8) + _rows("c/c", 5) + _rows(None, 3)
    batches = list(_sampler(rows, batch_size=4))
    assert sorted(i for b in batches for i in b) == list(range(len(rows)))
    repos = [{rows[i]["repo"] for i in b} for b in batches]
    # a/a and b/b fill two batches each, c/c one; its fifth row joins the three loose ones
    assert sorted(next(iter(r)) for r in repos if len(r) == 1 and None not in r) == \
        ["a/a", "a/a", "b/b", "b/b", "c/c"]
    assert {"c/c", None} in repos
    assert len(_sampler(rows, batch_size=4)) == len(batches) == 6


def test_rows_sharing_a_query_never_share_a_batch():
    rows = _rows("d/d", 8, shared_queries=True) + _rows("e/e", 6, shared_queries=True)
    batches = list(_sampler(rows, batch_size=4))
    assert sorted(i for b in batches for i in b) == list(range(len(rows)))
    for batch in batches:
        queries = [rows[i]["query"] for i in batch]
        assert len(set(queries)) == len(queries), queries
    # d/d: four distinct queries, twice each: two full batches of its own
    assert sum(1 for b in batches if {rows[i]["repo"] for i in b} == {"d/d"} and len(b) == 4) == 2


def test_order_is_seeded_per_epoch_and_drop_last_drops_the_short_batch():
    rows = _rows("a/a", 12) + _rows("b/b", 12) + _rows(None, 5)
    first, again = _sampler(rows, batch_size=4), _sampler(rows, batch_size=4)
    assert list(first) == list(again)  # --resume replays the same order
    other = _sampler(rows, batch_size=4)
    other.set_epoch(1)
    assert list(other) != list(first)
    assert sorted(i for b in other for i in b) == list(range(len(rows)))
    dropped = list(_sampler(rows, batch_size=4, drop_last=True))
    assert all(len(b) == 4 for b in dropped) and sum(map(len, dropped)) == 28


def test_the_option_is_checked_and_needs_pairs_that_name_a_repository(tmp_path):
    from codeseer.train.trainer import _batch_sampler

    with pytest.raises(CodeseerError, match="--batches"):
        TrainConfig(batches="by-language", pairs=["p.jsonl"], out=tmp_path).validate()
    cfg = TrainConfig(batches="repository", pairs=["p.jsonl"], out=tmp_path).validate()
    with pytest.raises(CodeseerError, match="no pair names its repository"):
        _batch_sampler(cfg, [{"query": "q"}, {"query": "r"}])
    assert _batch_sampler(TrainConfig(pairs=["p.jsonl"], out=tmp_path).validate(), [{"query": "q"}]) is None


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from tiny_models import build_bert

    return build_bert(tmp_path_factory.mktemp("tiny-bert-batching"), st_pooling="mean")


def test_a_run_trains_on_repository_batches_and_keeps_the_repository_of_each_row(tiny_bert, tmp_path, monkeypatch):
    from codeseer.train import batching
    from codeseer.train.trainer import train

    seen: list[set] = []
    original = batching.RepositoryBatchSampler.__iter__

    def recording(self):
        for batch in original(self):
            seen.append({self.groups[i] for i in batch})
            yield batch

    monkeypatch.setattr(batching.RepositoryBatchSampler, "__iter__", recording)
    pairs = [{"query": f"fix {r} bug {i}", "positive": f"def {r.replace('/', '_')}_{i}(x):\n    return x + {i}",
              "task": "nl2code", "kind": "commit", "source": f"{r}@{'ab' * 6}:src/m.py:{i}"}
             for r in ("org/one", "org/two") for i in range(16)]
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    report = train(TrainConfig(base=str(tiny_bert), pairs=[str(pairs_file)], out=tmp_path / "out", max_steps=4,
                               batch_size=8, eval_every=0, batches="repository", max_seq_length=32,
                               progress=False))
    assert report["config"]["batches"] == "repository"
    assert seen and all(len(groups) == 1 for groups in seen), seen
    saved = [json.loads(line) for line in (tmp_path / "out" / "train_pairs.jsonl").read_text().splitlines()]
    assert {row["repo"] for row in saved} == {"org/one", "org/two"}
