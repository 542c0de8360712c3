"""Run dense, lexical and hybrid retrieval over a BEIR corpus with the same code paths as search.

Dense scores are exact cosine (as LanceDB's flat search over a repo index); BM25 uses LanceDB FTS
with codeseer's tokenizer settings; hybrid uses :mod:`codeseer.search.fusion`. Document vectors
are cached on disk by (model, corpus content) because encoding a corpus dominates eval time.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeseer.paths import cache_dir
from codeseer.eval.beir import BeirDataset, doc_text
from codeseer.search.fusion import fuse
from codeseer.text.lexical import FTS_COLUMN, fts_config, lexical_query, lexical_text

Ranking = dict[str, dict[str, float]]  # query id -> {doc id: score}
MODES = ("dense", "lexical", "hybrid")


def default_cache_dir() -> Path:
    return cache_dir()


def truncate_dim(vectors: np.ndarray, dim: int | None) -> np.ndarray:
    """Matryoshka truncation: keep the first ``dim`` components of each row and re-normalise to unit length.

    ``dim`` None returns the vectors unchanged. Works on one vector or a matrix of row vectors; an
    all-zero prefix stays zero instead of becoming NaN.
    """
    if dim is None:
        return vectors
    vectors = np.asarray(vectors, dtype=np.float32)
    full = vectors.shape[-1]
    if not 1 <= dim <= full:
        raise ValueError(f"cannot truncate {full}-d vectors to {dim} dimensions (expected 1..{full})")
    out = np.array(vectors[..., :dim], dtype=np.float32, copy=True)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


@dataclass
class Timing:
    encode_seconds: float = 0.0  # encoding corpus documents (0 when the vectors came from the cache)
    search_seconds: float = 0.0
    bm25_index_seconds: float = 0.0  # building the corpus BM25 index


@dataclass
class ModeRun:
    """One mode's ranking with its costs: corpus-side preparation, and answering every query."""

    mode: str
    ranking: Ranking
    prepare_seconds: float  # dense: encoding documents; lexical: building BM25; hybrid: both
    search_seconds: float  # encoding queries + scoring + fusion, all queries

    @property
    def queries_per_second(self) -> float:
        n = len(self.ranking)
        return n / self.search_seconds if self.search_seconds > 0 else float("inf")


