"""Near-duplicate functions across a repository, clustered: refactoring candidates.

Scales to 100k+ chunks without holding all pairs: the normalised vectors are compared in blocks
(``block`` x ``block`` matrix products over the upper triangle, 64 MiB per block at 4096), only
pairs at or above the threshold are kept, and they go straight into a union-find.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from codeseer.index.store import read_arrow
from codeseer.search.records import DEFINITION_KINDS, Record
from codeseer.errors import CodeseerError

DEFAULT_THRESHOLD = 0.95
DEFAULT_MIN_LINES = 5
BLOCK = 4096
MAX_CLUSTER_STATS = 400  # pairwise statistics of bigger clusters use their first 400 members


@dataclass
class DupeMember(Record):
    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    kind: str
    similarity: float  # best similarity to another member of its cluster
    repo: str | None = None  # set only in an index of several repositories


@dataclass
class DupeCluster:
    members: list[DupeMember]
    min_similarity: float
    mean_similarity: float
    max_similarity: float

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def lines(self) -> int:
        return sum(m.end_line - m.start_line + 1 for m in self.members)

    def to_dict(self) -> dict:
        return {"size": self.size, "lines": self.lines, "min_similarity": self.min_similarity,
                "mean_similarity": self.mean_similarity, "max_similarity": self.max_similarity,
                "members": [m.to_dict() for m in self.members]}


@dataclass
class DupesResult:
    threshold: float
    min_lines: int
    candidates: int  # functions compared
    pairs: int  # pairs at or above the threshold
    seconds: float
    clusters: list[DupeCluster] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "min_lines": self.min_lines, "candidates": self.candidates,
                "pairs": self.pairs, "seconds": round(self.seconds, 3),
                "clusters": [c.to_dict() for c in self.clusters]}


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)
        self.rank = np.zeros(n, dtype=np.int8)

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.rank[ra] < self.rank[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        if self.rank[ra] == self.rank[rb]:
            self.rank[ra] += 1


def similar_pairs(vectors: np.ndarray, threshold: float, *, block: int = BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(i, j, similarity) arrays, i < j, of every pair with cosine >= ``threshold``, block by block.

    ``vectors`` must be L2-normalised. Peak extra memory is one ``block`` x ``block`` float32 matrix.
    """
    n = len(vectors)
    if block < 1:
        raise ValueError("block must be positive")
    for r0 in range(0, n, block):
        rows = vectors[r0 : r0 + block]
        for c0 in range(r0, n, block):
            sims = rows @ vectors[c0 : c0 + block].T
            if c0 == r0:  # diagonal block: only j > i
                sims[np.tril_indices(sims.shape[0], 0, sims.shape[1])] = -np.inf
            i, j = np.nonzero(sims >= threshold)
            if len(i):
                yield i + r0, j + c0, sims[i, j]


def find_dupes(
    searcher,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_lines: int = DEFAULT_MIN_LINES,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    block: int = BLOCK,
    max_clusters: int | None = None,
) -> DupesResult:
    """Clusters of near-duplicate functions/methods, largest first."""
    started = time.perf_counter()
    if not 0.0 < threshold <= 1.0:
        raise CodeseerError(f"threshold must be in (0, 1], got {threshold}")
    if min_lines < 1:
        raise CodeseerError(f"min-lines must be at least 1, got {min_lines}")
    where = searcher.where(languages, path_glob, kinds=DEFINITION_KINDS)
    if where is False:
        return DupesResult(threshold, min_lines, 0, 0, time.perf_counter() - started)
    columns = ["path", "language", "start_line", "end_line", "symbol", "kind", "vector"]
    multi = searcher.multi and searcher.has_repo
    table = read_arrow(searcher.chunks, columns + (["repo"] if multi else []), where)
    starts = np.asarray(table.column("start_line").to_numpy(zero_copy_only=False), dtype=np.int64)
    ends = np.asarray(table.column("end_line").to_numpy(zero_copy_only=False), dtype=np.int64)
    keep = np.nonzero(ends - starts + 1 >= min_lines)[0]
    table = table.take(keep)
    starts, ends = starts[keep], ends[keep]
    n = table.num_rows
    if n < 2:
        return DupesResult(threshold, min_lines, n, 0, time.perf_counter() - started)
    paths = table.column("path").to_pylist()
    repos = table.column("repo").to_pylist() if multi else [None] * n
    symbols = table.column("symbol").to_pylist()
    vectors = searcher.unit_vectors(table.column("vector"))  # int8/binary codes are decoded
    # (path, symbol) ids: adjacent parts of one split function are not duplicates of each other.
    files = [f"{r}\0{p}" if r else p for r, p in zip(repos, paths)]  # the same path in two repos: two files
    path_ids = _codes(files)
    symbol_ids = _codes([f"{p}\0{s}" for p, s in zip(files, symbols)])

    uf = UnionFind(n)
    best = np.full(n, -np.inf, dtype=np.float32)
    pairs = 0
    for i, j, s in similar_pairs(vectors, threshold, block=block):
        same_file = path_ids[i] == path_ids[j]
        overlapping = same_file & (starts[i] <= ends[j]) & (starts[j] <= ends[i])
        adjacent = (starts[i] == ends[j] + 1) | (starts[j] == ends[i] + 1)
        split_parts = same_file & adjacent & (symbol_ids[i] == symbol_ids[j])
        ok = ~(overlapping | split_parts)
        i, j, s = i[ok], j[ok], s[ok]
        pairs += len(i)
        np.maximum.at(best, i, s)
        np.maximum.at(best, j, s)
        for a, b in zip(i.tolist(), j.tolist()):
            uf.union(a, b)

    clusters = _clusters(uf, best, vectors, table, paths, repos, symbols, starts, ends)
    clusters.sort(key=lambda c: (-c.size, -c.mean_similarity, -c.lines, c.members[0].path, c.members[0].start_line))
    if max_clusters is not None:
        clusters = clusters[:max_clusters]
    return DupesResult(threshold, min_lines, n, pairs, time.perf_counter() - started, clusters)


