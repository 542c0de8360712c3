"""Run dense, lexical and hybrid retrieval over a BEIR corpus with the same code paths as search.

Dense scores are exact cosine (as LanceDB's flat search over a repo index); BM25 uses LanceDB FTS
with codeseer's tokenizer settings; hybrid uses :mod:`codeseer.search.fusion`. Document vectors
are cached on disk by (model, corpus content) because encoding a corpus dominates eval time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeseer.eval.beir import BeirDataset, doc_text
from codeseer.search.fusion import fuse
from codeseer.search.lexical import FTS_COLUMN, fts_config, lexical_query, lexical_text

Ranking = dict[str, dict[str, float]]  # query id -> {doc id: score}


def default_cache_dir() -> Path:
    return Path(os.environ.get("CODESEER_CACHE", Path.home() / ".cache" / "codeseer"))


@dataclass
class Timing:
    encode_seconds: float = 0.0
    search_seconds: float = 0.0


class CorpusRetriever:
    def __init__(self, dataset: BeirDataset, *, embedder=None, cache_dir: Path | None = None, top_k: int = 100) -> None:
        self.dataset = dataset
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.top_k = top_k
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
        if self._doc_vectors is None:
            path = self._cache_path()
            if path is not None and path.is_file():
                self._doc_vectors = np.load(path)
            else:
                start = time.perf_counter()
                self._doc_vectors = self.embedder.encode_documents(self.doc_texts)
                self.timing.encode_seconds += time.perf_counter() - start
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, self._doc_vectors)
        return self._doc_vectors

    def dense(self) -> Ranking:
        docs = self.doc_vectors()
        start = time.perf_counter()
        queries = self.embedder.encode_queries([self.dataset.queries[q] for q in self.query_ids])
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

            self._tmp = tempfile.TemporaryDirectory(prefix="codeseer-eval-")
            db = lancedb.connect(self._tmp.name)
            table = db.create_table(
                "corpus",
                pa.table({"doc_id": self.doc_ids, FTS_COLUMN: [lexical_text(t) for t in self.doc_texts]}),
            )
            table.create_index(FTS_COLUMN, config=fts_config())
            self._fts_table = table
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
