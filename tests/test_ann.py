"""ANN search past a size threshold (lowered here): built before the commit point, kept up to date, high recall.

Vectors come from a stand-in model (hashed identifier pieces, projected to 64 dimensions): related
code gets related vectors, thousands of chunks embed in milliseconds, and no weights are needed.
Recall is measured against an exact NumPy search over the committed vectors.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from codeseer.errors import CodeseerError
from codeseer.index import ann
from codeseer.index.indexer import index_repository
from codeseer.index.store import CHUNKS, IndexStore
from codeseer.search.searcher import Searcher

from conftest import write_files

TOPICS = {
    "http": "request response header status client server url cookie session redirect",
    "sql": "query table row column insert select join index cursor transaction",
    "image": "pixel width height resize crop color channel bitmap render scale",
    "math": "matrix vector sum product norm angle integral derivative solve root",
    "file": "path read write open close buffer stream chunk flush seek",
    "net": "socket packet port address bind listen accept send receive timeout",
    "text": "token word split join lower upper strip format parse encode",
    "time": "date hour minute second zone clock delta sleep timer epoch",
}
VERBS = "get set make load save find check build parse update remove apply".split()


class HashingEmbedder:
    """Bag of identifier pieces hashed into 2048 buckets, randomly projected: a model without weights."""

    dim = 64

    def __init__(self) -> None:
        self._projection = np.random.default_rng(7).standard_normal((2048, self.dim)).astype(np.float32)

    def _encode(self, texts) -> np.ndarray:
        counts = np.zeros((len(texts), 2048), np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[a-z]+|\d+", text.lower()):
                counts[row, zlib.crc32(token.encode()) % 2048] += 1.0
        vectors = counts @ self._projection
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def encode_queries(self, texts) -> np.ndarray:
        return self._encode(list(texts))

    def fingerprint(self) -> None:
        return None  # its vectors stay out of the machine-wide vector cache

    def close(self) -> dict:
        return {}

    def encode_documents(self, texts, *, slab: int = 256, on_slab=None) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), slab):
            vectors = self._encode(texts[start : start + slab])
            parts.append(vectors)
            if on_slab is not None:
                on_slab(start, vectors)
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)


EMBEDDER = HashingEmbedder()


def source_files(n_files: int, per_file: int = 12, *, seed: int = 0, prefix: str = "m") -> dict[str, str]:
    """Python files of small functions, each file on one topic, names and bodies mixing its words."""
    rng = np.random.default_rng(seed)
    files = {}
    for f in range(n_files):
        topic = list(TOPICS)[f % len(TOPICS)]
        words = TOPICS[topic].split()
        functions = []
        for i in range(per_file):
            verb, a, b, c = rng.choice(VERBS), *rng.choice(words, 3)
            functions.append(
                f"def {verb}_{a}_{b}_{prefix}{f}_{i}({c}, {a}_count={i}):\n"
                f"    \"\"\"{verb.capitalize()} the {a} of a {b} from its {c}.\"\"\"\n"
                f"    {b} = {c}.{a}({a}_count) + {f * per_file + i}\n"
                f"    return {b}\n"
            )
        files[f"{topic}/{prefix}{f}.py"] = "\n\n".join(functions)
    return files


def index(repo, index_dir, tiny_model_dir, **kw):
    return index_repository(repo, index_dir=index_dir, model=str(tiny_model_dir), embedder_factory=lambda m: EMBEDDER, **kw)


def committed_vectors(store: IndexStore):
    """(path, start, end) keys and float32 vectors of the committed snapshot, for exact search in NumPy."""
    chunks, _ = store.snapshot(store.read_state())
    table = chunks.search().select(["path", "start_line", "end_line", "vector"]).limit(None).to_arrow()
    keys = list(zip(table["path"].to_pylist(), table["start_line"].to_pylist(), table["end_line"].to_pylist()))
    return keys, np.stack(table["vector"].to_numpy(zero_copy_only=False)).astype(np.float32)


QUERIES = [f"{verb} {a} {b}" for verb in VERBS[:6] for a, b in zip(
    ("request", "table", "pixel", "matrix", "path", "socket", "token", "date"),
    ("header", "row", "color", "norm", "buffer", "port", "split", "zone"))]


def recall_at_10(searcher: Searcher, store: IndexStore) -> float:
    keys, vectors = committed_vectors(store)
    found = []
    for query in QUERIES:
        exact = {keys[i] for i in np.argsort(-(vectors @ EMBEDDER.encode_queries([query])[0]))[:10]}
        hits = searcher.search(query, k=10, mode="dense")
        assert len(hits) == 10
        found.append(len(exact & {(h.path, h.start_line, h.end_line) for h in hits}) / 10)
    return float(np.mean(found))


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setenv(ann.ANN_ENV, "1000")


def vector_index_name(store: IndexStore) -> str | None:
    chunks, _ = store.snapshot(store.read_state())
    idx = ann.vector_index(chunks)
    return idx.name if idx is not None else None


def test_ann_index_past_threshold_keeps_recall(tmp_path, tiny_model_dir, low_threshold):
    repo = write_files(tmp_path / "repo", source_files(200))  # 2,400 chunks
    report = index(repo, tmp_path / "idx", tiny_model_dir)
    assert report.chunks == 2400 and report.ann == "IVF_PQ"
    store = IndexStore(tmp_path / "idx")
    state = store.read_state()
    assert vector_index_name(store) == f"{ann.INDEX_PREFIX}2400"  # in the committed version itself
    # the post-commit housekeeping made no newer version the state does not name
    assert store.db.open_table(CHUNKS).version == state.chunks_version
    assert store.verify(state) is None
    searcher = Searcher(store, embedder=EMBEDDER)
    assert searcher.ann == "IVF_PQ"

    assert searcher.status()["ann"] == "IVF_PQ"
    assert recall_at_10(searcher, store) >= 0.9
    searcher.use_ann = False  # the index bypassed: exact, as NumPy has it
    assert recall_at_10(searcher, store) >= 0.99
    searcher.use_ann = True
    # scores are exact cosines (rescored), and filters still return full pages
    keys, vectors = committed_vectors(store)
    by_key = dict(zip(keys, vectors))
    query = "parse token split"
    q = EMBEDDER.encode_queries([query])[0]
    hits = searcher.search(query, k=10, mode="dense")
    assert all(abs(h.score - float(by_key[(h.path, h.start_line, h.end_line)] @ q)) < 1e-4 for h in hits)
    filtered = searcher.search(query, k=20, mode="dense", path_glob="sql/*")
    assert len(filtered) == 20 and all(h.path.startswith("sql/") for h in filtered)
    assert searcher.search(query, k=5, mode="hybrid")


def test_similar_goes_through_the_ann_index_and_finds_what_exact_search_finds(tmp_path, tiny_model_dir,
                                                                            low_threshold, monkeypatch):
    """similar/docs share the searcher's one dense path: the ANN index (nprobes, refine), not a side scan."""
    import codeseer.search.searcher as searcher_module
    from codeseer.apps.similar import similar

    repo = write_files(tmp_path / "repo", source_files(200))
    index(repo, tmp_path / "idx", tiny_model_dir)
    searcher = Searcher(IndexStore(tmp_path / "idx"), embedder=EMBEDDER)
    assert searcher.ann == "IVF_PQ"
    calls = []
    real = searcher_module.ann_search
    monkeypatch.setattr(searcher_module, "ann_search", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    keys, _ = committed_vectors(searcher.store)
    probes = [keys[i] for i in range(0, len(keys), len(keys) // 12)][:12]

    def top10(use_ann: bool) -> list[list[tuple]]:
        searcher.use_ann = use_ann
        return [[(h.path, h.start_line) for h in similar(searcher, path=path, line=start, k=10).hits]
                for path, start, _ in probes]

    approximate, exact = top10(True), top10(False)
    assert len(calls) == len(probes)  # every similar query went through the ANN index
    assert all(len(hits) == 10 for hits in approximate)
    overlap = [len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact)]
    assert np.mean(overlap) >= 0.95 and min(overlap) >= 0.8, overlap
    assert [a[0] for a in approximate] == [e[0] for e in exact]  # the nearest one is never lost


def test_small_index_stays_exact_unless_asked(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", source_files(40))  # 480 chunks, far below 100k
    store = IndexStore(tmp_path / "idx")
    report = index(repo, tmp_path / "idx", tiny_model_dir)
    assert report.ann is None and Searcher(store, embedder=EMBEDDER).ann is None
    before = store.read_state().chunks_version
    # --ann on for an unchanged tree still writes: the index is built and committed
    report = index(repo, tmp_path / "idx", tiny_model_dir, ann="on")
    assert report.ann == "IVF_PQ" and report.changed_files == 0
    assert store.read_state().chunks_version > before
    searcher = Searcher(store, embedder=EMBEDDER)
    assert searcher.ann == "IVF_PQ" and recall_at_10(searcher, store) >= 0.9
    # auto keeps an index it finds; off drops it and search is exact again
    assert index(repo, tmp_path / "idx", tiny_model_dir).ann == "IVF_PQ"
    assert index(repo, tmp_path / "idx", tiny_model_dir, ann="off").ann is None
    searcher = Searcher(store, embedder=EMBEDDER)
    assert searcher.ann is None and recall_at_10(searcher, store) == 1.0
    # float16 vectors get one too; int8 and binary keep their own rescoring paths: none even when asked
    assert index(repo, tmp_path / "f16", tiny_model_dir, precision="float16", ann="on").ann == "IVF_PQ"
    f16 = IndexStore(tmp_path / "f16")
    assert recall_at_10(Searcher(f16, embedder=EMBEDDER), f16) >= 0.9
    assert index(repo, tmp_path / "int8", tiny_model_dir, precision="int8", ann="on").ann is None
    with pytest.raises(CodeseerError, match="--ann"):
        index(repo, tmp_path / "idx", tiny_model_dir, ann="sometimes")


def test_incremental_updates_are_indexed_and_retrained_when_grown(tmp_path, tiny_model_dir, low_threshold):
    repo = write_files(tmp_path / "repo", source_files(100))  # 1,200 chunks
    store = IndexStore(tmp_path / "idx")
    assert index(repo, tmp_path / "idx", tiny_model_dir).ann == "IVF_PQ"
    assert vector_index_name(store) == f"{ann.INDEX_PREFIX}1200"

    # a few new files: folded into the index as it is (same training), found at once
    write_files(repo, {"extra/zebra.py": "def feed_zebra_quokka(zebra, quokka):\n    return zebra.quokka(quokka)\n"})
    write_files(repo, source_files(10, seed=1, prefix="n"))
    report = index(repo, tmp_path / "idx", tiny_model_dir)
    assert report.chunks == 1200 + 120 + 1 and report.ann == "IVF_PQ"
    assert vector_index_name(store) == f"{ann.INDEX_PREFIX}1200"
    assert store.db.open_table(CHUNKS).version == store.read_state().chunks_version
    chunks, _ = store.snapshot(store.read_state())
    stats = chunks.index_stats(vector_index_name(store))
    assert (stats.num_indexed_rows, stats.num_unindexed_rows) == (1321, 0)
    searcher = Searcher(store, embedder=EMBEDDER)
    top = searcher.search("feed zebra quokka", k=1, mode="dense")[0]
    assert top.path == "extra/zebra.py" and top.score > 0.9
    assert recall_at_10(searcher, store) >= 0.9

    # the table doubled: partitions and quantiser are trained again on all rows
    write_files(repo, source_files(120, seed=2, prefix="g"))
    report = index(repo, tmp_path / "idx", tiny_model_dir)
    assert report.chunks == 1321 + 1440
    assert vector_index_name(store) == f"{ann.INDEX_PREFIX}{report.chunks}"
    assert store.db.open_table(CHUNKS).version == store.read_state().chunks_version
    searcher = Searcher(store, embedder=EMBEDDER)
    assert searcher.search("feed zebra quokka", k=1, mode="dense")[0].path == "extra/zebra.py"
    assert recall_at_10(searcher, store) >= 0.9


def test_run_killed_after_ann_build_leaves_committed_state(tmp_path, tiny_model_dir, monkeypatch):
    repo = write_files(tmp_path / "repo", source_files(100))
    store = IndexStore(tmp_path / "idx")
    index(repo, tmp_path / "idx", tiny_model_dir)  # below the default threshold: exact
    committed = store.state_path.read_bytes()
    before = [(h.path, h.start_line, h.score) for h in Searcher(store, embedder=EMBEDDER).search("read path buffer", k=10, mode="dense")]

    real_build = ann.build_index

    def build_then_die(table, rows):
        real_build(table, rows)
        raise RuntimeError("killed after the ANN build, before the commit")

    monkeypatch.setattr(ann, "build_index", build_then_die)
    monkeypatch.setenv(ann.ANN_ENV, "1000")
    with pytest.raises(RuntimeError, match="killed"):
        index(repo, tmp_path / "idx", tiny_model_dir)
    # the index exists in a newer table version, but state.json still names the old one
    assert ann.vector_index(store.db.open_table(CHUNKS)) is not None
    assert store.state_path.read_bytes() == committed and store.verify(store.read_state()) is None
    searcher = Searcher(store, embedder=EMBEDDER)
    assert searcher.ann is None
    assert [(h.path, h.start_line, h.score) for h in searcher.search("read path buffer", k=10, mode="dense")] == before

    monkeypatch.setattr(ann, "build_index", real_build)
    report = index(repo, tmp_path / "idx", tiny_model_dir)  # rolls the table back, builds again, commits
    assert report.ann == "IVF_PQ" and store.verify(store.read_state()) is None
    searcher = Searcher(store, embedder=EMBEDDER)
    assert searcher.ann == "IVF_PQ"
    assert {(h.path, h.start_line) for h in searcher.search("read path buffer", k=10, mode="dense")} >= {
        (p, s) for p, s, _ in before[:5]}


def test_cli_ann_option(tmp_path, tiny_model_dir):
    import json

    from typer.testing import CliRunner

    from codeseer.cli import app

    repo = write_files(tmp_path / "repo", source_files(25))  # 300 chunks
    result = CliRunner().invoke(app, ["index", str(repo), "--model", str(tiny_model_dir), "--ann", "on", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ann"] == "IVF_PQ"
    result = CliRunner().invoke(app, ["index", str(repo), "--ann", "off", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ann"] is None


def test_threshold_env_is_checked(monkeypatch):
    monkeypatch.setenv(ann.ANN_ENV, "lots")
    with pytest.raises(CodeseerError, match=ann.ANN_ENV):
        ann.ann_threshold()
    monkeypatch.setenv(ann.ANN_ENV, "5000")
    assert ann.ann_threshold() == 5000
    monkeypatch.delenv(ann.ANN_ENV)
    assert ann.ann_threshold() == ann.ANN_MIN_CHUNKS == 100_000
