"""Chunking in worker processes, so tree-sitter parsing of a big tree uses every core.

Files are read in the main process (disk or git objects) and sent to the workers in bounded
windows, so memory stays a window of texts, not the whole tree. The pool is started with
``spawn``: a forked child would inherit the writer lock's file descriptor and the model's thread
pools. Each worker exits by itself when its parent dies (a SIGKILLed ``codeseer index`` must not
leave orphans waiting on a queue forever).

Small jobs (under ``MIN_FILES`` files, or one CPU) are chunked in-process: starting workers costs
about a second.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from codeseer.index.chunking import Chunk, chunk_source

MIN_FILES = 200
WINDOW = 256  # files in flight at once
T = TypeVar("T")


def chunk_workers(n_files: int) -> int:
    """How many worker processes to use for ``n_files`` files (0: chunk in-process)."""
    setting = os.environ.get("CODESEER_CHUNK_WORKERS")
    if setting is not None:
        try:
            wanted = max(0, int(setting))
        except ValueError:
            wanted = 0
    else:
        wanted = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
        if wanted < 2 or n_files < MIN_FILES:
            wanted = 0
    return wanted


def _exit_with_parent(parent: int) -> None:
    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="codeseer-parent-watch").start()


def _chunk_one(job: tuple[str, str, str | None]) -> list[Chunk]:
    path, text, language = job
    return chunk_source(path, text, language)


def chunk_files(
    items: Iterable[T],
    read: Callable[[T], tuple[str, str, str | None] | None],
    *,
    workers: int,
    on_file: Callable[[], None] | None = None,
) -> Iterator[tuple[T, tuple[str, str, str | None] | None, list[Chunk]]]:
    """Yield ``(item, job, chunks)`` in input order; ``read(item)`` gives ``(path, text, language)``
    or ``None`` for a file to skip (yielded with ``job=None`` and no chunks)."""
    if workers <= 0:
        for item in items:
            job = read(item)
            if on_file is not None:
                on_file()
            yield item, job, (_chunk_one(job) if job is not None else [])
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_with_parent,
                             initargs=(os.getpid(),)) as pool:
        pending = iter(items)
        in_flight: deque = deque()  # (window, results): reading the next window overlaps chunking this one
        while True:
            window = []
            for item in pending:
                job = read(item)
                if on_file is not None:
                    on_file()
                window.append((item, job))
                if len(window) >= WINDOW:
                    break
            if window:
                jobs = [job for _, job in window if job is not None]
                chunksize = max(1, len(jobs) // (4 * workers))
                in_flight.append((window, pool.map(_chunk_one, jobs, chunksize=chunksize)))
            if not in_flight:
                return
            if window and len(in_flight) < 2:
                continue
            done, results = in_flight.popleft()
            for item, job in done:
                yield item, job, (next(results) if job is not None else [])
