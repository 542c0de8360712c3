"""Issue localisation: which files (and which functions in them) an issue text most likely needs
changed. Chunk hits of a hybrid search are aggregated per file: the file's best chunk score plus
a small bonus for further hits in the same file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from codeseer.apps.common import DOC_KIND, TASK_SEARCH

DEFINITION_KINDS = ("function", "method", "class")
from codeseer.errors import CodeseerError

EXTRA_HIT_WEIGHT = 0.05  # each further hit adds 5% of its own score ...
MAX_EXTRA_HITS = 4  # ... for at most 4 of them
MAX_QUERY_CHARS = 50_000


@dataclass
class LocatedFunction:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    score: float


@dataclass
class LocatedFile:
    path: str
    language: str
    score: float  # best + bonus
    best: float
    hits: int
    functions: list[LocatedFunction] = field(default_factory=list)
    repo: str | None = None  # set only in an index of several repositories

    def to_dict(self) -> dict:
        data = asdict(self)
        if data["repo"] is None:
            del data["repo"]
        return data


@dataclass
class LocateResult:
    query: str
    task: str
    files: list[LocatedFile] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "task": self.task, "files": [f.to_dict() for f in self.files]}


def file_score(scores: list[float]) -> float:
    """Best chunk score plus ``EXTRA_HIT_WEIGHT`` x each of the next ``MAX_EXTRA_HITS`` scores."""
    ranked = sorted(scores, reverse=True)
    return ranked[0] + EXTRA_HIT_WEIGHT * sum(ranked[1 : 1 + MAX_EXTRA_HITS])


def locate(
    searcher,
    text: str,
    *,
    k: int = 10,
    functions_per_file: int = 3,
    candidates: int | None = None,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    include_docs: bool = False,
    task: str = TASK_SEARCH,
    repos: list[str] | None = None,
) -> LocateResult:
    """The ``k`` files most likely to need a change for issue ``text``, best first."""
    if not text or not text.strip():
        raise CodeseerError("empty issue text: describe the problem (or pipe the issue in with `-`)")
    if len(text) > MAX_QUERY_CHARS:
        raise CodeseerError(f"issue text is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
    if k < 1:
        raise CodeseerError("k must be at least 1")
    if functions_per_file < 0:
        raise CodeseerError("functions per file must not be negative")
    pool = candidates or max(50, 10 * k)
    # Searcher.search encodes with the index model's default task (nl2code = TASK_SEARCH).
    more = {"repos": repos} if repos else {}
    hits = searcher.search(text, k=pool, mode="hybrid", languages=languages, path_glob=path_glob, **more)
    if not include_docs:
        hits = [h for h in hits if h.kind != DOC_KIND]
    by_file: dict[tuple, list] = {}
    for hit in hits:  # a file is (repo, path): the same path in two repos is two files
        by_file.setdefault((getattr(hit, "repo", None), hit.path), []).append(hit)
    files = []
    for (repo, path), file_hits in by_file.items():
        file_hits.sort(key=lambda h: (-h.score, h.start_line))
        scores = [h.score for h in file_hits]
        functions = []
        seen = set()
        definitions = [h for h in file_hits if h.kind in DEFINITION_KINDS]
        for h in definitions or file_hits:  # module-level code only when no definition matched
            key = (h.symbol, h.start_line) if h.symbol else (h.kind, h.start_line)
            if key in seen:
                continue
            seen.add(key)
            functions.append(LocatedFunction(h.path, h.start_line, h.end_line, h.symbol, h.kind, h.score))
            if len(functions) >= functions_per_file:
                break
        files.append(LocatedFile(path=path, language=file_hits[0].language, score=round(file_score(scores), 6),
                                 best=scores[0], hits=len(file_hits), functions=functions, repo=repo))
    files.sort(key=lambda f: (-f.score, f.repo or "", f.path))
    return LocateResult(query=text, task=task, files=files[:k])
