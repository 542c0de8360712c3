"""Text preparation for BM25 over code.

LanceDB's FTS tokenizer splits on punctuation (so ``handle_user_exception`` becomes three words)
but not on case changes. We append the camelCase parts of identifiers so that ``getUserName``
is found by "get user name" and by ``getUserName`` alike. Index and query sides share this code.
"""

from __future__ import annotations

import re

from lancedb.index import FTS

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

FTS_COLUMN = "search_text"
PATH_COLUMN = "path_text"  # the files table's BM25 over path words (codeseer.search.files)


def fts_config() -> FTS:
    """One tokenizer for every lexical index codeseer builds (repo index and eval corpora)."""
    return FTS(base_tokenizer="simple", lower_case=True, stem=True, remove_stop_words=True, ascii_folding=True)


def split_identifier(word: str) -> list[str]:
    """``parseHTTPResponse2`` -> ``["parse", "HTTP", "Response", "2"]``."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(_CAMEL.findall(piece))
    return parts


def lexical_text(*parts: str) -> str:
    """The text BM25 indexes: the original plus the camelCase parts of every mixed-case identifier."""
    text = "\n".join(p for p in parts if p)
    extra: list[str] = []
    seen: set[str] = set()
    for word in _IDENT.findall(text):
        if word in seen or word.islower() or word.isupper():
            continue
        seen.add(word)
        sub = split_identifier(word)
        if len(sub) > 1:
            extra.extend(sub)
    return text + ("\n" + " ".join(extra) if extra else "")


def path_words(path: str) -> str:
    """``crates/globset/src/glob_set.rs`` -> ``crates globset src glob_set rs``: a path as words for BM25."""
    return " ".join(part for part in re.split(r"[/\\.\-\s]+", path) if part)


def lexical_query(query: str) -> str:
    """Queries get the same identifier expansion; stray syntax is dropped so the parser never chokes."""
    words = _IDENT.findall(query) + re.findall(r"\d+", query)
    return lexical_text(" ".join(words)).replace("\n", " ")
