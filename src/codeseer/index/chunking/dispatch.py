"""The entry point: pick a strategy per file and never lose a file.

Why a separate dispatcher: indexing runs over whole repositories, where some file will always
be odd (binary-ish, minified, a grammar that chokes, a bug of ours). So the choice of strategy
and the guarantee that ``chunk_source`` never raises live here, apart from the strategies:
any failure falls back to plain windows of the same text, and only a failure of that, too,
gives no chunks.
"""

from __future__ import annotations

from ..languages import detect_language, get_parser, is_structural
from .prose import _markdown_headings, _rst_headings, _sections
from .record import Chunk
from .source import _Src
from .specs import _SPECS
from .structural import _Structural
from .windows import _Out

_MINIFIED_AVG_LINE = 400


def chunk_source(
    path: str,
    text: str,
    language: str | None = None,
    *,
    max_lines: int = 120,
    max_chars: int = 6000,
    window_lines: int = 60,
    window_overlap: int = 10,
) -> list[Chunk]:
    """Chunks of one file, sorted by start line. Never raises.

    ``language=None`` detects the language from ``path`` (see ``detect_language``);
    an unknown language gives line windows. Empty or whitespace-only text gives ``[]``.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        text = str(text)
        if not text.strip():
            return []
        max_lines = max(1, int(max_lines))
        max_chars = max(1, int(max_chars))
        window_lines = max(1, int(window_lines))
        window_overlap = max(0, min(int(window_overlap), window_lines - 1))
        if language is None or (language == "c" and str(path).lower().endswith(".h")):
            language = detect_language(path, text) or language  # sniffs C++ headers
        label = language or "text"
        src = _Src(text)
    except Exception:
        return []
    try:
        out = _Out(src, max_lines, max_chars, window_lines, window_overlap)
        _chunk_into(out, src, text, language)
        return _finish(out, str(path), label)
    except Exception:  # parse failure, grammar missing, a bug: never lose the file
        try:
            out = _Out(src, max_lines, max_chars, window_lines, window_overlap)
            out.windows(0, src.n_rows - 1, "", "window")
            return _finish(out, str(path), label)
        except Exception:
            return []


def _chunk_into(out: _Out, src: _Src, text: str, language: str | None) -> None:
    if language in ("markdown", "rst"):
        heads = _markdown_headings(src.lines) if language == "markdown" else _rst_headings(src.lines)
        _sections(out, heads)
        return
    spec = _SPECS.get(language or "")
    if spec is not None and is_structural(language) and len(text) / src.n_rows <= _MINIFIED_AVG_LINE:
        data = text.encode("utf-8", "replace")
        tree = get_parser(language).parse(data)
        if _Structural(out, spec, data).run(tree.root_node):
            return
        out.pieces.clear()  # no definitions at all: windows
    out.windows(0, src.n_rows - 1, "", "window")


def _finish(out: _Out, path: str, language: str) -> list[Chunk]:
    src = out.src
    pieces = sorted(out.pieces, key=lambda piece: (piece.start, piece.order))
    chunks = []
    seen: set[Chunk] = set()  # e.g. identical slices of one huge line: one is enough
    for piece in pieces:
        if piece.text is not None:
            text = piece.text
        else:
            text = piece.head + src.text(piece.start, piece.end)
        chunk = Chunk(path, language, piece.start + 1, piece.end + 1, piece.symbol, piece.kind, text)
        if chunk not in seen:
            seen.add(chunk)
            chunks.append(chunk)
    return chunks
