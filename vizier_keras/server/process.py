"""Running the embedded service as a process: :func:`serve` owns a database file (one server
per file, found by others through ``<database>.server.json``) until it is told to stop, and
:func:`main` is ``vizier-keras serve``; JAX's persistent compilation cache, and TensorFlow kept
out of the process (OSS Vizier's GP algorithms and TensorFlow do not share one).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from vizier_keras import __version__
from vizier_keras.errors import (
    StartupError,
)
from vizier_keras.server.access import is_loopback, read_token_file
from vizier_keras.server.app import VizierHTTPServer
from vizier_keras.wire import Json

logger = logging.getLogger(__name__)

__all__ = ["default_compilation_cache", "enable_compilation_cache", "keep_tensorflow_out",
           "main", "serve"]

def default_compilation_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vizier-keras", "jax")


def enable_compilation_cache(directory: str) -> None:
    """Keep JAX's compiled programs in ``directory`` across server processes.

    Must run before anything compiles: JAX settles its cache at the first compilation (importing
    OSS Vizier's designers already compiles), and ignores the setting after.
    """
    import jax

    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.fspath(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@contextlib.contextmanager
def _own(database: str) -> Iterator[None]:
    """Hold the database's owner lock: one server per SQLite file."""
    lock_path = database + ".lock"
    try:
        handle = open(lock_path, "a+")
    except OSError as e:
        raise StartupError(f"{lock_path} cannot be made ({e.strerror}); give --database a "
                           "file in a directory this user can write") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        handle.close()
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise StartupError(f"another vizier-keras server already owns {database}; use that "
                               "server, or stop it first") from None
        raise
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _write_atomically(path: str, payload: Json) -> None:
    """Write ``payload`` as JSON to ``path`` at once, readable by this user only (it may hold
    the server's token)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
              encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


def serve(database: str, *, host: str = "127.0.0.1", port: int = 8080,
          token: str | None = None, ready_file: str | None = None,
          parent_pid: int | None = None, compilation_cache: str | None = None,
          gp_settings: dict[str, Any] | None = None, insecure: bool = False,
          seed: int | None = None) -> None:
    """Serve the Vizier API for ``database`` until SIGTERM or SIGINT (or the death of
    ``parent_pid``).

    Args:
        database: The SQLite file (created if missing). One server owns a file at a time.
        host: Address to bind. Beyond loopback a token is required, unless ``insecure``.
        port: Port; 0 picks a free one (it is logged and written to ``ready_file``).
        token: Require ``Authorization: Bearer <token>`` on every request.
        ready_file: Written (atomically, JSON with ``url``) once the server answers.
        parent_pid: Stop when this process is gone (embedded mode).
        compilation_cache: JAX's persistent compilation cache directory ("" turns it off).
        gp_settings: Settings of the default algorithm in place of the shipped ones
            (:data:`.gp.SERVICE_SETTINGS`; ``{}`` runs OSS's own), for every study: for
            experiments. Checked before the server starts (ValueError).
        insecure: Serve beyond loopback without a token (anyone who reaches it can use it).
        seed: Make the default algorithm repeatable: the same seed, study name and history
            give the same suggestions (for benchmarks; by default it draws from the clock).

    Raises:
        StartupError: The server cannot start as asked (one sentence: the problem, the fix).
    """
    if gp_settings is not None:
        from vizier_keras.server import gp

        gp.check_settings(gp_settings)  # before anything is touched
    database = os.path.abspath(database)
    if os.path.isdir(database):
        raise StartupError(f"{database} is a directory; give --database a file")
    try:
        os.makedirs(os.path.dirname(database), exist_ok=True)
    except OSError as e:
        raise StartupError(f"the directory of {database} cannot be made ({e.strerror}); give "
                           "--database a path this user can write") from None
    if not is_loopback(host):
        if not token and not insecure:
            raise StartupError(f"serving on {host} reaches beyond this machine: set a token "
                               "(VIZIER_KERAS_TOKEN or --token-file), or pass --insecure")
        logger.warning("serving on %s, beyond this machine%s", host,
                       "" if token else "; anyone who reaches it can use it (--insecure)")
    with _own(database):
        from vizier_keras.server.datastore import check_database

        check_database(database)
        cache = default_compilation_cache() if compilation_cache is None else compilation_cache
        if cache:
            enable_compilation_cache(cache)
        from vizier_keras.server.service import VizierService

        if gp_settings is None and seed is None:
            service = VizierService(database)
        else:
            from vizier_keras.server import policies

            if gp_settings is not None:
                logger.warning("the default algorithm runs with GP settings %s, not the "
                               "shipped ones", json.dumps(gp_settings, sort_keys=True))
            if seed is not None:
                logger.info("the default algorithm is seeded with %d", seed)
            service = VizierService(database, policy_factory=functools.partial(
                policies.make_policy, gp_settings=gp_settings, seed=seed))
        try:
            http = VizierHTTPServer(service, host, port, token)
        except OSError as e:
            service.close()
            raise StartupError(f"cannot listen on {host}:{port} ({e.strerror}); pick another "
                               "--port or --host") from None
        stop = threading.Event()

        def request_stop(*_: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        http.start()
        info = {"url": http.url, "port": http.port, "pid": os.getpid(), "database": database,
                "version": __version__}
        if token:
            info["token"] = token  # for the embedded start, which finds servers by this file
        discovery = database + ".server.json"
        _write_atomically(discovery, info)
        if ready_file:
            _write_atomically(ready_file, info)
        logger.info("serving %s at %s", database, http.url)
        try:
            while not stop.wait(1.0):
                if parent_pid is not None and not _alive(parent_pid):
                    logger.info("parent process %d is gone; stopping", parent_pid)
                    break
        finally:
            http.shutdown()
            service.close()
            with contextlib.suppress(FileNotFoundError):
                current = json.load(open(discovery, encoding="utf-8"))
                if current.get("pid") == os.getpid():
                    os.remove(discovery)
            logger.info("stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def keep_tensorflow_out() -> None:
    """Keep TensorFlow out of the server process.

    TensorFlow Probability's JAX backend imports TensorFlow when it is installed, only to copy
    docstrings; that costs seconds and hundreds of MB, and TensorFlow next to OSS Vizier's GP
    has broken it before. A ``None`` in ``sys.modules`` (Python's own way to block an import)
    makes ``import tensorflow`` raise ModuleNotFoundError and ``importlib.util.find_spec``
    answer None, exactly as if it were not installed: tfp goes on without it, and etils (which
    JAX's persistent compilation cache uses for its files) does not try to use it.
    """
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    keep_tensorflow_out()
    parser = argparse.ArgumentParser(
        prog="vizier-keras serve",
        description="Serve the Vertex AI Vizier v1 REST API over Open Source Vizier.")
    parser.add_argument("--database", required=True, help="SQLite file (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--token", default=os.environ.get("VIZIER_KERAS_TOKEN"),
                        help="require this bearer token (default: $VIZIER_KERAS_TOKEN; prefer "
                             "the variable or --token-file: a command line shows in ps)")
    parser.add_argument("--token-file", help="read the bearer token from this file")
    parser.add_argument("--insecure", action="store_true",
                        help="allow --host beyond loopback without a token")
    parser.add_argument("--compilation-cache", default=None,
                        help="JAX compilation cache directory ('' to turn off)")
    parser.add_argument("--gp-settings", default=os.environ.get("VIZIER_KERAS_GP_SETTINGS"),
                        help="JSON object: the default algorithm's settings in place of the "
                             "shipped ones, for experiments ('{}' runs Open Source Vizier's "
                             "own; default: $VIZIER_KERAS_GP_SETTINGS)")
    parser.add_argument("--seed", type=int, default=os.environ.get("VIZIER_KERAS_SEED") or None,
                        help="seed of the default algorithm: the same seed, study name and "
                             "history give the same suggestions (default: $VIZIER_KERAS_SEED, "
                             "else unseeded)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    gp_settings = None
    if args.gp_settings:
        try:
            gp_settings = json.loads(args.gp_settings)
            from vizier_keras.server import gp

            gp.check_settings(gp_settings)
        except ValueError as e:  # json.JSONDecodeError is one
            parser.error(f"--gp-settings {args.gp_settings!r}: {e}")
    # Our own messages at the level asked for; OSS Vizier and JAX (which log every suggestion
    # at INFO, on the root logger and absl's) at WARNING, so the log stays readable.
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("vizier_keras").setLevel(args.log_level.upper())
    logging.getLogger("absl").setLevel(logging.WARNING)
    started = time.monotonic()
    try:
        token = args.token or None
        if args.token_file:
            token = read_token_file(args.token_file)
        serve(args.database, host=args.host, port=args.port, token=token,
              ready_file=args.ready_file, parent_pid=args.parent_pid,
              compilation_cache=args.compilation_cache, gp_settings=gp_settings,
              insecure=args.insecure, seed=args.seed)
    except StartupError as e:
        print(f"vizier-keras serve: {e}", file=sys.stderr)
        return 2
    logger.debug("served for %.1f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
