"""The records every retrieval answer is made of, and the one way they become JSON and ``REPO/PATH``.

A hit, a located file, a context block, a duplicate, a doc hit: each names a place in a repository.
They share :class:`Record` so that every interface (CLI ``--json``, HTTP, MCP, the Python API)
drops the same empty fields (``repo`` outside an index of several repositories) and shows a path
the same way, instead of each answer type carrying its own copy of that rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from codeseer.paths import shown_path

# Kinds the chunker emits (see codeseer.index.chunking).
DEFINITION_KINDS = ("function", "method")
CODE_KINDS = ("function", "method", "class", "module", "window")
DOC_KIND = "section"
DOC_LANGUAGES = ("markdown", "rst")
CHUNK_COLUMNS = ["chunk_id", "path", "language", "start_line", "end_line", "symbol", "kind", "text"]


class Record:
    """A dataclass that names a place: ``to_dict`` leaves out the optional fields that are unset."""

    OPTIONAL = ("repo",)  # dropped from to_dict() when None

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in self.OPTIONAL:
            if data.get(key, 0) is None:
                del data[key]
        return data

    @property
    def shown_path(self) -> str:
        return shown_path(getattr(self, "repo", None), self.path)

    @property
    def location(self) -> str:
        return f"{self.shown_path}:{self.start_line}-{self.end_line}"


@dataclass
class Hit(Record):
    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    kind: str
    score: float
    text: str
    repo: str | None = None  # set only in an index of several repositories
    file_kind: str | None = None  # the file's kind (source, test, docs, ...); None in indexes from before kinds

    OPTIONAL = ("repo", "file_kind")

    @classmethod
    def from_row(cls, row: dict) -> "Hit":
        return cls(
            path=row["path"], start_line=int(row["start_line"]), end_line=int(row["end_line"]),
            symbol=row["symbol"] or "", language=row["language"], kind=row["kind"],
            score=round(float(row["score"]), 6), text=row["text"], repo=row.get("repo"),
            file_kind=row.get("file_kind"),
        )


@dataclass
class ChunkRef(Record):
    """One indexed chunk (the query side of ``similar`` and ``docs``), with its vector when read."""

    chunk_id: str
    path: str
    language: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    text: str
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    repo: str | None = None  # set only in an index of several repositories

    @property
    def lines(self) -> int:
        return self.end_line - self.start_line + 1

    def to_dict(self) -> dict:
        return {
            "path": self.path, "start_line": self.start_line, "end_line": self.end_line,
            "symbol": self.symbol, "language": self.language, "kind": self.kind, "text": self.text,
        } | ({"repo": self.repo} if self.repo else {})
