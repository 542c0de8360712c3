"""``codeseer serve`` (HTTP API + web page) and ``codeseer mcp`` (stdio MCP server).

Module-level imports stay light; FastAPI, uvicorn and the MCP SDK load when a command runs.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from codeseer.errors import CodeseerError
from codeseer.render import console

err = console(stderr=True)

IndexOpt = Annotated[Optional[Path], typer.Option("--index", help="Index folder (default: found in this folder or a parent).")]


def _missing(package: str, exc: ImportError) -> CodeseerError:
    return CodeseerError(f"{package} is not installed ({exc}); install it with: pip install {package}")


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket (so a busy port is one clear error, and port 0 picks a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CodeseerError(f"cannot resolve host {host!r}: {exc}") from None
    family, _, _, _, address = infos[0]
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on connections accepted from a
    # socket whose proto says TCP; with 0 every response written in two parts waits ~40 ms for the
    # client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CodeseerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind. Anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0: any free port).")] = 8765,
    index_dir: IndexOpt = None,
    token: Annotated[Optional[str], typer.Option("--token", help="Require `Authorization: Bearer TOKEN` (default: $CODESEER_TOKEN).", show_default=False)] = None,
    preload: Annotated[bool, typer.Option("--preload/--no-preload", help="Load the model at start-up instead of on the first query.")] = True,
) -> None:
    """Serve the index over HTTP: a JSON API and a search page at http://HOST:PORT/.

    Endpoints: GET /status; POST /search, /similar, /locate, /context, /docs; schema at /openapi.json.

    Examples:

      codeseer serve                                   # http://127.0.0.1:8765/

      CODESEER_TOKEN=s3cret codeseer serve --host 0.0.0.0 --port 9000
    """
    from codeseer.serve.auth import resolve_token  # light: refuse before any heavy import

    token = resolve_token(token, host)
    try:
        import uvicorn

        from codeseer.serve.http import create_app
    except ImportError as exc:
        raise _missing("fastapi uvicorn", exc) from None
    from codeseer.apps.service import Service

    service = Service(index_dir)
    app = create_app(service, token=token, host=host)
    sock = listen_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if preload:
        threading.Thread(target=service.warm_up, name="codeseer-preload", daemon=True).start()
    err.print(f"[bold green]serving[/] {service.root} on http://{shown}:{bound_port}/ "
              f"[dim](auth: {'bearer token' if token else 'none, loopback only'}; Ctrl-C to stop)[/]", highlight=False)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def mcp_command(index_dir: IndexOpt = None) -> None:
    """Run an MCP server on stdio for coding agents (tools: search, similar, locate, context, index_status).

    Examples:

      claude mcp add codeseer -- codeseer mcp --index /path/to/repo/.codeseer
    """
    try:
        from codeseer.serve.mcp_server import serve_stdio
    except ImportError as exc:
        raise _missing("mcp", exc) from None
    serve_stdio(index_dir)
