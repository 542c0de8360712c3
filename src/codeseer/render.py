"""Words and layout shared by the command-line outputs (one place, so every command says it alike)."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 hit``, ``2 hits``, ``0 blocks``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
