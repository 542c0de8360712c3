"""One long-lived handle on an index for the servers (MCP, HTTP): the same operations as the CLI,
with request limits, strict root-relative paths, JSON-ready results, and the snapshot re-opened
when ``codeseer index`` commits a new version (the model stays loaded)."""

from __future__ import annotations

import threading
from pathlib import Path

from codeseer.apps.locations import check_glob, locate_path, parse_location
from codeseer.errors import CodeseerError
from codeseer.index.store import open_store
from codeseer.limits import MAX_BUDGET, MAX_CODE_CHARS, MAX_FUNCTIONS, MAX_K, MAX_LIST, MAX_QUERY_CHARS


class RequestTooLarge(CodeseerError):
    """A query, snippet or body over the service's limits."""


class BadRequest(CodeseerError):
    """A parameter outside its allowed range."""


def _limit_text(name: str, text: str | None, limit: int) -> str:
    if text is None or not str(text).strip():
        raise BadRequest(f"{name} must not be empty")
    if len(str(text)) > limit:
        raise RequestTooLarge(f"{name} is {len(str(text))} characters; the limit is {limit}")
    return str(text)


def _limit_k(k: int, limit: int = MAX_K) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limit:
        raise BadRequest(f"k must be an integer from 1 to {limit}, got {k!r}")
    return k


def _languages(languages) -> list[str] | None:
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = [languages]
    languages = [lang for lang in languages if lang and str(lang).strip()]
    if len(languages) > MAX_LIST:
        raise BadRequest(f"at most {MAX_LIST} languages")
    return languages or None


def _repos(repos) -> list[str] | None:
    """The repo filter of a request (names are checked against the index by the searcher)."""
    if repos is None:
        return None
    if isinstance(repos, str):
        repos = [repos]
    repos = [str(r) for r in repos if r and str(r).strip()]
    if len(repos) > MAX_LIST:
        raise BadRequest(f"at most {MAX_LIST} repos")
    return repos or None


def _kinds(kinds, what: str = "kinds") -> list[str] | None:
    """File kinds of a request (``["source", "test"]``); an unknown one is a 400 naming the known ones."""
    from codeseer.index.filekinds import parse_kinds

    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    if len(kinds) > MAX_LIST:
        raise BadRequest(f"at most {MAX_LIST} {what}")
    try:
        return parse_kinds(kinds, what=what) or None
    except CodeseerError as exc:
        raise BadRequest(str(exc)) from None


