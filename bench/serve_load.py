"""Load test of ``codeseer serve``: many concurrent clients on loopback for a fixed time, sending a
mix of valid requests (/search hybrid, dense and lexical, /similar, /locate, /context, /docs,
/status) and invalid ones with a known 4xx answer. Every request is recorded, so a lost request (a
connection error or a timeout), a 5xx or an unexpected status shows up, with latency percentiles
overall and per kind of request.

Usage:
  python bench/serve_load.py --index PATH/.codeseer [--seconds 30] [--clients 50] [--token T]
  python bench/serve_load.py --url http://127.0.0.1:8765 [--token T]     # a server already running
  python bench/serve_load.py [--model DIR]   # indexes a copy of this repo's src/ (bundled MiniLM)
  ... [--json OUT]  writes the summary and per-kind rows as JSON

``tests/test_serve_load.py`` imports ``run_load``, ``served`` and ``format_report`` from here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]

QUERIES = [
    "parse a configuration file", "retry with exponential backoff", "read json from disk",
    "compute the average of a list", "validate the request body", "load the model weights",
    "split text into chunks", "token budget", "bearer token check", "cosine similarity of vectors",
    "walk the files of a repository", "sum of item prices", "slugify a title", "open the index",
    "def search(self, query, k=10):", "for item in items: total += item.price",
    "error handling for a missing file", "reciprocal rank fusion", "write rows to a table",
]
LOCATE_TEXTS = [
    "Searching with a path glob returns files outside the glob",
    "The server answers 500 when the body is not JSON",
    "retry never sleeps between attempts, so the backoff does not work",
    "Context pack goes over the token budget for long functions",
    "Cart total ignores the quantity of each item",
]
SNIPPETS = [
    "def mean(values):\n    return sum(values) / len(values)\n",
    "for attempt in range(5):\n    try:\n        return call()\n"
    "    except ConnectionError:\n        time.sleep(2 ** attempt)\n",
    "public double total(List<Item> items) { double t = 0; for (Item i : items) t += i.price; return t; }",
    "with open(path) as fh:\n    data = json.load(fh)\n",
]


@dataclass(frozen=True)
class Probe:
    """One kind of request and the status it must get."""

    kind: str
    method: str
    path: str
    expect: int
    body: Any = None  # sent as JSON
    raw: bytes | None = None  # sent as is (malformed JSON)
    authorized: bool = True


@dataclass
class Record:
    kind: str
    expect: int
    status: int | None  # None: no response (connection error, timeout)
    ms: float
    error: str = ""


@dataclass
class LoadReport:
    seconds: float
    clients: int
    records: list[Record] = field(default_factory=list)

    @property
    def lost(self) -> list[Record]:
        return [r for r in self.records if r.status is None]

    @property
    def server_errors(self) -> list[Record]:
        return [r for r in self.records if r.status is not None and r.status >= 500]

    @property
    def unexpected(self) -> list[Record]:
        """Answered, but not with the status this kind of request must get (5xx included)."""
        return [r for r in self.records if r.status is not None and r.status != r.expect]

    def percentile(self, q: float, records: list[Record] | None = None) -> float:
        times = sorted(r.ms for r in (self.records if records is None else records))
        if not times:
            return 0.0
        return times[min(len(times) - 1, max(0, math.ceil(q / 100 * len(times)) - 1))]  # nearest rank

    def row(self, records: list[Record]) -> dict:
        statuses = [r.status for r in records]
        return {
            "requests": len(records),
            "ok": sum(1 for s in statuses if s is not None and 200 <= s < 300),
            "4xx": sum(1 for s in statuses if s is not None and 400 <= s < 500),
            "5xx": sum(1 for s in statuses if s is not None and s >= 500),
            "errors": sum(1 for s in statuses if s is None),
            "unexpected": sum(1 for r in records if r.status is not None and r.status != r.expect),
            "p50_ms": self.percentile(50, records),
            "p95_ms": self.percentile(95, records),
            "p99_ms": self.percentile(99, records),
            "max_ms": max((r.ms for r in records), default=0.0),
        }

    def summary(self) -> dict:
        return self.row(self.records) | {"clients": self.clients, "seconds": round(self.seconds, 1),
                                         "req_per_s": len(self.records) / self.seconds if self.seconds else 0.0}

    def by_kind(self) -> dict[str, dict]:
        kinds = sorted({r.kind for r in self.records})
        return {kind: self.row([r for r in self.records if r.kind == kind]) for kind in kinds}


def format_report(report: LoadReport) -> str:
    """A per-kind table and the one summary line."""
    columns = ["requests", "ok", "4xx", "5xx", "errors", "unexpected", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    header = f"{'kind':<22}" + "".join(f"{c:>11}" for c in columns)
    lines = [header, "-" * len(header)]
    rows = list(report.by_kind().items()) + [("ALL", report.row(report.records))]
    for kind, row in rows:
        cells = "".join(f"{row[c]:>11.1f}" if c.endswith("_ms") else f"{row[c]:>11}" for c in columns)
        lines.append(f"{kind:<22}{cells}")
    s = report.summary()
    lines.append(
        f"load: {s['clients']} clients x {s['seconds']}s: sent={s['requests']} ok={s['ok']} 4xx={s['4xx']} "
        f"5xx={s['5xx']} errors={s['errors']} unexpected={s['unexpected']} p50={s['p50_ms']:.0f}ms "
        f"p95={s['p95_ms']:.0f}ms p99={s['p99_ms']:.0f}ms max={s['max_ms']:.0f}ms req/s={s['req_per_s']:.1f}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- the request mix


def request_mix(locations: list[str], *, token: str | None) -> list[tuple[int, Probe]]:
    """(weight, probe) pairs: about 85% valid requests over every endpoint, 15% invalid ones."""
    mix: list[tuple[int, Probe]] = [(20, Probe("status", "GET", "/status", 200))]  # health checks are frequent
    for i, query in enumerate(QUERIES):
        for mode, weight in (("hybrid", 6), ("dense", 4), ("lexical", 4)):
            body = {"query": query, "k": (5, 10, 20, 50)[i % 4], "mode": mode}
            if i % 5 == 1:
                body["languages"] = ["python"]
            if i % 7 == 2:
                body["path"] = "**/*.py"
            mix.append((weight, Probe(f"search/{mode}", "POST", "/search", 200, body)))
    for location in locations:
        mix.append((4, Probe("similar/location", "POST", "/similar", 200, {"location": location, "k": 10})))
        mix.append((1, Probe("docs", "POST", "/docs", 200, {"location": location, "k": 3})))
    for snippet in SNIPPETS:
        mix.append((4, Probe("similar/code", "POST", "/similar", 200, {"code": snippet, "k": 10})))
    for i, text in enumerate(LOCATE_TEXTS):
        mix.append((5, Probe("locate", "POST", "/locate", 200, {"query": text, "k": 10, "functions": 3})))
        mix.append((4, Probe("context", "POST", "/context", 200, {"query": text, "budget": (300, 1000, 3000)[i % 3]})))
    invalid = [
        Probe("invalid/k", "POST", "/search", 422, {"query": "x", "k": 0}),
        Probe("invalid/mode", "POST", "/search", 422, {"query": "x", "mode": "fuzzy"}),
        Probe("invalid/field", "POST", "/search", 422, {"query": "x", "colour": "red"}),
        Probe("invalid/too-long", "POST", "/search", 413, {"query": "x" * 50_001}),
        Probe("invalid/json", "POST", "/search", 422, raw=b'{"query": "x", '),
        Probe("invalid/escape", "POST", "/search", 400, {"query": "x", "path": "../**"}),
        Probe("invalid/location", "POST", "/similar", 400, {"location": "no/such/file.py:1"}),
        Probe("invalid/similar", "POST", "/similar", 422, {}),
        Probe("invalid/budget", "POST", "/context", 422, {"query": "x", "budget": 0}),
        Probe("invalid/route", "GET", "/no-such-route", 404),
        Probe("invalid/method", "GET", "/search", 405),
    ]
    if token is not None:
        invalid.append(Probe("invalid/no-token", "POST", "/search", 401, {"query": "x"}, authorized=False))
    total_valid = sum(weight for weight, _ in mix)
    per_invalid = max(1, round(total_valid * 0.15 / 0.85 / len(invalid)))
    return mix + [(per_invalid, probe) for probe in invalid]


def discover_locations(base_url: str, *, token: str | None, count: int = 8) -> list[str]:
    """PATH:LINE of some indexed chunks (REPO/PATH:LINE in an index of several repos)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    found: list[str] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        for query in QUERIES:
            response = client.post("/search", json={"query": query, "k": 5, "mode": "lexical"})
            response.raise_for_status()
            for hit in response.json()["hits"]:
                path = f"{hit['repo']}/{hit['path']}" if hit.get("repo") else hit["path"]
                location = f"{path}:{hit['start_line']}"
                if location not in found:
                    found.append(location)
            if len(found) >= count:
                break
    if not found:
        raise RuntimeError("the index returned no hits to take locations from")
    return found[:count]


