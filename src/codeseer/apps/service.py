"""One long-lived handle on an index for the servers (MCP, HTTP): the same operations as the CLI,
with request limits, strict root-relative paths, JSON-ready results, and the snapshot re-opened
when ``codeseer index`` commits a new version (the model stays loaded)."""

from __future__ import annotations

import threading
from pathlib import Path

from codeseer.apps.common import carry_models, check_glob, index_status, locate_path, open_store, parse_location
from codeseer.errors import CodeseerError

MAX_K = 100
MAX_QUERY_BYTES = 8 * 1024
MAX_CODE_BYTES = 64 * 1024
MAX_BUDGET = 100_000
MAX_LANGUAGES = 32


class RequestTooLarge(CodeseerError):
    """A query, snippet or body over the service's limits."""


class BadRequest(CodeseerError):
    """A parameter outside its allowed range."""


def _limit_text(name: str, text: str | None, limit: int) -> str:
    if text is None or not str(text).strip():
        raise BadRequest(f"{name} must not be empty")
    size = len(str(text).encode("utf-8", "surrogatepass"))
    if size > limit:
        raise RequestTooLarge(f"{name} is {size} bytes; the limit is {limit} bytes")
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
    if len(languages) > MAX_LANGUAGES:
        raise BadRequest(f"at most {MAX_LANGUAGES} languages")
    return languages or None


def _repos(repos) -> list[str] | None:
    """The repo filter of a request (names are checked against the index by the searcher)."""
    if repos is None:
        return None
    if isinstance(repos, str):
        repos = [repos]
    repos = [str(r) for r in repos if r and str(r).strip()]
    if len(repos) > MAX_LANGUAGES:
        raise BadRequest(f"at most {MAX_LANGUAGES} repos")
    return repos or None


def _kinds(kinds, what: str = "kinds") -> list[str] | None:
    """File kinds of a request (``["source", "test"]``); an unknown one is a 400 naming the known ones."""
    from codeseer.index.filekinds import parse_kinds

    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    if len(kinds) > MAX_LANGUAGES:
        raise BadRequest(f"at most {MAX_LANGUAGES} {what}")
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
            carry_models(old, fresh)  # a new snapshot of the same index: keep the loaded model
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
    def status(self) -> dict:
        with self._lock:
            return index_status(self.searcher()) | {"limits": {"k": MAX_K, "query_bytes": MAX_QUERY_BYTES,
                                                               "code_bytes": MAX_CODE_BYTES, "budget": MAX_BUDGET}}

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", languages=None, path: str | None = None,
               repos=None, kinds=None) -> dict:
        query = _limit_text("query", query, MAX_QUERY_BYTES)
        k = _limit_k(k)
        glob = check_glob(path)
        file_kinds = _kinds(kinds)
        with self._lock:
            hits = self.searcher().search(query, k=k, mode=mode, languages=_languages(languages), path_glob=glob,
                                          repos=_repos(repos), file_kinds=file_kinds)
        return {"query": query, "mode": mode, "hits": [h.to_dict() for h in hits]}

    def similar(self, *, location: str | None = None, path: str | None = None, line: int | None = None,
                code: str | None = None, k: int = 10, languages=None, path_glob: str | None = None, repos=None,
                kinds=None) -> dict:
        from codeseer.apps.similar import similar

        k = _limit_k(k)
        glob = check_glob(path_glob)
        if location is not None:
            if path is not None or line is not None:
                raise BadRequest("give location or path + line, not both")
            path, line = parse_location(location)
        given = [x for x in (path, code) if x is not None]
        if len(given) != 1:
            raise BadRequest("give exactly one of: location (PATH:LINE), path + line, or code")
        if code is not None:
            code = _limit_text("code", code, MAX_CODE_BYTES)
        else:
            if line is None:
                raise BadRequest("line is required with path")
            if not isinstance(line, int) or isinstance(line, bool) or line < 1:
                raise BadRequest(f"line must be a positive integer, got {line!r}")
        with self._lock:
            repo = None
            if path is not None:
                repo, path = self._path(path)
            return similar(self.searcher(), path=path, line=line, code=code, k=k, languages=_languages(languages),
                           path_glob=glob, repo=repo, repos=_repos(repos), file_kinds=_kinds(kinds)).to_dict()

    def locate(self, text: str, *, k: int = 10, functions_per_file: int = 3, languages=None,
               path: str | None = None, repos=None, include=None) -> dict:
        from codeseer.apps.locate import locate

        text = _limit_text("text", text, MAX_QUERY_BYTES)
        k = _limit_k(k)
        if not 0 <= functions_per_file <= 20:
            raise BadRequest("functions_per_file must be from 0 to 20")
        glob = check_glob(path)
        with self._lock:
            return locate(self.searcher(), text, k=k, functions_per_file=functions_per_file,
                          languages=_languages(languages), path_glob=glob, repos=_repos(repos),
                          include=_kinds(include, "include")).to_dict()

    def context(self, task: str, *, budget: int = 2000, languages=None, path: str | None = None, repos=None,
                kinds=None) -> dict:
        from codeseer.apps.context import context_pack

        task = _limit_text("task", task, MAX_QUERY_BYTES)
        if not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= MAX_BUDGET:
            raise BadRequest(f"budget must be an integer from 1 to {MAX_BUDGET}, got {budget!r}")
        glob = check_glob(path)
        with self._lock:
            pack = context_pack(self.searcher(), task, budget=budget, languages=_languages(languages), path_glob=glob,
                                repos=_repos(repos), file_kinds=_kinds(kinds))
        return pack.to_dict() | {"markdown": pack.render("md")}

    def docs(self, *, location: str | None = None, path: str | None = None, line: int | None = None, k: int = 5) -> dict:
        from codeseer.apps.docs import docs_for

        k = _limit_k(k)
        if location is not None:
            path, line = parse_location(location)
        if path is None or line is None:
            raise BadRequest("give location (PATH:LINE) or path + line")
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise BadRequest(f"line must be a positive integer, got {line!r}")
        with self._lock:
            repo, path = self._path(path)
            return docs_for(self.searcher(), path, line, k=k, repo=repo).to_dict()
