"""The HTTP face of the embedded service: Vertex AI v1 REST paths, JSON in and out, on
waitress (:class:`VizierHTTPServer`). Running it as a process is :mod:`.process`.

Errors leave as ``{"error": {"code", "message", "status"}}`` with the matching HTTP status; a
request this service does not know answers NOT_FOUND. Request bodies are read as their v1
messages (:mod:`vizier_keras.protojson`: enums by name or number, defaults left out, unknown
fields refused). Of Google's global query parameters, ``$alt``/``alt`` are honoured (JSON only;
``enum-encoding=int`` answers enums as numbers, as Google's generated clients ask); the others
(``$.xgafv``, ``prettyPrint``, ...) are accepted and change nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from vizier_keras import __version__, protojson
from vizier_keras.errors import (
    ApiError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
    ValidationError,
)
from vizier_keras.resources import LocationName, OperationName, StudyName, TrialName
from vizier_keras.wire import Json

logger = logging.getLogger(__name__)

__all__ = ["VizierHTTPServer"]

_GLOBAL_PARAMS = {"alt", "$alt", "$.xgafv", "prettyPrint", "$prettyPrint", "fields", "key",
                  "quotaUser", "access_token", "callback", "oauth_token", "upload_protocol",
                  "uploadType"}
_MAX_BODY = 32 * 1024 * 1024
_SEG = r"([^/:]+)"
_LOC = rf"projects/{_SEG}/locations/{_SEG}"
_STUDY = rf"{_LOC}/studies/{_SEG}"
_TRIAL = rf"{_STUDY}/trials/{_SEG}"

Handler = Callable[..., Json]


class _Route:
    """One v1 method: its HTTP binding, the message its body carries (``body`` names the body
    in error messages) and the message it answers with."""

    def __init__(self, method: str, pattern: str, kind: str, call: str, answer: str,
                 body: tuple[str, str] | None = None, params: Sequence[str] = ()) -> None:
        self.method = method
        self.regex = re.compile(rf"^{pattern}$")
        self.kind = kind
        self.call = call
        self.answer = answer
        self.body = body
        self.params = set(params)


_OP = "google.longrunning.Operation"
_PAGES = ("pageSize", "pageToken")
_ROUTES = [
    _Route("POST", rf"{_LOC}/studies", "location", "create_study", "Study", ("Study", "study")),
    _Route("GET", rf"{_LOC}/studies", "location", "list_studies", "ListStudiesResponse",
           params=_PAGES),
    _Route("POST", rf"{_LOC}/studies:lookup", "location", "lookup_study", "Study",
           ("LookupStudyRequest", "request")),
    _Route("GET", _STUDY, "study", "get_study", "Study"),
    _Route("DELETE", _STUDY, "study", "delete_study", "Empty"),
    _Route("POST", rf"{_STUDY}/trials:suggest", "study", "suggest_trials", _OP,
           ("SuggestTrialsRequest", "request")),
    _Route("POST", rf"{_STUDY}/trials:listOptimalTrials", "study", "list_optimal_trials",
           "ListOptimalTrialsResponse", ("ListOptimalTrialsRequest", "request")),
    _Route("POST", rf"{_STUDY}/trials", "study", "create_trial", "Trial", ("Trial", "trial")),
    _Route("GET", rf"{_STUDY}/trials", "study", "list_trials", "ListTrialsResponse",
           params=_PAGES),
    _Route("GET", _TRIAL, "trial", "get_trial", "Trial"),
    _Route("DELETE", _TRIAL, "trial", "delete_trial", "Empty"),
    _Route("POST", rf"{_TRIAL}:addTrialMeasurement", "trial", "add_trial_measurement", "Trial",
           ("AddTrialMeasurementRequest", "request")),
    _Route("POST", rf"{_TRIAL}:complete", "trial", "complete_trial", "Trial",
           ("CompleteTrialRequest", "request")),
    _Route("POST", rf"{_TRIAL}:checkTrialEarlyStoppingState", "trial",
           "check_trial_early_stopping_state", _OP,
           ("CheckTrialEarlyStoppingStateRequest", "request")),
    _Route("POST", rf"{_TRIAL}:stop", "trial", "stop_trial", "Trial",
           ("StopTrialRequest", "request")),
    _Route("GET", rf"{_STUDY}/operations/{_SEG}", "study_op", "get_operation", _OP),
    _Route("POST", rf"{_STUDY}/operations/{_SEG}:wait", "study_op", "wait_operation", _OP,
           params=("timeout",)),
    _Route("GET", rf"{_TRIAL}/operations/{_SEG}", "trial_op", "get_operation", _OP),
    _Route("POST", rf"{_TRIAL}/operations/{_SEG}:wait", "trial_op", "wait_operation", _OP,
           params=("timeout",)),
]


def _enum_encoding(query: dict[str, list[str]]) -> protojson.Enums:
    """How the caller wants enums: Google's clients ask ``$alt=json;enum-encoding=int``."""
    encoding: protojson.Enums = "names"
    for key in ("$alt", "alt"):
        for value in query.get(key, []):
            form, *options = value.split(";")
            if form not in ("json", ""):
                raise ValidationError(key, value, "this service answers JSON only")
            for option in options:
                name, _, setting = option.partition("=")
                if name == "enum-encoding" and setting == "int":
                    encoding = "numbers"
                elif name == "enum-encoding" and setting not in ("", "string"):
                    raise ValidationError(key, value, "enum-encoding must be int or string")
    return encoding


