"""Split a function/class chunk into its documentation (docstring or leading doc comment) and its body.

Python: the first statement's string literal. Other languages: the comment block the chunker
attached above the definition (``/** ... */``, ``///``, ``//``, ``#`` in Ruby/PHP/shell-like
languages), with comment markers stripped. Attributes and annotations between the comment and
the definition (``@Override``, ``#[inline]``, ``[Test]``) are skipped.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

HASH_COMMENT_LANGUAGES = {"python", "ruby", "php", "bash", "shell", "perl", "r", "yaml", "toml"}
_PY_DEF = re.compile(r"^\s*(?:async\s+def|def|class)\b")
_PY_STRING = re.compile(r"""^\s*[rRuUbBfF]{0,2}(\"\"\"|\'\'\'|\"|\')""")
_ANNOTATION = re.compile(r"^\s*(?:@[\w.]+(?:\(.*\))?\s*$|#\[.*\]\s*$|\[[\w.]+(?:\(.*\))?\]\s*$)")


@dataclass
class DocSplit:
    doc: str  # the documentation text, markers stripped, whitespace normalised ('' when none)
    body: str  # the code without it
    doc_start: int  # 0-based line offsets of the doc inside the chunk text (when doc)
    doc_end: int


def split_doc(text: str, language: str) -> DocSplit:
    if language == "python":
        return _python(text)
    return _leading_comment(text, language)


def _clean(lines: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(line.strip() for line in lines)).strip()


def _python(text: str) -> DocSplit:
    lines = text.split("\n")
    try:
        tree = ast.parse(textwrap.dedent(text))
        node = tree.body[0] if tree.body else None
    except (SyntaxError, ValueError):
        node = None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        doc = ast.get_docstring(node, clean=True)
        first = node.body[0] if node.body else None
        if doc and isinstance(first, ast.Expr):
            s, e = first.lineno - 1, (first.end_lineno or first.lineno) - 1
            body = "\n".join(lines[:s] + lines[e + 1 :])
            return DocSplit(_clean(doc.splitlines()), body, s, e)
        return DocSplit("", text, 0, -1)
    # A partial function (first part of a split one): find the string right after the signature.
    for i, line in enumerate(lines):
        if _PY_DEF.match(line):
            break
    else:
        return DocSplit("", text, 0, -1)
    j = i
    while j < len(lines) and not re.search(r":\s*(#.*)?$", lines[j]):
        j += 1
    k = j + 1
    while k < len(lines) and not lines[k].strip():
        k += 1
    if k >= len(lines):
        return DocSplit("", text, 0, -1)
    m = _PY_STRING.match(lines[k])
    if not m:
        return DocSplit("", text, 0, -1)
    quote = m.group(1)
    rest = lines[k][m.end():]
    doc_lines = []
    end = k
    if quote in rest:
        doc_lines.append(rest[: rest.index(quote)])
    else:
        doc_lines.append(rest)
        end = k + 1
        while end < len(lines) and quote not in lines[end]:
            doc_lines.append(lines[end])
            end += 1
        if end >= len(lines):
            return DocSplit("", text, 0, -1)
        doc_lines.append(lines[end][: lines[end].index(quote)])
    body = "\n".join(lines[:k] + lines[end + 1 :])
    return DocSplit(_clean(doc_lines), body, k, end)


def _leading_comment(text: str, language: str) -> DocSplit:
    lines = text.split("\n")
    hash_ok = language in HASH_COMMENT_LANGUAGES
    doc: list[str] = []
    i = 0
    start = end = -1
    in_block = False
    while i < len(lines):
        raw = lines[i]
        line = raw.strip()
        if in_block:
            close = line.find("*/")
            content = line[:close] if close >= 0 else line
            doc.append(re.sub(r"^\*+\s?", "", content))
            end = i
            if close >= 0:
                in_block = False
            i += 1
            continue
        if not line:
            if doc:
                doc.append("")
            i += 1
            continue
        if line.startswith("/*"):
            start = i if start < 0 else start
            end = i
            inner = line[2:].lstrip("*!")
            close = inner.find("*/")
            if close >= 0:
                doc.append(inner[:close])
            else:
                doc.append(inner)
                in_block = True
            i += 1
            continue
        if line.startswith("//"):
            start = i if start < 0 else start
            end = i
            doc.append(line.lstrip("/").lstrip("!"))
            i += 1
            continue
        if hash_ok and line.startswith("#") and not line.startswith(("#!", "#[")):
            start = i if start < 0 else start
            end = i
            doc.append(line.lstrip("#"))
            i += 1
            continue
        if _ANNOTATION.match(raw):
            i += 1
            continue
        break
    cleaned = _clean([re.sub(r"^\s*@\w+\s*", "", d) if d.strip().startswith("@") else d for d in doc])
    if start < 0 or not cleaned:
        return DocSplit("", text, 0, -1)
    body = "\n".join(lines[:start] + lines[end + 1 :])
    return DocSplit(cleaned, body, start, end)
