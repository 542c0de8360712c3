"""Front-ends that serve an index to other programs: an MCP server for coding agents
(:mod:`codeseer.serve.mcp_server`), a JSON HTTP API with a small web page
(:mod:`codeseer.serve.http`). Both call :class:`codeseer.apps.service.Service`.
Importing this package is cheap; FastAPI, uvicorn and the MCP SDK load when a server starts.
"""
