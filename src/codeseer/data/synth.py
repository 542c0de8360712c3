"""Synthetic developer-style queries for mined functions, from an OpenAI-compatible chat endpoint.

The Qodo-Embed recipe: for every distinct function (the ``positive`` of an nl2code pair), an LLM
writes ONE short query the way a developer would type it into code search (keywords or "how to
...", no identifiers copied from the code). Each answer becomes a pair
``{"query", "positive", "task": "nl2code", "kind": "synthetic", "language", "source", "symbol", "model"}``.

* Requests go to ``BASE_URL/chat/completions`` (``BASE_URL`` is the API root such as
  ``http://localhost:8000/v1``; a root without a version gets ``/v1``). Without ``model``, the
  first id of ``GET BASE_URL/models`` is used (which also checks the URL before any work).
* 429 and 5xx answers, timeouts and dropped connections are retried with exponential backoff
  (``Retry-After`` honoured, capped at 60 s). A URL that cannot be reached, 404 (wrong API root)
  and 401/403 (key) stop the run with one line; other 4xx answers and malformed replies count as
  failures of that one function.
* Resumable: OUT is appended to, a line at a time; functions already in it are skipped, and a
  torn last line (a crash mid-write) is cut off first. Failures are not written, so the next run
  tries them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeseer.data.filters import split_identifier
from codeseer.errors import CodeseerError
from codeseer.jsonl import iter_jsonl_objects

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_CODE_CHARS = 6000
MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 25
MAX_RETRY_AFTER = 60.0

SYSTEM_PROMPT = (
    "You write the search queries that developers type into a code search engine. "
    "You answer with the query only: no quotes, no explanation."
)
USER_PROMPT = """Here is a {language} function:

```{language}
{code}
```

Write ONE short search query (3 to 12 words) that a developer who needs this function would type into code search \
to find it. Write it the way developers really search: keywords or a "how to ..." question about what the code \
does. Do not copy the function's name or other identifiers from the code verbatim. Answer with the query only."""


@dataclass
class SynthReport:
    functions: int = 0  # distinct functions asked about in this run's scope (after --limit)
    already_done: int = 0  # skipped because OUT already has them
    written: int = 0
    failed: int = 0  # HTTP errors (after retries) and other 4xx answers
    malformed: int = 0  # 200 answers that are not a chat completion
    rejected: Counter = field(default_factory=Counter)  # empty / too_long / name_copied queries
    retries: int = 0
    model: str = ""
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "functions": self.functions, "already_done": self.already_done, "written": self.written,
            "failed": self.failed, "malformed": self.malformed, "rejected": dict(sorted(self.rejected.items())),
            "retries": self.retries, "model": self.model, "seconds": round(self.seconds, 3),
        }


class _Fatal(Exception):
    pass


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()


def chat_url(base_url: str) -> tuple[str, str]:
    """(chat completions URL, models URL) for an API root; CodeseerError for a URL that is not http(s)."""
    import httpx

    try:
        url = httpx.URL(base_url.strip())
    except Exception:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise CodeseerError(f"--base-url {base_url!r}: not an http(s) URL such as http://localhost:8000/v1")
    root = str(url).rstrip("/")
    if root.endswith("/chat/completions"):
        return root, root[: -len("/chat/completions")] + "/models"
    if not re.search(r"/v\d+[a-z]*$", root):
        root += "/v1"
    return root + "/chat/completions", root + "/models"


def read_functions(pairs_path: str | os.PathLike) -> list[dict[str, Any]]:
    """Distinct positives (code) of the nl2code pairs in PAIRS.jsonl, first occurrence first."""
    path = Path(pairs_path)
    if not path.is_file():
        raise CodeseerError(f"no such pairs file: {pairs_path}")
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for lineno, pair in iter_jsonl_objects(path, CodeseerError):
        positive = pair.get("positive")
        if not isinstance(positive, str):
            raise CodeseerError(f"{path}:{lineno}: not a pair line (JSON with query and positive)")
        if pair.get("task", "nl2code") != "nl2code" or not positive.strip():
            continue
        key = _digest(positive)
        if key in seen:
            continue
        seen.add(key)
        out.append({"positive": positive, "language": pair.get("language", ""),
                    "source": pair.get("source", ""), "symbol": pair.get("symbol", ""), "_key": key})
    return out


