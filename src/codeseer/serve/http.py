"""The HTTP API (FastAPI): the CLI's operations as JSON endpoints, plus a one-page web UI at ``/``.

Safety rules: request bodies over ``MAX_BODY_BYTES`` get 413 before they are read in full; ``k``,
query, snippet and budget limits give 413/422 with a message; ``path`` parameters must stay inside
the indexed root (400); a bearer token is required whenever one is configured, and ``serve``
refuses to bind a non-loopback address without one. Errors never take the server down: a user
error is a 4xx with ``{"detail": "..."}``, anything else a 500 with the same shape.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from typing import ClassVar, Literal, Optional

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from codeseer.apps.locations import PathOutsideRoot
from codeseer.apps.service import BadRequest, RequestTooLarge, Service
from codeseer.limits import MAX_BUDGET, MAX_CODE_CHARS, MAX_FUNCTIONS, MAX_K, MAX_LIST, MAX_PATH_CHARS, MAX_QUERY_CHARS
from codeseer.errors import CodeseerError
from codeseer.serve.auth import TOKEN_ENV, is_loopback, resolve_token

log = logging.getLogger("codeseer.serve")

MAX_BODY_BYTES = 256 * 1024

Languages = Optional[list[str]]
Repos = Optional[list[str]]
REPOS_HELP = "Only these repos of an index of several (names as in /status `repos`)."
Kinds = Optional[list[str]]
KINDS_HELP = "Only files of these kinds: source, test, docs, types, build, example, config."
INCLUDE_HELP = "File kinds ranked besides source: test, docs, types, build, example, config."


class _Request(BaseModel):
    """Strict: the JSON types the schema states, no coercion (``false`` or ``"5"`` is not a ``k``).

    ``LEGACY`` maps the names of the first API to the ones every interface now shares (accepted for
    one release, never shown in the schema).
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    LEGACY: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "file" in cls.model_fields and "path" in data and "line" in data and "file" not in data:
            data["file"] = data.pop("path")  # similar/docs: the file a line is in was called path
        for old, new in cls.LEGACY.items():
            if old in data and new not in data:
                data[new] = data.pop(old)
        return data


QUERY_HELP = "What to look for: words, code, an identifier, an issue or a task."
PATH_HELP = "Only paths matching this glob, relative to the indexed root, e.g. src/**"
LOCATION_HELP = "PATH:LINE, relative to the indexed root (REPO/PATH:LINE in an index of several repos)."


class SearchRequest(_Request):
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description=QUERY_HELP)
    k: int = Field(10, ge=1, le=MAX_K)
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    languages: Languages = Field(None, max_length=MAX_LIST, description="e.g. [\"py\", \"java\"]")
    path: Optional[str] = Field(None, max_length=MAX_PATH_CHARS, description=PATH_HELP)
    repos: Repos = Field(None, max_length=MAX_LIST, description=REPOS_HELP)
    kinds: Kinds = Field(None, max_length=MAX_LIST, description=KINDS_HELP)


class SimilarRequest(_Request):
    LEGACY: ClassVar[dict[str, str]] = {"path_glob": "path"}
    location: Optional[str] = Field(None, max_length=MAX_PATH_CHARS + 12, description=LOCATION_HELP)
    file: Optional[str] = Field(None, max_length=MAX_PATH_CHARS, description="Root-relative file, with line.")
    line: Optional[int] = Field(None, ge=1)
    code: Optional[str] = Field(None, min_length=1, max_length=MAX_CODE_CHARS, description="A snippet instead of a location.")
    k: int = Field(10, ge=1, le=MAX_K)
    languages: Languages = Field(None, max_length=MAX_LIST)
    path: Optional[str] = Field(None, max_length=MAX_PATH_CHARS, description=PATH_HELP)
    repos: Repos = Field(None, max_length=MAX_LIST, description=REPOS_HELP)
    kinds: Kinds = Field(None, max_length=MAX_LIST, description=KINDS_HELP)


class LocateRequest(_Request):
    LEGACY: ClassVar[dict[str, str]] = {"text": "query", "functions_per_file": "functions"}
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description="The issue, bug report or change description.")
    k: int = Field(10, ge=1, le=MAX_K)
    functions: int = Field(3, ge=0, le=MAX_FUNCTIONS, description="Functions listed per file.")
    languages: Languages = Field(None, max_length=MAX_LIST)
    path: Optional[str] = Field(None, max_length=MAX_PATH_CHARS, description=PATH_HELP)
    repos: Repos = Field(None, max_length=MAX_LIST, description=REPOS_HELP)
    include: Kinds = Field(None, max_length=MAX_LIST, description=INCLUDE_HELP)


