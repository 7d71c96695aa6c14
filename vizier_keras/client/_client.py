"""VizierClient: every method of the Vertex AI Vizier v1 REST API, on ``requests``."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from vizier_keras import __version__, wire
from vizier_keras.client._policy import PollPolicy, RetryPolicy
from vizier_keras.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    NotFoundError,
    OperationTimeoutError,
    ProtocolError,
    RequestTimeoutError,
    ResourceExhaustedError,
    TransportError,
    UnavailableError,
    ValidationError,
    VizierError,
    error_from_http,
    error_from_status,
)
from vizier_keras.resources import LocationName, OperationName, StudyName, TrialName, as_name
from vizier_keras.studyspec import validate_study, validate_study_spec

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "ENDPOINT_ENV",
    "SuggestResult",
    "VizierClient",
    "endpoint_from_environment",
    "vertex_endpoint",
]

logger = logging.getLogger(__name__)

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ENDPOINT_ENV = "VIZIER_ENDPOINT"
_REGION_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_T = TypeVar("_T")

Json = dict[str, Any]
# A study: its name object, its name string, or the Study message the service returned.
StudyRef = StudyName | str | Mapping[str, Any]


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


@dataclass(frozen=True)
class SuggestResult:
    """What a finished suggest operation gave.

    Attributes:
        trials: The suggested Trial messages. Empty when the service has nothing more to
            suggest: the study is done (``study_state`` COMPLETED or INACTIVE) or its search
            space is exhausted (grid search over a finite space).
        study_state: The study's state as the operation reported it.
        operation: The operation's name.
    """

    trials: list[Json]
    study_state: wire.StudyState
    operation: str

    @property
    def exhausted(self) -> bool:
        """True when the service returned no trial."""
        return not self.trials


class VizierClient:
    """A client of the Vertex AI Vizier v1 REST API (Google's, or any compatible endpoint).

    The constructor opens no connection and reads no environment. Every call has a timeout;
    safe calls are retried with backoff (see :class:`RetryPolicy`); long-running operations are
    polled until a deadline (see :class:`PollPolicy`). Errors are :mod:`vizier_keras.errors`.
    The client may be shared between threads.

    Args:
        endpoint: Base URL of the service, e.g. ``"http://127.0.0.1:8080"`` for an embedded or
            self-hosted server. Default: the Vertex AI endpoint of ``region``.
        region: A Google Cloud region, used when ``endpoint`` is not given.
        session: A ``requests.Session`` to send with, as given (a
            ``google.auth.transport.requests.AuthorizedSession`` is one). The client does not
            close a session it did not create.
        credentials: Google credentials to sign requests with. Without a session, credentials or
            token, a googleapis.com endpoint uses ``google.auth.default()`` (on first use).
        quota_project_id: The project billed for quota when Application Default Credentials are
            used (sent as ``x-goog-user-project``).
        token: A bearer token to send as is (for a self-hosted server that asks for one).
            Never logged.
        timeout: Seconds for each HTTP request: one number, or (connect, read).
        retry: The retry policy. ``RetryPolicy(max_attempts=1)`` turns retries off.
        poll: The polling policy for long-running operations.
        user_agent: Prepended to the ``User-Agent`` header.

    Example::

        with VizierClient("http://127.0.0.1:8080") as client:
            study, _ = client.get_or_create_study(
                "projects/local/locations/local", "my-study", spec)
            result = client.suggest_trials(study, count=1, client_id="worker-0")
            for trial in result.trials:
                client.add_trial_measurement(trial, {"val_loss": 0.3}, step_count=1)
                client.complete_trial(trial)

    Vertex AI::

        client = VizierClient(region="us-central1")   # Application Default Credentials
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
        poll: PollPolicy | None = None,
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
        self.poll = poll or PollPolicy()
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

    @classmethod
    def from_environment(cls, region: str | None = None, **kwargs: Any) -> VizierClient:
        """A client for ``$VIZIER_ENDPOINT`` when it is set, else for ``region`` on Vertex AI."""
        return cls(endpoint_from_environment(), region=region, **kwargs)

    def __repr__(self) -> str:
        return f"VizierClient(endpoint={self.endpoint!r})"

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

    def __enter__(self) -> VizierClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP core

    def _send_once(self, method: str, path: str, params: Mapping[str, Any] | None,
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

    def _call(self, method: str, path: str, *, body: Any = None,
              params: Mapping[str, Any] | None = None, idempotent: bool) -> Json:
        """Send one API call, repeating it as the retry policy allows."""
        return self._with_retries(lambda: self._send_once(method, path, params, body),
                                  idempotent=idempotent)

    def _with_retries(self, attempt: Callable[[], _T], *, idempotent: bool,
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

    def _paged(self, path: str, field: str, page_size: int | None) -> Iterator[Json]:
        params: dict[str, Any] = {}
        if page_size is not None:
            if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
                raise ValidationError("page_size", page_size, "must be a positive integer")
            params["pageSize"] = page_size
        seen_tokens: set[str] = set()
        while True:
            page = self._call("GET", path, params=dict(params), idempotent=True)
            yield from page.get(field, ()) or ()
            token = page.get("nextPageToken")
            if not token:
                return
            if token in seen_tokens:
                raise ProtocolError(f"GET {path} returned the page token {token!r} twice")
            seen_tokens.add(token)
            params["pageToken"] = token

    # ------------------------------------------------------------------ studies

    def create_study(self, parent: LocationName | str, display_name: str,
                     study_spec: Mapping[str, Any]) -> Json:
        """Create a study (``studies.create``).

        Args:
            parent: ``projects/{project}/locations/{location}``.
            display_name: The study's display name (unique in the location on Vertex AI).
            study_spec: A StudySpec message; checked before it is sent.

        Returns:
            The Study message, with its service-assigned ``name``.

        Raises:
            ValidationError: The spec or a name is malformed (nothing was sent).
            AlreadyExistsError: A study with that display name exists.
        """
        parent_name = as_name(LocationName, parent)
        study = {"displayName": display_name, "studySpec": dict(study_spec)}
        validate_study(study, allow_extensions=not self.is_vertex)
        # A create whose request never arrived may be repeated; one that may have arrived ends
        # in ALREADY_EXISTS at worst, which get_or_create_study handles.
        return self._call("POST", f"{parent_name}/studies", body=study, idempotent=False)

    def get_study(self, name: StudyRef) -> Json:
        """Get a study (``studies.get``). Raises NotFoundError if there is none."""
        return self._call("GET", as_name(StudyName, name), idempotent=True)

    def list_studies(self, parent: LocationName | str, *, page_size: int | None = None
                     ) -> list[Json]:
        """Every study of a location (``studies.list``, all pages)."""
        return list(self._paged(f"{as_name(LocationName, parent)}/studies", "studies", page_size))

    def delete_study(self, name: StudyRef) -> None:
        """Delete a study and its trials (``studies.delete``).

        A delete that is repeated after a broken connection and then finds no study counts as
        done.
        """
        study = as_name(StudyName, name)
        attempts = {"n": 0}

        def attempt() -> None:
            attempts["n"] += 1
            try:
                self._send_once("DELETE", study, None, None)
            except NotFoundError:
                if attempts["n"] == 1:
                    raise

        self._with_retries(attempt, idempotent=True)

    def lookup_study(self, parent: LocationName | str, display_name: str) -> Json:
        """Find a study by display name (``studies.lookup``). Raises NotFoundError if none."""
        if not isinstance(display_name, str) or not display_name:
            raise ValidationError("displayName", display_name, "must be a non-empty string")
        return self._call("POST", f"{as_name(LocationName, parent)}/studies:lookup",
                          body={"displayName": display_name}, idempotent=True)

    def get_or_create_study(self, parent: LocationName | str, display_name: str,
                            study_spec: Mapping[str, Any]) -> tuple[Json, bool]:
        """The study with this display name, created from ``study_spec`` if there is none.

        Race-safe: when another worker creates it first (ALREADY_EXISTS), the study is looked up
        again. The existing study's spec is returned as stored; comparing it with
        ``study_spec`` is the caller's choice.

        Returns:
            (study, created): the Study message, and whether this call created it.
        """
        validate_study_spec(study_spec, allow_extensions=not self.is_vertex)
        try:
            return self.lookup_study(parent, display_name), False
        except NotFoundError:
            pass
        try:
            return self.create_study(parent, display_name, study_spec), True
        except AlreadyExistsError:
            logger.debug("study %r was created concurrently; looking it up", display_name)
            return self.lookup_study(parent, display_name), False

    # ------------------------------------------------------------------ trials

    def start_suggest_trials(self, study: StudyRef, count: int, client_id: str) -> Json:
        """Ask for suggestions (``trials.suggest``) and return the operation, without waiting.

        Safe to repeat: the service gives the same client id the same pending trials.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValidationError("suggestionCount", count, "must be a positive integer")
        if not isinstance(client_id, str) or not client_id:
            raise ValidationError("clientId", client_id, "must be a non-empty string")
        return self._call("POST", f"{as_name(StudyName, study)}/trials:suggest",
                          body={"suggestionCount": count, "clientId": client_id},
                          idempotent=True)

    def suggest_trials(self, study: StudyRef, count: int = 1, *, client_id: str,
                       timeout: float | None = None) -> SuggestResult:
        """Suggest trials and wait for them (``trials.suggest`` + operation polling).

        Args:
            study: The study.
            count: How many trials to ask for.
            client_id: This worker's id. Pending trials of this client come back first.
            timeout: Seconds to wait for the operation (default: the poll policy's).

        Returns:
            A :class:`SuggestResult`; its ``trials`` may be empty (study done or exhausted).

        Raises:
            OperationTimeoutError: The operation was not done in time.
            ApiError: The operation ended with an error (the algorithm failed, say).
        """
        # Suggest is safe to repeat as a whole, also when its operation ends UNAVAILABLE (say, a
        # server restarted while computing it).
        operation = self._with_retries(
            lambda: self.poll_operation(self.start_suggest_trials(study, count, client_id),
                                        timeout=timeout), idempotent=True)
        response = operation.get("response") or {}
        return SuggestResult(
            trials=list(response.get("trials", ()) or ()),
            study_state=wire.StudyState.parse(response.get("studyState"), "studyState"),
            operation=str(operation.get("name", "")),
        )

    def create_trial(self, study: StudyRef,
                     parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Json:
        """Add a trial with given parameter values (``trials.create``).

        Args:
            parameters: Parameter id -> value (a number, or a string for CATEGORICAL), or a
                list of ``{"parameterId", "value"}``.
        """
        body = {"parameters": wire.parameter_list(parameters)}
        return self._call("POST", f"{as_name(StudyName, study)}/trials", body=body,
                          idempotent=False)

    def get_trial(self, name: TrialName | str | Mapping[str, Any]) -> Json:
        """Get a trial (``trials.get``)."""
        return self._call("GET", as_name(TrialName, name), idempotent=True)

    def list_trials(self, study: StudyRef, *, page_size: int | None = None) -> list[Json]:
        """Every trial of a study (``trials.list``, all pages)."""
        return list(self._paged(f"{as_name(StudyName, study)}/trials", "trials", page_size))

    def delete_trial(self, name: TrialName | str | Mapping[str, Any]) -> None:
        """Delete a trial (``trials.delete``)."""
        self._call("DELETE", as_name(TrialName, name), idempotent=True)

    def add_trial_measurement(
        self,
        trial: TrialName | str | Mapping[str, Any],
        metrics: Mapping[str, float],
        *,
        step_count: int | None = None,
        elapsed_seconds: float | None = None,
    ) -> Json:
        """Report an intermediate measurement (``trials.addTrialMeasurement``).

        Not idempotent: after a failure that leaves it unknown whether the service recorded the
        measurement (a broken connection, a timeout, UNAVAILABLE), the client reads the trial
        and sends again only if the measurement is not there.

        Args:
            trial: The trial.
            metrics: Metric id -> finite value.
            step_count: The step (for Keras: epochs done).
            elapsed_seconds: Seconds since the trial started.

        Returns:
            The updated Trial.

        Raises:
            ValidationError: A metric is NaN or infinite, etc. (nothing was sent).
        """
        name = as_name(TrialName, trial)
        m = wire.measurement(metrics, step_count=step_count, elapsed_seconds=elapsed_seconds)

        def applied(current: Json) -> bool:
            return any(wire.same_measurement(m, old) for old in current.get("measurements", ()))

        return self._verified(name, "addTrialMeasurement", {"measurement": m}, applied)

    def complete_trial(
        self,
        trial: TrialName | str | Mapping[str, Any],
        metrics: Mapping[str, float] | None = None,
        *,
        step_count: int | None = None,
        elapsed_seconds: float | None = None,
        infeasible_reason: str | None = None,
    ) -> Json:
        """Complete a trial (``trials.complete``).

        With ``metrics``, they are the final measurement. Without, the service picks one of the
        reported measurements (the study's measurementSelectionType). With
        ``infeasible_reason``, the trial is marked infeasible.

        Not idempotent: after an ambiguous failure the client reads the trial, and sends again
        only if it is not complete.

        Raises:
            ValidationError: Both metrics and an infeasible reason, or a NaN metric.
            FailedPreconditionError: The trial was already complete.
        """
        name = as_name(TrialName, trial)
        body: Json = {}
        if infeasible_reason is not None:
            if metrics is not None:
                raise ValidationError("finalMeasurement", metrics,
                                      "an infeasible trial takes no final measurement")
            if not isinstance(infeasible_reason, str):
                raise ValidationError("infeasibleReason", infeasible_reason, "must be a string")
            body = {"trialInfeasible": True, "infeasibleReason": infeasible_reason}
        elif metrics is not None:
            body = {"finalMeasurement": wire.measurement(
                metrics, step_count=step_count, elapsed_seconds=elapsed_seconds)}
        elif step_count is not None or elapsed_seconds is not None:
            raise ValidationError("step_count", step_count,
                                  "step_count and elapsed_seconds need metrics")
        return self._verified(name, "complete", body, lambda t: wire.trial_state(t).is_done)

    def _verified(self, name: str, verb: str, body: Json,
                  applied: Callable[[Json], bool]) -> Json:
        """Send a non-idempotent trial call; after an ambiguous failure, read the trial and send
        again only if ``applied(trial)`` says the call did not take effect."""
        first = {"done": False}

        def attempt() -> Json:
            if first["done"]:
                current = self.get_trial(name)
                if applied(current):
                    logger.info("%s on %s had taken effect before the connection broke", verb,
                                name)
                    return current
            first["done"] = True
            return self._send_once("POST", f"{name}:{verb}", None, body)

        return self._with_retries(attempt, idempotent=False, ambiguous_ok=True)

    def start_check_trial_early_stopping_state(
            self, trial: TrialName | str | Mapping[str, Any]) -> Json:
        """Ask whether a trial should stop (``trials.checkTrialEarlyStoppingState``); returns
        the operation, without waiting."""
        return self._call("POST", f"{as_name(TrialName, trial)}:checkTrialEarlyStoppingState",
                          body={}, idempotent=True)

    def check_trial_early_stopping_state(self, trial: TrialName | str | Mapping[str, Any], *,
                                         timeout: float | None = None) -> bool:
        """Whether the service says the trial should stop now (waits for the operation)."""
        operation = self._with_retries(
            lambda: self.poll_operation(self.start_check_trial_early_stopping_state(trial),
                                        timeout=timeout), idempotent=True)
        return bool((operation.get("response") or {}).get("shouldStop", False))

    def stop_trial(self, trial: TrialName | str | Mapping[str, Any]) -> Json:
        """Mark a trial STOPPING (``trials.stop``); the worker running it completes it."""
        return self._call("POST", f"{as_name(TrialName, trial)}:stop", body={}, idempotent=True)

    def list_optimal_trials(self, study: StudyRef) -> list[Json]:
        """The Pareto-optimal trials of a study (``trials.listOptimalTrials``); for a
        single-objective study, the best trial(s)."""
        response = self._call("POST", f"{as_name(StudyName, study)}/trials:listOptimalTrials",
                              body={}, idempotent=True)
        return list(response.get("optimalTrials", ()) or ())

    # ------------------------------------------------------------------ operations

    def get_operation(self, name: OperationName | str) -> Json:
        """Read a long-running operation (``operations.get``), by the name the service gave."""
        return self._call("GET", as_name(OperationName, name), idempotent=True)

    def wait_operation(self, name: OperationName | str, *, timeout: float | None = None) -> Json:
        """Ask the service to wait for an operation (``operations.wait``).

        The service answers when the operation is done or after ``timeout`` seconds (its own
        bound applies), done or not. See :meth:`poll_operation` for a client-side deadline.
        """
        params = None
        if timeout is not None:
            params = {"timeout": wire.format_duration(timeout, "timeout")}
        return self._call("POST", f"{as_name(OperationName, name)}:wait", params=params,
                          idempotent=True)

    def poll_operation(self, operation: Mapping[str, Any] | OperationName | str, *,
                       timeout: float | None = None) -> Json:
        """Read an operation until it is done, with backoff, up to a deadline.

        Args:
            operation: An Operation message (returned at once when already done) or its name.
            timeout: Seconds (default: the poll policy's timeout).

        Returns:
            The finished Operation message.

        Raises:
            OperationTimeoutError: Not done by the deadline.
            ApiError: The operation finished with an ``error`` (mapped from its numeric code).
        """
        op: Json = dict(operation) if isinstance(operation, Mapping) else {
            "name": as_name(OperationName, operation)}
        name = op.get("name")
        if not isinstance(name, str):
            raise ProtocolError(f"an operation without a name: {op!r}")
        limit = self.poll.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delay = self.poll.initial_delay
        while not op.get("done", False):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OperationTimeoutError(name, limit)
            time.sleep(min(delay, remaining))
            delay = min(delay * self.poll.multiplier, self.poll.max_delay)
            op = self.get_operation(name)
        error = op.get("error")
        if error:
            raise error_from_status(error.get("code", 2), str(error.get("message", "")),
                                    details=error.get("details"), operation=name,
                                    method="GET", url=f"{self.endpoint}/v1/{name}")
        return op


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

