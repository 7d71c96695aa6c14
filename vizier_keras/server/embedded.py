"""Start, or find and reuse, the embedded Vizier server for a database file.

Light on purpose: the tuner's process imports this module next to TensorFlow, and the server
runs in a separate process (OSS Vizier's GP algorithms and TensorFlow do not share a process
well). Only the standard library is used here.

One server owns a database file. :func:`start_local_server` takes a start lock beside the file,
reuses a live server that already serves it (found through ``<database>.server.json`` and its
``/healthz``), or starts one on a free loopback port. The process that started the server owns
it: the server stops when that process exits (it watches its parent), or on :meth:`stop`. Other
worker processes of the same tuning job find it and share it.

Example::

    server = start_local_server("/tmp/tuning/vizier.db")
    client = VizierClient(server.url)
    ...
    server.stop()     # only stops a server this process started
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vizier_keras.errors import MissingExtraError, TransportError, ValidationError

logger = logging.getLogger(__name__)

__all__ = ["LocalServer", "find_local_server", "require_local_extra", "start_local_server"]


@dataclass
class LocalServer:
    """A running embedded server.

    Attributes:
        url: Its base URL, e.g. ``http://127.0.0.1:40123``.
        database: The SQLite file it serves.
        pid: Its process id.
        owned: Whether this process started it (and stops it at exit).
        log_file: Where its output goes.
        token: The bearer token it asks for (each embedded server makes its own).
    """

    url: str
    database: str
    pid: int
    owned: bool
    log_file: str
    token: str | None = field(default=None, repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def alive(self) -> bool:
        """Whether it answers its health check now."""
        return _health(self.url, self.database, 2.0, self.token) is not None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server if this process started it (SIGTERM, then SIGKILL). Idempotent."""
        with self._lock:
            process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the Vizier server %d did not stop in %.0f s; killing it",
                           process.pid, timeout)
            process.kill()
            process.wait(10)


def _health(url: str, database: str, timeout: float,
            token: str | None) -> dict[str, Any] | None:
    request = urllib.request.Request(f"{url}/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            info = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if not isinstance(info, dict) or info.get("database") != database:
        return None
    return info


@contextlib.contextmanager
def _start_lock(database: str, timeout: float) -> Iterator[None]:
    with open(database + ".start.lock", "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TransportError(f"another process holds {database}.start.lock for "
                                         f"over {timeout:.0f} s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _find(database: str) -> LocalServer | None:
    try:
        with open(database + ".server.json", encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    url, token = info.get("url"), info.get("token")
    if not isinstance(url, str) or _health(url, database, 5.0, token) is None:
        return None
    return LocalServer(url, database, int(info.get("pid", 0)), owned=False,
                       log_file=database + ".server.log", token=token)


def find_local_server(database: str | os.PathLike[str]) -> LocalServer | None:
    """The live server that serves ``database`` now, or None (starts nothing)."""
    return _find(os.path.abspath(os.fspath(database)))


def start_local_server(database: str | os.PathLike[str], *, timeout: float = 180.0,
                       env: dict[str, str] | None = None,
                       compilation_cache: str | None = None,
                       token: str | None = None) -> LocalServer:
    """The embedded server for ``database``: a live one that serves it, or a new one.

    Args:
        database: The SQLite file (created with its directory if missing). Always explicit:
            OSS Vizier's default file lies inside its own installed package.
        timeout: Seconds to wait for a new server to answer (first start imports JAX).
        env: Extra environment for a new server process.
        compilation_cache: JAX's persistent compilation cache directory for a new server
            ("" turns it off; default: the server's, under ~/.cache/vizier-keras).
        token: A bearer token a new server asks for (``secrets.token_urlsafe()`` makes one);
            default none: the server listens on loopback only. ``VIZIER_KERAS_TOKEN`` in this
            environment is never passed on (it is a team server's).

    Returns:
        A :class:`LocalServer`; ``owned`` tells whether this call started it.

    Raises:
        ValidationError: ``database`` cannot be a file.
        MissingExtraError: A new server is needed and this Python lacks the ``[local]`` extra
            (checked before a process is started).
        TransportError: The server did not start; its log's end is in the message.
    """
    path = os.path.abspath(os.fspath(database))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as e:
        raise ValidationError("database", path, f"its directory cannot be made: {e}") from None
    if os.path.isdir(path):
        raise ValidationError("database", path, "is a directory, not a SQLite file")
    with _start_lock(path, timeout):
        found = _find(path)
        if found is not None:
            logger.info("using the Vizier server at %s for %s", found.url, path)
            return found
        return _spawn(path, timeout, env, compilation_cache, token)


# What the server process imports that the light install (no [local] extra) does not have.
SERVER_MODULES = ("vizier", "jax", "sqlalchemy")
# The message's other ways, for the tuner (the CLI has none to offer).
INSTEAD_OF_LOCAL = ("or give project_id (Vertex AI Vizier) or an endpoint (VIZIER_ENDPOINT) of a "
                    "Vizier server that runs elsewhere")


def require_local_extra(feature: str = "the embedded Vizier service",
                        instead: str = INSTEAD_OF_LOCAL) -> None:
    """Raise :class:`MissingExtraError` where the server, run by this same Python, could not
    import its algorithms: a clear error now instead of a server that dies on start.
    ``feature`` and ``instead`` (what else would do) are for the message."""
    missing = []
    for module in SERVER_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        raise MissingExtraError(feature, "local", missing, instead)


def _spawn(database: str, timeout: float, env: dict[str, str] | None,
           compilation_cache: str | None, token: str | None) -> LocalServer:
    require_local_extra()
    log_file = database + ".server.log"
    ready = os.path.join(tempfile.mkdtemp(prefix="vizier-keras-"), "ready.json")
    child_env = dict(os.environ)
    # The server needs no accelerator: keep JAX off the GPU that the training process uses.
    child_env.setdefault("JAX_PLATFORMS", "cpu")
    # Never the token of a team's server that this environment may hold for other uses: the
    # embedded server asks for one only when told to. Other processes of the job read it from
    # <database>.server.json (this user's alone); in the environment, it is not in ps.
    child_env.pop("VIZIER_KERAS_TOKEN", None)
    if token:
        child_env["VIZIER_KERAS_TOKEN"] = token
    child_env.update(env or {})
    command = [sys.executable, "-m", "vizier_keras.server", "--database", database,
               "--port", "0", "--ready-file", ready, "--parent-pid", str(os.getpid())]
    if compilation_cache is not None:
        command += ["--compilation-cache", compilation_cache]
    with open(log_file, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=child_env,
                                   start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if os.path.exists(ready):
            with open(ready, encoding="utf-8") as f:
                info = json.load(f)
            os.remove(ready)
            os.rmdir(os.path.dirname(ready))
            break
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            raise TransportError(f"the Vizier server for {database} did not start "
                                 f"(exit code {process.poll()}); end of {log_file}:\n"
                                 f"{_tail(log_file)}")
        time.sleep(0.05)
    server = LocalServer(info["url"], database, process.pid, owned=True, log_file=log_file,
                         token=token, _process=process)
    atexit.register(server.stop)
    logger.info("started the Vizier server at %s for %s (pid %d)", server.url, database,
                process.pid)
    return server


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"
