"""How an index run shows its progress: a bar on a terminal, plain lines elsewhere, or nothing.

Its own room because it is presentation, not indexing: the run only asks for a ``task`` and calls
what it gets back as work gets done, whoever watches (a person at a terminal, an agent or a CI log
reading stderr, a test that wants silence).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

LINE_SECONDS = 5.0  # a progress line this often when stderr is not a terminal (CODESEER_PROGRESS_EVERY)
UNITS = {"chunking": "files", "embedding": "chunks"}


class Progress:
    """How a run shows its progress: a Rich bar on a terminal (``"bar"``, or ``True``), plain lines
    on stderr every few seconds where there is none (``"lines"``: agents, CI logs, ``nohup``), or
    nothing (``False``: tests, ``--json``)."""

    def __init__(self, mode: bool | str) -> None:
        self._progress = None
        self.lines = mode == "lines"
        self.every = float(os.environ.get("CODESEER_PROGRESS_EVERY", LINE_SECONDS))
        if mode is True or mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                transient=True,
            )

    def __enter__(self):
        if self._progress:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress:
            self._progress.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if self.lines:
            return self._line_task(description, total)
        if not self._progress:
            return lambda n: None
        task_id = self._progress.add_task(description, total=total)
        return lambda n: self._progress.advance(task_id, n)

    def _line_task(self, description: str, total: int) -> Callable[[int], None]:
        """``embedding: 512/1601 chunks, 96/s, ETA 11s`` on stderr, at most every ``every`` seconds."""
        unit = UNITS.get(description, "items")
        started = last = time.monotonic()
        done = 0

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last < self.every and done < total:
                return
            if done >= total and now - started < self.every:  # a quick step: no line for it
                return
            last = now
            rate = done / max(now - started, 1e-9)
            eta = f", ETA {int((total - done) / rate)}s" if rate > 0 and done < total else ""
            print(f"{description}: {done}/{total} {unit}, {rate:.0f}/s{eta}", file=sys.stderr, flush=True)

        return advance