def _clusters(uf: UnionFind, best: np.ndarray, vectors: np.ndarray, table, paths, repos, symbols, starts,
              ends) -> list[DupeCluster]:
    """The union-find's groups of two or more, each with its similarity statistics."""
    groups: dict[int, list[int]] = {}
    for idx in np.nonzero(np.isfinite(best))[0].tolist():
        groups.setdefault(uf.find(idx), []).append(idx)
    languages = table.column("language").to_pylist()
    kinds = table.column("kind").to_pylist()
    clusters = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (repos[m] or "", paths[m], int(starts[m])))
        sub = vectors[members[:MAX_CLUSTER_STATS]]
        sims = sub @ sub.T
        upper = sims[np.triu_indices(len(sub), k=1)]
        clusters.append(DupeCluster(
            members=[
                DupeMember(path=paths[m], start_line=int(starts[m]), end_line=int(ends[m]), symbol=symbols[m] or "",
                           language=languages[m], kind=kinds[m], similarity=round(float(best[m]), 4), repo=repos[m])
                for m in members
            ],
            min_similarity=round(float(upper.min()), 4),
            mean_similarity=round(float(upper.mean()), 4),
            max_similarity=round(float(upper.max()), 4),
        ))
    return clusters


def _codes(values: list[str]) -> np.ndarray:
    ids: dict[str, int] = {}
    return np.fromiter((ids.setdefault(v, len(ids)) for v in values), dtype=np.int64, count=len(values))


# --------------------------------------------------------------------------- reports


def render_markdown(result: DupesResult, *, title: str = "Near-duplicate functions") -> str:
    lines = [
        f"# {title}",
        "",
        f"{len(result.clusters)} clusters from {result.candidates} functions of at least {result.min_lines} lines "
        f"(cosine similarity >= {result.threshold}; {result.pairs} similar pairs; {result.seconds:.1f}s).",
        "",
    ]
    for n, cluster in enumerate(result.clusters, 1):
        lines += [
            f"## {n}. {cluster.size} functions, {cluster.lines} lines, similarity "
            f"{cluster.min_similarity:.3f}-{cluster.max_similarity:.3f} (mean {cluster.mean_similarity:.3f})",
            "",
            "| location | symbol | language | best match |",
            "|---|---|---|---|",
        ]
        for m in cluster.members:
            lines.append(f"| `{m.location}` | `{m.symbol or m.kind}` | {m.language} | {m.similarity:.3f} |")
        lines.append("")
    if not result.clusters:
        lines.append("No near-duplicates found.")
    return "\n".join(lines).rstrip() + "\n"


def render_html(result: DupesResult, *, title: str = "Near-duplicate functions") -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
        "table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}"
        "code{font-family:ui-monospace,monospace}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{len(result.clusters)} clusters from {result.candidates} functions of at least {result.min_lines} lines "
        f"(cosine similarity &ge; {result.threshold}; {result.pairs} similar pairs; {result.seconds:.1f}s).</p>",
    ]
    for n, cluster in enumerate(result.clusters, 1):
        parts.append(
            f"<h2>{n}. {cluster.size} functions, {cluster.lines} lines, similarity "
            f"{cluster.min_similarity:.3f}&ndash;{cluster.max_similarity:.3f} (mean {cluster.mean_similarity:.3f})</h2>"
        )
        parts.append("<table><tr><th>location</th><th>symbol</th><th>language</th><th>best match</th></tr>")
        for m in cluster.members:
            parts.append(
                f"<tr><td><code>{esc(m.location)}</code></td><td><code>{esc(m.symbol or m.kind)}</code></td>"
                f"<td>{esc(m.language)}</td><td>{m.similarity:.3f}</td></tr>"
            )
        parts.append("</table>")
    if not result.clusters:
        parts.append("<p>No near-duplicates found.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