def _done_keys(out_path: Path) -> set[str]:
    """Positives already in OUT; a torn last line is cut off so that appending stays valid JSONL."""
    done: set[str] = set()
    if not out_path.exists():
        return done
    good_end = 0
    with out_path.open("rb") as handle:
        pos = 0
        for raw in handle:
            pos += len(raw)
            if not raw.endswith(b"\n"):
                break
            try:
                record = json.loads(raw)
                done.add(_digest(record["positive"]))
            except (ValueError, KeyError, TypeError):
                if raw.strip():
                    break
            good_end = pos
    if good_end < out_path.stat().st_size:
        with out_path.open("r+b") as handle:
            handle.truncate(good_end)
    return done


_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_PREFIX = re.compile(r"^\s*((search\s+)?query\s*:|[-*•]\s+|\d+[.)]\s+)", re.I)


def clean_query(content: str, symbol: str = "") -> tuple[str, str | None]:
    """(query, rejection reason or None) from a model's answer."""
    text = _THINK.sub("", content or "")
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line).strip()
    line = line.strip("\"'`“”‘’ ").strip()
    if not line:
        return "", "empty"
    if len(line) > MAX_QUERY_CHARS or len(line.split()) > MAX_QUERY_WORDS:
        return line, "too_long"
    name = symbol.rsplit(".", 1)[-1] if symbol else ""
    if name and len(split_identifier(name)) >= 2 and re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", line):
        return line, "name_copied"
    return line, None


