"""A real HTTP server on a loopback port whose answers a test scripts.

Used where the case cannot come from a real Vizier service: a 503 twice then 200, a dropped
connection, an operation that finishes after three polls. Bound to port 0 (the kernel picks a
free port), threaded, ready when the context manager returns, and it records every request.

    with ScriptedServer() as server:
        server.route("GET", r"/v1/projects/.*/studies/1", [Reply(503), Reply(200, {...})])
        client = VizierClient(server.url)
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a JSON-able object, a str (sent as is), or None (empty body)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering


class Drop:
    """Close the connection without answering (after reading the request)."""


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


Action = Union[Reply, Drop, Callable[[Recorded], Union[Reply, Drop]]]  # noqa: UP007


class ScriptedServer:
    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.requests: list[Recorded] = []
        self._routes: list[tuple[str, re.Pattern[str], list[Action]]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path_regex: str, actions: Action | list[Action]) -> None:
        """Answer requests matching ``method`` and the full path with ``actions`` in turn; the
        last action repeats."""
        items = actions if isinstance(actions, list) else [actions]
        with self._lock:
            self._routes.append((method, re.compile(path_regex + r"\Z"), list(items)))

    def _next_action(self, rec: Recorded) -> Action:
        with self._lock:
            self.requests.append(rec)
            for method, pattern, actions in reversed(self._routes):
                if method == rec.method and pattern.match(rec.path):
                    return actions.pop(0) if len(actions) > 1 else actions[0]
        return Reply(404, {"error": {"code": 404, "message": f"no route for {rec.method} "
                                     f"{rec.path}", "status": "NOT_FOUND"}})

    def __enter__(self) -> ScriptedServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                rec = Recorded(self.command, parts.path, parse_qs(parts.query),
                               {k.lower(): v for k, v in self.headers.items()}, body)
                action = server._next_action(rec)
                if callable(action) and not isinstance(action, (Reply, Drop)):
                    action = action(rec)
                if isinstance(action, Drop):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action.delay:
                    threading.Event().wait(action.delay)
                if action.body is None:
                    payload = b""
                elif isinstance(action.body, str):
                    payload = action.body.encode()
                else:
                    payload = json.dumps(action.body).encode()
                self.send_response(action.status)
                ctype = "text/html" if isinstance(action.body, str) else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in action.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        ready = threading.Event()

        def serve() -> None:
            ready.set()
            assert self._httpd is not None
            self._httpd.serve_forever(poll_interval=0.05)

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
