"""Mine (query, code) training pairs from source trees with codeseer's own walker and chunker.

For every function / method chunk (chunked without size limits, so a body is never a part of a
function) this gives up to four pairs, in this order:

* ``docstring`` (nl2code): the doc's description (the text before its first field / section:
  ``:param``, ``@param``, ``Args:``, ``Returns:``, numpy ``Parameters``, Rust ``# Examples``,
  doctests) -> the function's code with that docstring / leading doc comment removed;
* ``first_sentence`` (nl2code): the description's first sentence -> the same code (only when it
  differs from the whole description and has enough words);
* ``code2nl`` (code2nl): the code (signature + body, doc removed) -> the description;
* ``name`` (nl2code): the function's own name split into words (``parse_http_header``,
  ``parseHttpHeader`` -> ``parse http header``) -> the code, when the name has two words or more.

Docs are Python docstrings and, elsewhere, the comment block the chunker attaches above the
definition (JSDoc / ``/* */`` / ``//``, Go doc comments, Rust ``///`` and ``//!``, Java / C / C++ /
C# comments, ``#`` in Ruby / PHP).

Filters (:mod:`codeseer.data.filters`) are counted separately in ``MineReport.removed``. Then, on
the normalised code (:mod:`codeseer.data.dedup`): code equal to or a MinHash near-duplicate
(Jaccard >= 0.8) of an ``--exclude`` corpus document is dropped (``excluded_exact`` /
``excluded_near``), then code equal to or a near-duplicate of code mined earlier in the run
(``exact_duplicate`` / ``near_duplicate``; the first one met, in walk order, stays). Function-level
reasons drop all of a function's pairs; doc-level reasons only its doc pairs.
"""

from __future__ import annotations

import ast
import glob
import json
import os
import random
import re
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeseer.data import filters
from codeseer.data.dedup import Deduper, MinHasher, exact_key, normalise_code
from codeseer.data.queries import search_query
from codeseer.errors import CodeseerError
from codeseer.jsonl import iter_jsonl_objects
from codeseer.index.languages import STRUCTURAL_LANGUAGES, detect_language