def synth_queries(
    pairs_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    base_url: str,
    model: str | None = None,
    api_key: str | None = None,
    concurrency: int = 4,
    limit: int | None = None,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
    temperature: float = 0.7,
    max_tokens: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> SynthReport:
    """Ask the endpoint for one query per distinct function of ``pairs_path``; append pairs to ``out_path``.

    ``limit``: only the first N distinct functions (those already in OUT count among them).
    ``progress(done, total)`` is called after each function of this run.
    """
    started = time.perf_counter()
    chat, models_url = chat_url(base_url)
    out = Path(out_path)
    if out.is_dir() or not out.parent.is_dir():
        raise CodeseerError(f"cannot write {out_path}: " + ("it is a folder" if out.is_dir() else f"folder {out.parent} does not exist"))
    functions = read_functions(pairs_path)
    if limit is not None:
        functions = functions[: max(0, limit)]
    report = SynthReport(functions=len(functions))
    try:
        done = _done_keys(out)
        handle = out.open("a", encoding="utf-8")
    except OSError as exc:
        raise CodeseerError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    todo = [f for f in functions if f["_key"] not in done]
    report.already_done = len(functions) - len(todo)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    endpoint = _Endpoint(report, chat, timeout=timeout, headers=headers, retries=retries, backoff=backoff)

    def one(item: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
        return endpoint.ask(item, temperature=temperature, max_tokens=max_tokens)

    def record(status: str, result: dict[str, Any] | None, reason: str | None) -> None:
        if status == "ok":
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
            handle.flush()
            report.written += 1
        elif status == "rejected":
            report.rejected[reason] += 1
        elif status == "malformed":
            report.malformed += 1
        else:
            report.failed += 1

    try:
        with handle, endpoint.client:
            if todo:
                report.model = model or _first_model(endpoint.request, endpoint.fatal_status, models_url)
            _in_pool(todo, one, record, concurrency=concurrency, progress=progress)
    except _Fatal as exc:
        raise CodeseerError(str(exc)) from None
    report.seconds = time.perf_counter() - started
    return report


class _Endpoint:
    """An OpenAI-compatible chat endpoint with retries (backoff, ``Retry-After``) shared by the workers."""

    def __init__(self, report: SynthReport, chat: str, *, timeout: float, headers: dict, retries: int,
                 backoff: float) -> None:
        import httpx

        self.report, self.chat, self.timeout, self.retries, self.backoff = report, chat, timeout, retries, backoff
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers, follow_redirects=True)

    def request(self, method: str, url: str, **kw):
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            delay = self.backoff * (2 ** attempt) + random.uniform(0, self.backoff)
            try:
                resp = self.client.request(method, url, **kw)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = exc
                if isinstance(exc, httpx.UnsupportedProtocol) or (isinstance(exc, httpx.ConnectError) and attempt >= min(self.retries, 2)):
                    break  # nothing listens there: do not spend the whole backoff on it
            else:
                if resp.status_code not in RETRY_STATUS:
                    return resp
                last = None
                after = resp.headers.get("retry-after", "")
                if after.replace(".", "", 1).isdigit():
                    delay = min(float(after), MAX_RETRY_AFTER)
                if attempt == self.retries:
                    return resp
            if attempt < self.retries:
                with self.lock:
                    self.report.retries += 1
                time.sleep(delay)
        if isinstance(last, httpx.ConnectError) or isinstance(last, httpx.UnsupportedProtocol):
            raise _Fatal(f"cannot reach {url}: {last}")
        if isinstance(last, httpx.TimeoutException):
            raise TimeoutError(f"timed out after {self.timeout:g}s")
        raise last if last is not None else RuntimeError("no response")

    @staticmethod
    def fatal_status(resp, url: str) -> None:
        if resp.status_code == 404:
            raise _Fatal(f"{url} answered 404: is --base-url the API root (such as http://localhost:8000/v1)?")
        if resp.status_code in (401, 403):
            raise _Fatal(f"{url} answered {resp.status_code}: check the API key (--api-key-env)")

    def ask(self, item: dict[str, Any], *, temperature: float, max_tokens: int) -> tuple[str, dict[str, Any] | None, str | None]:
        """('ok', record) | ('failed'|'malformed', None) | ('rejected', None, reason)."""
        import httpx

        code = item["positive"]
        if len(code) > MAX_CODE_CHARS:
            code = code[:MAX_CODE_CHARS] + "\n..."
        lang = item["language"] or "code"
        payload = {
            "model": self.report.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_PROMPT.format(language=lang, code=code)},
            ],
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        try:
            resp = self.request("POST", self.chat, json=payload)
        except (httpx.HTTPError, TimeoutError, RuntimeError):
            return "failed", None, None
        self.fatal_status(resp, self.chat)
        if resp.status_code >= 400:
            return "failed", None, None
        try:
            content = resp.json()["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            return "malformed", None, None
        query, reason = clean_query(content, item["symbol"])
        if reason:
            return "rejected", None, reason
        record = {"query": query, "positive": item["positive"], "task": "nl2code", "kind": "synthetic",
                  "language": item["language"], "source": item["source"], "symbol": item["symbol"],
                  "model": self.report.model}
        return "ok", record, None


def _in_pool(todo: list, work: Callable, on_result: Callable, *, concurrency: int,
             progress: Callable[[int, int], None] | None) -> None:
    """``work(item)`` for every item on ``concurrency`` threads, at most twice that many queued;
    results are handed to ``on_result`` in this thread (one writer), and a fatal error stops them all."""
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    pending: set[Future] = set()
    items = iter(todo)
    finished = 0
    try:
        while True:
            while len(pending) < 2 * max(1, concurrency):
                item = next(items, None)
                if item is None:
                    break
                pending.add(pool.submit(work, item))
            if not pending:
                break
            ready, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in ready:
                on_result(*fut.result())  # _Fatal propagates
                finished += 1
                if progress is not None:
                    progress(finished, len(todo))
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _first_model(request, fatal_status, models_url: str) -> str:
    import httpx

    try:
        resp = request("GET", models_url)
    except (httpx.HTTPError, TimeoutError, RuntimeError) as exc:
        raise _Fatal(f"cannot list models at {models_url} ({exc}); give --model") from None
    fatal_status(resp, models_url)
    try:
        resp.raise_for_status()
        return str(resp.json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        raise _Fatal(f"{models_url} did not list a model; give --model") from None
