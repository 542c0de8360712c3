"""A warm query process per index, so a command-line search answers in a fraction of a second.

Coding agents run ``codeseer search`` / ``locate`` as shell commands, dozens of times a task. In a
fresh process most of a query's time is start-up: importing LanceDB alone takes most of a second,
loading the model another fraction. So the first query of an index answers in its own process and
starts a query process for that index in the background; later queries send their arguments to it
over a Unix socket and print its answer, importing nothing heavy themselves.

- The answer is :func:`codeseer.apps.queries.run`'s, as in the CLI process: byte for byte the same.
- It re-opens the index when ``codeseer index`` commits (:class:`~codeseer.apps.service.Service`),
  keeping the model loaded; it exits after ``CODESEER_WARM_IDLE`` seconds without a query (600), when
  its index disappears, or when asked by a client of another codeseer build or settings (the
  package's files, the Python, the ``CODESEER_*`` variables form a key); a new one then starts.
- A socket without a live process behind it is removed and replaced; anything unexpected makes the
  client answer in its own process. ``CODESEER_WARM=off`` turns it all off (the tests do).
- Sockets live in ``$CODESEER_WARM_DIR``, else ``$XDG_RUNTIME_DIR/codeseer``, else
  ``/tmp/codeseer-<uid>`` (mode 700), named by a hash of the index folder; indexes at a URI have none.

Run the process by hand with ``python -m codeseer.serve.warm INDEX_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

__all__ = ["ask", "enabled", "index_dir_for", "serve", "socket_path", "start"]

IDLE_SECONDS = 600
CONNECT_SECONDS = 1.0
ANSWER_SECONDS = 600.0
MAX_MESSAGE = 64 << 20


def enabled() -> bool:
    return os.environ.get("CODESEER_WARM", "on").strip().lower() not in ("off", "0", "false", "no")


def runtime_dir() -> Path:
    base = os.environ.get("CODESEER_WARM_DIR")
    if base:
        path = Path(base)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "codeseer"
    else:
        path = Path("/tmp") / f"codeseer-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def socket_path(index_dir: Path) -> Path:
    """The socket of ``index_dir``'s query process (a short name: socket paths are limited to ~100 bytes)."""
    digest = hashlib.sha1(str(Path(index_dir).resolve()).encode()).hexdigest()[:16]
    return runtime_dir() / f"{digest}.sock"


def build_key() -> str:
    """What a query process must share with its client: this codeseer's files, the Python, the settings."""
    package = Path(__file__).resolve().parents[1]
    newest = max((p.stat().st_mtime_ns for p in package.rglob("*.py")), default=0)
    settings = sorted((k, v) for k, v in os.environ.items()
                      if (k.startswith("CODESEER_") and not k.startswith("CODESEER_WARM")) or k == "HF_HUB_OFFLINE")
    payload = json.dumps([sys.executable, str(package), newest, settings])
    return hashlib.sha1(payload.encode()).hexdigest()


def index_dir_for(index: Path | str | None, cwd: Path | None = None) -> Path | None:
    """The local index folder a command means (``--index DIR`` or found from ``cwd``); None for a URI or none."""
    from codeseer.index.location import existing_index_dir, find_index_dir
    from codeseer.index.uri import as_uri

    if index is not None:
        if as_uri(index):
            return None
        found = existing_index_dir(Path(index).expanduser())
    else:
        found = find_index_dir(cwd or Path.cwd())
    return found.resolve() if found is not None else None


# --------------------------------------------------------------------------- client


def ask(index_dir: Path, op: str, args: dict) -> dict | None:
    """The warm process's answer to ``op``, or None: answer in this process (a warm one is then started).

    A :class:`~codeseer.errors.CodeseerError` the query raised there is raised here, with its message.
    """
    from codeseer.errors import CodeseerError

    if not enabled():
        return None
    path = socket_path(index_dir)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(CONNECT_SECONDS)
        client.connect(str(path))
    except OSError:
        client.close()
        start(index_dir)
        return None
    try:
        client.settimeout(ANSWER_SECONDS)
        client.sendall(json.dumps({"key": build_key(), "op": op, "args": args}).encode() + b"\n")
        with client.makefile("rb") as stream:
            line = stream.readline(MAX_MESSAGE)
        reply = json.loads(line) if line else None
    except (OSError, ValueError):
        return None
    finally:
        client.close()
    if not isinstance(reply, dict):
        return None
    if "ok" in reply:
        return reply["ok"]
    if "error" in reply:
        raise CodeseerError(reply["error"])
    if reply.get("restart"):
        start(index_dir)
    return None


def start(index_dir: Path) -> None:
    """Start ``index_dir``'s query process in the background (it exits at once if one already runs)."""
    import fcntl

    path = socket_path(index_dir)
    try:
        with open(path.with_suffix(".lock"), "a+") as probe:  # held: one is serving or starting already
            fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        log = open(path.with_suffix(".log"), "ab")
    except OSError:
        return
    env = dict(os.environ, CODESEER_WARM="off")  # it must never start one of its own
    try:
        subprocess.Popen([sys.executable, "-m", "codeseer.serve.warm", str(index_dir)], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, start_new_session=True, close_fds=True, env=env,
                         cwd=str(index_dir))
    except OSError:
        pass
    finally:
        log.close()


# --------------------------------------------------------------------------- server


def _lock(path: Path):
    """The process lock of a socket (one query process per index); None when another process holds it
    (it serves, or is starting: this one then leaves at once, and a later query finds that one)."""
    import fcntl

    handle = open(path.with_suffix(".lock"), "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))  # who serves (tests and users can stop it)
    handle.flush()
    return handle


def _reply(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def serve(index_dir: Path, idle: float | None = None) -> None:
    """Answer queries on ``index_dir``'s socket until idle for ``idle`` seconds (or stopped)."""
    from codeseer.apps import queries
    from codeseer.apps.service import Service
    from codeseer.errors import CodeseerError
    from codeseer.index.location import is_index_dir

    index_dir = Path(index_dir).resolve()
    idle = float(idle if idle is not None else os.environ.get("CODESEER_WARM_IDLE", IDLE_SECONDS))
    path = socket_path(index_dir)
    lock = _lock(path)
    if lock is None:
        return  # another query process serves this index
    key = build_key()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped: still remove the socket (finally below)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        service = Service(index_dir)
        service.warm_up()
        path.unlink(missing_ok=True)  # a socket whose process died; we hold the lock, so it is not live
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.listen(16)
        server.settimeout(idle)
        while True:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                break
            with conn:
                conn.settimeout(ANSWER_SECONDS)
                try:
                    with conn.makefile("rb") as stream:
                        request = json.loads(stream.readline(MAX_MESSAGE))
                except (OSError, ValueError):
                    continue
                if not isinstance(request, dict) or request.get("key") != key or not is_index_dir(index_dir):
                    _reply(conn, {"restart": True})  # another build or settings, or the index is gone: make way
                    break
                try:
                    with service._lock:
                        answer = queries.run(str(request.get("op")), service.searcher(), request.get("args") or {})
                    _reply(conn, {"ok": answer})
                except CodeseerError as exc:
                    _reply(conn, {"error": str(exc)})
                except Exception as exc:  # the client answers in its own process (and shows the traceback)
                    _reply(conn, {"failed": f"{type(exc).__name__}: {exc}"})
    finally:
        server.close()
        try:
            path.unlink(missing_ok=True)
        finally:
            lock.close()


if __name__ == "__main__":  # python -m codeseer.serve.warm INDEX_DIR
    serve(Path(sys.argv[1]))