class CorpusRetriever:
    def __init__(
        self, dataset: BeirDataset, *, embedder=None, cache_dir: Path | None = None, top_k: int = 100,
        dim: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.top_k = top_k
        self.dim = dim  # Matryoshka: truncate query and document vectors to this many dims
        self.doc_vectors_cached: bool | None = None  # None until the document vectors are needed
        self.doc_ids = list(dataset.corpus)
        self.doc_texts = [doc_text(dataset.corpus[d]) for d in self.doc_ids]
        self.query_ids = list(dataset.queries)
        self.timing = Timing()
        self._doc_vectors: np.ndarray | None = None
        self._fts_table = None
        self._tmp = None

    # -- dense ---------------------------------------------------------------------------------
    def _cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        h = hashlib.sha1(self.embedder.name.encode())
        h.update(self.embedder.document_prefix.encode())
        for text in self.doc_texts:
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        return Path(self.cache_dir) / f"docvec-{h.hexdigest()[:20]}.npy"

    def doc_vectors(self) -> np.ndarray:
        """Document vectors (truncated to ``dim`` if set); the cache always holds the full vectors."""
        if self._doc_vectors is None:
            path = self._cache_path()
            if path is not None and path.is_file():
                vectors = np.load(path)
                self.doc_vectors_cached = True
            else:
                start = time.perf_counter()
                vectors = self.embedder.encode_documents(self.doc_texts)
                self.timing.encode_seconds += time.perf_counter() - start
                self.doc_vectors_cached = False
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, vectors)
            self._doc_vectors = truncate_dim(vectors, self.dim)
        return self._doc_vectors

    def dense(self) -> Ranking:
        docs = self.doc_vectors()
        start = time.perf_counter()
        queries = self.embedder.encode_queries([self.dataset.queries[q] for q in self.query_ids])
        queries = truncate_dim(queries, self.dim)
        scores = queries @ docs.T
        k = min(self.top_k, len(self.doc_ids))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        result: Ranking = {}
        for row, qid in enumerate(self.query_ids):
            result[qid] = {self.doc_ids[j]: float(scores[row, j]) for j in top[row]}
        self.timing.search_seconds += time.perf_counter() - start
        return result

    # -- lexical -------------------------------------------------------------------------------
    def _fts(self):
        if self._fts_table is None:
            import lancedb
            import pyarrow as pa

            start = time.perf_counter()
            self._tmp = tempfile.TemporaryDirectory(prefix="codeseer-eval-")
            db = lancedb.connect(self._tmp.name)
            table = db.create_table(
                "corpus",
                pa.table({"doc_id": self.doc_ids, FTS_COLUMN: [lexical_text(t) for t in self.doc_texts]}),
            )
            table.create_index(FTS_COLUMN, config=fts_config())
            self._fts_table = table
            self.timing.bm25_index_seconds += time.perf_counter() - start
        return self._fts_table

    def lexical(self) -> Ranking:
        table = self._fts()
        start = time.perf_counter()
        result: Ranking = {}
        for qid in self.query_ids:
            text = lexical_query(self.dataset.queries[qid])
            if not text.strip():
                result[qid] = {}
                continue
            rows = (
                table.search(text, query_type="fts", fts_columns=FTS_COLUMN)
                .select(["doc_id", "_score"]).limit(self.top_k).to_list()
            )
            result[qid] = {r["doc_id"]: float(r["_score"]) for r in rows}
        self.timing.search_seconds += time.perf_counter() - start
        return result

    # -- hybrid --------------------------------------------------------------------------------
    def hybrid(
        self, dense: Ranking | None = None, lexical: Ranking | None = None, *, method: str = "convex",
        weight: float | None = None,
    ) -> Ranking:
        """Fuse the two runs; ``weight`` None = codeseer's query-dependent lexical share."""
        dense = dense if dense is not None else self.dense()
        lexical = lexical if lexical is not None else self.lexical()
        result: Ranking = {}
        for qid in self.query_ids:
            fused = fuse(dense.get(qid, {}), lexical.get(qid, {}), self.dataset.queries[qid], method=method, weight=weight)
            result[qid] = dict(sorted(fused.items(), key=lambda item: -item[1])[: self.top_k])
        return result

    def run(self, mode: str) -> Ranking:
        if mode == "dense":
            return self.dense()
        if mode == "lexical":
            return self.lexical()
        if mode == "hybrid":
            return self.hybrid()
        raise ValueError(f"unknown mode {mode!r}")

    def timed_run(self, mode: str) -> ModeRun:
        """``run(mode)`` with its costs split into corpus preparation and query time.

        The corpus side (document vectors, BM25 index) is built first and charged to the mode
        whichever mode needed it first, so the numbers do not depend on the order of the modes.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        prepare = 0.0
        if mode in ("dense", "hybrid"):
            self.doc_vectors()
            prepare += self.timing.encode_seconds
        if mode in ("lexical", "hybrid"):
            self._fts()
            prepare += self.timing.bm25_index_seconds
        start = time.perf_counter()
        ranking = self.run(mode)
        seconds = time.perf_counter() - start
        for qid in self.query_ids:  # every query is answered, even with nothing found
            ranking.setdefault(qid, {})
        return ModeRun(mode=mode, ranking=ranking, prepare_seconds=prepare, search_seconds=seconds)


def evaluate_datasets(
    datasets: Sequence[BeirDataset],
    *,
    models: Sequence[str | None] = (None,),
    modes: Sequence[str] = MODES,
    dim: int | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> list[dict]:
    """Every model in every mode on every dataset, as result records (:mod:`codeseer.eval.report`).

    Lexical runs once per dataset and loads no model (its record has ``model`` None). A model is
    loaded once, or once per task if the Embedder takes a ``task``. ``dim`` larger than a model's
    vectors raises ``ValueError``.
    """
    from codeseer.eval import report
    from codeseer.eval.metrics import evaluate_keeping_per_query

    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown mode {unknown[0]!r}")
    package_versions = report.versions()
    embedders: dict[tuple[str | None, str | None], object] = {}
    records: list[dict] = []

    def record(ds: BeirDataset, run: ModeRun, model: str | None, used_dim: int | None, extra: dict) -> dict:
        metrics, per_query = evaluate_keeping_per_query(ds.qrels, run.ranking)
        return report.build_record(
            dataset=ds.name, model=model, mode=run.mode, task=ds.task, dim=used_dim,
            metrics=metrics, encode_seconds=run.prepare_seconds,
            queries_per_second=run.queries_per_second, n_queries=len(ds.queries), n_docs=len(ds.corpus),
            extra={**extra, "per_query": per_query}, package_versions=package_versions,
        )

    for ds in datasets:
        log(f"{ds.name}: {len(ds.queries)} queries, {len(ds.corpus)} documents, task {ds.task}")
        if "lexical" in modes:
            log("  lexical (BM25) ...")
            records.append(record(ds, CorpusRetriever(ds).timed_run("lexical"), None, None, {}))
        dense_modes = [m for m in modes if m != "lexical"]
        for name in models if dense_modes else ():
            key = (name, ds.task)
            if key not in embedders:
                from codeseer.models.factory import load_embedder

                embedders[key] = load_embedder(name, task=ds.task)
            embedder = embedders[key]
            if dim is not None and dim > embedder.dim:
                raise ValueError(f"--dim {dim} is larger than {embedder.name}'s {embedder.dim} dimensions")
            retriever = CorpusRetriever(ds, embedder=embedder, cache_dir=cache_dir, dim=dim)
            for mode in dense_modes:
                log(f"  {mode} with {embedder.name} ...")
                run = retriever.timed_run(mode)
                extra = {"doc_vectors_cached": bool(retriever.doc_vectors_cached)}
                records.append(record(ds, run, embedder.name, dim or embedder.dim, extra))
    return records
