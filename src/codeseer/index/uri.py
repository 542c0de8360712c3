"""An index at a URI (``s3://``, ``gs://``, ``az://``, ``file://``), so search servers can be stateless readers.

LanceDB opens the tables at the URI itself. ``state.json`` and ``history.json`` go through
``pyarrow.fs.FileSystem.from_uri`` (:class:`UriPath`, the little of :class:`pathlib.Path` that
:class:`~codeseer.index.store.IndexStore` uses): written to a temporary key, then moved over the
real one: a rename on ``file://``, a copy on object stores, whose PUTs are atomic per object. So a
reader sees the old state or the new one, never part of one, as with a local index.

There is no lock at a URI (object stores have no flock): one writer at a time is the user's job (one
CI job, or one Ray driver: ``codeseer index --ray`` writes from the driver only); any number of
readers may open the URI. Credentials and endpoints come from the environment both pyarrow and
LanceDB read (``AWS_ACCESS_KEY_ID``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_ACCOUNT_NAME``, ...).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path, PurePath

from codeseer.errors import CodeseerError

# Schemes recognised even after Path() folded "s3://b/k" into "s3:/b/k" (typer turns --index into a Path).
SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "file"})
_FULL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_FOLDED = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/+(.*)$")


def as_uri(location) -> str | None:
    """The URI ``location`` names, or None for a local path (also undoing Path's ``s3:/b`` folding)."""
    if location is None:
        return None
    if isinstance(location, UriPath):
        return location.uri
    text = str(location)
    if not isinstance(location, PurePath) and _FULL.match(text):
        stripped = text.rstrip("/")
        return text if stripped.endswith(":") else stripped
    folded = _FOLDED.match(text)
    if folded and folded.group(1).lower() in SCHEMES:
        scheme, rest = folded.group(1).lower(), folded.group(2).rstrip("/")
        return f"file:///{rest}" if scheme == "file" else f"{scheme}://{rest}"
    return None


def index_location(index_dir) -> Path | str:
    """``--index`` as IndexStore takes it: a URI unchanged, a local folder made absolute."""
    return as_uri(index_dir) or Path(index_dir).expanduser().resolve()


class UriPath:
    """A file or folder at a URI with the Path methods IndexStore calls, through pyarrow.fs."""

    def __init__(self, uri: str, _fs=None, _path: str | None = None) -> None:
        self.uri = uri
        if _fs is None:
            from pyarrow import fs

            try:
                _fs, _path = fs.FileSystem.from_uri(uri)
            except Exception as exc:
                raise CodeseerError(f"cannot open the index at {uri}: {' '.join(str(exc).split())}") from None
        self.fs = _fs
        self.path = _path.rstrip("/") or _path

    def __truediv__(self, name: str) -> "UriPath":
        return UriPath(f"{self.uri}/{name}", self.fs, f"{self.path}/{name}")

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"UriPath({self.uri!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, UriPath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def _type(self):
        from pyarrow import fs

        return self.fs.get_file_info(self.path).type, fs.FileType

    def exists(self) -> bool:
        kind, types = self._type()
        return kind != types.NotFound

    def is_file(self) -> bool:
        kind, types = self._type()
        return kind == types.File

    def read_text(self, encoding: str = "utf-8") -> str:
        with self.fs.open_input_stream(self.path) as fh:  # FileNotFoundError when missing, as Path
            return fh.read().decode(encoding)

    def write_text_atomic(self, text: str) -> None:
        """Write a temporary key, then move it over this one: readers never see a partial file."""
        tmp = f"{self.path}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open_output_stream(tmp) as fh:
                fh.write(text.encode("utf-8"))
            self.fs.move(tmp, self.path)
        except BaseException:
            try:
                self.fs.delete_file(tmp)
            except Exception:
                pass
            raise

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        self.fs.create_dir(self.path, recursive=True)  # a no-op on object stores, which have no folders

    def rmtree(self) -> None:
        try:
            self.fs.delete_dir(self.path)
        except FileNotFoundError:
            pass
