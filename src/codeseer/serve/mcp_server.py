"""An MCP server (stdio) exposing the index to coding agents: ``search``, ``similar``, ``locate``,
``context``, ``docs`` and ``index_status``. Built on the official ``mcp`` SDK: ``MCPServer`` in mcp 2.x,
``FastMCP`` in mcp 1.x. A user error comes back as a tool error with a one-line message."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal, Optional

from codeseer.apps.service import Service
from codeseer.errors import CodeseerError

INSTRUCTIONS = (
    "codeseer searches one indexed code repository by meaning. Use `search` for a description or an "
    "identifier, `similar` for code like a given PATH:LINE or snippet (any language), `locate` to find the "
    "files an issue or bug report most likely touches, `context` for a token-budgeted pack of the most "
    "relevant code before writing code, `docs` for the documentation of some code, and `index_status` to see "
    "what is indexed. Every tool names things alike: `query` is what you look for, `path` a glob, `location` "
    "a PATH:LINE, `languages`/`kinds`/`repos` filters, `k` how many results. Paths are relative to "
    "the indexed root; line numbers start at 1. An index of several repositories gives hits a `repo`, "
    "takes locations as REPO/PATH:LINE and filters with `repos`."
)


def _sdk():
    try:  # mcp >= 2
        from mcp.server.mcpserver import MCPServer as Server
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP as Server
        from mcp.server.fastmcp.exceptions import ToolError
    return Server, ToolError


def build_server(service: Service):
    Server, ToolError = _sdk()
    server = Server("codeseer", instructions=INSTRUCTIONS)

    def user_errors(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except CodeseerError as exc:
                raise ToolError(str(exc)) from exc
        return wrapper

    @server.tool()
    @user_errors
    def search(
        query: str,
        k: int = 10,
        mode: Literal["hybrid", "dense", "lexical"] = "hybrid",
        languages: Optional[list[str]] = None,
        path: Optional[str] = None,
        repos: Optional[list[str]] = None,
        kinds: Optional[list[str]] = None,
    ) -> dict[str, Any]:
        """Search the repository for code matching a plain-language description, an identifier or a snippet.

        Returns hits with path (relative to the repository root), start_line, end_line, symbol, language,
        kind, file_kind (source, test, docs, types, build, example, config), score and the code text.
        `languages` filters (e.g. ["py", "ts"]); `path` is a glob such as "src/**/*.py"; `kinds` keeps
        files of those kinds (e.g. ["source"]). k is at most 1000. In an index of several repositories
        hits carry `repo`, `repos` keeps only those repos, and locations elsewhere are written REPO/PATH:LINE.
        """
        return service.search(query, k=k, mode=mode, languages=languages, path=path, repos=repos, kinds=kinds)

    @server.tool()
    @user_errors
    def similar(
        location: Optional[str] = None,
        code: Optional[str] = None,
        k: int = 10,
        languages: Optional[list[str]] = None,
        path: Optional[str] = None,
        repos: Optional[list[str]] = None,
        kinds: Optional[list[str]] = None,
    ) -> dict[str, Any]:
        """Find code similar to the chunk at `location` ("path/to/file.py:42") or to a `code` snippet.

        Works across languages (a Java method finds its C# or Python twin). Give exactly one of
        location or code. The query chunk itself is excluded. `path` (a glob), `languages`, `kinds`
        and `repos` keep to some hits.
        """
        return service.similar(location=location, code=code, k=k, languages=languages, path=path, repos=repos,
                               kinds=kinds)

    @server.tool()
    @user_errors
    def locate(
        query: str,
        k: int = 10,
        functions: int = 3,
        languages: Optional[list[str]] = None,
        path: Optional[str] = None,
        repos: Optional[list[str]] = None,
        include: Optional[list[str]] = None,
    ) -> dict[str, Any]:
        """Rank the source files most likely to need a change for an issue, bug report or change description
        (`query`), each with up to `functions` functions that match best (path, start_line, end_line, symbol,
        score). Paste the whole issue: file names, `backticked` identifiers, stack frames and a "module:"
        prefix all count. `include` ranks other file kinds too (e.g. ["test"]); each file's `features` say
        why it ranks where it does."""
        return service.locate(query, k=k, functions=functions, languages=languages, path=path, repos=repos,
                              include=include)

    @server.tool()
    @user_errors
    def context(
        query: str,
        budget: int = 2000,
        languages: Optional[list[str]] = None,
        path: Optional[str] = None,
        repos: Optional[list[str]] = None,
        kinds: Optional[list[str]] = None,
    ) -> dict[str, Any]:
        """Build a context pack for a coding task (`query`): the most relevant code, merged per file, ordered
        by file and line, each block under a "path:start-end" header, never over `budget` tokens. The
        ready-to-use text is in `markdown`; `blocks` lists each block's path, line range, symbols and score."""
        pack = service.context(query, budget=budget, languages=languages, path=path, repos=repos, kinds=kinds)
        for block in pack["blocks"]:  # the code is in `markdown` already; do not send it twice
            block.pop("text", None)
        return pack

    @server.tool()
    @user_errors
    def docs(location: str, k: int = 5) -> dict[str, Any]:
        """Documentation that describes the code at `location` ("path/to/file.py:42"): markdown/rst sections
        and docstrings (the code's own, its class's and related functions'), best first."""
        return service.docs(location=location, k=k)

    @server.tool()
    @user_errors
    def index_status() -> dict[str, Any]:
        """What is indexed: repository root, model, number of files and chunks, languages, last update."""
        return service.status()

    return server


def serve_stdio(index_dir: Path | str | None = None) -> None:
    service = Service(index_dir)
    build_server(service).run()
