"""One exception type for every user-facing failure, so the CLI can print one line and exit non-zero."""


class CodeseerError(Exception):
    """A problem the user can fix (bad path, missing index, wrong model...): shown without a traceback."""
