"""The HTTP side of the client: endpoint, session and credentials, one call with its error
mapping, retries with backoff, and paging. The verbs (:mod:`._client`) are built on it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from vizier_keras import __version__
from vizier_keras.client._policy import RetryPolicy
from vizier_keras.errors import (
    DeadlineExceededError,
    ProtocolError,
    RequestTimeoutError,
    ResourceExhaustedError,
    TransportError,
    UnavailableError,
    ValidationError,
    VizierError,
    error_from_http,
)
from vizier_keras.wire import Json

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "ENDPOINT_ENV",
    "Transport",
    "endpoint_from_environment",
    "vertex_endpoint",
]

logger = logging.getLogger(__name__)

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ENDPOINT_ENV = "VIZIER_ENDPOINT"
_REGION_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_T = TypeVar("_T")



def vertex_endpoint(region: str) -> str:
    """The Vertex AI endpoint of a region: ``https://{region}-aiplatform.googleapis.com``."""
    if not isinstance(region, str) or not _REGION_RE.match(region):
        raise ValidationError("region", region, "must be a Google Cloud region such as "
                              "'us-central1'")
    return f"https://{region}-aiplatform.googleapis.com"


def endpoint_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The endpoint named by ``VIZIER_ENDPOINT``, or None. Read at the edge (tuner, CLI), once."""
    value = (os.environ if environ is None else environ).get(ENDPOINT_ENV, "").strip()
    return value or None


def _check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or (
            parts.query or parts.fragment):
        raise ValidationError("endpoint", endpoint, "must be an http(s) URL such as "
                              "'http://127.0.0.1:8080' or 'https://us-central1-aiplatform"
                              ".googleapis.com'")
    return endpoint.rstrip("/")


def _is_google_endpoint(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    return host == "googleapis.com" or host.endswith(".googleapis.com")


class Transport:
    """Sends the v1 API's calls to one endpoint: a session made on first use (Google
    credentials are found then), a timeout on every request, errors as
    :mod:`vizier_keras.errors`, retries as the policy allows. Thread-safe.

    Args: as :class:`~vizier_keras.client.VizierClient`'s of the same names.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        region: str | None = None,
        session: requests.Session | None = None,
        credentials: Any = None,
        quota_project_id: str | None = None,
        token: str | None = None,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
    ) -> None:
        if endpoint is None:
            if region is None:
                raise ValidationError("endpoint", None,
                                      "give an endpoint URL or a Google Cloud region")
            endpoint = vertex_endpoint(region)
        self.endpoint = _check_endpoint(endpoint)
        if sum(x is not None for x in (session, credentials, token)) > 1:
            raise ValidationError("session", session,
                                  "give at most one of session, credentials and token")
        if token is not None and (not isinstance(token, str) or not token):
            raise ValidationError("token", "<hidden>", "must be a non-empty string")
        self._check_timeout(timeout)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session = session
        self._owns_session = session is None
        self._credentials = credentials
        self._quota_project_id = quota_project_id
        self._token = token
        self._user_agent = " ".join(
            x for x in (user_agent, f"vizier-keras/{__version__}",
                        f"python-requests/{requests.__version__}") if x)
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._closed = False

    @staticmethod
    def _check_timeout(timeout: Any) -> None:
        values = timeout if isinstance(timeout, tuple) else (timeout,)
        if len(values) not in (1, 2) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
            raise ValidationError("timeout", timeout, "must be a positive number of seconds or "
                                  "a (connect, read) pair of them")

    @property
    def is_vertex(self) -> bool:
        """Whether the endpoint is Google's (Vertex AI) rather than a self-hosted service."""
        return _is_google_endpoint(self.endpoint)

    # ------------------------------------------------------------------ session and lifetime

    @property
    def session(self) -> requests.Session:
        """The HTTP session, created on first use (Google credentials are found then)."""
        if self._closed:
            raise VizierError("this VizierClient is closed")
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._make_session()
        return self._session

    def _make_session(self) -> requests.Session:
        credentials = self._credentials
        if credentials is None and self._token is None and _is_google_endpoint(self.endpoint):
            import google.auth

            credentials, _ = google.auth.default(
                scopes=[CLOUD_PLATFORM_SCOPE], quota_project_id=self._quota_project_id)
        elif credentials is not None and self._quota_project_id and hasattr(
                credentials, "with_quota_project"):
            credentials = credentials.with_quota_project(self._quota_project_id)
        if credentials is not None:
            from google.auth.transport.requests import AuthorizedSession

            return AuthorizedSession(credentials)
        session = requests.Session()
        if self._token is not None:
            session.headers["Authorization"] = f"Bearer {self._token}"
        return session

    def close(self) -> None:
        """Close the HTTP session if this client created it. Safe to call twice."""
        with self._lock:
            if self._session is not None and self._owns_session:
                self._session.close()
            self._session = None
            self._closed = True

    # ------------------------------------------------------------------ HTTP core

    def send_once(self, method: str, path: str, params: Mapping[str, Any] | None,
                   body: Any) -> Json:
        url = f"{self.endpoint}/v1/{path}"
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, allow_nan=False)
        started = time.monotonic()
        try:
            response = self.session.request(method, url, params=params, data=data,
                                            headers=headers, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as e:
            raise RequestTimeoutError(f"could not connect: {e}", method=method, url=url,
                                      request_sent=False) from e
        except requests.exceptions.Timeout as e:
            raise RequestTimeoutError(f"no answer within {self.timeout} s: {e}", method=method,
                                      url=url) from e
        except requests.exceptions.ConnectionError as e:
            raise TransportError(str(e), method=method, url=url,
                                 request_sent=not _never_sent(e)) from e
        except requests.exceptions.RequestException as e:
            raise TransportError(str(e), method=method, url=url) from e
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("%s %s -> %s (%.0f ms)", method, url, response.status_code, elapsed_ms)
        try:
            payload: Any = response.json() if response.content else {}
        except ValueError:
            payload = response.text
        if response.status_code >= 300:
            error = error_from_http(response.status_code, payload, method=method, url=url,
                                    response=response)
            error.retry_after = _retry_after(response)  # type: ignore[attr-defined]
            raise error
        if not isinstance(payload, dict):
            raise ProtocolError(f"{method} {url} answered {response.status_code} with a body "
                                f"that is not a JSON object: {str(payload)[:200]!r}")
        return payload

    def call(self, method: str, path: str, *, body: Any = None,
              params: Mapping[str, Any] | None = None, idempotent: bool) -> Json:
        """Send one API call, repeating it as the retry policy allows."""
        return self.with_retries(lambda: self.send_once(method, path, params, body),
                                  idempotent=idempotent)

    def with_retries(self, attempt: Callable[[], _T], *, idempotent: bool,
                      ambiguous_ok: bool = False) -> _T:
        """Run ``attempt`` until it succeeds or the error is final.

        ``ambiguous_ok`` repeats even errors after which the first attempt may have taken
        effect; callers pass it only after checking that it did not.
        """
        started = time.monotonic()
        retry_number = 0
        while True:
            try:
                return attempt()
            except VizierError as error:
                retry_number += 1
                delay = self._retry_delay(error, retry_number, started,
                                          idempotent or ambiguous_ok)
                if delay is None:
                    raise
                logger.info("retrying in %.2f s (retry %d) after: %s", delay, retry_number,
                            error)
                time.sleep(delay)

    def _retry_delay(self, error: VizierError, retry_number: int, started: float,
                     repeatable: bool) -> float | None:
        exhausted = isinstance(error, ResourceExhaustedError)
        if isinstance(error, TransportError):
            ok = repeatable or not error.request_sent
        elif isinstance(error, (UnavailableError, DeadlineExceededError, ResourceExhaustedError)):
            ok = repeatable
        else:
            ok = False
        if not ok or retry_number >= self.retry.attempts_for(exhausted):
            return None
        delay = self.retry.backoff(retry_number, exhausted=exhausted, rng=self._rng)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry.max_backoff))
        if time.monotonic() + delay - started > self.retry.deadline:
            return None
        return delay

    def paged(self, path: str, field: str, page_size: int | None) -> Iterator[Json]:
        params: dict[str, Any] = {}
        if page_size is not None:
            if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
                raise ValidationError("page_size", page_size, "must be a positive integer")
            params["pageSize"] = page_size
        seen_tokens: set[str] = set()
        while True:
            page = self.call("GET", path, params=dict(params), idempotent=True)
            yield from page.get(field, ()) or ()
            token = page.get("nextPageToken")
            if not token:
                return
            if token in seen_tokens:
                raise ProtocolError(f"GET {path} returned the page token {token!r} twice")
            seen_tokens.add(token)
            params["pageToken"] = token


def _never_sent(error: requests.exceptions.ConnectionError) -> bool:
    """True when the connection could not be opened, so the request never left."""
    import urllib3.exceptions

    cause: Any = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, (urllib3.exceptions.NewConnectionError,
                               urllib3.exceptions.ConnectTimeoutError))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None

