"""Markdown and reStructuredText: one chunk per section, labelled with its heading path.

Why sections and not windows: documentation is written in sections, and a question about
docs ("how do I install from source") is answered by one; the heading path as symbol
(``Install > From source``) tells the searcher what the section is about even when its body
never repeats the words. Headings are found with a few line rules instead of a full parser:
that is enough for chunk boundaries, cannot fail on odd input, and costs one pass. Code fences
and YAML front matter are skipped so that a ``#`` comment in an example is not a heading.
"""

from __future__ import annotations

import re

from .windows import _Out

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^(?: {4,}|\t|\s*(?:[-*+>|<]|\d+[.)])(?:\s|$))")
_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1*[ \t]*$")


def _front_matter_end(lines: list[str]) -> int:
    """First row after YAML front matter (0 when there is none)."""
    n_rows = len(lines)
    if n_rows and lines[0].strip() == "---":
        for row in range(1, min(n_rows, 200)):
            if lines[row].strip() in ("---", "..."):
                return row + 1
    return 0


def _markdown_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first row, level, title) for every ATX / setext heading outside code fences."""
    heads: list[tuple[int, int, str]] = []
    fence = ""
    n_rows = len(lines)
    row = _front_matter_end(lines)
    prev_para = False  # previous line can be the text of a setext heading
    while row < n_rows:
        line = lines[row]
        fence_match = _FENCE.match(line)
        if fence:
            if (
                fence_match
                and fence_match.group(1)[0] == fence[0]
                and len(fence_match.group(1)) >= len(fence)
                and not line[fence_match.end():].strip()
            ):
                fence = ""
            row += 1
            prev_para = False
            continue
        if fence_match:
            fence = fence_match.group(1)
            row += 1
            prev_para = False
            continue
        if not line.strip():
            prev_para = False
            row += 1
            continue
        atx = _ATX.match(line)
        if atx:
            heads.append((row, len(atx.group(1)), (atx.group(2) or "").strip()))
            prev_para = False
            row += 1
            continue
        setext = _SETEXT.match(line)
        if setext and prev_para:
            level = 1 if setext.group(1)[0] == "=" else 2
            heads.append((row - 1, level, lines[row - 1].strip()))
            prev_para = False
            row += 1
            continue
        prev_para = not _NOT_PARAGRAPH.match(line)
        row += 1
    return heads


def _underline_ok(title: str, adornment: str) -> bool:
    return len(adornment) >= len(title) or len(adornment) >= 4


def _rst_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first row, level, title) for reStructuredText section titles.

    Levels follow the order in which adornment styles (character, with or without overline)
    first appear in the file, as in docutils.
    """
    heads: list[tuple[int, int, str]] = []
    styles: list[tuple[str, bool]] = []
    n_rows = len(lines)
    row = 0
    while row < n_rows - 1:
        line = lines[row]
        if row > 0 and lines[row - 1].strip():
            row += 1
            continue
        overline = _ADORNMENT.match(line)
        if overline and row + 2 < n_rows and lines[row + 1].strip() and not _ADORNMENT.match(lines[row + 1].strip()):
            under = _ADORNMENT.match(lines[row + 2])
            title = lines[row + 1].strip()
            if under and under.group(1) == overline.group(1) and _underline_ok(title, line.rstrip()):
                style = (overline.group(1), True)
                if style not in styles:
                    styles.append(style)
                heads.append((row, styles.index(style), title))
                row += 3
                continue
        if line.strip() and not line[0].isspace() and not overline:
            under = _ADORNMENT.match(lines[row + 1])
            title = line.rstrip()
            if under and _underline_ok(title, lines[row + 1].rstrip()):
                style = (under.group(1), False)
                if style not in styles:
                    styles.append(style)
                heads.append((row, styles.index(style), title.strip()))
                row += 2
                continue
        row += 1
    return heads


def _sections(out: _Out, heads: list[tuple[int, int, str]]) -> None:
    """A ``section`` chunk (or windows) per heading, plus one for text before the first."""
    n_rows = out.src.n_rows
    if not heads or heads[0][0] > 0:
        out.region(0, (heads[0][0] - 1) if heads else n_rows - 1, "", "section")
    stack: list[tuple[int, str]] = []  # (level, title) of the open headings
    for index, (row, level, title) in enumerate(heads):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = heads[index + 1][0] - 1 if index + 1 < len(heads) else n_rows - 1
        out.region(row, end, " > ".join(name for _, name in stack), "section")