class ContextRequest(_Request):
    LEGACY: ClassVar[dict[str, str]] = {"task": "query"}
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description="What is about to be written or changed.")
    budget: int = Field(2000, ge=1, le=MAX_BUDGET, description="Token budget (index model's tokenizer).")
    languages: Languages = Field(None, max_length=MAX_LIST)
    path: Optional[str] = Field(None, max_length=MAX_PATH_CHARS, description=PATH_HELP)
    repos: Repos = Field(None, max_length=MAX_LIST, description=REPOS_HELP)
    kinds: Kinds = Field(None, max_length=MAX_LIST, description=KINDS_HELP)


class DocsRequest(_Request):
    location: Optional[str] = Field(None, max_length=MAX_PATH_CHARS + 12, description=LOCATION_HELP)
    file: Optional[str] = Field(None, max_length=MAX_PATH_CHARS, description="Root-relative file, with line.")
    line: Optional[int] = Field(None, ge=1)
    k: int = Field(5, ge=1, le=MAX_K)


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every 4xx and 500: a message, plus the fields at fault when validation failed."""

    detail: str
    errors: Optional[list[FieldError]] = None


ERROR_DESCRIPTIONS = {
    400: "A user error: a path outside the indexed root, a location not in the index, a bad glob.",
    401: "Missing or wrong bearer token.",
    413: "The body, a query, a snippet or a string field is over its limit.",
    422: "The body is not valid JSON or does not match the request schema.",
}


def error_responses(*statuses: int) -> dict:
    """OpenAPI ``responses`` for these error statuses, so clients (and schema checks) know them."""
    return {status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, by Content-Length or while streaming."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._reject(send)
        seen = 0
        rejected = False

        async def limited_receive():
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    rejected = True
                    raise _TooLarge()
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            if rejected:  # the app answered a body cut short (e.g. 400): answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)
        except Exception:
            if rejected and not started:
                await self._reject(send)
            else:
                raise

    async def _reject(self, send) -> None:
        body = (f'{{"detail": "request body is over the {self.limit} byte limit"}}').encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class CrashGuard:
    """ASGI middleware: an unexpected error becomes a 500 ``{"detail": ...}``, and the connection stays usable.

    Not an ``exception_handler(Exception)``: Starlette sends that handler's 500 and then re-raises, so
    uvicorn closes the connection, and a client reusing it (keep-alive) lost its next request (8-35%
    of them in a loop of 500 + /status).
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # half a response is out: only closing the connection can tell the client
                raise
            log.exception("error while serving %s", scope.get("path"))
            body = json.dumps({"detail": f"internal error: {type(exc).__name__}: {exc}"[:500]}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_of(header: str) -> str:
    """The host part of a Host header: ``[::1]:8765`` -> ``::1``, ``localhost:80`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheck:
    """ASGI middleware: without a token, answer only requests addressed to a loopback name.

    A web page on another site can make a browser reach 127.0.0.1 through DNS rebinding; its
    requests then carry that site's name in the Host header and are refused here.
    """

    def __init__(self, app, allowed: set[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = ""
            for name, value in scope.get("headers", []):
                if name == b"host":
                    host = host_of(value.decode("latin-1"))
                    break
            if host not in self.allowed and not is_loopback(host):
                body = (b'{"detail": "Host header not allowed (DNS rebinding protection): open the page as '
                        b'http://127.0.0.1:PORT/ or start the server with --token"}')
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _status_for(exc: CodeseerError) -> int:
    if isinstance(exc, RequestTooLarge):
        return 413
    if isinstance(exc, BadRequest):
        return 422
    return 400


def create_app(service: Service, *, token: str | None = None, max_body: int = MAX_BODY_BYTES,
               host: str = "127.0.0.1") -> FastAPI:
    """The FastAPI app over ``service``; every API route needs ``Authorization: Bearer <token>`` if given.

    Without a token only requests addressed to a loopback name (or ``host``) are answered.
    """
    from codeseer.serve.page import PAGE

    app = FastAPI(
        title="codeseer",
        version="1",
        description="Search a codebase in plain language or with code, find similar code, locate the files an issue "
        "touches and build token-budgeted context packs. All paths are relative to the indexed root.",
        docs_url=None,
        redoc_url=None,
    )
    if token is None:
        async def authorize() -> None:
            """Nothing to check; no security scheme either, so the schema does not promise 401s."""
    else:
        bearer = HTTPBearer(auto_error=False)

        async def authorize(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
            """Async: a 401 is answered on the event loop, never queued behind busy worker threads."""
            bearer_given = credentials is not None and credentials.scheme.lower() == "bearer"
            given = credentials.credentials if bearer_given else ""
            if not secrets.compare_digest(given.encode(), token.encode()):
                raise _Unauthorized()

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, exc: _Unauthorized):
        return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(CodeseerError)
    async def user_error(request: Request, exc: CodeseerError):
        return JSONResponse({"detail": str(exc)}, status_code=_status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        parts = []
        for error in errors[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        too_long = any(e.get("type") == "string_too_long" for e in errors)
        return JSONResponse({"detail": "; ".join(parts) or "invalid request",
                             "errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                                        for e in errors[:20]]},
                            status_code=413 if too_long else 422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    auth_errors = (401,) if token is not None else ()
    status_errors = error_responses(*auth_errors)
    body_errors = error_responses(400, *auth_errors, 413, 422)
    authorized = [Depends(authorize)]
    # Two slots: the operation running and the next one, already in its thread, ready to take the
    # Service lock the moment it is free (with one slot the worker idled while the event loop handed over).
    operation_slots = anyio.CapacityLimiter(2)

    async def in_turn(operation, /, *args, **kwargs) -> dict:
        """Run a Service operation in a worker thread, first come first served.

        Requests wait for their turn here, on the event loop, not in a worker thread. Waiting in
        threads on the Service lock (not fair) used up the thread pool under load: with 50 clients
        and MiniLM, /status took 1.2-1.7 s at p50 instead of ~35 ms, and throughput was 5-12% lower
        (bench/serve_load.py).
        """
        return await anyio.to_thread.run_sync(functools.partial(operation, *args, **kwargs), limiter=operation_slots)

    @app.get("/status", dependencies=authorized, summary="What is indexed", responses=status_errors)
    def status() -> dict:
        # Not in the queue: it waits only for the operations holding a slot, so health checks stay fast.
        return service.status()

    @app.post("/search", dependencies=authorized, responses=body_errors,
              summary="Search in words or code (hybrid, dense or lexical)")
    async def search(body: SearchRequest) -> dict:
        return await in_turn(service.search, body.query, k=body.k, mode=body.mode, languages=body.languages,
                             path=body.path, repos=body.repos, kinds=body.kinds)

    @app.post("/similar", dependencies=authorized, responses=body_errors,
              summary="Code similar to PATH:LINE or to a snippet")
    async def similar(body: SimilarRequest) -> dict:
        return await in_turn(service.similar, location=body.location, file=body.file, line=body.line,
                             code=body.code, k=body.k, languages=body.languages, path=body.path,
                             repos=body.repos, kinds=body.kinds)

    @app.post("/locate", dependencies=authorized, responses=body_errors,
              summary="Files and functions an issue most likely touches")
    async def locate(body: LocateRequest) -> dict:
        return await in_turn(service.locate, body.query, k=body.k, functions=body.functions,
                             languages=body.languages, path=body.path, repos=body.repos, include=body.include)

    @app.post("/context", dependencies=authorized, responses=body_errors,
              summary="A token-budgeted context pack for a task")
    async def context(body: ContextRequest) -> dict:
        return await in_turn(service.context, body.query, budget=body.budget, languages=body.languages,
                             path=body.path, repos=body.repos, kinds=body.kinds)

    @app.post("/docs", dependencies=authorized, responses=body_errors,
              summary="Documentation describing the code at PATH:LINE")
    async def docs(body: DocsRequest) -> dict:
        return await in_turn(service.docs, location=body.location, file=body.file, line=body.line, k=body.k)

    app.add_middleware(BodyLimit, limit=max_body)
    if token is None:
        app.add_middleware(HostCheck, allowed={*LOOPBACK_NAMES, host_of(host)})
    app.add_middleware(CrashGuard)  # added last: outside the others, inside Starlette's own
    return app


class _Unauthorized(Exception):
    pass


__all__ = ["create_app", "resolve_token", "is_loopback", "MAX_BODY_BYTES", "TOKEN_ENV", "PathOutsideRoot"]
