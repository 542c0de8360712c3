"""Query a committed index snapshot: dense, lexical or hybrid, with language and path filters."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pathspec

from codeseer.errors import CodeseerError
from codeseer.index.quantize import RESCORE_FACTOR, Codec
from codeseer.index.store import IndexStore, column_values, sql_in
from codeseer.models.embedder import Embedder, resolve_model
from codeseer.search.fusion import FUSION_METHODS, fuse
from codeseer.search.lexical import FTS_COLUMN, lexical_query

MODES = ("hybrid", "dense", "lexical")
LANGUAGE_ALIASES = {
    "py": "python", "js": "javascript", "jsx": "javascript", "ts": "typescript", "rs": "rust",
    "cs": "csharp", "c#": "csharp", "c++": "cpp", "cc": "cpp", "kt": "kotlin", "rb": "ruby",
    "md": "markdown", "golang": "go",
}
_COLUMNS = ["chunk_id", "path", "language", "start_line", "end_line", "symbol", "kind", "text"]


@dataclass
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    kind: str
    score: float
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def normalize_language(name: str) -> str:
    name = name.strip().lower()
    return LANGUAGE_ALIASES.get(name, name)


class Searcher:
    """Opens the committed snapshot once; reuse it for many queries."""

    def __init__(
        self, store: IndexStore, *, model: str | None = None, embedder: Embedder | None = None, task: str = "nl2code"
    ) -> None:
        state = store.read_state()
        if state is None:
            raise CodeseerError(f"no codeseer index at {store.directory}; run `codeseer index` first")
        if model is not None and resolve_model(model).name != state.model:
            raise CodeseerError(
                f"index was built with model {state.model}, not {resolve_model(model).name}; "
                "search with the index's model or re-index with `codeseer index --rebuild --model ...`"
            )
        self.store = store
        self.state = state
        self.root = Path(state.root)
        self.chunks, self.files = store.snapshot(state)
        self.task = task
        self._embedders: dict[str, Embedder] = {task: embedder} if embedder is not None else {}
        self.codec = Codec(state.precision, state.dim, state.calibration)
        self._int8_matrix = None
        self._int8_ids = None
        self._has_fts = any(FTS_COLUMN in idx.columns for idx in self.chunks.list_indices())

    @property
    def embedder(self) -> Embedder:
        return self.embedder_for(self.task)

    def embedder_for(self, task: str) -> Embedder:
        """The index's model with the query prefix of ``task`` (search: nl2code, similar: code2code...)."""
        if task not in self._embedders:
            self._embedders[task] = Embedder(self.state.model, recipe=self.state.recipe, task=task, dim=self.state.dim)
        embedder = self._embedders[task]
        if embedder.dim != self.state.dim:
            raise CodeseerError(f"model gives {embedder.dim}-d vectors but the index holds {self.state.dim}-d")
        return embedder

    def where(
        self,
        languages: list[str] | None = None,
        path_glob: str | None = None,
        *,
        kinds: list[str] | tuple[str, ...] | None = None,
        exclude_kinds: list[str] | tuple[str, ...] | None = None,
    ) -> str | None | bool:
        """A LanceDB filter for these restrictions; ``False`` when the path glob matches no file."""
        clauses = []
        if languages:
            clauses.append(sql_in("language", sorted({normalize_language(lang) for lang in languages})))
        if kinds:
            clauses.append(sql_in("kind", list(kinds)))
        if exclude_kinds:
            clauses.append("NOT " + sql_in("kind", list(exclude_kinds)))
        if path_glob:
            spec = pathspec.GitIgnoreSpec.from_lines([path_glob])
            paths = [p for p in column_values(self.files, "path") if spec.match_file(p)]
            if not paths:
                return False
            clauses.append(sql_in("path", paths))
        return " AND ".join(f"({c})" for c in clauses) if clauses else None

    def _dense(self, query: str, where: str | None, limit: int) -> list[dict]:
        vector = self.embedder.encode_queries([query])[0]
        precision = self.codec.precision
        if precision in ("float32", "float16"):
            builder = self.chunks.search(vector, vector_column_name="vector").distance_type("cosine")
            if where:
                builder = builder.where(where, prefilter=True)
            rows = builder.select(_COLUMNS + ["_distance"]).limit(limit).to_list()
            for row in rows:
                row["score"] = 1.0 - float(row.pop("_distance"))
            return rows
        if precision == "binary":
            # Coarse: Hamming distance on sign bits, in LanceDB. Fine: float query . signs.
            bits = self.codec.encode(vector[None, :])[0]
            builder = self.chunks.search(bits, vector_column_name="vector").distance_type("hamming")
            if where:
                builder = builder.where(where, prefilter=True)
            rows = builder.select(_COLUMNS + ["vector", "_distance"]).limit(RESCORE_FACTOR * limit).to_list()
        else:
            rows = self._int8_candidates(vector, where, RESCORE_FACTOR * limit)
        if not rows:
            return []
        stored = np.stack([np.asarray(row.pop("vector")) for row in rows])
        scores = self.codec.decode(stored) @ vector
        for row, score in zip(rows, scores):
            row["score"] = float(score)
            row.pop("_distance", None)
        return sorted(rows, key=lambda r: -r["score"])[:limit]

    def _int8_candidates(self, vector: np.ndarray, where: str | None, limit: int) -> list[dict]:
        """Coarse int8 x int8 scan in memory (LanceDB cannot search int8 columns)."""
        if self._int8_matrix is None:
            table = self.chunks.search().select(["chunk_id", "vector"]).limit(None).to_arrow()
            self._int8_ids = np.asarray(table["chunk_id"].to_pylist(), dtype=object)
            self._int8_matrix = np.stack(table["vector"].to_numpy(zero_copy_only=False)).astype(np.int8) if len(table) else np.zeros((0, self.codec.dim), np.int8)
        scores = self._int8_matrix.astype(np.int32) @ self.codec.encode(vector[None, :])[0].astype(np.int32)
        if where:
            allowed = set(self.chunks.search().where(where).select(["chunk_id"]).limit(None).to_arrow()["chunk_id"].to_pylist())
            scores = np.where([cid in allowed for cid in self._int8_ids], scores, np.iinfo(np.int32).min)
        top = np.argsort(-scores, kind="stable")[:limit]
        top = [i for i in top if scores[i] > np.iinfo(np.int32).min]
        if not top:
            return []
        ids = [self._int8_ids[i] for i in top]
        rows = self.chunks.search().where(sql_in("chunk_id", ids)).select(_COLUMNS + ["vector"]).limit(None).to_list()
        order = {cid: n for n, cid in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r["chunk_id"]])

    def _lexical(self, query: str, where: str | None, limit: int) -> list[dict]:
        text = lexical_query(query)
        if not text.strip() or not self._has_fts:
            return []
        builder = self.chunks.search(text, query_type="fts", fts_columns=FTS_COLUMN)
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select(_COLUMNS + ["_score"]).limit(limit).to_list()
        for row in rows:
            row["score"] = float(row.pop("_score"))
        return rows

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        languages: list[str] | None = None,
        path_glob: str | None = None,
        fusion: str = "convex",
    ) -> list[Hit]:
        if not query or not query.strip():
            raise CodeseerError("empty query")
        if mode not in MODES:
            raise CodeseerError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if fusion not in FUSION_METHODS:
            raise CodeseerError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSION_METHODS)}")
        if k < 1:
            raise CodeseerError("k must be at least 1")
        where = self.where(languages, path_glob)
        if where is False:
            return []
        candidates = max(50, 3 * k)
        if mode == "dense":
            rows = self._dense(query, where, k)
        elif mode == "lexical":
            rows = self._lexical(query, where, k)
        else:
            dense = self._dense(query, where, candidates)
            lexical = self._lexical(query, where, candidates)
            by_id = {row["chunk_id"]: row for row in lexical}
            by_id.update({row["chunk_id"]: row for row in dense})
            fused = fuse({r["chunk_id"]: r["score"] for r in dense}, {r["chunk_id"]: r["score"] for r in lexical}, query,
                         method=fusion)
            rows = []
            for cid, score in sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]:
                row = dict(by_id[cid])
                row["score"] = score
                rows.append(row)
        return [
            Hit(
                path=row["path"], start_line=int(row["start_line"]), end_line=int(row["end_line"]),
                symbol=row["symbol"], language=row["language"], kind=row["kind"],
                score=round(float(row["score"]), 6), text=row["text"],
            )
            for row in rows
        ]
