"""codeseer.eval.beir / codeseer.eval.hub: BEIR folders and hub-row conversion (offline)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from codeseer.eval.beir import TASKS, BeirDataset, doc_text, from_rows, load_beir
from codeseer.eval.hub import (
    COIR_TASKS,
    MTEB_TASKS,
    load_named,
    resolve_named,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _write_jsonl(path: Path, rows) -> None:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
        encoding="utf-8",
    )


def _make_beir(root: Path, *, meta=None, qrels_lines=None, split="test") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _write_jsonl(root / "corpus.jsonl", [
        {"_id": "c1", "title": "", "text": "def add(a, b):\n    return a + b"},
        {"_id": "c2", "title": "Sorting", "text": "sorted(xs)"},
        {"_id": 3, "text": "print('hi')"},  # numeric id, no title
    ])
    _write_jsonl(root / "queries.jsonl", [
        {"_id": "q1", "text": "add two numbers"},
        {"_id": "q2", "text": "sort a list"},
        {"_id": "q3", "text": "no judgements for me"},
    ])
    (root / "qrels").mkdir(exist_ok=True)
    if qrels_lines is None:
        qrels_lines = ["query-id\tcorpus-id\tscore", "q1\tc1\t1", "q2\tc2\t2", "q2\t3\t0"]
    (root / "qrels" / f"{split}.tsv").write_text("\n".join(qrels_lines) + "\n", encoding="utf-8")
    if meta is not None:
        (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


# ----------------------------------------------------------------- load_beir


def test_load_beir_basic(tmp_path):
    ds = load_beir(_make_beir(tmp_path / "tiny"))
    assert isinstance(ds, BeirDataset)
    assert ds.name == "tiny"
    assert ds.task == "nl2code"  # no meta.json -> default
    assert set(ds.corpus) == {"c1", "c2", "3"}
    assert ds.corpus["c2"] == {"title": "Sorting", "text": "sorted(xs)"}
    assert ds.corpus["3"] == {"title": "", "text": "print('hi')"}
    assert ds.queries == {"q1": "add two numbers", "q2": "sort a list"}  # q3 dropped
    assert ds.qrels == {"q1": {"c1": 1}, "q2": {"c2": 2, "3": 0}}
    assert "corpus=3" in repr(ds)


def test_load_beir_meta_task_and_split(tmp_path):
    root = _make_beir(tmp_path / "j2c", meta={"task": "code2code", "name": "java2cs"},
                      split="dev")
    ds = load_beir(root, split="dev")
    assert ds.task == "code2code" and ds.name == "java2cs"
    with pytest.raises(FileNotFoundError, match=r"test\.tsv"):
        load_beir(root)  # default split "test" does not exist here


def test_load_beir_qrels_without_header(tmp_path):
    ds = load_beir(_make_beir(tmp_path / "d", qrels_lines=["q1\tc1\t1"]))
    assert ds.qrels == {"q1": {"c1": 1}} and list(ds.queries) == ["q1"]


def test_load_beir_unknown_task(tmp_path):
    root = _make_beir(tmp_path / "d", meta={"task": "poetry"})
    with pytest.raises(ValueError, match=r"meta\.json.*poetry"):
        load_beir(root)


def test_load_beir_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_beir(tmp_path / "nope")
    root = _make_beir(tmp_path / "d")
    (root / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"queries\.jsonl"):
        load_beir(root)


def test_load_beir_bad_json_line(tmp_path):
    root = _make_beir(tmp_path / "d")
    _write_jsonl(root / "corpus.jsonl", [{"_id": "c1", "text": "x"}, '{"_id": "c2", "text": '])
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2: invalid JSON"):
        load_beir(root)
    _write_jsonl(root / "corpus.jsonl", ["[1, 2]"])
    with pytest.raises(ValueError, match=r"corpus\.jsonl:1: expected a JSON object"):
        load_beir(root)


def test_load_beir_missing_id(tmp_path):
    root = _make_beir(tmp_path / "d")
    _write_jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "a"}, "", {"text": "no id"}])
    with pytest.raises(ValueError, match=r"queries\.jsonl:3: missing '_id'"):
        load_beir(root)


def test_load_beir_bad_qrels_rows(tmp_path):
    root = _make_beir(tmp_path / "a", qrels_lines=["query-id\tcorpus-id\tscore", "q1\tc1\t1",
                                                   "q2 c2 1"])
    with pytest.raises(ValueError, match=r"test\.tsv:3: expected 3 tab-separated columns"):
        load_beir(root)
    root = _make_beir(tmp_path / "b", qrels_lines=["q1\tc1\t1\textra"])
    with pytest.raises(ValueError, match=r"test\.tsv:1: .*got 4"):
        load_beir(root)
    root = _make_beir(tmp_path / "c", qrels_lines=["q1\tc1\thigh"])
    with pytest.raises(ValueError, match=r"test\.tsv:1: score 'high'"):
        load_beir(root)
    root = _make_beir(tmp_path / "d", qrels_lines=["qX\tc1\t1"])
    with pytest.raises(ValueError, match=r"not found in queries.*qX"):
        load_beir(root)


# ------------------------------------------------------------------ doc_text


def test_doc_text():
    assert doc_text({"title": "Sorting", "text": "sorted(xs)"}) == "Sorting sorted(xs)"
    assert doc_text({"title": "", "text": "    return x"}) == "    return x"
    assert doc_text({"text": "x = 1"}) == "x = 1"
    assert doc_text({"title": "T", "text": ""}) == "T"
    assert doc_text({"title": " T ", "text": "body \n"}) == "T  body"
    assert doc_text({"title": None, "text": "y"}) == "y"
    assert doc_text("raw string") == "raw string"


# ------------------------------------------------------------ hub conversion

# Row layouts as published: MTEB (CoIR-Retrieval/<task> configs corpus/queries/
# default), coir-eval legacy (<task>-queries-corpus + <task>-qrels) and
# embedding-benchmark/* (plain "id").
MTEB_CORPUS = [
    {"_id": "d1", "partition": "test", "text": "def f(): pass", "title": "", "language": "python",
     "meta_information": {}},
    {"_id": "d2", "partition": "test", "text": "def g(): pass", "title": "", "language": "python",
     "meta_information": {}},
    {"_id": "d3", "partition": "train", "text": "def h(): pass", "title": "", "language": "python",
     "meta_information": {}},
]
MTEB_QUERIES = [
    {"_id": "q1", "partition": "test", "text": "define f", "title": "", "language": "en",
     "meta_information": {}},
    {"_id": "q2", "partition": "test", "text": "define g", "title": "", "language": "en",
     "meta_information": {}},
    {"_id": "q9", "partition": "train", "text": "train query", "title": "", "language": "en",
     "meta_information": {}},
]
MTEB_QRELS = [
    {"query-id": "q1", "corpus-id": "d1", "score": 1.0},
    {"query-id": "q2", "corpus-id": "d2", "score": 1.0},
]
LEGACY_QRELS = [
    {"query_id": "q1", "corpus_id": "d1", "score": 1},
    {"query_id": "q2", "corpus_id": "d2", "score": 1},
]


def test_from_rows_mteb_layout():
    ds = from_rows("coir:cosqa", MTEB_CORPUS, MTEB_QUERIES, MTEB_QRELS, task="nl2code")
    assert set(ds.corpus) == {"d1", "d2", "d3"}  # whole corpus kept, like CoIR/MTEB
    assert ds.corpus["d1"] == {"title": "", "text": "def f(): pass"}
    assert ds.queries == {"q1": "define f", "q2": "define g"}  # train query dropped
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert all(type(v) is int for r in ds.qrels.values() for v in r.values())
    assert ds.task == "nl2code" and ds.name == "coir:cosqa"


def test_from_rows_legacy_and_plain_id_layouts():
    ds = from_rows("legacy", iter(MTEB_CORPUS), iter(MTEB_QUERIES), iter(LEGACY_QRELS))
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    corpus = [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}]
    queries = [{"id": 10, "text": "qa"}]
    qrels = [{"query-id": "10", "corpus-id": "2", "score": 1}]
    ds = from_rows("eb", corpus, queries, qrels, task="nl2code")
    assert ds.corpus["2"]["text"] == "b" and ds.queries == {"10": "qa"}


def test_from_rows_errors_and_dangling_qrels(caplog):
    qrels = MTEB_QRELS + [{"query-id": "ghost", "corpus-id": "d1", "score": 1}]
    ds = from_rows("x", MTEB_CORPUS, MTEB_QUERIES, qrels)
    assert "ghost" not in ds.qrels and "ghost" in caplog.text
    with pytest.raises(ValueError, match="qrels row 0.*columns"):
        from_rows("x", MTEB_CORPUS, MTEB_QUERIES, [{"qid_typo": "q1", "corpus-id": "d1"}])
    with pytest.raises(ValueError, match="corpus row 1"):
        from_rows("x", [{"_id": "a", "text": "t"}, {"text": "no id"}], MTEB_QUERIES, MTEB_QRELS)
    with pytest.raises(ValueError, match="not an integer"):
        from_rows("x", MTEB_CORPUS, MTEB_QUERIES, [{"query-id": "q1", "corpus-id": "d1",
                                                    "score": 0.5}])
    with pytest.raises(ValueError, match="unknown task"):
        from_rows("x", MTEB_CORPUS, MTEB_QUERIES, MTEB_QRELS, task="poetry")


def test_task_tables():
    expected = {
        "cosqa": "nl2code", "apps": "nl2code", "synthetic-text2sql": "nl2code",
        "codetrans-dl": "code2code", "codetrans-contest": "code2code",
        "stackoverflow-qa": "qa", "codefeedback-st": "qa", "codefeedback-mt": "qa",
        "codesearchnet-ccr": "completion",
        # CoIR's CodeSearchNet retrieves the docstring for a code snippet.
        "codesearchnet": "code2nl",
    }
    assert {k: v[1] for k, v in COIR_TASKS.items()} == expected
    assert all(task in TASKS for _, task in MTEB_TASKS.values())


def test_resolve_named():
    src = resolve_named("coir:cosqa")
    assert (src.repo, src.corpus_config, src.queries_config, src.qrels_config, src.task) == (
        "CoIR-Retrieval/cosqa", "corpus", "queries", "default", "nl2code")
    assert src.legacy_base == "CoIR-Retrieval/cosqa"
    src = resolve_named("coir:codesearchnet/python")
    assert (src.repo, src.corpus_config, src.qrels_config, src.task, src.name) == (
        "CoIR-Retrieval/CodeSearchNet", "python-corpus", "python-qrels", "code2nl",
        "coir:codesearchnet/python")
    src = resolve_named("coir:CodeSearchNet-ccr-go")  # coir-eval's sub-task spelling
    assert (src.repo, src.queries_config, src.task, src.legacy_base) == (
        "CoIR-Retrieval/CodeSearchNet-ccr", "go-queries", "completion",
        "CoIR-Retrieval/CodeSearchNet-ccr-go")
    src = resolve_named("mteb:HumanEvalRetrieval")
    assert (src.repo, src.qrels_config, src.task, src.legacy_base) == (
        "mteb/HumanEvalRetrieval", "default", "nl2code", None)
    assert resolve_named("mteb:humanevalretrieval").repo == "mteb/HumanEvalRetrieval"
    assert resolve_named("mteb:someorg/SomeRepo").repo == "someorg/SomeRepo"
    assert resolve_named("mteb:BrandNewTask").repo == "mteb/BrandNewTask"
    for bad, msg in [("cosqa", "must look like"), ("beir:scifact", "unknown benchmark source"),
                     ("coir:nosuch", "unknown CoIR task"), ("coir:codesearchnet", "needs a language"),
                     ("coir:codesearchnet/cobol", "needs a language"),
                     ("coir:cosqa/python", "no language subsets"), ("mteb:", "missing")]:
        with pytest.raises(ValueError, match=msg):
            resolve_named(bad)


class _FakeHub:
    """Stands in for the ``datasets`` module: {(repo, config): {split: rows}}."""

    def __init__(self, tables):
        self.tables = tables
        self.calls = []

    def module(self):
        mod = types.ModuleType("datasets")
        mod.load_dataset = self.load_dataset
        return mod

    def load_dataset(self, path, name=None, **kwargs):
        self.calls.append((path, name, kwargs))
        if (path, name) not in self.tables:
            if not any(p == path for p, _ in self.tables):
                raise FileNotFoundError(f"Dataset '{path}' doesn't exist on the Hub")
            raise ValueError(f"BuilderConfig '{name}' not found")
        return self.tables[(path, name)]


def test_load_named_mteb_layout(monkeypatch):
    hub = _FakeHub({
        ("CoIR-Retrieval/cosqa", "corpus"): {"corpus": MTEB_CORPUS},
        ("CoIR-Retrieval/cosqa", "queries"): {"queries": MTEB_QUERIES},
        ("CoIR-Retrieval/cosqa", "default"): {"train": [], "test": MTEB_QRELS},
    })
    monkeypatch.setitem(sys.modules, "datasets", hub.module())
    ds = load_named("coir:cosqa", cache_dir="/tmp/hf", revision="abc")
    assert ds.name == "coir:cosqa" and ds.task == "nl2code"
    assert len(ds.corpus) == 3 and set(ds.queries) == {"q1", "q2"}
    assert ds.meta["source"] == "CoIR-Retrieval/cosqa"
    assert all(c[2] == {"cache_dir": "/tmp/hf", "revision": "abc"} for c in hub.calls)
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_named("coir:cosqa", split="dev")
    assert load_named("coir:cosqa", task="qa").task == "qa"


def test_load_named_legacy_coir_fallback(monkeypatch):
    hub = _FakeHub({
        ("CoIR-Retrieval/codetrans-dl-queries-corpus", None): {
            "corpus": MTEB_CORPUS, "queries": MTEB_QUERIES},
        ("CoIR-Retrieval/codetrans-dl-qrels", None): {"test": LEGACY_QRELS},
    })
    monkeypatch.setitem(sys.modules, "datasets", hub.module())
    ds = load_named("coir:codetrans-dl")
    assert ds.task == "code2code" and ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    # No legacy layout for MTEB specs: the hub error propagates.
    with pytest.raises(FileNotFoundError):
        load_named("mteb:HumanEvalRetrieval")


def test_load_named_without_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match="pip install datasets"):
        load_named("coir:cosqa")
    with pytest.raises(ImportError, match="pip install datasets"):
        load_named("mteb:HumanEvalRetrieval")


# ------------------------------------------------------------ shared datasets


@pytest.mark.parametrize(
    "name, n_docs, n_queries, task",
    [("cosqa-dev", 6267, 500, "nl2code"), ("java2cs-dev", 499, 499, "code2code")],
)
def test_shared_datasets(name, n_docs, n_queries, task):
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    ds = load_beir(path)
    assert (len(ds.corpus), len(ds.queries), ds.task) == (n_docs, n_queries, task)
    assert set(ds.qrels) == set(ds.queries)
    assert all(any(g > 0 for g in rels.values()) for rels in ds.qrels.values())