LANGUAGE_ALIASES: dict[str, tuple[str, ...]] = {
    "py": ("python",), "js": ("javascript",), "jsx": ("javascript",), "ts": ("typescript", "tsx"),
    "typescript": ("typescript", "tsx"), "rs": ("rust",), "golang": ("go",), "cs": ("csharp",),
    "c#": ("csharp",), "c++": ("cpp",), "cc": ("cpp",), "kt": ("kotlin",), "rb": ("ruby",),
}
FUNCTION_KINDS = ("function", "method")
MAX_QUERY_CHARS = 1000
VENDORED_DIRS = frozenset({"node_modules", "bower_components", "vendor", "third_party", "third-party", "site-packages"})
_UNLIMITED = {"max_lines": 10**9, "max_chars": 10**12}
_BRACE_LANGUAGES = frozenset({"javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "csharp", "php", "kotlin"})


# --------------------------------------------------------------------------- report


@dataclass
class MineReport:
    """What a mining run produced: ``pairs`` (empty when they were streamed to ``on_pair``) and counts.

    ``removed`` counts functions for function-level reasons (test_code, short_body, long_body,
    max_per_file, excluded_*, *_duplicate) and docs for doc-level ones (no_doc, licence,
    non_english, boilerplate_doc, repeats_name, short_doc), plus ``name_one_word`` for names too
    short for a name pair.
    """

    pairs: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0  # files read and chunked
    functions: int = 0  # function / method chunks seen
    kept_functions: int = 0  # functions that gave at least one pair
    pair_count: int = 0
    by_language: Counter = field(default_factory=Counter)  # pairs per language
    by_kind: Counter = field(default_factory=Counter)  # pairs per kind
    removed: Counter = field(default_factory=Counter)
    skipped_files: Counter = field(default_factory=Counter)  # the walker's reasons (binary, too large, ...)
    exclude_docs: int = 0  # corpus documents loaded from --exclude
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Everything but the pairs, JSON-ready."""
        return {
            "files": self.files, "functions": self.functions, "kept_functions": self.kept_functions,
            "pairs": self.pair_count, "by_language": dict(sorted(self.by_language.items())),
            "by_kind": dict(sorted(self.by_kind.items())), "removed": dict(sorted(self.removed.items())),
            "skipped_files": dict(sorted(self.skipped_files.items())), "exclude_docs": self.exclude_docs,
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- languages


def resolve_languages(langs: Iterable[str] | None) -> frozenset[str]:
    """``['py', 'js,go']`` -> codeseer language names; None or empty: every tree-sitter language."""
    if not langs:
        return frozenset(STRUCTURAL_LANGUAGES)
    out: set[str] = set()
    for spec in langs:
        for name in (s.strip().lower() for s in spec.split(",")):
            if not name:
                continue
            names = LANGUAGE_ALIASES.get(name, (name,))
            for n in names:
                if n not in STRUCTURAL_LANGUAGES:
                    known = ", ".join(sorted(STRUCTURAL_LANGUAGES | set(LANGUAGE_ALIASES)))
                    raise CodeseerError(f"unknown language {name!r} in --langs (known: {known})")
            out.update(names)
    return frozenset(out)


# --------------------------------------------------------------------------- docs


def _python_doc(text: str) -> tuple[str, str] | None:
    """(raw docstring, code without it) for a Python function chunk, or None when it has no docstring."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if node is None or not node.body:
        return None
    first = node.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return None
    if first.lineno <= node.lineno or first.end_lineno is None:
        return None  # docstring on the def line: cannot cut it out by lines
    lines = text.split("\n")
    s, e = first.lineno - 1, first.end_lineno - 1
    if len(node.body) > 1 and node.body[1].lineno - 1 <= e:
        return None  # `"""doc"""; x = 1`
    doc = ast.get_docstring(node, clean=True) or ""
    return doc, "\n".join(lines[:s] + lines[e + 1 :])


_COMMENT_OPEN = re.compile(r"^(/\*+!?|///?!?|#+)\s?")


def _comment_doc(text: str, language: str) -> tuple[str, str] | None:
    """(raw leading comment without markers, code without it), or None."""
    from codeseer.text.docstrings import split_doc

    split = split_doc(text, language)
    if not split.doc or split.doc_end < split.doc_start:
        return None
    lines = text.split("\n")
    raw: list[str] = []
    for line in lines[split.doc_start : split.doc_end + 1]:
        s = line.strip()
        s = re.sub(r"\s*\*+/\s*$", "", s)
        m = _COMMENT_OPEN.match(s)
        if m:
            s = s[m.end() :]
        elif s.startswith("*"):
            s = re.sub(r"^\*+\s?", "", s)
        raw.append(s.rstrip())
    doc = "\n".join(raw).strip("\n")
    return textwrap.dedent(doc), "\n".join(lines[: split.doc_start] + lines[split.doc_end + 1 :])


def split_function(text: str, language: str) -> tuple[str, str]:
    """(raw doc, code without the doc) of a function chunk; ``''`` for the doc when there is none.

    The code is dedented, stripped of blank edge lines and (brace languages) of closing-bracket
    lines the chunker appended after the function (the enclosing class's ``}``).
    """
    got = _python_doc(text) if language == "python" else _comment_doc(text, language)
    doc, code = got if got is not None else ("", text)
    return doc, _tidy(code, language)


def _tidy(code: str, language: str) -> str:
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if language in _BRACE_LANGUAGES:
        excess = "\n".join(lines).count("}") - "\n".join(lines).count("{")
        while excess > 0 and lines and re.fullmatch(r"[\s)}\];,]*", lines[-1]) and "}" in lines[-1]:
            excess -= lines.pop().count("}")
        while lines and not lines[-1].strip():
            lines.pop()
    return textwrap.dedent("\n".join(lines))


_SECTION = re.compile(
    r"^\s*((Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Throws|Exceptions?|Examples?|Notes?|See Also"
    r"|Attributes|Keyword Arguments|Keyword Args|Kwargs|Other Parameters|Warnings?|References|Usage|Safety|Panics"
    r"|Errors)\s*:?\s*$|>>>|\.\.\s+[\w-]+::|[-=~]{3,}\s*$|```|#{1,3}\s+\w)"
)
_ROLE = re.compile(r":[\w:.-]+:`~?([^`]*)`")
_LINK = re.compile(r"\{@(?:link|linkplain|code)\s+([^}]*)\}")
_ABBREV = re.compile(r"(\b(e\.g|i\.e|etc|vs|cf|approx|resp|incl|no|fig|eq)\.|\b[A-Za-z]\.|\.\.\.)$", re.I)


def describe(raw_doc: str) -> tuple[str, str]:
    """(description, first sentence) of a doc: the text before its first field or section, one line."""
    kept: list[str] = []
    for line in raw_doc.split("\n"):
        line = filters.SUMMARY_TAG.sub("", line)  # Doxygen / JSDoc \brief, @details, @summary
        if _SECTION.match(line) or filters._FIELD_LINE.match(line):
            break
        kept.append(line)
    paragraphs = re.split(r"\n\s*\n", "\n".join(kept).strip())
    text = _clean(" ".join(kept))
    first_par = _clean(paragraphs[0]) if paragraphs else ""
    return _cap(text), _cap(_first_sentence(first_par))


def _clean(text: str) -> str:
    text = _ROLE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = text.replace("``", "`")
    return " ".join(text.split())


def _first_sentence(par: str) -> str:
    for m in re.finditer(r"[.!?](?=\s|$)", par):
        cand = par[: m.end()]
        if _ABBREV.search(cand):
            continue
        rest = par[m.end() :].lstrip()
        if rest and rest[0].islower():
            continue
        return cand
    return par


def _cap(text: str) -> str:
    if len(text) <= MAX_QUERY_CHARS:
        return text
    cut = text[:MAX_QUERY_CHARS]
    return cut[: cut.rfind(" ")] if " " in cut else cut


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class _File:
    source: Any  # walker.SourceFile
    rel: str  # relative to the root the user gave (for the test-code filter)
    shown: str  # how pairs cite it


def _list_files(paths: Iterable[str | os.PathLike], languages: frozenset[str], stats, include_vendored: bool) -> list[_File]:
    from codeseer.index.walker import SourceFile, walk

    files: list[_File] = []
    for p in paths:
        root = Path(p)
        if not root.exists():
            raise CodeseerError(f"no such file or folder: {p}")
        if root.is_file():
            lang = detect_language(root.name)
            if lang in languages:
                st = root.stat()
                files.append(_File(SourceFile(root.name, root, lang, st.st_size, st.st_mtime_ns), root.name, str(p)))
            continue
        roots = [("", root)]
        if include_vendored:
            roots += [(os.path.relpath(v, root).replace(os.sep, "/"), v) for v in _vendored_dirs(root)]
        for prefix, base in roots:
            for f in walk(base, stats):
                if f.language in languages:
                    rel = f"{prefix}/{f.rel}" if prefix else f.rel
                    files.append(_File(f, rel, os.path.join(str(p), rel)))
    return files


def _vendored_dirs(root: Path) -> Iterator[Path]:
    """Vendored folders (node_modules, vendor, site-packages, ...) at any depth, which walk() skips."""
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".git") and d != "__pycache__")
        for d in dirnames:
            if d in VENDORED_DIRS:
                yield Path(dirpath) / d


