"""CloudOracle: a KerasTuner Oracle whose every trial comes from the Vizier service (one idea, the
oracle's side of KerasTuner's contract).

The service is the coordinator: it suggests trials, counts them study-wide, holds every
worker's results and answers early-stopping checks. This oracle keeps KerasTuner's local view
(trial directories, retries, display) in step with it:

* ``create_trial`` asks Vizier for the worker's next trial (the same worker id gets its unfinished
  trial back); with ``prefetch``, the trial after it is asked for while this one trains, under a
  second client id (``<worker>#next``), so that the suggestion is ready when training ends.
* ``end_trial`` completes the Vizier trial: with the final measurement (the metrics of the best
  epoch) when it succeeded, as infeasible with the reason when it failed for good (raised every
  retry, or its objective went NaN or infinite). KerasTuner's retry rules apply: a trial to be
  retried stays ACTIVE in Vizier and runs again.
* ``get_best_trials`` and ``remaining_trials`` ask the service, so they cover every worker.
* ``max_trials`` counts the study's trials; trial ids are assigned by the service in order, so a
  trial created beyond the budget by workers asking at the same moment is deleted at once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import keras_tuner as kt
from keras_tuner.engine import trial as kt_trial

from vizier_keras import convert, pareto, studyspec, wire
from vizier_keras.client import VizierClient
from vizier_keras.connect import Connection, ConnectionOptions
from vizier_keras.errors import NotFoundError, ValidationError
from vizier_keras.progress import SearchProgress
from vizier_keras.studies import make_study_spec, open_study
from vizier_keras.trials import next_trial

logger = logging.getLogger(__name__)

__all__ = ["ORACLE_ARGS", "CloudOracle", "safe_tag"]

TrialStatus = kt_trial.TrialStatus
# KerasTuner's Oracle arguments that CloudTuner passes on to the oracle.
ORACLE_ARGS = ("allow_new_entries", "tune_new_entries", "seed", "max_retries_per_trial",
               "max_consecutive_failed_trials")


def safe_tag(tag: str) -> str:
    """A worker tag made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", tag)


