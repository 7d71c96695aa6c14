"""A live, read-only dashboard of Vizier studies: optuna-dashboard over a mirror that follows
them.

:class:`Dashboard` mirrors every study of a source (or the ones named) into an in-memory Optuna
storage (:mod:`vizier_keras.results.mirror`) and reads them again every ``refresh`` seconds in a
background thread, so the page follows a running study whatever worker reports to it.
optuna-dashboard serves that storage: trial table, history, intermediate values (the learning
curves), parallel coordinates, importance, Pareto front.

Read-only: every request other than GET or HEAD is answered 405 before optuna-dashboard sees
it, so its controls that would write (notes, tell, delete, rename) do nothing, and nothing it
shows can write to Vizier in any case (the mirror is a copy). Loopback by default; on any other
address a token is required: open ``/?token=...`` once, the page keeps it in a cookie (a
``Authorization: Bearer`` header works too). Needs the ``[dashboard]`` extra.

Example::

    with open_source(database="tuning/vizier.db") as source:
        serve_dashboard(Dashboard(source), port=8080)
"""

from __future__ import annotations

import hmac
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from vizier_keras.errors import MissingExtraError, StartupError
from vizier_keras.results.mirror import Mirror
from vizier_keras.results.sources import Source
from vizier_keras.results.study import StudyResults
from vizier_keras.server.access import is_loopback

logger = logging.getLogger(__name__)

__all__ = ["Dashboard", "read_only", "serve_dashboard"]

COOKIE = "vizier_keras_dashboard"
_READS = ("GET", "HEAD")


class Dashboard:
    """Mirrors of a source's studies, kept up to date.

    Args:
        source: Where the studies are.
        studies: The studies to show (display names, ids or resource names); default all,
            including those created while the dashboard runs.
        refresh: Seconds between reads of the source.
    """

    def __init__(self, source: Source, studies: Sequence[str] = (), refresh: float = 5.0
                 ) -> None:
        try:
            import optuna
            import optuna_dashboard  # noqa: F401
        except ImportError as e:
            raise MissingExtraError("vizier-keras dashboard", "dashboard",
                                    [str(e.name or "optuna_dashboard")]) from None
        if refresh <= 0:
            raise ValueError(f"refresh must be positive, not {refresh}")
        self.source = source
        self.selected = list(studies)
        self.refresh = refresh
        self.storage = optuna.storages.InMemoryStorage()
        self.mirrors: dict[str, Mirror] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._names: set[str] = set()
        self.poll()

    def _studies(self) -> Iterable[dict[str, Any]]:
        studies = self.source.list_studies()  # once per read, whatever the selection
        if not self.selected:
            return studies
        return [self.source.find_study(ref, studies) for ref in self.selected]

    def poll(self) -> int:
        """Read the source once: new studies get a mirror, every mirror its new trials.
        Returns how many trials changed."""
        changed = 0
        for study in self._studies():
            mirror = self.mirrors.get(study["name"])
            if mirror is None:
                results = StudyResults(study, source=self.source).refresh()
                name = results.display_name or results.name
                if name in self._names:
                    name = f"{name} ({study['name'].rsplit('/', 1)[-1]})"
                self._names.add(name)
                mirror = self.mirrors[study["name"]] = Mirror(results, self.storage, name)
                changed += len(results.trials)
            else:
                mirror.results.refresh()
                changed += mirror.update()
        return changed

    def _follow(self) -> None:
        while not self._stop.wait(self.refresh):
            try:
                self.poll()
            except Exception as e:  # the page keeps what it has; the next read may work
                self.errors += 1
                logger.warning("reading %s failed (%s); retrying in %.0f s",
                               self.source.describe(), e, self.refresh)

    def start(self) -> None:
        """Follow the source in a background thread (until :meth:`stop`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="dashboard-refresh",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def app(self, token: str | None = None) -> Callable[..., Any]:
        """The WSGI application: optuna-dashboard over the mirrors, read-only."""
        import optuna_dashboard

        return read_only(optuna_dashboard.wsgi(self.storage), token)


def read_only(app: Callable[..., Any], token: str | None = None) -> Callable[..., Any]:
    """``app`` answering only GET and HEAD (405 for the rest), and only with ``token`` when one
    is given (as ``?token=``, then a cookie, or a Bearer header; 401 without)."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in _READS:
            return _answer(start_response, "405 Method Not Allowed",
                           b'{"reason": "this dashboard is read-only"}', [("Allow", "GET, HEAD")])
        extra: list[tuple[str, str]] = []
        if token is not None:
            given = _token_of(environ)
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                return _answer(start_response, "401 Unauthorized",
                               b'{"reason": "open the dashboard with ?token=..."}', [])
            extra.append(("Set-Cookie", f"{COOKIE}={urllib.parse.quote(token)}; HttpOnly; "
                                        "SameSite=Strict; Path=/"))

        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, headers + extra, *args)

        return app(environ, start)

    return guarded


def _token_of(environ: dict[str, Any]) -> str | None:
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if query.get("token"):
        return query["token"][0]
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == COOKIE:
            return urllib.parse.unquote(value)
    return None


def _answer(start_response: Callable[..., Any], status: str, body: bytes,
            headers: list[tuple[str, str]]) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), *headers])
    return [body]


def serve_dashboard(dashboard: Dashboard, *, host: str = "127.0.0.1", port: int = 8080,
                    token: str | None = None, insecure: bool = False,
                    ready: Callable[[str], None] | None = None) -> None:
    """Serve ``dashboard`` until interrupted (on waitress), following its source.

    Args:
        host, port: Where to listen (port 0: a free one).
        token: Required of every request when given; needed beyond loopback unless
            ``insecure``.
        ready: Called with the dashboard's URL once it listens.

    Raises:
        StartupError: Beyond loopback without a token, or the address cannot be bound.
    """
    if token is None and not insecure and not is_loopback(host):
        raise StartupError(f"the dashboard on {host} would be open to anyone who reaches it; "
                           "give a token (--dashboard-token) or --insecure on a trusted network")
    try:
        import waitress
    except ImportError:
        raise MissingExtraError("vizier-keras dashboard", "dashboard", ["waitress"]) from None
    try:
        server = waitress.create_server(dashboard.app(token), host=host, port=port, threads=8,
                                        ident="vizier-keras-dashboard")
    except OSError as e:
        raise StartupError(f"the dashboard cannot listen on {host}:{port} ({e.strerror})"
                           ) from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.effective_port}/dashboard"
    dashboard.start()
    try:
        if ready is not None:
            ready(url)
        server.run()
    finally:
        dashboard.stop()
        server.close()
