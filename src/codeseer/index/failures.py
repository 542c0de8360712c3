"""Turning a failed index run into one line a user can act on.

Its own room because two callers need the same verdict: the run itself and ``--repair``'s salvage
of old vectors (:mod:`codeseer.index.repair`). A full or read-only disk, or a damaged table, is not
a bug in codeseer: it gets a sentence saying what happened and that the previous index is intact,
not a traceback. Telling them apart means reading errno values that lance only reports as text.
"""

from __future__ import annotations

import errno
import os
import re

from codeseer.errors import CodeseerError
from codeseer.index.store import DamagedIndex, IndexStore, damaged, one_line

_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def _error_code(exc: BaseException) -> int | None:
    """The errno behind an error, also when lance reports it as text: "... (os error 28)"."""
    for current in (exc, exc.__cause__, exc.__context__):
        if current is None:
            continue
        if isinstance(current, OSError) and current.errno:
            return current.errno
        found = _OS_ERROR_CODE.search(str(current))
        if found:
            return int(found.group(1))
    return None


def _is_lance_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("lance", "lancedb") or bool(
        re.search(r"lance ?error|LanceError", str(exc), re.I)
    )


def write_failure(exc: Exception, store: IndexStore) -> CodeseerError | None:
    """One clear line for a failed run that is not a bug in codeseer, or None to let it through."""
    directory = store.directory
    code = _error_code(exc)
    intact = "nothing was committed and the previous index is intact"
    if code in _DISK_FULL:
        return CodeseerError(
            f"no space left on device while writing the index at {directory}: {intact}; "
            "free some space and run `codeseer index` again"
        )
    if code in _NOT_WRITABLE and (isinstance(exc, OSError) or _is_lance_error(exc)):
        return CodeseerError(
            f"cannot write the index at {directory} ({os.strerror(code)}): {intact}; "
            "fix the permissions or use --index to put it elsewhere"
        )
    if _is_lance_error(exc):
        try:  # is it the committed snapshot itself that no longer reads?
            state = store.read_state()
        except CodeseerError as damage:
            return damage
        problem = store.verify(state) if state is not None else None
        if problem:
            return damaged(directory, problem)
        return DamagedIndex(
            f"could not update the index at {directory} ({one_line(exc)}): {intact}; "
            "if this happens again, run `codeseer index --repair`"
        )
    return None