class Service:
    """Thread-safe: one operation at a time (the model and CPU are shared anyway)."""

    def __init__(self, index_dir: Path | str | None = None, *, cwd: Path | None = None, searcher=None) -> None:
        self._lock = threading.RLock()
        if searcher is not None:
            self.store = searcher.store
            self._searcher = searcher
        else:
            self.store = open_store(index_dir, cwd=cwd)
            self._searcher = None
            self.searcher()  # fail fast on a missing or damaged index

    # -- snapshot ---------------------------------------------------------------------------
    def searcher(self):
        from codeseer.search.searcher import Searcher

        with self._lock:
            state = self.store.read_state()
            if state is None:
                raise CodeseerError(f"no codeseer index at {self.store.directory}; run `codeseer index` first")
            old = self._searcher
            if old is not None and old.state == state:
                return old
            fresh = Searcher(self.store)
            fresh.adopt_models(old)  # a new snapshot of the same index: keep the loaded model
            self._searcher = fresh
            return fresh

    def warm_up(self) -> None:
        """Load the model now (servers call this at start so the first query is fast)."""
        try:
            with self._lock:
                self.searcher().embedder
        except Exception:  # a broken model shows up as a clear error on the first request instead
            pass

    @property
    def root(self) -> Path:
        return Path(self.searcher().state.root)

    def _path(self, path: str) -> tuple[str | None, str]:
        """(repo, root-relative path): ``REPO/PATH`` in an index of several repos; never outside a root."""
        return locate_path(self.searcher(), path, strict=True)

    # -- operations -------------------------------------------------------------------------
    # One vocabulary for the CLI, HTTP, MCP and Python (codeseer.api): ``query`` is what is looked for
    # (words, code, an issue, a task), ``path`` a glob that keeps to some files, ``location`` a
    # ``PATH:LINE`` (or ``file`` + ``line``), ``languages``/``repos``/``kinds`` filters, ``k`` results.

    def status(self) -> dict:
        with self._lock:
            return self.searcher().status() | {"limits": {
                "k": MAX_K, "query_chars": MAX_QUERY_CHARS, "code_chars": MAX_CODE_CHARS, "budget": MAX_BUDGET,
                "functions": MAX_FUNCTIONS, "list": MAX_LIST}}

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", languages=None, path: str | None = None,
               repos=None, kinds=None) -> dict:
        query = _limit_text("query", query, MAX_QUERY_CHARS)
        k = _limit_k(k)
        glob = check_glob(path)
        file_kinds = _kinds(kinds)
        with self._lock:
            hits = self.searcher().search(query, k=k, mode=mode, languages=_languages(languages), path_glob=glob,
                                          repos=_repos(repos), file_kinds=file_kinds)
        return {"query": query, "mode": mode, "hits": [h.to_dict() for h in hits]}

    def _location(self, location: str | None, file: str | None, line: int | None) -> tuple[str, int]:
        """``location`` (PATH:LINE) or ``file`` + ``line``, checked."""
        if location is not None:
            if file is not None or line is not None:
                raise BadRequest("give location or file + line, not both")
            file, line = parse_location(location)
        if file is None or line is None:
            raise BadRequest("give location (PATH:LINE) or file + line")
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise BadRequest(f"line must be a positive integer, got {line!r}")
        return file, line

    def similar(self, *, location: str | None = None, file: str | None = None, line: int | None = None,
                code: str | None = None, k: int = 10, languages=None, path: str | None = None, repos=None,
                kinds=None) -> dict:
        from codeseer.apps.similar import similar

        k = _limit_k(k)
        glob = check_glob(path)
        if (code is None) == (location is None and file is None):
            raise BadRequest("give exactly one of location, file + line, or code")
        if code is not None:
            if line is not None:
                raise BadRequest("line goes with file, not with code")
            code = _limit_text("code", code, MAX_CODE_CHARS)
        else:
            file, line = self._location(location, file, line)
        with self._lock:
            repo = None
            if file is not None:
                repo, file = self._path(file)
            return similar(self.searcher(), path=file, line=line, code=code, k=k, languages=_languages(languages),
                           path_glob=glob, repo=repo, repos=_repos(repos), file_kinds=_kinds(kinds)).to_dict()

    def locate(self, query: str, *, k: int = 10, functions: int = 3, languages=None, path: str | None = None,
               repos=None, include=None) -> dict:
        from codeseer.apps.locate import locate

        query = _limit_text("query", query, MAX_QUERY_CHARS)
        k = _limit_k(k)
        if not isinstance(functions, int) or isinstance(functions, bool) or not 0 <= functions <= MAX_FUNCTIONS:
            raise BadRequest(f"functions must be an integer from 0 to {MAX_FUNCTIONS}")
        glob = check_glob(path)
        with self._lock:
            return locate(self.searcher(), query, k=k, functions_per_file=functions,
                          languages=_languages(languages), path_glob=glob, repos=_repos(repos),
                          include=_kinds(include, "include")).to_dict()

    def context(self, query: str, *, budget: int = 2000, languages=None, path: str | None = None, repos=None,
                kinds=None) -> dict:
        from codeseer.apps.context import context_pack

        query = _limit_text("query", query, MAX_QUERY_CHARS)
        if not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= MAX_BUDGET:
            raise BadRequest(f"budget must be an integer from 1 to {MAX_BUDGET}, got {budget!r}")
        glob = check_glob(path)
        with self._lock:
            pack = context_pack(self.searcher(), query, budget=budget, languages=_languages(languages), path_glob=glob,
                                repos=_repos(repos), file_kinds=_kinds(kinds))
        return pack.to_dict() | {"markdown": pack.render("md")}

    def docs(self, *, location: str | None = None, file: str | None = None, line: int | None = None,
             k: int = 5) -> dict:
        from codeseer.apps.docs import docs_for

        k = _limit_k(k)
        file, line = self._location(location, file, line)
        with self._lock:
            repo, file = self._path(file)
            return docs_for(self.searcher(), file, line, k=k, repo=repo).to_dict()
