"""One set of request limits for every interface: the CLI, the HTTP API, the MCP server and the
Python API take the same sizes, so a request that works in one works in all of them."""

from __future__ import annotations

MAX_K = 1000  # results asked for in one request
MAX_QUERY_CHARS = 50_000  # a query, an issue or change description (locate), a task (context)
MAX_CODE_CHARS = 100_000  # a snippet to find similar code to
MAX_BUDGET = 100_000  # tokens of a context pack
MAX_LIST = 32  # names in one filter: languages, repos, file kinds
MAX_FUNCTIONS = 50  # functions listed per located file
MAX_PATH_CHARS = 1024  # a path, a glob or a PATH:LINE location