# --------------------------------------------------------------------------- exclusion


def load_exclusion(paths: Iterable[str | os.PathLike], hasher: MinHasher) -> tuple[Deduper, int]:
    """A Deduper holding every document of the given BEIR folders / corpus.jsonl files (or globs of them)."""
    dedup = Deduper(hasher)
    docs = 0
    expanded: list[str | os.PathLike] = []
    for p in paths:
        if not Path(p).exists() and glob.has_magic(str(p)):
            matches = sorted(glob.glob(str(p)))
            if not matches:
                raise CodeseerError(f"--exclude {p}: the pattern matches nothing")
            expanded += matches
        else:
            expanded.append(p)
    for p in expanded:
        path = Path(p)
        if path.is_dir():
            path = path / "corpus.jsonl"
        if not path.is_file():
            raise CodeseerError(f"--exclude {p}: not a corpus.jsonl file or a BEIR folder holding one")
        try:
            for lineno, doc in iter_jsonl_objects(path, CodeseerError):
                text = doc.get("text")
                if not isinstance(text, str):
                    raise CodeseerError(f"{path}:{lineno}: not a corpus line ({{\"_id\", \"title\", \"text\"}})")
                norm = normalise_code(text)
                if norm:
                    dedup.add(exact_key(norm), hasher.signature(norm), doc.get("_id"))
                    docs += 1
        except OSError as exc:
            raise CodeseerError(f"--exclude {p}: cannot read it ({exc.strerror or exc})") from None
    return dedup, docs


# --------------------------------------------------------------------------- mining


