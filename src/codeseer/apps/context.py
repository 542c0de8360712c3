"""Token-budgeted context packs for code generation.

The best chunks of a hybrid search are taken greedily in relevance order while the rendered pack
still fits the budget; overlapping or adjacent chunks of one file are merged into one block; blocks
are ordered by file, then line, each under a ``path:start-end`` header. Tokens are counted with the
index model's tokenizer over the whole rendered pack (headers and fences included), and the final
pack is re-counted as one string, so it is never over budget.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from codeseer.errors import CodeseerError
from codeseer.models.tasks import TASK_SEARCH
from codeseer.search.records import Record

FORMATS = ("md", "json")
from codeseer.limits import MAX_BUDGET  # noqa: E402
from codeseer.limits import MAX_QUERY_CHARS as MAX_TASK_CHARS  # noqa: E402


@dataclass
class ContextBlock(Record):
    path: str
    language: str
    start_line: int
    end_line: int
    symbols: list[str]
    score: float
    text: str
    truncated: bool = False
    repo: str | None = None  # set only in an index of several repositories

    @property
    def header(self) -> str:
        return self.location

    def to_dict(self) -> dict:
        return super().to_dict() | {"header": self.header}


@dataclass
class ContextPack:
    task: str
    budget: int
    tokens: int  # tokens of the markdown rendering, headers included
    blocks: list[ContextBlock] = field(default_factory=list)
    candidates: int = 0
    used_chunks: int = 0
    smallest: int = 0  # tokens of the smallest block that could be made (the best chunk's header), when none fit

    def render(self, fmt: str = "md") -> str:
        if fmt == "md":
            return render_blocks(self.blocks)
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2) + "\n"
        raise CodeseerError(f"unknown format {fmt!r}; choose md or json")

    def to_dict(self) -> dict:
        return {"task": self.task, "budget": self.budget, "tokens": self.tokens, "candidates": self.candidates,
                "used_chunks": self.used_chunks, "blocks": [b.to_dict() for b in self.blocks]}


# --------------------------------------------------------------------------- tokens


def token_counter(tokenizer) -> Callable[[str], int]:
    """``len(tokens)`` of a text without special tokens, for HF and ``tokenizers`` tokenizers."""
    if tokenizer is None:
        raise CodeseerError("the index model has no tokenizer to count tokens with")
    if hasattr(tokenizer, "encode_batch") and not hasattr(tokenizer, "convert_tokens_to_ids"):  # tokenizers.Tokenizer
        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False).ids) if text else 0
        return count

    def count_hf(text: str) -> int:
        if not text:
            return 0
        return len(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    return count_hf


# --------------------------------------------------------------------------- rendering


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=0)
    return "`" * max(3, longest + 1)


def render_block(block: ContextBlock) -> str:
    fence = _fence(block.text)
    lang = re.sub(r"[^A-Za-z0-9_+-]", "", block.language or "")
    return f"### {block.header}\n{fence}{lang}\n{block.text}\n{fence}\n"


def render_blocks(blocks: Sequence[ContextBlock]) -> str:
    return "\n".join(render_block(b) for b in blocks)


# --------------------------------------------------------------------------- packing


def chunk_lines(hit) -> dict[int, str]:
    """Line number -> source line of a hit (parts 2+ of a split function drop their repeated head)."""
    n = hit.end_line - hit.start_line + 1
    lines = hit.text.split("\n")
    if len(lines) > n:
        lines = lines[-n:]
    return {hit.start_line + i: line for i, line in enumerate(lines[:n])}


def merge_hits(hits: Sequence) -> list[ContextBlock]:
    """Blocks of the union of the hits' line ranges per file (overlapping and adjacent merged)."""
    by_path: dict[tuple, list] = {}
    for hit in hits:  # keyed by (repo, path): the same path in two repos is two files
        by_path.setdefault((getattr(hit, "repo", None) or "", hit.path), []).append(hit)
    blocks = []
    for path in sorted(by_path):
        group = sorted(by_path[path], key=lambda h: (h.start_line, h.end_line))
        current: list = []
        end = None
        for hit in group:
            if current and hit.start_line <= end + 1:
                current.append(hit)
                end = max(end, hit.end_line)
                continue
            if current:
                blocks.append(_block(current))
            current, end = [hit], hit.end_line
        if current:
            blocks.append(_block(current))
    return blocks


def _block(hits: list) -> ContextBlock:
    lines: dict[int, str] = {}
    for hit in hits:
        for number, line in chunk_lines(hit).items():
            lines.setdefault(number, line)
    start = min(h.start_line for h in hits)
    end = max(h.end_line for h in hits)
    text = "\n".join(lines.get(i, "") for i in range(start, end + 1))
    symbols = []
    for hit in hits:
        if hit.symbol and hit.symbol not in symbols:
            symbols.append(hit.symbol)
    return ContextBlock(path=hits[0].path, language=hits[0].language, start_line=start, end_line=end,
                        symbols=symbols, score=max(h.score for h in hits), text=text,
                        repo=getattr(hits[0], "repo", None))


