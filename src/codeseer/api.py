"""codeseer from Python: build or open an index, then ask it what the CLI asks.

    import codeseer

    idx = codeseer.Index.build("path/to/repo")        # or codeseer.Index.open("path/to/repo")
    for hit in idx.search("retry an operation that sometimes fails", k=5):
        print(hit.path, hit.start_line, hit.symbol, hit.score)
    idx.locate("crash when the config file has an empty line").files[0].path
    idx.similar("src/net/retry.py:12").hits
    idx.context("add a retry option to the HTTP client", budget=2000).render("md")

Every method takes the names the CLI, HTTP API and MCP server share (:mod:`codeseer.limits`, the
README's "One vocabulary") and returns the dataclasses the CLI prints (``Hit``, ``LocateResult``,
``SimilarResult``, ``ContextPack``, ``DocsResult``; ``.to_dict()`` gives their JSON). The index is
re-opened when ``codeseer index`` (or :meth:`Index.update`) commits, keeping the loaded model, as
the servers do. Errors are :class:`codeseer.errors.CodeseerError` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["Index"]


class Index:
    """A codeseer index, ready to query."""

    def __init__(self, index_dir: Path | str) -> None:
        from codeseer.apps.service import Service

        self._service = Service(index_dir)
        self.directory = self._service.store.directory
        self.report = None  # the last build's IndexReport (files, chunks, seconds, ...)

    # -- making and opening -------------------------------------------------------------------
    @classmethod
    def build(cls, path: Path | str = ".", *, index_dir: Path | str | None = None, model: str | None = None,
              progress: bool = False, **options: Any) -> "Index":
        """Index ``path`` (incrementally, as ``codeseer index`` does) and open the result.

        ``options`` are :func:`codeseer.index.indexer.index_repository`'s: ``rev``, ``precision``,
        ``dim``, ``backend``, ``rebuild``, ... ``model`` defaults to codeseer-code-mini (bundled).
        """
        from codeseer.index.indexer import index_repository

        report = index_repository(Path(path), index_dir=Path(index_dir) if index_dir else None, model=model,
                                  progress=progress, **options)
        index = cls(report.index_dir)
        index.report = report
        return index

    @classmethod
    def open(cls, location: Path | str | None = None) -> "Index":
        """The index of ``location``: an index folder, a repository holding ``.codeseer``, or (None) the
        index of the current folder or its parents, as the CLI finds it."""
        from codeseer.index.store import open_store

        return cls(open_store(Path(location).expanduser().resolve() if location is not None else None).directory)

    def update(self, path: Path | str | None = None, **options: Any) -> "Index":
        """Bring the index up to date with its repositories (or index ``path`` into it); returns self."""
        from codeseer.index.indexer import index_repository

        self.report = index_repository(Path(path) if path else None, index_dir=Path(self.directory), **options)
        return self

    # -- asking ------------------------------------------------------------------------------------
    def _searcher(self):
        return self._service.searcher()  # the committed snapshot, re-opened after a commit

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", languages: list[str] | None = None,
               path: str | None = None, repos: list[str] | None = None, kinds: list[str] | None = None,
               task: str | None = None, code_first: bool = False) -> list:
        """The ``k`` best chunks (``Hit``) for ``query`` (words, an identifier or code); ``code_first``:
        as ``codeseer search`` shows them: code hits first, then the best docs and tests hits (at most 3)."""
        from codeseer.index.filekinds import parse_kinds
        from codeseer.search.searcher import code_first as code_then_others
        from codeseer.search.searcher import code_first_pool

        kinds = parse_kinds(kinds) or None
        fetch = code_first_pool(k) if code_first and not kinds else k
        with self._service._lock:
            hits = self._searcher().search(query, k=fetch, mode=mode, languages=languages, path_glob=path, repos=repos,
                                           file_kinds=kinds, task=task)
        return code_then_others(hits, k) if fetch != k else hits

    def locate(self, query: str, *, k: int = 10, functions: int = 3, languages: list[str] | None = None,
               path: str | None = None, repos: list[str] | None = None, include: list[str] | None = None):
        """The files (and their functions) an issue, bug report or change description most likely touches."""
        from codeseer.apps.locate import locate

        with self._service._lock:
            return locate(self._searcher(), query, k=k, functions_per_file=functions, languages=languages,
                          path_glob=path, repos=repos, include=include)

    def similar(self, location: str | None = None, *, code: str | None = None, k: int = 10,
                languages: list[str] | None = None, path: str | None = None, repos: list[str] | None = None,
                kinds: list[str] | None = None):
        """Code like the chunk at ``location`` (``"src/app.py:42"``) or like ``code``, in any language."""
        from codeseer.apps.locations import resolve_location
        from codeseer.apps.similar import similar
        from codeseer.errors import CodeseerError
        from codeseer.index.filekinds import parse_kinds

        if (location is None) == (code is None):
            raise CodeseerError("give a location (PATH:LINE) or code, not both")
        with self._service._lock:
            searcher = self._searcher()
            common = dict(k=k, languages=languages, path_glob=path, repos=repos, file_kinds=parse_kinds(kinds) or None)
            if code is not None:
                return similar(searcher, code=code, **common)
            repo, rel, line = resolve_location(searcher, location)
            return similar(searcher, path=rel, line=line, repo=repo, **common)

    def context(self, query: str, *, budget: int = 2000, languages: list[str] | None = None, path: str | None = None,
                repos: list[str] | None = None, kinds: list[str] | None = None):
        """A ``ContextPack`` of the most relevant code for a task, never over ``budget`` tokens
        (``.render("md")`` is the text to paste)."""
        from codeseer.apps.context import context_pack
        from codeseer.index.filekinds import parse_kinds

        with self._service._lock:
            return context_pack(self._searcher(), query, budget=budget, languages=languages, path_glob=path,
                                repos=repos, file_kinds=parse_kinds(kinds) or None)

    def docs(self, location: str, *, k: int = 5):
        """Documentation (sections, docstrings) that describes the code at ``location``."""
        from codeseer.apps.locations import resolve_location
        from codeseer.apps.docs import docs_for

        with self._service._lock:
            searcher = self._searcher()
            repo, rel, line = resolve_location(searcher, location)
            return docs_for(searcher, rel, line, k=k, repo=repo)

    def status(self) -> dict:
        """What is indexed: root(s), model, files, chunks, languages, last update, limits."""
        return self._service.status()

    def __repr__(self) -> str:
        return f"codeseer.Index({str(self.directory)!r})"
