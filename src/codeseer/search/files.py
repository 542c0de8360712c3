"""Rank whole files for an issue or change description: the one file ranker behind ``locate``,
``eval-repo``, HTTP ``/locate`` and MCP ``locate``.

Chunk search alone ranks files no better than BM25 over whole files (repos-dev, file MRR@10 52.3
vs 52.5): the best chunk of a file loses what the rest of the file, its path and its kind say. The
ranker scores every candidate file on eight features and adds them with fitted weights:

==================  ==============================================================================
``bm25``            BM25 over the whole file (path + text, identifier parts), / the query's best
``path_bm25``       BM25 over the path's words, / the query's best
``dense_best``      cosine of the file's best chunk to the query, minus the query's best (x10)
``dense_top3``      mean cosine of the file's three best chunks, minus the query's best (x10)
``named``           the text names the file (``core.py``, a stack frame) or its module (a commit
                    scope such as ``globset:`` or ``fix(printer):``): share of scope words in the path
``ident_defined``   share of the text's quoted identifiers (``lookup_default()``, `TextWrapper`)
                    that the file defines
``ident_used``      share of them that occur in the file's text
``size``            log(1 + chunks): larger files are changed more often
==================  ==============================================================================

The weights (``file_ranker.json``) are those of a listwise softmax regression, fitted on the
repos-dev benchmark (``codeseer eval-repo DATASET --fit``); ``--loro`` reports every repository with
weights fitted on the others. Only files of the asked kinds are candidates (``source`` by default:
tests, type declarations, docs and examples mention the same names but are rarely what changes).
Dense scores come from the ``DENSE_CHUNKS`` best chunks of those files; a file with none of them
gets the lowest score seen, so it is ranked by its other evidence.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from codeseer.errors import CodeseerError
from codeseer.index.filekinds import SOURCE
from codeseer.index.store import before_file_kinds, sql_in, sql_quote
from codeseer.search.evidence import file_mentions, path_word_set, quoted_identifiers, scope_words, words_match
from codeseer.text.lexical import FTS_COLUMN, PATH_COLUMN, lexical_query

__all__ = ["FEATURES", "FileCandidates", "FileRanker", "RankedFile", "RankerWeights", "load_weights"]

FEATURES: tuple[str, ...] = (
    "bm25", "path_bm25", "dense_best", "dense_top3", "named", "ident_defined", "ident_used", "size",
)
DENSE_CHUNKS = 300  # best chunks fetched for the dense features and the functions of each file
LEXICAL_CHUNKS = 100  # best BM25 chunks, for the functions of each file
DENSE_SCALE = 10.0  # cosine gaps are small: a tenth of cosine is one unit
MAX_QUERY_WORDS = 1024  # BM25 query terms kept from a long issue text
MAX_PATH_FILTER = 2000  # candidate paths spelled out in a filter when a glob narrows them
WEIGHTS_FILE = "file_ranker.json"


@dataclass(frozen=True)
class RankerWeights:
    """The fitted weights, one per feature, and how they were fitted (shown by ``--json``)."""

    weights: dict[str, float]
    fitted_on: str = ""
    note: str = ""

    def vector(self) -> np.ndarray:
        return np.array([float(self.weights.get(name, 0.0)) for name in FEATURES])

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "weights": {n: round(float(self.weights.get(n, 0.0)), 6) for n in FEATURES},
                "fitted_on": self.fitted_on, "note": self.note}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict) -> "RankerWeights":
        weights = data.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise CodeseerError("file ranker weights: expected {\"weights\": {feature: number, ...}}")
        unknown = sorted(set(weights) - set(FEATURES))
        if unknown:
            raise CodeseerError(f"file ranker weights: unknown feature {unknown[0]!r}; known: {', '.join(FEATURES)}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in weights.values()):
            raise CodeseerError("file ranker weights: every weight must be a finite number")
        return cls({k: float(v) for k, v in weights.items()}, str(data.get("fitted_on", "")), str(data.get("note", "")))


def load_weights(path: str | Path | None = None) -> RankerWeights:
    """The shipped weights, or those saved at ``path`` (``codeseer eval-repo --fit --save-weights``)."""
    try:
        if path is None:
            text = resources.files("codeseer.search").joinpath(WEIGHTS_FILE).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        raise CodeseerError(f"file ranker weights not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise CodeseerError(f"file ranker weights {path or WEIGHTS_FILE}: {exc}") from None
    if not isinstance(data, dict):
        raise CodeseerError(f"file ranker weights {path or WEIGHTS_FILE}: not a JSON object")
    return RankerWeights.from_dict(data)


@dataclass
class FileCandidates:
    """Every candidate file of one query with its features (rows follow ``keys``) and chunk hits."""

    query: str
    keys: list[tuple[str | None, str]]  # (repo, path); repo None in an index of one repository
    languages: list[str]
    kinds: list[str]
    features: np.ndarray  # (files, len(FEATURES))
    hits: dict[tuple[str | None, str], list[dict]] = field(default_factory=dict)  # chunk rows, best first
    vector: np.ndarray | None = None

    def scores(self, weights: RankerWeights | np.ndarray) -> np.ndarray:
        w = weights.vector() if isinstance(weights, RankerWeights) else np.asarray(weights, dtype=np.float64)
        return self.features @ w if len(self.keys) else np.zeros(0)

    def order(self, weights: RankerWeights | np.ndarray) -> list[int]:
        """Row indexes best first; ties go to the repo, then the path, so results never depend on storage order."""
        scores = self.scores(weights)
        return sorted(range(len(self.keys)), key=lambda i: (-round(float(scores[i]), 9), self.keys[i][0] or "",
                                                             self.keys[i][1]))


@dataclass
class RankedFile:
    repo: str | None
    path: str
    language: str
    kind: str
    score: float
    features: dict[str, float]
    hits: list[dict]


def _same_file(path: str, mention: str) -> bool:
    """``util.py`` or ``src/util.py`` names ``src/util.py``; so does ``/home/me/proj/src/util.py`` (a stack frame)."""
    return ("/" + path).endswith("/" + mention) or ("/" + mention).endswith("/" + path)


class _FileTable:
    """The committed files table's small columns, read once per snapshot (not the file texts)."""

    def __init__(self, searcher) -> None:
        files = searcher.files
        names = files.schema.names
        if "file_kind" not in names or "search_text" not in names:
            raise before_file_kinds(searcher.store.directory)
        columns = ["path", "language", "file_kind", "chunks"] + (["repo"] if "repo" in names else [])
        table = files.search().select(columns).limit(None).to_arrow()
        self.paths: list[str] = table["path"].to_pylist()
        repos = table["repo"].to_pylist() if "repo" in names else [None] * len(self.paths)
        self.repos: list[str | None] = repos if searcher.multi else [None] * len(self.paths)
        self.stored_repos = repos  # as stored: needed in filters even when hits do not show it
        self.languages: list[str] = table["language"].to_pylist()
        self.kinds: list[str] = table["file_kind"].to_pylist()
        self.chunks = np.asarray(table["chunks"].to_pylist(), dtype=np.float64)
        self._path_words: list[frozenset[str]] | None = None

    @property
    def path_words(self) -> list[frozenset[str]]:
        if self._path_words is None:
            self._path_words = [path_word_set(p) for p in self.paths]
        return self._path_words