def build_pack(hits: Sequence, budget: int, count: Callable[[str], int], *, task: str = "") -> ContextPack:
    """Greedy packing of ``hits`` (best first) into at most ``budget`` tokens of rendered markdown."""
    if budget < 1:
        raise CodeseerError(f"budget must be at least 1 token, got {budget}")
    cache: dict[tuple, int] = {}

    def block_tokens(block: ContextBlock) -> int:
        key = (block.repo, block.path, block.start_line, block.end_line, hashlib.sha1(block.text.encode("utf-8", "surrogatepass")).digest())
        if key not in cache:
            cache[key] = count(render_block(block))
        return cache[key]

    separator = count("\n")

    def estimate(blocks: list[ContextBlock]) -> int:
        return sum(block_tokens(b) for b in blocks) + separator * max(0, len(blocks) - 1)

    unique = []
    seen = set()
    for hit in hits:
        key = (getattr(hit, "repo", None), hit.path, hit.start_line, hit.end_line)
        if key not in seen:
            seen.add(key)
            unique.append(hit)
    selected: list = []
    for hit in unique:
        if estimate(merge_hits(selected + [hit])) <= budget:
            selected.append(hit)
    blocks = merge_hits(selected)
    tokens = count(render_blocks(blocks))
    while tokens > budget and selected:  # the sum of parts can differ from the whole: drop the weakest
        selected.pop()
        blocks = merge_hits(selected)
        tokens = count(render_blocks(blocks))
    smallest = 0
    if not selected and unique:
        blocks, tokens = _truncated_top(unique[0], budget, count)
        if not blocks:
            smallest, tokens = tokens, 0
    return ContextPack(task=task, budget=budget, tokens=tokens, blocks=blocks, candidates=len(unique),
                       used_chunks=len(selected) or (1 if blocks else 0), smallest=smallest)


def _largest(upper: int, ok: Callable[[int], bool]) -> int:
    """The largest n in 0..upper with ``ok(n)`` (``ok`` holds up to some n, then never), 0 if none."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _truncated_top(hit, budget: int, count: Callable[[str], int]) -> tuple[list[ContextBlock], int]:
    """The best chunk cut to its first lines when not even it fits whole; to the start of its first
    line (marked ``…``) when no whole line fits; an error when not even its header fits."""
    block = _block([hit])
    lines = block.text.split("\n")

    def cut(n: int) -> ContextBlock:
        return replace(block, end_line=block.start_line + n - 1, text="\n".join(lines[:n]), truncated=True)

    def cut_line(chars: int) -> ContextBlock:
        return replace(block, end_line=block.start_line, text=lines[0][:chars].rstrip() + " …", truncated=True)

    fits = lambda block: count(render_block(block)) <= budget  # noqa: E731
    lo = _largest(len(lines), lambda n: fits(cut(n)))  # whole lines
    if lo:
        best = cut(lo)
    else:
        best = cut_line(_largest(len(lines[0]), lambda n: fits(cut_line(n))))  # the start of the first line
        if not fits(best):
            return [], count(render_block(cut_line(0)))  # not even the header fits: what it would need
    return [best], count(render_blocks([best]))


def context_pack(
    searcher,
    task_text: str,
    *,
    budget: int,
    candidates: int = 60,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    include_docs: bool = True,
    task: str = TASK_SEARCH,
    repos: list[str] | None = None,
    file_kinds: list[str] | None = None,
) -> ContextPack:
    """A context pack of at most ``budget`` tokens (index model's tokenizer) for ``task_text``."""
    if not task_text or not task_text.strip():
        raise CodeseerError("empty task: say what code you are about to write")
    if len(task_text) > MAX_TASK_CHARS:
        raise CodeseerError(f"task text is {len(task_text)} characters; the limit is {MAX_TASK_CHARS}")
    if budget < 1:
        raise CodeseerError(f"budget must be at least 1 token, got {budget}")
    if budget > MAX_BUDGET:
        raise CodeseerError(f"budget must be at most {MAX_BUDGET} tokens, got {budget}")
    hits = searcher.search(task_text, k=max(1, candidates), mode="hybrid", languages=languages, path_glob=path_glob,
                           repos=repos, file_kinds=file_kinds, task=task)
    if not include_docs:
        hits = [h for h in hits if h.kind != "section"]
    count = token_counter(searcher.embedder.tokenizer)
    pack = build_pack(hits, budget, count, task=task_text)
    if pack.smallest:
        header = hits[0].shown_path + f":{hits[0].start_line}"
        raise CodeseerError(f"a budget of {budget} tokens does not hold even the best chunk's header ({pack.smallest} "
                            f"tokens for {header}); give --budget {pack.smallest} or more")
    return pack
