"""A Vizier study mirrored into an Optuna study, so that Optuna's plots and optuna-dashboard
show it. The mirror is read-only in spirit: nothing written to it reaches Vizier, and
:class:`Mirror` only adds what Vizier has.

How Vizier's trials map:

========================== ============================================================
Vizier                     Optuna
========================== ============================================================
SUCCEEDED, STOPPED_EARLY   COMPLETE, with the objective values of the final measurement
                           (a stopped trial is a finished result in Vizier too); user
                           attribute ``vizier_state`` says STOPPED_EARLY
INFEASIBLE                 FAIL (``infeasible_reason`` as a user attribute)
unsafe (constraint broken) FAIL, user attribute ``unsafe`` (not a result to rank)
ACTIVE, STOPPING           RUNNING
REQUESTED                  WAITING
measurements               intermediate values of the first objective, by step
DOUBLE / INTEGER           FloatDistribution / IntDistribution (log where the scale is)
DISCRETE                   FloatDistribution over its range
CATEGORICAL                CategoricalDistribution
========================== ============================================================

Each Optuna trial carries ``vizier_trial`` (the Vizier id) and ``worker`` as user attributes.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from typing import Any

from vizier_keras import studyspec, wire
from vizier_keras.errors import MissingExtraError
from vizier_keras.results.study import STOPPED_EARLY, StudyResults

__all__ = ["Mirror", "distributions", "optuna_study"]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtraError("plots and the dashboard", "plots", ["optuna"]) from None
    return optuna


def distributions(spec: dict[str, Any]) -> dict[str, Any]:
    """Parameter id -> the Optuna distribution of each parameter of a StudySpec."""
    optuna = _optuna()
    out: dict[str, Any] = {}
    for node in studyspec.parameter_nodes(spec):
        if node.id in out:
            continue
        log = node.scale == "UNIT_LOG_SCALE"
        if node.type == studyspec.CATEGORICAL:
            values = node.spec["categoricalValueSpec"]["values"]
            out[node.id] = optuna.distributions.CategoricalDistribution(list(values))
        elif node.type == studyspec.DISCRETE:
            values = sorted(float(v) for v in node.spec["discreteValueSpec"]["values"])
            out[node.id] = (optuna.distributions.FloatDistribution(values[0], values[-1])
                            if values[0] < values[-1]
                            else optuna.distributions.CategoricalDistribution(values))
        else:
            low, high = studyspec.bounds(node.spec)
            if node.type == studyspec.INTEGER:
                out[node.id] = optuna.distributions.IntDistribution(
                    int(low), int(high), log=log and low > 0)
            else:
                out[node.id] = optuna.distributions.FloatDistribution(
                    float(low), float(high), log=log and low > 0)
    return out


class Mirror:
    """An Optuna study that follows a Vizier study: :meth:`update` adds the trials Vizier has
    that the mirror lacks and brings running ones up to date (finished Optuna trials cannot
    change, and finished Vizier trials do not).

    Args:
        results: The Vizier study's results (the mirror reads ``results.trials``).
        storage: The Optuna storage to write to (default: a new in-memory one).
        name: The Optuna study's name (default: the display name); unique in ``storage``.
    """

    def __init__(self, results: StudyResults, storage: Any = None,
                 name: str | None = None) -> None:
        optuna = _optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per mirrored study
        self.results = results
        self.storage = storage if storage is not None else optuna.storages.InMemoryStorage()
        goals = [goal for _, goal in results.metrics]
        directions = ["maximize" if g is wire.Goal.MAXIMIZE else "minimize" for g in goals]
        name = name or results.display_name or results.name
        self.study = optuna.create_study(storage=self.storage, study_name=name,
                                         directions=directions)
        with warnings.catch_warnings():  # Optuna marks metric names experimental
            warnings.filterwarnings("ignore", message=r".*is experimental")
            self.study.set_metric_names([m for m, _ in results.metrics])
        self.study.set_user_attr("vizier_study", results.name)
        self._study_id = self.storage.get_study_id_from_name(name)
        self._distributions = distributions(results.spec)
        self._trial_ids: dict[int, int] = {}  # Vizier id -> Optuna trial_id
        self._running: set[int] = set()
        self.update()

    def update(self) -> int:
        """Bring the mirror up to ``results.trials``; returns how many trials changed."""
        optuna = _optuna()
        changed = 0
        rows = {row["trial"]: row for row in self.results.records()}
        for trial in self.results.trials:
            number = int(wire.trial_id(trial))
            row = rows[number]
            if number not in self._trial_ids:
                frozen = self._frozen(trial, row)
                self._trial_ids[number] = self.storage.create_new_trial(
                    self._study_id, template_trial=frozen)
                if frozen.state in (optuna.trial.TrialState.RUNNING,
                                    optuna.trial.TrialState.WAITING):
                    self._running.add(number)
                changed += 1
            elif number in self._running:
                changed += self._advance(number, trial, row)
        return changed

    def _advance(self, number: int, trial: dict[str, Any], row: dict[str, Any]) -> int:
        optuna = _optuna()
        trial_id = self._trial_ids[number]
        current = self.storage.get_trial(trial_id)
        state, values = self._state_values(row)
        intermediate = self._intermediate(trial)
        fresh = {k: v for k, v in intermediate.items() if current.intermediate_values.get(k) != v}
        if current.state == optuna.trial.TrialState.WAITING and (
                fresh or state != optuna.trial.TrialState.WAITING):
            self.storage.set_trial_state_values(trial_id, optuna.trial.TrialState.RUNNING)
        for step, value in fresh.items():
            self.storage.set_trial_intermediate_value(trial_id, step, value)
        for key, value in self._user_attrs(row).items():
            if current.user_attrs.get(key) != value:
                self.storage.set_trial_user_attr(trial_id, key, value)
        if state.is_finished():
            self.storage.set_trial_state_values(trial_id, state, values)
            self._running.discard(number)
            return 1
        return int(bool(fresh))

    def _state_values(self, row: dict[str, Any]) -> tuple[Any, list[float] | None]:
        optuna = _optuna()
        states = optuna.trial.TrialState
        if row["state"] in ("SUCCEEDED", STOPPED_EARLY) and row.get("safe") is not False:
            values = [row.get(m, math.nan) for m, _ in self.results.metrics]
            if all(isinstance(v, float) and math.isfinite(v) for v in values):
                return states.COMPLETE, values
            return states.FAIL, None
        if row["state"] in ("INFEASIBLE", "SUCCEEDED", STOPPED_EARLY):  # or unsafe
            return states.FAIL, None
        if row["state"] == "REQUESTED":
            return states.WAITING, None
        return states.RUNNING, None

    def _intermediate(self, trial: dict[str, Any]) -> dict[int, float]:
        metric = self.results.metrics[0][0]
        out: dict[int, float] = {}
        for i, m in enumerate(trial.get("measurements", ()) or ()):
            value = wire.measurement_metrics(m).get(metric)
            if value is not None and math.isfinite(value):
                out[wire.measurement_step(m) or i + 1] = value
        return out

    @staticmethod
    def _user_attrs(row: dict[str, Any]) -> dict[str, Any]:
        attrs = {"vizier_trial": row["trial"], "vizier_state": row["state"],
                 "worker": row["worker"]}
        for key in ("infeasible_reason", "stop_reason"):
            if row.get(key):
                attrs[key] = row[key]
        if row.get("safe") is False:
            attrs["unsafe"] = True
        if row.get("stopped_early_inferred"):
            attrs["stopped_early_inferred"] = True
        return attrs

    def _frozen(self, trial: dict[str, Any], row: dict[str, Any]) -> Any:
        optuna = _optuna()
        state, values = self._state_values(row)
        params, dists = {}, {}
        for key, value in row.items():
            if not key.startswith("params.") or value is None:
                continue
            pid = key[len("params."):]
            dist = self._distributions.get(pid)
            if dist is None:
                continue
            if isinstance(dist, optuna.distributions.CategoricalDistribution) and (
                    value not in dist.choices):
                continue
            if not isinstance(dist, optuna.distributions.CategoricalDistribution) and not (
                    dist.low <= value <= dist.high):
                continue
            params[pid], dists[pid] = value, dist
        start = row["start"] or dt.datetime.now(dt.timezone.utc)
        finished = state.is_finished()
        complete = (row["end"] or start) if finished else None
        return optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=state, value=None, values=values,
            datetime_start=_naive(start), datetime_complete=_naive(complete),
            params=params, distributions=dists, user_attrs=self._user_attrs(row),
            system_attrs={}, intermediate_values=self._intermediate(trial))


def optuna_study(results: StudyResults) -> Any:
    """An in-memory Optuna study holding ``results`` (for Optuna's plots)."""
    return Mirror(results).study


def _naive(moment: dt.datetime | None) -> dt.datetime | None:
    """Local naive time, as Optuna keeps its datetimes."""
    return None if moment is None else moment.astimezone().replace(tzinfo=None)