# --------------------------------------------------------------------------- the clients


async def _client(base_url: str, probes: list[Probe], weights: list[int], deadline: float, rng: random.Random,
                  token: str | None, timeout: float, records: list[Record]) -> None:
    """One client: one connection, one request at a time, back to back until the deadline."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        while time.monotonic() < deadline:
            probe = rng.choices(probes, weights)[0]
            headers = {"Authorization": f"Bearer {token}"} if token and probe.authorized else {}
            if probe.raw is not None:
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            try:
                response = await client.request(probe.method, probe.path, json=probe.body, content=probe.raw,
                                                headers=headers)
                await response.aread()
                records.append(Record(probe.kind, probe.expect, response.status_code,
                                      (time.perf_counter() - started) * 1000))
            except httpx.HTTPError as exc:
                records.append(Record(probe.kind, probe.expect, None, (time.perf_counter() - started) * 1000,
                                      f"{type(exc).__name__}: {exc}"))


async def _run(base_url: str, mix, seconds: float, clients: int, token: str | None, timeout: float,
               seed: int) -> LoadReport:
    probes = [probe for _, probe in mix]
    weights = [weight for weight, _ in mix]
    records: list[Record] = []
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(
        _client(base_url, probes, weights, deadline, random.Random(seed + i), token, timeout, records)
        for i in range(clients)
    ))
    return LoadReport(seconds=time.monotonic() - started, clients=clients, records=records)


def run_load(base_url: str, *, seconds: float = 30, clients: int = 50, token: str | None = None,
             timeout: float = 60, seed: int = 0, locations: list[str] | None = None) -> LoadReport:
    """Warm the server up, then ``clients`` concurrent clients for ``seconds``; every request recorded."""
    locations = locations or discover_locations(base_url, token=token)
    mix = request_mix(locations, token=token)
    return asyncio.run(_run(base_url, mix, seconds, clients, token, timeout, seed))


# --------------------------------------------------------------------------- the server


def _serve_env(token: str | None) -> dict:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("CODESEER_TOKEN", None)
    if token is not None:
        env["CODESEER_TOKEN"] = token
    return env


@contextmanager
def served(index_dir: Path | str, *, token: str | None = None, log_path: Path | None = None,
           start_timeout: float = 120) -> Iterator[str]:
    """Run ``codeseer serve --port 0`` on ``index_dir`` in a child process; yields its base URL once it answers.

    Its stderr goes to a file (``log_path`` or a temporary one), never to a pipe nobody reads: a full
    pipe would block the server's logging and look like a stall.
    """
    own_log = log_path is None
    log_path = Path(log_path or tempfile.mkstemp(prefix="codeseer-serve-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        command = [sys.executable, "-m", "codeseer.cli", "serve", "--port", "0", "--index", str(index_dir)]
        proc = subprocess.Popen(command, env=_serve_env(token), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + start_timeout
        base_url = None
        while base_url is None:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", log_path.read_text(errors="replace"))
            if match:
                base_url = f"http://127.0.0.1:{match.group(1)}"
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"codeseer serve did not start:\n{log_path.read_text(errors='replace')}")
            else:
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while True:
            try:
                httpx.get(base_url + "/status", headers=headers, timeout=start_timeout).raise_for_status()
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if own_log:
            log_path.unlink(missing_ok=True)


def build_demo_index(workdir: Path, model: str | None) -> Path:
    """Index a copy of this repository's ``src/`` (a few dozen real Python files); returns the index folder."""
    from codeseer.index.indexer import index_repository

    root = workdir / "repo"
    shutil.copytree(REPO_ROOT / "src", root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    report = index_repository(root, model=model)
    return Path(report.index_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--index", type=Path, help="index folder to serve (default: index a copy of src/)")
    target.add_argument("--url", help="base URL of a server already running")
    parser.add_argument("--model", help="model for the demo index (default: the index default, bundled MiniLM)")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--token", default=None, help="bearer token (the server started here requires it too)")
    parser.add_argument("--timeout", type=float, default=60, help="per-request timeout in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the summary and per-kind rows here")
    args = parser.parse_args()

    def measure(base_url: str) -> LoadReport:
        report = run_load(base_url, seconds=args.seconds, clients=args.clients, token=args.token,
                          timeout=args.timeout, seed=args.seed)
        print(format_report(report))
        for record in (report.lost + report.unexpected)[:10]:
            print(f"  {record.kind}: expected {record.expect}, got {record.status} {record.error}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps({"summary": report.summary(), "by_kind": report.by_kind()}, indent=2))
        return report

    if args.url:
        report = measure(args.url.rstrip("/"))
    elif args.index:
        with served(args.index, token=args.token) as base_url:
            report = measure(base_url)
    else:
        with tempfile.TemporaryDirectory(prefix="codeseer-load-") as tmp:
            print("indexing a copy of src/ ...", file=sys.stderr)
            index_dir = build_demo_index(Path(tmp), args.model)
            with served(index_dir, token=args.token) as base_url:
                report = measure(base_url)
    sys.exit(1 if report.lost or report.unexpected else 0)


if __name__ == "__main__":
    main()
