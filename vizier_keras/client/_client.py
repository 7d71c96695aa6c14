"""VizierClient: every method of the Vertex AI Vizier v1 REST API, on ``requests``.

One idea, the API's verbs; the HTTP side (session, retries, paging) is :mod:`._transport`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from vizier_keras import protojson, wire
from vizier_keras.client._policy import PollPolicy, RetryPolicy
from vizier_keras.client._transport import (
    CLOUD_PLATFORM_SCOPE,
    ENDPOINT_ENV,
    Transport,
    endpoint_from_environment,
    vertex_endpoint,
)
from vizier_keras.errors import (
    AlreadyExistsError,
    NotFoundError,
    OperationTimeoutError,
    ProtocolError,
    ValidationError,
    error_from_status,
)
from vizier_keras.resources import LocationName, OperationName, StudyName, TrialName, as_name
from vizier_keras.studyspec import validate_study, validate_study_spec
from vizier_keras.wire import Json

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "ENDPOINT_ENV",
    "SuggestResult",
    "VizierClient",
    "endpoint_from_environment",
    "vertex_endpoint",
]

logger = logging.getLogger(__name__)

_OPERATION = "google.longrunning.Operation"

# A study: its name object, its name string, or the Study message the service returned.
StudyRef = StudyName | str | Mapping[str, Any]


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
        self._http = Transport(endpoint, region=region, session=session,
                               credentials=credentials, quota_project_id=quota_project_id,
                               token=token, timeout=timeout, retry=retry, user_agent=user_agent)
        self.poll = poll or PollPolicy()

    @classmethod
    def from_environment(cls, region: str | None = None, **kwargs: Any) -> VizierClient:
        """A client for ``$VIZIER_ENDPOINT`` when it is set, else for ``region`` on Vertex AI."""
        return cls(endpoint_from_environment(), region=region, **kwargs)

    def __repr__(self) -> str:
        return f"VizierClient(endpoint={self.endpoint!r})"

    @property
    def endpoint(self) -> str:
        """The service's base URL."""
        return self._http.endpoint

    @property
    def timeout(self) -> float | tuple[float, float]:
        """Seconds for each HTTP request."""
        return self._http.timeout

    @property
    def retry(self) -> RetryPolicy:
        return self._http.retry

    @property
    def is_vertex(self) -> bool:
        """Whether the endpoint is Google's (Vertex AI) rather than a self-hosted service."""
        return self._http.is_vertex

    @property
    def session(self) -> requests.Session:
        """The HTTP session, created on first use (Google credentials are found then)."""
        return self._http.session

    def close(self) -> None:
        """Close the HTTP session if this client created it. Safe to call twice."""
        self._http.close()

    def __enter__(self) -> VizierClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

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
        return _read("Study", self._http.call("POST", f"{parent_name}/studies", body=study,
                                              idempotent=False))

    def get_study(self, name: StudyRef) -> Json:
        """Get a study (``studies.get``). Raises NotFoundError if there is none."""
        return _read("Study", self._http.call("GET", as_name(StudyName, name), idempotent=True))

    def list_studies(self, parent: LocationName | str, *, page_size: int | None = None
                     ) -> list[Json]:
        """Every study of a location (``studies.list``, all pages)."""
        return [_read("Study", s) for s in self._http.paged(
            f"{as_name(LocationName, parent)}/studies", "studies", page_size)]

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
                self._http.send_once("DELETE", study, None, None)
            except NotFoundError:
                if attempts["n"] == 1:
                    raise

        self._http.with_retries(attempt, idempotent=True)

    def lookup_study(self, parent: LocationName | str, display_name: str) -> Json:
        """Find a study by display name (``studies.lookup``). Raises NotFoundError if none."""
        if not isinstance(display_name, str) or not display_name:
            raise ValidationError("displayName", display_name, "must be a non-empty string")
        return _read("Study", self._http.call(
            "POST", f"{as_name(LocationName, parent)}/studies:lookup",
            body={"displayName": display_name}, idempotent=True))

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
        return _read(_OPERATION, self._http.call(
            "POST", f"{as_name(StudyName, study)}/trials:suggest",
            body={"suggestionCount": count, "clientId": client_id}, idempotent=True))

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
        operation = self._http.with_retries(
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
        return _read("Trial", self._http.call(
            "POST", f"{as_name(StudyName, study)}/trials", body=body, idempotent=False))

    def get_trial(self, name: TrialName | str | Mapping[str, Any]) -> Json:
        """Get a trial (``trials.get``)."""
        return _read("Trial", self._http.call("GET", as_name(TrialName, name), idempotent=True))

    def list_trials(self, study: StudyRef, *, page_size: int | None = None) -> list[Json]:
        """Every trial of a study (``trials.list``, all pages)."""
        return [_read("Trial", t) for t in self._http.paged(
            f"{as_name(StudyName, study)}/trials", "trials", page_size)]

    def delete_trial(self, name: TrialName | str | Mapping[str, Any]) -> None:
        """Delete a trial (``trials.delete``)."""
        self._http.call("DELETE", as_name(TrialName, name), idempotent=True)

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
            return _read("Trial", self._http.send_once("POST", f"{name}:{verb}", None, body))

        return self._http.with_retries(attempt, idempotent=False, ambiguous_ok=True)

    def start_check_trial_early_stopping_state(
            self, trial: TrialName | str | Mapping[str, Any]) -> Json:
        """Ask whether a trial should stop (``trials.checkTrialEarlyStoppingState``); returns
        the operation, without waiting."""
        return _read(_OPERATION, self._http.call(
            "POST", f"{as_name(TrialName, trial)}:checkTrialEarlyStoppingState", body={},
            idempotent=True))

    def check_trial_early_stopping_state(self, trial: TrialName | str | Mapping[str, Any], *,
                                         timeout: float | None = None) -> bool:
        """Whether the service says the trial should stop now (waits for the operation)."""
        operation = self._http.with_retries(
            lambda: self.poll_operation(self.start_check_trial_early_stopping_state(trial),
                                        timeout=timeout), idempotent=True)
        return bool((operation.get("response") or {}).get("shouldStop", False))

    def stop_trial(self, trial: TrialName | str | Mapping[str, Any]) -> Json:
        """Mark a trial STOPPING (``trials.stop``); the worker running it completes it."""
        return _read("Trial", self._http.call(
            "POST", f"{as_name(TrialName, trial)}:stop", body={}, idempotent=True))

    def list_optimal_trials(self, study: StudyRef) -> list[Json]:
        """The Pareto-optimal trials of a study (``trials.listOptimalTrials``); for a
        single-objective study, the best trial(s)."""
        response = _read("ListOptimalTrialsResponse", self._http.call(
            "POST", f"{as_name(StudyName, study)}/trials:listOptimalTrials", body={},
            idempotent=True))
        return list(response.get("optimalTrials", ()))

    # ------------------------------------------------------------------ operations

    def get_operation(self, name: OperationName | str) -> Json:
        """Read a long-running operation (``operations.get``), by the name the service gave."""
        return _read(_OPERATION, self._http.call("GET", as_name(OperationName, name),
                                                 idempotent=True))

    def wait_operation(self, name: OperationName | str, *, timeout: float | None = None) -> Json:
        """Ask the service to wait for an operation (``operations.wait``).

        The service answers when the operation is done or after ``timeout`` seconds (its own
        bound applies), done or not. See :meth:`poll_operation` for a client-side deadline.
        """
        params = None
        if timeout is not None:
            params = {"timeout": wire.format_duration(timeout, "timeout")}
        return _read(_OPERATION, self._http.call(
            "POST", f"{as_name(OperationName, name)}:wait", params=params, idempotent=True))

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
                                    method="GET", url=f"{self._http.endpoint}/v1/{name}")
        return op


def _read(message: str, answer: Json) -> Json:
    """An answer as proto3 JSON means it (:func:`protojson.canonical`): enums by name, int64 as
    strings, defaults left out, and fields this package does not know dropped, since Vertex
    adds fields over time and a new one must not break a user.

    Raises:
        ProtocolError: The answer is not the message it should be.
    """
    try:
        return protojson.canonical(message, answer, path=message, unknown="ignore")
    except ValidationError as e:
        raise ProtocolError(f"the service answered a {message} that proto3 JSON cannot "
                            f"read: {e}") from None