def _name(kind: str, parts: Sequence[str]) -> Any:
    if kind == "location":
        return LocationName(*parts)
    if kind == "study":
        return StudyName(*parts)
    if kind == "trial":
        return TrialName(*parts)
    if kind == "study_op":
        return OperationName(StudyName(*parts[:3]).operation(parts[3]).name)
    return OperationName(TrialName(*parts[:4]).operation(parts[4]).name)


class VizierHTTPServer:
    """An HTTP server for a :class:`~vizier_keras.server.service.VizierService`, on waitress
    (a production WSGI server): HTTP/1.1 framing (chunked bodies, pipelining, malformed
    lengths refused), slow and idle connections read without holding a worker thread and
    closed after ``channel_timeout``, a bounded number of connections and of body bytes, and
    bodies past 512 KB spooled to a file rather than kept in memory.

    Args:
        service: The service (anything with its methods).
        host: Address to bind; loopback by default.
        port: Port; 0 lets the kernel pick a free one (read it from :attr:`port`).
        token: When set, every request but ``/healthz`` must carry
            ``Authorization: Bearer <token>``.
        threads: Worker threads that run requests (no request waits for a computation:
            suggestions are operations).
        channel_timeout: Seconds after which a connection that sends nothing is closed.
        connection_limit: Connections served at once; more wait in the listen queue.
    """

    def __init__(self, service: Any, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, *, threads: int = 8,
                 channel_timeout: float = 30.0, connection_limit: int = 256) -> None:
        from waitress.server import create_server

        self.service = service
        self._token = token
        self._server: Any = create_server(
            self._wsgi, host=host, port=port, threads=threads,
            channel_timeout=channel_timeout, connection_limit=connection_limit,
            # How often idle connections are looked for: a stalled one is closed between
            # channel_timeout and 1.5 x channel_timeout after its last byte.
            cleanup_interval=max(1.0, channel_timeout / 2),
            max_request_body_size=_MAX_BODY, max_request_header_size=64 * 1024,
            ident=f"vizier-keras/{__version__}", expose_tracebacks=False,
            asyncore_loop_timeout=0.2, clear_untrusted_proxy_headers=True)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._serving = threading.Event()
        self._stopped = threading.Event()

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown`. The sockets are closed in this same thread: closing
        them from another while it waits on them breaks its wait."""
        from waitress import wasyncore

        self._serving.set()
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.2, map=self._server._map, count=1)
        finally:
            self._close()
            self._stopped.set()

    def _close(self) -> None:
        from waitress import wasyncore

        self._server.task_dispatcher.shutdown()  # the requests running end first
        wasyncore.close_all(self._server._map)

    def start(self) -> VizierHTTPServer:
        """Serve on a background thread (for tests and embedding)."""
        self._thread = threading.Thread(target=self.serve_forever, name="vizier-http",
                                        daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving: no new request is taken; those running end first."""
        self._stop.set()
        if not self._serving.is_set():
            self._close()
            return
        self._stopped.wait(10)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> VizierHTTPServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ requests

    def dispatch(self, method: str, target: str, body: bytes,
                 authorization: str | None) -> tuple[int, Json]:
        """Answer one request: (HTTP status, JSON body)."""
        try:
            authorized = self._authorized(authorization)
            parts = urlsplit(target)
            if method == "GET" and parts.path == "/healthz":
                return self._health(authorized)
            if not authorized:
                raise UnauthenticatedError("this server needs 'Authorization: Bearer <token>'")
            query = parse_qs(parts.query, keep_blank_values=True)
            version, _, path = parts.path[1:].partition("/")
            if version not in ("v1", "ui"):
                raise NotFoundError(f"no such path: {parts.path}")
            for route in _ROUTES:
                match = route.regex.match(path)
                # Google's generated clients read operations at /ui/{name}: the same method.
                if match and route.method == method and (
                        version == "v1" or route.kind.endswith("_op")):
                    enums = _enum_encoding(query)
                    answer = self._call(route, [unquote(p) for p in match.groups()], query,
                                        body)
                    if enums == "numbers":
                        answer = protojson.canonical(route.answer, answer, unknown="ignore",
                                                     enums=enums)
                    return 200, answer
            if any(r.regex.match(path) for r in _ROUTES):
                raise NotFoundError(f"{method} is not a method of {parts.path}")
            raise NotFoundError(f"no such path: {parts.path}")
        except ValidationError as e:
            error: ApiError = InvalidArgumentError(str(e))
        except ApiError as e:
            error = e
        except Exception as e:  # a bug: answer INTERNAL, keep serving
            logger.exception("internal error on %s %s", method, target)
            error = InternalError(f"internal error: {type(e).__name__}: {e}")
        return error.http_status, error.to_json()

    def _authorized(self, authorization: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(  # RFC 7235: any case
            credentials.strip().encode(), self._token.encode())

    def _health(self, authorized: bool) -> tuple[int, Json]:
        """``/healthz``: SERVING when the database answers a read, else 503 NOT_SERVING. Open
        to all (load balancers ask it); where and what serves only with the token."""
        try:
            self.service.check_health()
        except Exception as e:  # any failure of the datastore means not serving
            logger.warning("health check failed: %s", e)
            return 503, {"status": "NOT_SERVING"}
        if not authorized:
            return 200, {"status": "SERVING"}
        return 200, {"status": "SERVING", "database": self.service.database,
                     "pid": os.getpid(), "version": __version__}

    def _call(self, route: _Route, parts: list[str], query: dict[str, list[str]],
              raw: bytes) -> Json:
        for key in query:
            if key not in route.params and key not in _GLOBAL_PARAMS:
                raise ValidationError(key, query[key][0], "is not a query parameter of "
                                      "this method")
        name = _name(route.kind, parts)
        handler: Handler = getattr(self.service, route.call)
        if route.call in ("list_studies", "list_trials"):
            size = query.get("pageSize", [None])[0]
            if size is not None and not re.fullmatch(r"\d+", size):
                raise ValidationError("pageSize", size, "must be a non-negative integer")
            return handler(name, int(size) if size else None, query.get("pageToken", [None])[0])
        if route.call == "wait_operation":
            timeout = query.get("timeout", [None])[0]
            from vizier_keras import wire

            return handler(name, None if timeout is None else wire.parse_duration(
                timeout, "timeout"))
        if route.method in ("GET", "DELETE"):
            return handler(name)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except RecursionError:
            raise ValidationError("body", raw[:40].decode("utf-8", "replace"),
                                  "nests too deeply") from None
        except ValueError as e:
            raise ValidationError("body", raw[:100].decode("utf-8", "replace"),
                                  f"is not JSON: {e}") from None
        try:  # JSON lets a string hold a lone UTF-16 surrogate; Unicode text cannot
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValidationError("body", e.object[e.start:e.end].encode(
                "unicode_escape").decode(), "holds a lone UTF-16 surrogate, which is not "
                "text") from None
        if route.body is not None:
            # As a proto3 JSON parser reads it: enums by name or number, defaults left out.
            message, where = route.body
            body = protojson.canonical(message, body, path=where)
        return handler(name, body)

    def _wsgi(self, environ: dict[str, Any],
              start_response: Callable[..., Any]) -> list[bytes]:
        """The WSGI application: one request in, one JSON answer out."""
        method = environ["REQUEST_METHOD"]
        target = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        authorization = environ.get("HTTP_AUTHORIZATION")
        if self._authorized(authorization) or target.startswith("/healthz"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length > 0 else b""
        else:
            raw = b""  # refused below; the body is not looked at
        status, payload = self.dispatch(method, target, raw, authorization)
        data = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json; charset=UTF-8"),
                   ("Content-Length", str(len(data)))]
        if status == 401:
            headers.append(("WWW-Authenticate", "Bearer"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [data]
