"""Code -> code search: the chunks most like a given chunk (``PATH:LINE``) or a pasted snippet,
in any language (a Java method finds its C# or Python twin)."""

from __future__ import annotations

from dataclasses import dataclass, field

from codeseer.errors import CodeseerError
from codeseer.index.indexer import embed_text
from codeseer.models.tasks import TASK_SIMILAR
from codeseer.search.records import DOC_KIND, ChunkRef, Hit

from codeseer.limits import MAX_CODE_CHARS  # noqa: E402


@dataclass
class SimilarResult:
    query: dict  # {"path", "start_line", "end_line", "symbol", ...} or {"code": ...}
    task: str
    hits: list = field(default_factory=list)  # list[Hit]

    def to_dict(self) -> dict:
        return {"query": self.query, "task": self.task, "hits": [h.to_dict() for h in self.hits]}


def similar(
    searcher,
    *,
    path: str | None = None,
    line: int | None = None,
    code: str | None = None,
    k: int = 10,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    include_docs: bool = False,
    task: str = TASK_SIMILAR,
    repo: str | None = None,
    repos: list[str] | None = None,
    file_kinds: list[str] | None = None,
) -> SimilarResult:
    """Chunks most similar to the chunk at ``path:line`` (itself excluded) or to ``code``.

    ``path`` must already be root-relative (see :func:`codeseer.apps.locations.repo_path`), in ``repo``
    when the index holds several (:func:`codeseer.apps.locations.locate_path`); ``repos`` filters hits.
    Documentation sections are left out unless ``include_docs``.
    """
    if k < 1:
        raise CodeseerError("k must be at least 1")
    if (code is None) == (path is None):
        raise CodeseerError("give either PATH:LINE or a code snippet, not both or neither")
    where = searcher.where(languages, path_glob, exclude_kinds=None if include_docs else (DOC_KIND,), repos=repos,
                           file_kinds=file_kinds)
    exclude: set[str] = set()
    if code is not None:
        if not code.strip():
            raise CodeseerError("empty code snippet: paste some code (e.g. `codeseer similar --code - < file.py`)")
        if len(code) > MAX_CODE_CHARS:
            raise CodeseerError(f"code snippet is {len(code)} characters; the limit is {MAX_CODE_CHARS}")
        vector = searcher.query_vector(code, task)
        query = {"code": code}
    else:
        if line is None:
            raise CodeseerError("a line number is needed with a path (PATH:LINE)")
        chunk: ChunkRef = searcher.chunk_at(path, line, with_vector=True, repo=repo)
        if chunk.vector is not None and searcher.stored_vectors_are_queries(task):
            vector = chunk.vector
        else:
            vector = searcher.query_vector(embed_text(chunk.symbol, chunk.text), task)
        exclude.add(chunk.chunk_id)
        query = chunk.to_dict()
    if where is False:
        return SimilarResult(query=query, task=task)
    rows = searcher.nearest(vector, where or None, k + 4, exclude=exclude)
    if path is not None:  # the same lines under another id (a duplicate slice): still the query itself
        rows = [r for r in rows if not (r["path"] == query["path"] and int(r["start_line"]) == query["start_line"]
                                        and int(r["end_line"]) == query["end_line"]
                                        and r.get("repo") == query.get("repo"))]
    return SimilarResult(query=query, task=task, hits=[Hit.from_row(r) for r in rows[:k]])
