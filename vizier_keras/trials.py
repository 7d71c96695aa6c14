"""A Vizier trial for a plain training script: :func:`suggest_trial` and :class:`VizierTrial`.

Example::

    import keras_tuner as kt
    import vizier_keras

    hp = kt.HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Int("units", 16, 128, step=16)

    trial = vizier_keras.suggest_trial("my-study", objective="val_accuracy",
                                       hyperparameters=hp, max_trials=20)
    if trial is not None:
        with trial:                     # infeasible if the block raises
            model = build(**trial.parameters)
            model.fit(x, y, validation_split=0.2, epochs=10,
                      callbacks=[vizier_keras.VizierReportingCallback(trial)])
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any

from vizier_keras import convert, studyspec, wire
from vizier_keras.client import VizierClient
from vizier_keras.connect import Connection, ConnectionOptions
from vizier_keras.errors import ValidationError
from vizier_keras.studies import make_study_spec, open_study

logger = logging.getLogger(__name__)

__all__ = ["VizierTrial", "default_worker_id", "suggest_trial"]


def default_worker_id() -> str:
    """A client id unique to this process: ``<host>-<pid>``."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class VizierTrial:
    """One trial of a study, with what a training script needs.

    Attributes:
        name: The trial's resource name.
        parameters: Parameter id -> value, typed (an Int is an ``int``, a Boolean a ``bool``),
            only the active ones.
        client: The client it came from.
        study: The Study message.
        metric_ids: The study's metric ids (the objective).
        message: The Trial message as the service returned it.
        completed: Whether :meth:`complete` was called.
    """

    name: str
    parameters: dict[str, Any]
    client: VizierClient
    study: dict[str, Any]
    metric_ids: list[str]
    message: dict[str, Any] = field(repr=False, default_factory=dict)
    completed: bool = False

    @property
    def id(self) -> str:
        return wire.trial_id(self.message or {"name": self.name})

    def report(self, metrics: dict[str, float], *, step: int | None = None,
               elapsed_seconds: float | None = None) -> None:
        """Add an intermediate measurement."""
        self.client.add_trial_measurement(self.name, metrics, step_count=step,
                                          elapsed_seconds=elapsed_seconds)

    def should_stop(self) -> bool:
        """Whether Vizier says this trial should stop now."""
        return self.client.check_trial_early_stopping_state(self.name)

    def complete(self, metrics: dict[str, float] | None = None, *,
                 infeasible_reason: str | None = None) -> dict[str, Any]:
        """Complete the trial: with ``metrics`` as its final measurement, infeasible with a
        reason, or (neither) scored by the study's measurement selection. Idempotent."""
        if self.completed:
            return self.message
        if metrics is None and infeasible_reason is None:
            current = self.client.get_trial(self.name)
            if wire.trial_state(current).is_done:
                self.completed, self.message = True, current
                return current
            if not current.get("measurements"):
                infeasible_reason = "no measurement was reported"
        self.message = self.client.complete_trial(self.name, metrics,
                                                  infeasible_reason=infeasible_reason)
        self.completed = True
        return self.message

    def __enter__(self) -> VizierTrial:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        if self.completed:
            return
        if error is not None:
            reason = "".join(traceback.format_exception_only(kind, error)).strip()
            logger.warning("trial %s raised %s; completing it as infeasible", self.name, reason)
            self.complete(infeasible_reason=reason[:1000])
        else:
            self.complete()


def suggest_trial(
    study_id: str,
    *,
    objective: Any = None,
    hyperparameters: Any = None,
    study_config: dict[str, Any] | None = None,
    project_id: str | None = None,
    region: str | None = None,
    worker_id: str | None = None,
    directory: str | os.PathLike[str] = ".",
    max_trials: int | None = None,
    algorithm: str | None = None,
    early_stopping: Any = None,
    endpoint: str | None = None,
    client: VizierClient | None = None,
    connection: Connection | None = None,
    session: Any = None,
    credentials: Any = None,
    token: str | None = None,
) -> VizierTrial | None:
    """A trial of the study ``study_id`` (created from objective + hyperparameters, or
    ``study_config``, when it does not exist), for a plain training script.

    The same ``worker_id`` gets its unfinished trial back. With ``max_trials``, trials are
    counted study-wide: None comes back once the study has that many (or the service has nothing
    more to suggest).

    Args:
        study_id: The study's display name.
        objective, hyperparameters, study_config, algorithm, early_stopping: See
            :func:`vizier_keras.studies.make_study_spec`.
        project_id, region, endpoint, client, session, credentials, token, directory: Where
            the service is and how to reach it (see :func:`vizier_keras.connect.connect`);
            without a project or endpoint, the embedded service keeps its database in
            ``directory``.
        worker_id: This worker's client id (default: ``<host>-<pid>``).
        connection: A ready :class:`~vizier_keras.connect.Connection` (wins over the above).

    Returns:
        A :class:`VizierTrial`, or None when the study is done.
    """
    if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(
            max_trials, int) or max_trials < 1):
        raise ValidationError("max_trials", max_trials, "must be a positive integer")
    if connection is None:
        reach = ConnectionOptions(endpoint, client, session, credentials, token)
        connection = reach.connect(project_id, region, directory=directory)
    spec = make_study_spec(objective=objective, hyperparameters=hyperparameters,
                           study_config=study_config, algorithm=algorithm,
                           early_stopping=early_stopping,
                           allow_extensions=not connection.client.is_vertex)
    study = open_study(connection.client, connection.parent, study_id, spec)
    worker = worker_id or default_worker_id()
    message = next_trial(connection.client, study, worker, max_trials)
    if message is None:
        return None
    stored_spec = study.get("studySpec", spec)
    if hyperparameters is not None and study_config is None:
        values = convert.values_from_trial(message, hyperparameters)
    else:
        values = typed_values(stored_spec, message)
    return VizierTrial(message["name"], values, connection.client, study,
                       [m["metricId"] for m in stored_spec["metrics"]], message)


def typed_values(spec: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """A trial's values typed by the StudySpec alone (INTEGER -> int, ...)."""
    return studyspec.typed_values(spec, wire.trial_parameters(message))


def next_trial(client: VizierClient, study: dict[str, Any], worker: str,
               max_trials: int | None) -> dict[str, Any] | None:
    """The next trial for ``worker``, or None when the study is done.

    With ``max_trials``, a trial that the service created beyond the study-wide budget (workers
    asked at the same moment) is deleted and None returned: trial ids are assigned in order, so
    every worker agrees on which trials are within the budget.
    """
    if max_trials is not None:
        existing = client.list_trials(study)
        # At the budget, only our own unfinished trial may still come back.
        if len(existing) >= max_trials and not any(
                t.get("clientId") == worker and wire.trial_state(t) in (
                    wire.TrialState.ACTIVE, wire.TrialState.STOPPING) for t in existing):
            return None
    result = client.suggest_trials(study, 1, client_id=worker)
    if not result.trials:
        logger.info("the service has nothing more to suggest (study %s)", result.study_state)
        return None
    trial = result.trials[0]
    if max_trials is not None:
        earlier = [t for t in client.list_trials(study) if int(wire.trial_id(t)) <= int(
            wire.trial_id(trial))]
        if len(earlier) > max_trials:
            logger.info("trial %s is beyond max_trials=%d; deleting it", trial["name"],
                        max_trials)
            client.delete_trial(trial)
            return None
    return trial

