"""Issue localisation: which files (and which functions in them) an issue text most likely needs
changed.

Files are ranked by :class:`codeseer.search.files.FileRanker` (whole-file BM25, path words, dense
chunk scores, the modules and identifiers the text names, file size), among source files unless
``include`` widens the kinds; each file lists the functions whose chunks matched best (hybrid
fusion of dense and BM25 chunk hits)."""

from __future__ import annotations

from dataclasses import dataclass, field

from codeseer.errors import CodeseerError
from codeseer.index.filekinds import SOURCE, ranked_kinds
from codeseer.models.tasks import TASK_SEARCH
from codeseer.search.evidence import quoted_identifiers
from codeseer.search.records import DOC_KIND, Record

DEFINITION_KINDS = ("function", "method", "class")
from codeseer.limits import MAX_QUERY_CHARS  # noqa: E402


@dataclass
class LocatedFunction:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    score: float


@dataclass
class LocatedFile(Record):
    path: str
    language: str
    score: float  # the file ranker's score (weights . features)
    best: float  # fused score of the file's best chunk hit (0 without one)
    hits: int  # chunk hits of the file among the fetched ones
    functions: list[LocatedFunction] = field(default_factory=list)
    repo: str | None = None  # set only in an index of several repositories
    kind: str = SOURCE  # file kind (codeseer.index.filekinds)
    features: dict[str, float] = field(default_factory=dict)  # what the score is made of


@dataclass
class LocateResult:
    query: str
    task: str
    files: list[LocatedFile] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "task": self.task, "files": [f.to_dict() for f in self.files]}


def locate(
    searcher,
    text: str,
    *,
    k: int = 10,
    functions_per_file: int = 3,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    include: list[str] | tuple[str, ...] | None = None,
    task: str = TASK_SEARCH,
    repos: list[str] | None = None,
    weights=None,
) -> LocateResult:
    """The ``k`` files most likely to need a change for issue ``text``, best first.

    ``include`` adds file kinds to the source files ranked by default (``["test", "docs"]``);
    ``weights`` (:class:`~codeseer.search.files.RankerWeights`) replace the shipped ones.
    """
    if not text or not text.strip():
        raise CodeseerError("empty issue text: describe the problem (or pipe the issue in with `-`)")
    if len(text) > MAX_QUERY_CHARS:
        raise CodeseerError(f"issue text is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
    if "\0" in text:
        raise CodeseerError("issue text contains a NUL character")
    if k < 1:
        raise CodeseerError("k must be at least 1")
    if functions_per_file < 0:
        raise CodeseerError("functions per file must not be negative")
    ranked = searcher.file_ranker.rank(text, k=k, kinds=ranked_kinds(include), languages=languages,
                                       path_glob=path_glob, repos=repos, chunks_per_file=functions_per_file,
                                       weights=weights)
    named = set(quoted_identifiers(text))
    files = []
    for f in ranked:
        hits = [h for h in f.hits if h["kind"] != DOC_KIND]
        files.append(LocatedFile(path=f.path, language=f.language, score=f.score,
                                 best=round(float(f.hits[0]["score"]), 6) if f.hits else 0.0, hits=len(f.hits),
                                 functions=_functions(f.path, hits, functions_per_file, named), repo=f.repo, kind=f.kind,
                                 features=f.features))
    return LocateResult(query=text, task=task, files=files)


def _functions(path: str, hits: list[dict], limit: int, named: set[str]) -> list[LocatedFunction]:
    """The best-matching definitions of a file, those the text names first (module-level code only
    when no definition matched)."""
    functions: list[LocatedFunction] = []
    seen = set()

    def is_named(hit: dict) -> bool:
        symbol = hit["symbol"] or ""
        return bool(symbol) and (symbol in named or symbol.rsplit(".", 1)[-1] in named)

    definitions = sorted((h for h in hits if h["kind"] in DEFINITION_KINDS), key=lambda h: not is_named(h))
    for h in definitions or hits:
        if len(functions) >= limit:
            break
        start = int(h["start_line"])
        key = (h["symbol"], start) if h["symbol"] else (h["kind"], start)
        if key in seen:
            continue
        seen.add(key)
        functions.append(LocatedFunction(path, start, int(h["end_line"]), h["symbol"] or "", h["kind"],
                                         round(float(h["score"]), 6)))
    return functions
