"""Words and layout shared by the command-line outputs, so every command says and shows it alike.

On a terminal, hits get colours and a highlighted snippet; into a pipe (an agent, ``grep``, a file)
every result header stays on one line however long its path or symbol, and snippet lines are cut at
``SNIPPET_WIDTH`` characters with a visible ``…`` instead of being wrapped into the next line.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from codeseer.paths import shown_path

__all__ = ["SNIPPET_LINES", "console", "counted", "display_path", "kind_tag", "print_hit"]

SNIPPET_LINES = 8
SNIPPET_WIDTH = 160
PYGMENTS_LEXERS = {"csharp": "csharp", "cpp": "cpp", "tsx": "tsx", "markdown": "markdown", "rst": "rst"}


def console(stderr: bool = False) -> Console:
    """A console that never wraps a line when its stream is not a terminal."""
    made = Console(stderr=stderr)
    if not made.is_terminal:
        made.soft_wrap = True
    return made


def display_path(item) -> str:
    """``REPO/PATH`` when the hit (or dict) carries a repo, else ``PATH``."""
    repo = item.get("repo") if isinstance(item, dict) else getattr(item, "repo", None)
    path = item["path"] if isinstance(item, dict) else item.path
    return shown_path(repo, path)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 hit``, ``2 hits``, ``0 blocks``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def kind_tag(file_kind: str | None) -> str:
    """`` [test]`` after a hit from a file that is not source code, so tests and docs stand out."""
    return f" [magenta]{escape('[' + file_kind + ']')}[/]" if file_kind and file_kind != "source" else ""


def print_hit(out: Console, path: str, start: int, end: int, label: str, score: float, text: str | None,
              language: str, file_kind: str | None = None) -> None:
    """``path:start-end label score [kind]`` and the first lines of the snippet."""
    out.print(f"[bold cyan]{escape(path)}[/]:[yellow]{start}-{end}[/] [bold]{escape(label)}[/] [dim]{score:.4f}[/]"
              f"{kind_tag(file_kind)}", soft_wrap=True)
    if not text:
        return
    lines = text.splitlines()
    shown = lines[:SNIPPET_LINES]
    if not out.is_terminal:
        width = len(str(start + len(shown)))
        for n, line in enumerate(shown):
            cut = line if len(line) <= SNIPPET_WIDTH else line[:SNIPPET_WIDTH] + "…"
            out.print(f"{start + n:>{width + 2}} {escape(cut)}", soft_wrap=True, highlight=False)
        if len(lines) > SNIPPET_LINES:
            out.print(f"{'':>{width + 2}} …", soft_wrap=True, highlight=False)
        return
    from rich.syntax import Syntax

    snippet = "\\n".join(shown) + ("\\n…" if len(lines) > SNIPPET_LINES else "")
    out.print(Syntax(snippet, PYGMENTS_LEXERS.get(language, language), line_numbers=True, start_line=start,
                     theme="ansi_dark", word_wrap=False))