class CloudOracle(kt.Oracle):
    """A KerasTuner Oracle backed by Vizier (Vertex AI, a self-hosted server, or embedded).

    Args:
        project_id: Google Cloud project; None for the embedded service (or
            ``$VIZIER_ENDPOINT``).
        region: Vertex AI region (default "us-central1" with a project).
        objective: A metric name, a ``keras_tuner.Objective``, or a list (a multi-objective
            study). Taken from ``study_config`` when that is given.
        hyperparameters: A ``keras_tuner.HyperParameters`` (the tuner adds what the model
            declares).
        study_config: A raw Vertex StudySpec (JSON dict), used as given.
        max_trials: Trials in the study, counted over every worker.
        study_id: The study's display name (default: the tuner's project name).
        endpoint, client, session, credentials, token: How to reach the service (see
            :func:`vizier_keras.connect.connect`).
        algorithm: The study's search algorithm (default: the service's, GP-UCB-PE).
        early_stopping: "median", "decay_curve", "convex", a stopping-spec dict, or None.
        measurement_selection: "LAST_MEASUREMENT" or "BEST_MEASUREMENT".
        prefetch: Ask for the next trial while the current one trains.
        constraints: Metric id -> ``("<=", threshold)`` or ``(">=", threshold)``: Vertex AI's
            safety metrics (see :func:`vizier_keras.studies.make_study_spec`).
        progress: Print a line per trial with the study's state (:mod:`vizier_keras.progress`);
            independent of ``search(verbose=...)``, which is Keras' switch.
        **kwargs: ``keras_tuner.Oracle`` arguments (``max_retries_per_trial``,
            ``max_consecutive_failed_trials``, ``seed``, ``tune_new_entries``,
            ``allow_new_entries``).
    """

    def __init__(
        self,
        project_id: str | None = None,
        region: str | None = None,
        objective: Any = None,
        hyperparameters: Any = None,
        study_config: Mapping[str, Any] | None = None,
        max_trials: int | None = None,
        study_id: str | None = None,
        *,
        endpoint: str | None = None,
        client: VizierClient | None = None,
        session: Any = None,
        credentials: Any = None,
        token: str | None = None,
        algorithm: str | None = None,
        early_stopping: Any = None,
        measurement_selection: str | None = None,
        prefetch: bool = True,
        overwrite: bool = False,
        progress: bool = True,
        constraints: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - set(ORACLE_ARGS)
        if unknown:
            raise ValidationError(sorted(unknown)[0], kwargs[sorted(unknown)[0]],
                                  "is not an argument of CloudOracle")
        if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(
                max_trials, int) or max_trials < 1):
            raise ValidationError("max_trials", max_trials, "must be a positive integer")
        if study_config is not None:
            if objective is not None:
                raise ValidationError("objective", objective,
                                      "study_config already holds the objective")
            # Checked now, before anything is sent.
            make_study_spec(study_config=study_config, allow_extensions=True)
            objective = convert.objective_from_spec(study_config)
            if hyperparameters is None:
                hyperparameters = convert.hyperparameters_from_spec(study_config)
        elif objective is not None:
            convert.metric_specs(objective)  # a clear error now, not at the first trial
        if study_id is not None and (not isinstance(study_id, str) or not study_id.strip()
                                     or len(study_id) > 128):
            raise ValidationError("study_id", study_id, "must be a non-empty display name of "
                                  "at most 128 characters")
        super().__init__(objective=objective, max_trials=max_trials,
                         hyperparameters=hyperparameters, **kwargs)
        self.project_id = project_id
        self.region = region
        self.study_config = None if study_config is None else dict(study_config)
        self.study_id = study_id
        self.algorithm = algorithm
        self.early_stopping = early_stopping
        self.measurement_selection = measurement_selection
        self.constraints = None if constraints is None else dict(constraints)
        self.prefetch = prefetch
        self.overwrite = overwrite
        self.connection_options = ConnectionOptions(endpoint, client, session, credentials,
                                                    token)
        self._connection: Connection | None = None
        self.study: dict[str, Any] | None = None
        self.study_spec: dict[str, Any] | None = None
        self.worker_tag = "tuner0"
        self._slots: dict[str, str] = {}  # tuner id -> client id its current trial uses
        self._prefetched: dict[str, tuple[str, concurrent.futures.Future[Any]]] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._vizier_names: dict[str, str] = {}  # KerasTuner trial id -> Vizier trial name
        self._trial_started: dict[str, float] = {}
        self._infeasible: dict[str, str] = {}
        self._warned_new: set[str] = set()
        self.stopped_early: set[str] = set()
        self.suggest_wait_seconds = 0.0  # time create_trial waited for the service
        self._display = SearchProgress(self, enabled=progress)

    @property
    def progress(self) -> SearchProgress:
        """What the search prints (KerasTuner calls it the display)."""
        return self._display

    # ------------------------------------------------------------------ connection and study

    @property
    def connection(self) -> Connection:
        """The service, found on first use (no network before)."""
        if self._connection is None:
            self._connection = self.connection_options.connect(
                self.project_id, self.region, directory=self._project_dir)
            logger.info("tuning on %s", self._connection.describe())
        return self._connection

    @property
    def client(self) -> VizierClient:
        return self.connection.client

    def ensure_study(self) -> dict[str, Any]:
        """Find or create the study (a study with another definition is an error)."""
        if self.study is None:
            spec = make_study_spec(
                objective=None if self.study_config is not None else self.objective,
                hyperparameters=None if self.study_config is not None else self.hyperparameters,
                study_config=self.study_config, algorithm=self.algorithm,
                early_stopping=self.early_stopping,
                measurement_selection=self.measurement_selection,
                constraints=self.constraints, allow_extensions=not self.client.is_vertex)
            self.study = open_study(self.client, self.connection.parent,
                                    self._display_name(), spec, overwrite=self.overwrite)
            self.study_spec = dict(self.study.get("studySpec") or spec)
        return self.study

    @property
    def metric_ids(self) -> list[str]:
        return [m["metricId"] for m in (self.study_spec or {}).get("metrics", [])]

    # ------------------------------------------------------------------ trials

    def _fetch(self, client_id: str) -> dict[str, Any] | None:
        return next_trial(self.client, self.ensure_study(), client_id, self.max_trials)

    def _next_message(self, tuner_id: str) -> tuple[str, dict[str, Any] | None]:
        """(client id, next Trial message) for a tuner: the prefetched one, else asked now."""
        slot, future = self._prefetched.pop(tuner_id, (tuner_id, None))
        if future is not None:
            message = future.result()  # raises what the prefetch raised
            if message is not None:
                return slot, message
        for client_id in (tuner_id, f"{tuner_id}#next"):
            message = self._fetch(client_id)
            if message is not None:
                return client_id, message
        return tuner_id, None

    def _start_prefetch(self, tuner_id: str, current: str) -> None:
        # Not before this worker's first trial has ended: a suggestion with no completed trial
        # is a program of its own for the GP algorithm (compiled once, used once).
        if not self.prefetch or not self.end_order:
            return
        other = f"{tuner_id}#next" if current == tuner_id else tuner_id
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "vizier-prefetch")
        self._prefetched[tuner_id] = (other, self._pool.submit(self._fetch, other))

    @kt.synchronized
    def create_trial(self, tuner_id: str) -> Any:
        if tuner_id in self.ongoing_trials:
            return self.ongoing_trials[tuner_id]
        self.tuner_ids.add(tuner_id)
        if self._retry_queue:
            trial = self.trials[self._retry_queue.pop()]
            trial.status = TrialStatus.RUNNING
            self.ongoing_trials[tuner_id] = trial
            self._trial_started[trial.trial_id] = time.monotonic()
            self.save()
            self._display.on_trial_begin(trial)
            return trial
        self.ensure_study()
        began = time.monotonic()
        slot, message = self._next_message(tuner_id)
        waited = time.monotonic() - began
        self.suggest_wait_seconds += waited
        logger.debug("waited %.2f s for the next trial", waited)
        if message is None:
            self.tuner_ids.discard(tuner_id)
            return kt_trial.Trial(self.get_space(), trial_id=None,
                                  status=TrialStatus.STOPPED)
        trial = self._to_kt_trial(message)
        trial.status = TrialStatus.RUNNING
        self._vizier_names[trial.trial_id] = message["name"]
        self._slots[tuner_id] = slot
        self._trial_started[trial.trial_id] = time.monotonic()
        self._record_values(trial)
        self.ongoing_trials[tuner_id] = trial
        self.trials[trial.trial_id] = trial
        if trial.trial_id not in self.start_order:
            self.start_order.append(trial.trial_id)
        self._save_trial(trial)
        self.save()
        self._display.on_trial_begin(trial)
        self._start_prefetch(tuner_id, slot)
        return trial

    def _to_kt_trial(self, message: Mapping[str, Any]) -> Any:
        hps = self.hyperparameters.copy()
        values = convert.values_from_trial(message, hps)
        hps.values = values
        hps.ensure_active_values()  # parameters the study lacks keep their defaults
        return kt_trial.Trial(hps, trial_id=wire.trial_id(message))

    def vizier_trial_name(self, trial_id: str) -> str:
        if trial_id not in self._vizier_names:
            self._vizier_names[trial_id] = f"{self.ensure_study()['name']}/trials/{trial_id}"
        return self._vizier_names[trial_id]

    def trial_started(self, trial_id: str) -> float | None:
        return self._trial_started.get(trial_id)

    def mark_infeasible(self, trial_id: str, reason: str) -> None:
        """Make the trial's next end INVALID with ``reason`` (a NaN objective, say)."""
        self._infeasible[trial_id] = reason

    def update_space(self, hyperparameters: Any) -> None:
        before = {hp.name for hp in self.hyperparameters.space}
        super().update_space(hyperparameters)
        if self.study is None:
            return
        for hp in self.hyperparameters.space:
            if hp.name not in before and hp.name not in self._warned_new:
                self._warned_new.add(hp.name)
                logger.warning(
                    "hyperparameter %r appeared after study %s was created; a study's search "
                    "space cannot change, so it keeps its default (%r). Declare it before the "
                    "search (the tuner builds the model a few times to find such parameters), "
                    "or start a new study_id.", hp.name, self.study["name"], hp.default)

    @kt.synchronized
    def end_trial(self, trial: Any) -> None:
        old = self.trials[trial.trial_id]
        old.hyperparameters = trial.hyperparameters
        old.status = trial.status
        old.message = trial.message
        trial = old
        self.update_space(trial.hyperparameters)
        reason = self._infeasible.pop(trial.trial_id, None)
        if reason is not None:
            trial.status = TrialStatus.INVALID
            trial.message = reason
        if trial.status == TrialStatus.COMPLETED:
            self.score_trial(trial)
            if trial.score is None or not math.isfinite(trial.score):
                trial.status = TrialStatus.INVALID
                trial.message = trial.message or f"the objective was {trial.score}"
        self._record_values(trial)
        self._run_times[trial.trial_id] += 1
        retried = self._retry(trial)
        if not retried:
            self.end_order.append(trial.trial_id)
            self._complete_in_vizier(trial)
        self._save_trial(trial)
        self.save()
        self._display.on_trial_end(trial)
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial.trial_id:
                self.ongoing_trials.pop(tuner_id)
                break
        if not retried:
            self._check_consecutive_failures()

    def _complete_in_vizier(self, trial: Any) -> None:
        name = self.vizier_trial_name(trial.trial_id)
        current = self.client.get_trial(name)
        if wire.trial_state(current).is_done:
            logger.info("trial %s was already completed in Vizier", name)
            return
        if trial.status == TrialStatus.COMPLETED:
            metrics, step = self._final_metrics(trial)
            if metrics:
                self.client.complete_trial(name, metrics, step_count=step)
                return
            self.client.complete_trial(name, infeasible_reason="no finite metric to report")
            return
        message = (trial.message or "the trial failed").strip().splitlines()
        reason = message[-1] if message else "the trial failed"
        self.client.complete_trial(name, infeasible_reason=reason[:1000])

    def _final_metrics(self, trial: Any) -> tuple[dict[str, float], int | None]:
        """The metrics of the best step (what KerasTuner scored the trial by)."""
        out: dict[str, float] = {}
        best_step = trial.best_step
        for name, history in trial.metrics.metrics.items():
            observations = history.get_history()
            if not observations:
                continue
            at_best = [o for o in observations if o.step == best_step]
            chosen = (at_best or observations)[-1]
            value = float(chosen.mean())
            if math.isfinite(value):
                out[name] = value
        step = None if best_step is None else int(best_step) + 1
        return out, step

    # ------------------------------------------------------------------ study-wide views

    def existing_study(self) -> dict[str, Any] | None:
        """The study if the service has it (checked like :meth:`ensure_study`), else None;
        never creates one."""
        if self.study is None:
            try:
                self.client.lookup_study(self.connection.parent, self._display_name())
            except NotFoundError:
                return None
            self.ensure_study()
        return self.study

    def _display_name(self) -> str:
        return self.study_id or getattr(self, "_project_name", None) or "vizier_keras"

    def get_best_trials(self, num_trials: int = 1) -> list[Any]:
        """The best trials of the study (every worker's), as KerasTuner trials.

        One objective: by its value (ties by trial id). Several: Vizier's Pareto front first
        (``listOptimalTrials``), then the next fronts of the other trials; within a front by
        the first objective, then trial id. Trials that break a constraint (a safety metric's
        threshold) are never among the best. Not KerasTuner's sum of the objectives.
        """
        return [trial for trial, _, _ in self.ranked_best(num_trials)]

    def ranked_best(self, num_trials: int = 1) -> list[tuple[Any, dict[str, float], int]]:
        """:meth:`get_best_trials` with each trial's final metrics and Pareto front (0 is the
        front; a single-objective study's trials are all on front 0)."""
        study = self.existing_study()
        if study is None:
            return [(t, {}, 0) for t in super().get_best_trials(num_trials)]
        spec = self.study_spec or dict(study.get("studySpec") or {})
        scored = []
        for message in self.client.list_trials(study):
            if wire.trial_state(message) is not wire.TrialState.SUCCEEDED:
                continue
            metrics = wire.trial_final_metrics(message)
            score = self._score_of(metrics)
            if score is not None and studyspec.is_safe(spec, metrics):
                scored.append((score, message, metrics))
        objectives = list(studyspec.iter_metric_specs(spec))
        if len(objectives) <= 1:
            scored.sort(key=lambda x: x[0], reverse=self.objective.direction == "max")
            ranked = [(message, metrics, 0) for _, message, metrics in scored]
        else:
            ranked = self._by_fronts(study, objectives, [(m, x) for _, m, x in scored])
        best = []
        for message, metrics, front in ranked[:num_trials]:
            best.append((self._best_trial(message, metrics), metrics, front))
        return best

    def _by_fronts(self, study: Mapping[str, Any], objectives: list[tuple[str, wire.Goal]],
                   candidates: list[tuple[dict[str, Any], dict[str, float]]]
                   ) -> list[tuple[dict[str, Any], dict[str, float], int]]:
        optimal = {wire.trial_id(t) for t in self.client.list_optimal_trials(study)}
        def order(group: list[tuple[dict[str, Any], dict[str, float]]]
                  ) -> list[tuple[dict[str, Any], dict[str, float]]]:
            return sorted(group, key=lambda x: (-pareto.point(x[1], objectives)[0],
                                                int(wire.trial_id(x[0]))))

        first = [c for c in candidates if wire.trial_id(c[0]) in optimal]
        rest = [c for c in candidates if wire.trial_id(c[0]) not in optimal
                and all(m in c[1] for m, _ in objectives)]
        ranked = [(m, x, 0) for m, x in order(first)]
        offset = 1 if first else 0
        points = [pareto.point(x, objectives) for _, x in rest]
        for number, front in enumerate(pareto.pareto_fronts(points)):
            ranked += [(m, x, number + offset) for m, x in order([rest[i] for i in front])]
        return ranked

    def _best_trial(self, message: dict[str, Any], metrics: dict[str, float]) -> Any:
        trial_id = wire.trial_id(message)
        trial = self.trials.get(trial_id)
        if trial is None or trial.status != TrialStatus.COMPLETED:
            trial = self._to_kt_trial(message)
            trial.status = TrialStatus.COMPLETED
            step = wire.measurement_step(message.get("finalMeasurement", {})) or 1
            for name, value in metrics.items():
                trial.metrics.register(name, direction=_direction(self.objective, name))
                trial.metrics.update(name, value, step=step - 1)
            trial.score, trial.best_step = self._score_of(metrics), step - 1
            trial.message = "trained by another worker"
        return trial

    def _score_of(self, metrics: Mapping[str, float]) -> float | None:
        try:
            if not self.objective.has_value(metrics):
                return None
            value = float(self.objective.get_value(metrics))
        except (KeyError, TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    def remaining_trials(self) -> int | None:
        if self.max_trials is None:
            return None
        study = self.existing_study()
        if study is None:
            return self.max_trials - len(self.trials)
        return max(0, self.max_trials - len(self.client.list_trials(study)))

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["vizier"] = {"study": None if self.study is None else self.study["name"],
                           "trial_names": dict(self._vizier_names),
                           "stopped_early": sorted(self.stopped_early)}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        vizier = state.get("vizier") or {}
        self._vizier_names.update(vizier.get("trial_names", {}))
        self.stopped_early.update(vizier.get("stopped_early", []))

    def reload(self) -> None:
        super().reload()
        # Vizier holds unfinished trials and hands each back to its worker's client id; the
        # local retry queue would run them a second time.
        self._retry_queue: list[str] = []

    def _get_oracle_fname(self) -> str:
        # One file per worker: workers of a job may share the project directory.
        return os.path.join(self._project_dir, f"oracle_{safe_tag(self.worker_tag)}.json")

    def stop_prefetching(self) -> None:
        """Wait for a suggestion being fetched ahead, and stop fetching ahead. A trial fetched
        ahead stays assigned to this worker: the next search (or a restart) runs it."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._prefetched.clear()


def _direction(objective: Any, name: str) -> str | None:
    objectives = getattr(objective, "objectives", [objective])
    return next((o.direction for o in objectives if o.name == name), None)
