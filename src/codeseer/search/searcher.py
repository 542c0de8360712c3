"""Query a committed index snapshot: dense, lexical or hybrid, with language, path and repo filters.

In an index of several repositories (``state.roots``) hits carry their ``repo``; a path glob is
relative to each repo's root, and ``repos`` keeps to some of them.

Hostile or broken input gets one clear :class:`CodeseerError`, never a traceback: queries over
``MAX_QUERY_CHARS`` (the apps accept issue texts that long), ``k`` over ``MAX_K``, a ``--path``
glob pathspec cannot parse. A ``--path`` glob only ever selects among the indexed (relative)
paths, so ``../*`` or ``/etc/*`` find nothing outside the root; an absolute path inside the root is
taken relative to it. A snapshot that fails while being read (a data file deleted or truncated
under it) is reported as damaged, with the ``codeseer index --repair`` hint.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pathspec

from codeseer.errors import CodeseerError
from codeseer.index.ann import ann_search
from codeseer.index.ann import for_search as ann_for_search
from codeseer.index.filekinds import NON_CODE_KINDS
from codeseer.index.quantize import RESCORE_FACTOR, Codec
from codeseer.index.store import (
    IndexStore,
    before_file_kinds,
    column_values,
    damaged,
    open_store,
    read_rows,
    sql_in,
    sql_quote,
)
from codeseer.models.embedder import Embedder, resolve_model
from codeseer.models.factory import load_embedder
from codeseer.models.pooling import l2_normalize as normalise
from codeseer.models.registry import task_prefixes
from codeseer.models.tasks import DEFAULT_TASK
from codeseer.search.fusion import FUSION_METHODS, fused_rows
from codeseer.text.lexical import FTS_COLUMN, lexical_query
from codeseer.search.records import CHUNK_COLUMNS, ChunkRef, Hit, shown_path  # noqa: F401  (Hit, shown_path: the searcher's own words)

MODES = ("hybrid", "dense", "lexical")
LANGUAGE_ALIASES = {
    "py": "python", "js": "javascript", "jsx": "javascript", "ts": "typescript", "rs": "rust",
    "cs": "csharp", "c#": "csharp", "c++": "cpp", "cc": "cpp", "kt": "kotlin", "rb": "ruby",
    "md": "markdown", "golang": "go",
}
from codeseer.limits import MAX_K, MAX_QUERY_CHARS  # noqa: E402
from codeseer.limits import MAX_LIST as MAX_LANGUAGES  # noqa: E402
from codeseer.limits import MAX_LIST as MAX_REPOS  # noqa: E402


def tie_margin(k: int) -> int:
    """Rows to fetch for ``k`` results: enough extra that ties at the cut are decided by path, not storage."""
    return min(MAX_K, 2 * k + 20)


def in_tie_order(rows: list[dict]) -> list[dict]:
    """Best score first; equal scores (identical chunks) by repo, path, then line: results never depend
    on the order rows were written in (a clean build and one finished after crashes agree)."""
    return sorted(rows, key=lambda r: (-round(float(r["score"]), 6), r.get("repo") or "", r["path"],
                                       int(r["start_line"]), int(r["end_line"]), r["chunk_id"]))


OTHER_HITS = 3  # docs and tests shown after the code hits


def check_model(indexed: str, model: str | None) -> None:
    """``--model`` must name the model the index was built with (other vectors do not compare)."""
    if model is not None and resolve_model(model).name != indexed:
        raise CodeseerError(
            f"index was built with model {indexed}, not {resolve_model(model).name}; "
            "search with the index's model or re-index with `codeseer index --rebuild --model ...`"
        )


def code_first_pool(k: int) -> int:
    """Hits to fetch for :func:`code_first` to pick ``k`` from: enough that the code hits fill it."""
    return min(max(3 * k, 30), MAX_K)


def code_first(hits: list["Hit"], k: int, others: int = OTHER_HITS) -> list["Hit"]:
    """``k`` hits: the best code hits first, then the best docs and tests hits (each group by score),
    at most ``others`` and a third of ``k`` of those (more only when there is not enough code).

    Prose says "how does X work" in the words of the question, so documentation and tests often
    outscore the code that implements X; a person asking wants that code first, and still sees
    where the docs explain it.
    """
    code = [h for h in hits if h.file_kind not in NON_CODE_KINDS]
    other = [h for h in hits if h.file_kind in NON_CODE_KINDS]
    n_other = min(others, k // 3, len(other))
    n_code = min(k - n_other, len(code))
    n_other = min(k - n_code, len(other))
    return code[:n_code] + other[:n_other]


def normalize_language(name: str) -> str:
    """``py`` -> ``python``; a name codeseer does not know is one error naming those it knows."""
    from codeseer.index.languages import KNOWN_LANGUAGES

    name = str(name).strip().lower()
    name = LANGUAGE_ALIASES.get(name, name)
    if name not in KNOWN_LANGUAGES:
        known = ", ".join(sorted(KNOWN_LANGUAGES))
        raise CodeseerError(f"unknown language {name!r} for --lang; known: {known} (or py, js, ts, rs, cs, ...)")
    return name


class Searcher:
    """Opens the committed snapshot once; reuse it for many queries."""

    use_ann = True  # False: exact dense search even where the snapshot has an ANN index (benchmarks, checks)

    def __init__(
        self, store: IndexStore, *, model: str | None = None, embedder: Embedder | None = None, task: str = "nl2code"
    ) -> None:
        state = store.read_state()
        if state is None:
            raise CodeseerError(f"no codeseer index at {store.directory}; run `codeseer index` first")
        check_model(state.model, model)
        self.store = store
        self.state = state
        self.root = Path(state.root)
        self.roots = {name: Path(path) for name, path in state.repo_roots().items()}
        self.multi = len(self.roots) > 1  # hits then say which repo they come from
        if not store.remote and self.roots and not any(root.is_dir() for root in self.roots.values()):
            gone = ", ".join(str(root) for root in self.roots.values())
            raise CodeseerError(
                f"the repository of index {store.directory} is gone ({gone} moved or deleted); index it where it "
                f"is now with `codeseer index PATH --index {store.directory}`, or delete the index"
            )
        self.chunks, self.files = store.snapshot(state)
        self.task = task
        self._embedders: dict[str, Embedder] = {task: embedder} if embedder is not None else {}
        self._models_lock = threading.Lock()  # serve answers from threads: load each model once
        self.codec = Codec(state.precision, state.dim, state.calibration)
        self._int8_matrix = None
        self._int8_ids = None
        try:
            self._has_fts = any(FTS_COLUMN in idx.columns for idx in self.chunks.list_indices())
            # The ANN index dense search uses (e.g. IVF_PQ), None: exact. int8/binary rescore their own way.
            self.ann, self._ann_nprobes = ann_for_search(self.chunks, state.precision)
            self.has_repo = "repo" in self.chunks.schema.names  # False in an index from before several repos
        except Exception as exc:
            raise damaged(store.directory, exc) from exc

    # ------------------------------------------------------------------ models, one per query prefix

    @property
    def embedder(self) -> Embedder:
        return self.embedder_for(self.task)

    def embedder_for(self, task: str) -> Embedder:
        """The index's model with the query prefix of ``task`` (search: nl2code, similar: code2code...).

        Tasks whose prefixes are the same (models without instructions) share one model in memory.
        """
        with self._models_lock:
            if task not in self._embedders:
                shared = next((e for t, e in self._embedders.items() if self._same_prefixes(t, task)), None)
                self._embedders[task] = shared or load_embedder(self.state.model, recipe=self.state.recipe, task=task,
                                                           dim=self.state.dim)
            embedder = self._embedders[task]
        if embedder.dim != self.state.dim:
            raise CodeseerError(f"model gives {embedder.dim}-d vectors but the index holds {self.state.dim}-d")
        return embedder

    def _same_prefixes(self, task: str, other: str) -> bool:
        prefixes = task_prefixes(self.state.model, self.state.recipe, task)
        return prefixes is None or prefixes == task_prefixes(self.state.model, self.state.recipe, other)

    def stored_vectors_are_queries(self, task: str) -> bool:
        """True when embedding a chunk as a ``task`` query gives exactly its stored (document) vector.

        That is the case for models without instructions (MiniLM) on a float index: then ``similar``
        and ``docs`` use the index's vectors and never run the model for a ``PATH:LINE`` query.
        """
        if self.codec.precision not in ("float32", "float16"):  # int8/binary codes are approximations
            return False
        prefixes = task_prefixes(self.state.model, self.state.recipe, task)
        indexed = task_prefixes(self.state.model, self.state.recipe, DEFAULT_TASK)
        if prefixes is None or indexed is None:
            return prefixes is None and indexed is None
        return prefixes[0] == indexed[1]

    def query_vector(self, text: str, task: str) -> np.ndarray:
        return normalise(self.embedder_for(task).encode_queries([text])[0])

    def document_vectors(self, texts: list[str], task: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.state.dim), dtype=np.float32)
        return normalise(self.embedder_for(task).encode_documents(list(texts)))

    def adopt_models(self, old: "Searcher | None") -> None:
        """Keep the models an older searcher of the same index loaded (``serve`` re-opens on commit)."""
        if old is None or (old.state.model, old.state.dim, old.state.recipe) != \
                (self.state.model, self.state.dim, self.state.recipe):
            return
        for task, embedder in old._embedders.items():
            self._embedders.setdefault(task, embedder)

    # ------------------------------------------------------------------ rows and vectors

    def unit_vectors(self, stored) -> np.ndarray:
        """Stored vectors (an Arrow list column or an array; floats or compact codes) as unit rows."""
        import pyarrow as pa

        if isinstance(stored, (pa.Array, pa.ChunkedArray)):
            column = stored.combine_chunks() if isinstance(stored, pa.ChunkedArray) else stored
            if len(column) == 0:
                return np.zeros((0, 0), dtype=np.float32)
            stored = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)
        stored = np.asarray(stored)
        if self.codec.precision in ("float32", "float16"):
            return normalise(stored.astype(np.float32, copy=False))
        return normalise(self.codec.decode(stored))

    def chunk_at(self, path: str, line: int, *, with_vector: bool = True, repo: str | None = None) -> ChunkRef:
        """The innermost (smallest) chunk of ``path`` (in ``repo``, with several) that contains ``line``."""
        columns = self.row_columns + (["vector"] if with_vector else [])
        where = f"path = {sql_quote(path)}"
        if repo is not None and self.has_repo:
            where += f" AND repo = {sql_quote(repo)}"
        rows = read_rows(self.chunks, columns, where)
        shown = shown_path(repo if self.multi else None, path)
        if not rows:
            raise CodeseerError(f"{shown} is not in the index (not indexed, ignored, or renamed since the last "
                                "`codeseer index`)")
        if len({r.get("repo") for r in rows}) > 1:
            raise CodeseerError(f"{path} is in several repos of this index; give it as REPO/PATH")
        covering = [r for r in rows if int(r["start_line"]) <= line <= int(r["end_line"])]
        if not covering:
            first = min(int(r["start_line"]) for r in rows)
            last = max(int(r["end_line"]) for r in rows)
            raise CodeseerError(f"line {line} of {shown} is outside every indexed chunk (indexed lines: {first}-{last})")
        best = min(covering, key=lambda r: (int(r["end_line"]) - int(r["start_line"]), -int(r["start_line"]),
                                            r["chunk_id"]))
        vector = best.get("vector")
        return ChunkRef(
            chunk_id=best["chunk_id"], path=best["path"], language=best["language"],
            start_line=int(best["start_line"]), end_line=int(best["end_line"]), symbol=best["symbol"] or "",
            kind=best["kind"], text=best["text"], repo=best.get("repo"),
            vector=None if vector is None else self.unit_vectors(np.asarray(vector)[None, :])[0],
        )

    def status(self) -> dict:
        """What is indexed: root, model, counts, languages (files per language), last update."""
        languages: dict[str, int] = {}
        for language in column_values(self.files, "language"):
            languages[language] = languages.get(language, 0) + 1
        state = self.state
        return {
            "root": state.root,
            "repos": state.repo_roots(),
            **({"revs": state.revs} if state.revs else {}),
            "index_dir": str(self.store.directory),
            "model": state.model,
            "dim": state.dim,
            "files": state.files,
            "chunks": state.chunks,
            "ann": self.ann,  # the vector index dense search uses; None: exact
            "updated_at": state.updated_at,
            "languages": dict(sorted(languages.items(), key=lambda item: (-item[1], item[0]))),
        }

    def where(
        self,
        languages: list[str] | None = None,
        path_glob: str | None = None,
        *,
        kinds: list[str] | tuple[str, ...] | None = None,
        exclude_kinds: list[str] | tuple[str, ...] | None = None,
        repos: list[str] | None = None,
        file_kinds: list[str] | tuple[str, ...] | None = None,
    ) -> str | None | bool:
        """A LanceDB filter for these restrictions; ``False`` when the path glob matches no file.

        ``kinds`` are chunk kinds (function, section, ...); ``file_kinds`` the kinds of their files
        (source, test, docs, ...: :mod:`codeseer.index.filekinds`).
        """
        clauses = []
        if file_kinds:
            if "file_kind" not in self.chunks.schema.names:
                raise before_file_kinds(self.store.directory)
            clauses.append(sql_in("file_kind", list(file_kinds)))
        if repos:
            names = self.check_repos(repos)
            if self.has_repo:  # without the column the index is one repo, and check_repos named it
                clauses.append(sql_in("repo", names))
        if languages:
            clauses.append(sql_in("language", sorted({normalize_language(lang) for lang in languages})))
        if kinds:
            clauses.append(sql_in("kind", list(kinds)))
        if exclude_kinds:
            clauses.append("NOT " + sql_in("kind", list(exclude_kinds)))
        if path_glob:
            spec = self._path_spec(path_glob)
            paths = [p for p in column_values(self.files, "path") if spec.match_file(p)]
            if not paths:
                return False
            clauses.append(sql_in("path", paths))
        return " AND ".join(f"({c})" for c in clauses) if clauses else None

    def check_repos(self, repos) -> list[str]:
        """The repo names asked for, each one this index holds (else one clear error)."""
        if isinstance(repos, str):
            repos = [repos]
        names = sorted({str(r).strip() for r in repos if r is not None and str(r).strip()})
        if len(names) > MAX_REPOS:
            raise CodeseerError(f"at most {MAX_REPOS} repos, got {len(names)}")
        unknown = [n for n in names if n not in self.roots]
        if unknown:
            raise CodeseerError(f"unknown repo {unknown[0]!r}; this index holds: {', '.join(sorted(self.roots))}")
        return names

    def _path_spec(self, path_glob: str) -> pathspec.PathSpec:
        """The ``--path`` glob as a gitignore-style pattern over root-relative paths."""
        glob = path_glob.strip()
        if "\0" in glob or "\n" in glob or "\r" in glob:
            raise CodeseerError("invalid --path glob: it must be one line without NUL characters")
        if os.path.isabs(glob):
            # An absolute path inside a root means the same relative one; outside, nothing.
            for root in sorted(self.roots.values(), key=lambda r: -len(str(r))):
                try:
                    glob = Path(os.path.normpath(glob)).relative_to(root).as_posix()
                    break
                except ValueError:
                    pass
        try:
            return pathspec.GitIgnoreSpec.from_lines([glob])
        except Exception as exc:
            raise CodeseerError(f"invalid --path glob {path_glob!r}: {exc}") from None

    @property
    def file_ranker(self):
        """The file ranker of this snapshot (``locate``, ``eval-repo``), made on first use."""
        if getattr(self, "_file_ranker", None) is None:
            from codeseer.search.files import FileRanker

            self._file_ranker = FileRanker(self)
        return self._file_ranker

    @property
    def row_columns(self) -> list[str]:
        """Columns of a hit row: ``repo`` too when the index holds several repositories."""
        columns = CHUNK_COLUMNS + (["repo"] if self.multi and self.has_repo else [])
        return columns + (["file_kind"] if "file_kind" in self.chunks.schema.names else [])

    # ------------------------------------------------------------------ the one dense and lexical search

    def nearest(self, vector: np.ndarray, where: str | None = None, k: int = 10, *,
                exclude: set[str] | frozenset[str] = frozenset()) -> list[dict]:
        """The ``k`` chunk rows nearest to ``vector`` by cosine (``score``, 6 decimals), minus the
        ``exclude`` chunk ids, equal scores in path order: ``search --mode dense``, ``similar``, ``docs``."""
        rows = [row for row in self.dense_rows(vector, where, tie_margin(k) + len(exclude))
                if row["chunk_id"] not in exclude]
        for row in rows:
            row["score"] = round(float(row["score"]), 6)
        return in_tie_order(rows)[:k]

    def lexical_rows(self, text: str, where: str | None, limit: int) -> list[dict]:
        """The ``limit`` best chunk rows for ``text`` by BM25 (``score``)."""
        return self._lexical(text, where, limit)

    def dense_rows(self, vector: np.ndarray, where: str | None, limit: int) -> list[dict]:
        """The ``limit`` chunk rows nearest to ``vector``, best first: through the ANN index where there is
        one (nprobes and refine tuned in codeseer.index.ann), compact codes coarse-searched then rescored."""
        precision = self.codec.precision
        if precision in ("float32", "float16"):
            builder = self.chunks.search(vector, vector_column_name="vector").distance_type("cosine")
            if self.ann:  # tuned for recall@10 >= 0.95 against exact search (codeseer.index.ann)
                builder = ann_search(builder, self._ann_nprobes) if self.use_ann else builder.bypass_vector_index()
            if where:
                builder = builder.where(where, prefilter=True)
            rows = builder.select(self.row_columns + ["_distance"]).limit(limit).to_list()
            for row in rows:
                row["score"] = 1.0 - float(row.pop("_distance"))
            return rows
        if precision == "binary":
            # Coarse: Hamming distance on sign bits, in LanceDB. Fine: float query . signs.
            bits = self.codec.encode(vector[None, :])[0]
            builder = self.chunks.search(bits, vector_column_name="vector").distance_type("hamming")
            if where:
                builder = builder.where(where, prefilter=True)
            rows = builder.select(self.row_columns + ["vector", "_distance"]).limit(RESCORE_FACTOR * limit).to_list()
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
        rows = self.chunks.search().where(sql_in("chunk_id", ids)).select(self.row_columns + ["vector"]).limit(None).to_list()
        order = {cid: n for n, cid in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r["chunk_id"]])

    def _lexical(self, query: str, where: str | None, limit: int) -> list[dict]:
        text = lexical_query(query)
        if not text.strip() or not self._has_fts:
            return []
        builder = self.chunks.search(text, query_type="fts", fts_columns=FTS_COLUMN)
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select(self.row_columns + ["_score"]).limit(limit).to_list()
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
        repos: list[str] | None = None,
        file_kinds: list[str] | tuple[str, ...] | None = None,
        task: str | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``; ``task`` picks another query prefix than the searcher's."""
        if not query or not query.strip():
            raise CodeseerError("empty query")
        if mode not in MODES:
            raise CodeseerError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if fusion not in FUSION_METHODS:
            raise CodeseerError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSION_METHODS)}")
        if len(query) > MAX_QUERY_CHARS:
            raise CodeseerError(f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
        if "\0" in query:
            raise CodeseerError("query contains a NUL character")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise CodeseerError(f"k must be a whole number, not {k!r}")
        if k < 1:
            raise CodeseerError("k must be at least 1")
        if k > MAX_K:
            raise CodeseerError(f"k must be at most {MAX_K}, got {k}")
        if languages and len(languages) > MAX_LANGUAGES:
            raise CodeseerError(f"at most {MAX_LANGUAGES} languages, got {len(languages)}")
        if languages and any("\0" in str(lang) for lang in languages):
            raise CodeseerError("language names cannot contain NUL characters")
        # The model runs first, outside the guard below: its failures are not the index's.
        embedder = self.embedder_for(task) if task else self.embedder
        vector = embedder.encode_queries([query])[0] if mode in ("dense", "hybrid") else None
        if repos:
            self.check_repos(repos)  # an unknown repo is the caller's error, not a damaged index
        try:
            return self._search(query, vector, k, mode, languages, path_glob, fusion, repos, file_kinds)
        except CodeseerError:
            raise
        except Exception as exc:  # a snapshot whose files went missing or bad under us
            raise damaged(self.store.directory, exc) from exc

    def _search(self, query, vector, k, mode, languages, path_glob, fusion, repos=None, file_kinds=None) -> list[Hit]:
        where = self.where(languages, path_glob, repos=repos, file_kinds=file_kinds)
        if where is False:
            return []
        candidates = max(50, 3 * k)
        if mode == "dense":
            rows = self.nearest(vector, where, k)
        elif mode == "lexical":
            rows = in_tie_order(self._lexical(query, where, tie_margin(k)))[:k]
        else:
            dense = self.dense_rows(vector, where, candidates)
            lexical = self._lexical(query, where, candidates)
            rows = in_tie_order(fused_rows(dense, lexical, query, method=fusion))[:k]
        return [Hit.from_row(row) for row in rows]


def open_searcher(index_dir: Path | str | None = None, *, cwd: Path | None = None, model: str | None = None) -> Searcher:
    """A searcher on ``index_dir``, else on the index of the repository around ``cwd``."""
    return Searcher(open_store(index_dir, cwd=cwd), model=model)