def pairs_for_function(chunk, doc_raw: str, code: str, report: MineReport | None = None,
                       min_doc_words: int = filters.MIN_DOC_WORDS, *, seed: int = 0,
                       doc_in_code: float = 0.5) -> list[dict[str, Any]]:
    """The pairs of one function that passed the function-level filters (doc filters counted here).

    Kinds: ``docstring`` / ``first_sentence`` -> code without its doc; ``code2nl`` the reverse; ``search``
    a developer-style query written from the first sentence (:mod:`codeseer.data.queries`) -> the code,
    with its doc kept for a ``doc_in_code`` share; ``name`` the split function name -> code.
    """
    removed = report.removed if report is not None else Counter()
    parts = [s for s in chunk.symbol.split(".") if s]
    name = parts[-1] if parts else ""
    container = parts[-2] if len(parts) > 1 else ""
    base = {"language": chunk.language, "symbol": chunk.symbol}
    pairs: list[dict[str, Any]] = []
    desc, first = describe(doc_raw) if doc_raw.strip() else ("", "")
    reason = filters.doc_reason(desc, doc_raw, name, container, min_words=min_doc_words)
    if reason:
        removed[reason] += 1
    else:
        pairs.append({"query": desc, "positive": code, "task": "nl2code", "kind": "docstring", **base})
        if first != desc and len(first.split()) >= min_doc_words and not filters.repeats_name(first, name, container):
            pairs.append({"query": first, "positive": code, "task": "nl2code", "kind": "first_sentence", **base})
        pairs.append({"query": code, "positive": desc, "task": "code2nl", "kind": "code2nl", **base})
        rng = random.Random(f"{seed}\0{chunk.path}:{chunk.start_line}")
        query = search_query(first or desc, chunk.language, rng)
        if len(query.split()) >= min_doc_words:
            # half keep the doc in the code: real corpora (and code search indexes) hold documented functions,
            # and a model that only ever saw bare bodies learns to ignore the doc it will be shown
            keep = rng.random() < doc_in_code
            pairs.append({"query": query, "positive": _tidy(chunk.text, chunk.language) if keep else code,
                          "task": "nl2code", "kind": "search", "doc_in_code": keep, **base})
    words = filters.split_identifier(name)
    if len(words) >= 2:
        pairs.append({"query": " ".join(words), "positive": code, "task": "nl2code", "kind": "name", **base})
    else:
        removed["name_one_word"] += 1
    return pairs


