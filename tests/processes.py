"""A real ``vizier-keras serve`` process on a loopback port, for tests."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

from isolated import jax_cache

ROOT = pathlib.Path(__file__).resolve().parents[1]


class ServerProcess:
    """``vizier-keras serve --database DB --port 0`` in a child process.

    Its output goes to ``server.log`` beside the database; :meth:`wait_ready` returns its URL.
    """

    def __init__(self, database: pathlib.Path, *extra: str) -> None:
        self.database = database
        self.ready = database.parent / f"ready-{time.monotonic_ns()}.json"
        self.log_path = database.parent / "server.log"
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vizier_keras.cli", "serve", "--database", str(database),
             "--port", "0", "--ready-file", str(self.ready), "--compilation-cache", jax_cache(),
             *extra], stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.url = ""

    def wait_ready(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{self.output()}")
            time.sleep(0.05)
        self.url = json.loads(self.ready.read_text())["url"]
        return self.url

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.log.close()