class FileRanker:
    """Features and rankings of files for one index snapshot; reuse it for many queries."""

    def __init__(self, searcher, weights: RankerWeights | None = None) -> None:
        self.searcher = searcher
        self.weights = weights or load_weights()
        self._table: _FileTable | None = None

    @property
    def table(self) -> _FileTable:
        if self._table is None:
            self._table = _FileTable(self.searcher)
        return self._table

    # -- candidates ------------------------------------------------------------------------------
    def _allowed(self, kinds, languages, path_glob, repos) -> np.ndarray:
        from codeseer.search.searcher import normalize_language

        t = self.table
        mask = np.isin(np.asarray(t.kinds, dtype=object), list(kinds))
        if languages:
            wanted = {normalize_language(lang) for lang in languages}
            mask &= np.array([lang in wanted for lang in t.languages], dtype=bool)
        if repos:
            names = set(self.searcher.check_repos(repos))
            mask &= np.array([r in names for r in t.stored_repos], dtype=bool)
        if path_glob:
            spec = self.searcher._path_spec(path_glob)
            mask &= np.array([spec.match_file(p) for p in t.paths], dtype=bool)
        return mask

    def _where(self, rows: np.ndarray, kinds, languages, path_glob, repos) -> str | None:
        """A filter for the chunks or files of these candidate rows: by kind, language and repo, and by
        path when a glob narrowed them (up to ``MAX_PATH_FILTER`` paths; past that, rows of other files
        are dropped after the search)."""
        t = self.table
        clauses = [sql_in("file_kind", sorted(set(kinds)))]
        if languages:
            clauses.append(sql_in("language", sorted({t.languages[i] for i in rows})))
        if repos and self.searcher.has_repo:
            clauses.append(sql_in("repo", sorted({t.stored_repos[i] for i in rows})))
        if path_glob and len(rows) <= MAX_PATH_FILTER:
            clauses.append(sql_in("path", sorted({t.paths[i] for i in rows})))
        return " AND ".join(f"({c})" for c in clauses)

    def candidates(
        self,
        text: str,
        *,
        kinds: list[str] | tuple[str, ...] = (SOURCE,),
        languages: list[str] | None = None,
        path_glob: str | None = None,
        repos: list[str] | None = None,
        vector: np.ndarray | None = None,
    ) -> FileCandidates:
        """Every file of the asked kinds (and languages, paths, repos) with its features for ``text``."""
        searcher = self.searcher
        t = self.table
        rows = np.flatnonzero(self._allowed(kinds, languages, path_glob, repos))
        keys = [(t.repos[i], t.paths[i]) for i in rows]
        if vector is None:
            vector = searcher.embedder.encode_queries([text])[0]
        if not len(rows):
            return FileCandidates(text, [], [], [], np.zeros((0, len(FEATURES))), {}, vector)
        position = {key: n for n, key in enumerate(keys)}
        where = self._where(rows, kinds, languages, path_glob, repos)
        features = np.zeros((len(rows), len(FEATURES)))
        features[:, 0] = self._bm25(FTS_COLUMN, text, where, position, len(rows))
        features[:, 1] = self._bm25(PATH_COLUMN, text, where, position, len(rows))

        dense = searcher.dense_rows(vector, where, DENSE_CHUNKS)
        lexical = searcher.lexical_rows(text, where, LEXICAL_CHUNKS)
        hits = self._file_hits(dense, lexical, text, position)
        features[:, 2], features[:, 3] = self._dense_features(dense, position, len(rows))

        scopes = scope_words(text)
        mentions = file_mentions(text)
        if scopes or mentions:
            for n, i in enumerate(rows):
                named = words_match(scopes, t.path_words[i])
                if mentions and any(_same_file(t.paths[i], m) for m in mentions):
                    named = 1.0
                features[n, 4] = named
        identifiers = quoted_identifiers(text)
        if identifiers:
            features[:, 5], features[:, 6] = self._identifiers(identifiers, where, position, len(rows))
        features[:, 7] = np.log1p(t.chunks[rows])
        return FileCandidates(text, keys, [t.languages[i] for i in rows], [t.kinds[i] for i in rows], features, hits,
                              vector)

    # -- features ----------------------------------------------------------------------------------
    def _key(self, row: dict) -> tuple[str | None, str]:
        return (row.get("repo") if self.searcher.multi else None, row["path"])

    def _bm25(self, column: str, text: str, where: str | None, position: dict, n: int) -> np.ndarray:
        """BM25 of every candidate over ``column`` of the files table, divided by the best (0 if none match)."""
        scores = np.zeros(n)
        words = lexical_query(text).split()
        query = " ".join(dict.fromkeys(words))  # repeated words add nothing to an OR query but time
        query = " ".join(query.split()[:MAX_QUERY_WORDS])
        if not query.strip():
            return scores
        builder = self.searcher.files.search(query, query_type="fts", fts_columns=column)
        if where:
            builder = builder.where(where, prefilter=True)
        columns = ["path", "_score"] + (["repo"] if self.searcher.multi else [])
        for row in builder.select(columns).limit(max(n, 1)).to_list():
            slot = position.get(self._key(row))
            if slot is not None:
                scores[slot] = float(row["_score"])
        best = scores.max(initial=0.0)
        return scores / best if best > 0 else scores

    def _dense_features(self, dense: list[dict], position: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
        per_file: dict[int, list[float]] = {}
        for row in dense:
            slot = position.get(self._key(row))
            if slot is not None:
                per_file.setdefault(slot, []).append(float(row["score"]))
        if not per_file:
            return np.zeros(n), np.zeros(n)
        top = max(s[0] for s in per_file.values())
        floor = min(min(s) for s in per_file.values()) - 0.01  # files without a fetched chunk score below all
        best = np.full(n, floor)
        top3 = np.full(n, floor)
        for slot, scores in per_file.items():
            scores = sorted(scores, reverse=True)[:3]
            best[slot] = scores[0]
            top3[slot] = (sum(scores) + scores[-1] * (3 - len(scores))) / 3
        return DENSE_SCALE * (best - top), DENSE_SCALE * (top3 - top)

    def _identifiers(self, identifiers: list[str], where: str | None, position: dict, n: int):
        """Share of ``identifiers`` each candidate defines (its symbols) and uses (its text), exactly."""
        select = {"path": "path"}
        if self.searcher.multi:
            select["repo"] = "repo"
        for j, name in enumerate(identifiers):
            select[f"d{j}"] = f"array_has(symbols, {sql_quote(name)})"
            select[f"u{j}"] = f"strpos(search_text, {sql_quote(name)}) > 0"
        builder = self.searcher.files.search()
        if where:
            builder = builder.where(where)
        defined, used = np.zeros(n), np.zeros(n)
        for row in builder.select(select).limit(None).to_list():
            slot = position.get(self._key(row))
            if slot is None:
                continue
            defined[slot] = sum(bool(row[f"d{j}"]) for j in range(len(identifiers))) / len(identifiers)
            used[slot] = sum(bool(row[f"u{j}"]) for j in range(len(identifiers))) / len(identifiers)
        return defined, used

    def _file_hits(self, dense: list[dict], lexical: list[dict], text: str, position: dict) -> dict:
        """Chunk rows per candidate file, best first by the hybrid (convex) fusion of both lists."""
        from codeseer.search.fusion import fused_rows

        hits: dict[tuple, list[dict]] = {}
        for row in sorted(fused_rows(dense, lexical, text), key=lambda r: (-r["score"], r["chunk_id"])):
            key = self._key(row)
            if key in position:
                hits.setdefault(key, []).append(row)
        return hits

    # -- ranking -------------------------------------------------------------------------------------
    def rank(self, text: str, *, k: int = 10, chunks_per_file: int = 0, weights: RankerWeights | None = None,
             **filters) -> list[RankedFile]:
        """The ``k`` best files for ``text`` with their features and chunk hits (``weights``: other than this
        ranker's).

        A file ranked on file-level evidence alone (no fetched chunk hit) gets its ``chunks_per_file``
        chunks nearest to the query instead.
        """
        weights = weights or self.weights
        found = self.candidates(text, **filters)
        scores = found.scores(weights)
        out = []
        for i in found.order(weights)[:k]:
            repo, path = found.keys[i]
            hits = found.hits.get((repo, path), [])
            if not hits and chunks_per_file:
                hits = self._nearest_in_file(found.vector, repo, path, chunks_per_file)
            out.append(RankedFile(repo, path, found.languages[i], found.kinds[i], round(float(scores[i]), 6),
                                  dict(zip(FEATURES, (round(float(x), 6) for x in found.features[i]))), hits))
        return out

    def _nearest_in_file(self, vector: np.ndarray, repo: str | None, path: str, limit: int) -> list[dict]:
        where = f"path = {sql_quote(path)}"
        if repo is not None and self.searcher.has_repo:
            where += f" AND repo = {sql_quote(repo)}"
        return self.searcher.dense_rows(vector, where, limit)