def mine_pairs(
    paths: Iterable[str | os.PathLike],
    *,
    langs: Iterable[str] | None = None,
    exclude: Iterable[str | os.PathLike] = (),
    max_per_file: int | None = None,
    max_files: int | None = None,
    seed: int = 0,
    include_vendored: bool = False,
    min_doc_words: int = filters.MIN_DOC_WORDS,
    min_body_lines: int = filters.MIN_BODY_LINES,
    near_dup_jaccard: float = 0.8,
    doc_in_code: float = 0.5,
    on_pair: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MineReport:
    """Mine training pairs from the files under ``paths`` (folders or single files).

    ``langs``: language names or aliases (``py``, ``js,ts``); default every tree-sitter language.
    ``exclude``: BEIR folders or corpus.jsonl files whose documents must not leak into the pairs.
    ``max_per_file``: at most this many functions per file (a seeded random choice among those that
    pass the function-level filters). ``max_files``: a seeded random sample of that many files.
    ``doc_in_code``: share of ``search`` pairs whose code keeps its docstring / leading comment.
    ``on_pair`` receives each pair as it is made (then ``report.pairs`` stays empty); ``progress`` is
    called as ``progress(files_done, files_total)``. Folders are walked with codeseer's walker
    (``.gitignore``, binary / generated / vendored files skipped) even when they are themselves a
    ``site-packages`` or ``node_modules``; ``include_vendored`` also walks vendored folders inside.
    Paths are checked before anything is read: a missing one raises CodeseerError.
    """
    from codeseer.index.walker import WalkStats, read_source

    started = time.perf_counter()
    paths = list(paths)
    if not paths:
        raise CodeseerError("nothing to mine: give at least one PATH")
    for p in paths:
        if not Path(p).exists():
            raise CodeseerError(f"no such file or folder: {p}")
    languages = resolve_languages(langs)
    report = MineReport()
    hasher = MinHasher()
    excluder = _excluder(list(exclude), hasher, report, near_dup_jaccard)
    seen = Deduper(hasher, threshold=near_dup_jaccard)
    stats = WalkStats()
    files = _sample(_list_files(paths, languages, stats, include_vendored), max_files, f"{seed}\0files")
    emit = on_pair if on_pair is not None else report.pairs.append
    removed = report.removed

    for done, f in enumerate(files, 1):
        text = read_source(f.source, stats)
        if text is not None:
            report.files += 1
            candidates = _candidates(f, text, report, min_body_lines)
            kept = _sample(candidates, max_per_file, f"{seed}\0{f.shown}")
            if len(kept) < len(candidates):
                removed["max_per_file"] += len(candidates) - len(kept)
            candidates = kept
            for chunk, doc_raw, code in candidates:
                reason = _duplicate(normalise_code(code, chunk.language), hasher, excluder, seen)
                if reason:
                    removed[reason] += 1
                    continue
                pairs = pairs_for_function(chunk, doc_raw, code, report, min_doc_words, seed=seed,
                                           doc_in_code=doc_in_code)
                if not pairs:
                    continue
                report.kept_functions += 1
                source = f"{f.shown}:{chunk.start_line}"
                for pair in pairs:
                    pair["source"] = source
                    report.pair_count += 1
                    report.by_language[pair["language"]] += 1
                    report.by_kind[pair["kind"]] += 1
                    emit(pair)
        if progress is not None:
            progress(done, len(files))
    report.skipped_files = Counter(stats.skipped)
    report.seconds = time.perf_counter() - started
    return report


def _excluder(exclude: list, hasher: MinHasher, report: MineReport, near_dup_jaccard: float):
    """The evaluation corpora's functions, exact and near (MinHash LSH), that no pair may contain."""
    if not exclude:
        return None
    excluder, report.exclude_docs = load_exclusion(exclude, hasher)
    excluder.lsh.threshold = near_dup_jaccard
    return excluder


def _sample(items: list, limit: int | None, seed: str) -> list:
    """At most ``limit`` of ``items``, a seeded random choice kept in their order."""
    if limit is None or len(items) <= limit:
        return items
    rng = random.Random(seed)
    return [items[i] for i in sorted(rng.sample(range(len(items)), limit))]


def _candidates(f, text: str, report: MineReport, min_body_lines: int) -> list[tuple]:
    """``(chunk, raw docstring, code)`` of the file's functions that are not tests and have a real body."""
    from codeseer.index.chunking import chunk_source

    candidates = []
    for chunk in chunk_source(f.rel, text, f.source.language, **_UNLIMITED):
        if chunk.kind not in FUNCTION_KINDS:
            continue
        report.functions += 1
        reason = "test_code" if filters.is_test_code(f.rel, chunk.symbol, chunk.text) else None
        if reason is None:
            doc_raw, code = split_function(chunk.text, chunk.language)
            reason = filters.body_reason(code, min_lines=min_body_lines)
        if reason:
            report.removed[reason] += 1
            continue
        candidates.append((chunk, doc_raw, code))
    return candidates


def _duplicate(norm: str, hasher: MinHasher, excluder, seen: Deduper) -> str | None:
    """Why a function's normalised code is dropped (an evaluation corpus or an earlier function has it);
    None keeps it and remembers it."""
    key = exact_key(norm)
    sig = None
    if excluder is not None:
        if key in excluder.exact:
            return "excluded_exact"
        sig = hasher.signature(norm)
        if excluder.lsh.query(sig) is not None:
            return "excluded_near"
    if key in seen.exact:
        return "exact_duplicate"
    if sig is None:
        sig = hasher.signature(norm)
    if seen.lsh.query(sig) is not None:
        return "near_duplicate"
    seen.add(key, sig)
    return None


# --------------------------------------------------------------------------- output


class AtomicJsonlWriter:
    """JSON lines into a temp file beside ``path``, moved over it (os.replace) only on success.

    Opening checks that ``path`` can be written (a clear CodeseerError otherwise), before any
    expensive work; a crash or an error leaves whatever ``path`` held before untouched.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        parent = self.path.parent
        if self.path.is_dir():
            raise CodeseerError(f"cannot write {path}: it is a folder")
        if not parent.is_dir():
            raise CodeseerError(f"cannot write {path}: folder {parent} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as exc:
            raise CodeseerError(f"cannot write {path}: {exc.strerror or exc}") from None
        self._tmp = Path(tmp)
        try:  # mkstemp makes 0600: give the file the mode a plain open() would (or the old file's)
            mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o666 & ~_umask()
            os.chmod(fd, mode)
        except OSError:
            pass
        self._handle = os.fdopen(fd, "w", encoding="utf-8")
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1

    def commit(self) -> None:
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise CodeseerError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def abort(self) -> None:
        try:
            self._handle.close()
        except OSError:
            pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicJsonlWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_jsonl_atomic(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` as JSON lines to ``path`` atomically; returns how many were written."""
    with AtomicJsonlWriter(path) as writer:
        for record in records:
            writer.write(record)
    return writer.count
