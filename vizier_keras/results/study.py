"""One study's results as data: a row per trial, a row per measured metric, the best trials.

Light: the standard library, plus pandas for the DataFrames (the ``[results]`` extra). Rows are
plain dicts, so the CLI prints tables, CSV and JSON without pandas.

Trial states are Vertex's (``SUCCEEDED``, ``INFEASIBLE``, ``ACTIVE``, ``STOPPING``,
``REQUESTED``) plus ``STOPPED_EARLY``: a trial completed after Vizier's early-stopping check told
it to stop. The embedded service records that; Vertex AI does not, so for its studies (when the
study has an automated stopping rule) a completed trial with fewer steps than the study's
longest completed trial is taken as stopped early, and its row says ``stopped_early_inferred``.

Example::

    results = load_study("my-study", database="tuning/vizier.db")
    df = results.trials_dataframe()
    best = results.best_trials(3)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vizier_keras import pareto, studyspec, wire
from vizier_keras.errors import MissingExtraError
from vizier_keras.results.sources import Source, open_source
from vizier_keras.wire import Json

__all__ = ["STOPPED_EARLY", "StudyResults", "load_study"]


STOPPED_EARLY = "STOPPED_EARLY"
_FINISHED = ("SUCCEEDED", STOPPED_EARLY)


@dataclass
class StudyResults:
    """A study and its trials, read once (call :meth:`refresh` to read again).

    Attributes:
        study: The Study message.
        trials: Its Trial messages, by id.
        source: Where they were read from.
    """

    study: Json
    trials: list[Json] = field(default_factory=list)
    source: Source | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.study["name"])

    @property
    def display_name(self) -> str:
        return str(self.study.get("displayName", ""))

    @property
    def spec(self) -> Json:
        return dict(self.study.get("studySpec", {}))

    @property
    def metrics(self) -> list[tuple[str, wire.Goal]]:
        """The objective metrics (id, goal), in the spec's order."""
        return list(studyspec.iter_metric_specs(self.spec))

    @property
    def parameter_ids(self) -> list[str]:
        """Every parameter id, parents before their conditional children."""
        ids: list[str] = []
        for node in studyspec.parameter_nodes(self.spec):
            if node.id not in ids:
                ids.append(node.id)
        return ids

    @property
    def stops_inferred(self) -> bool:
        """Whether "stopped early" is inferred from step counts (see the module docstring)."""
        recorded = self.source.records_stops if self.source is not None else True
        return not recorded and studyspec.stopping_rule(self.spec) is not None

    def refresh(self) -> StudyResults:
        """Read the trials again from the source."""
        if self.source is None:
            raise ValueError("these results have no source to read again")
        self.trials = sorted(self.source.list_trials(self.study), key=_id_key)
        return self

    def _longest_finished(self) -> int:
        return max((_steps(t) for t in self.trials if t.get("state") == "SUCCEEDED"),
                   default=0)

    # ------------------------------------------------------------------ rows

    def records(self) -> list[Json]:
        """One dict per trial: ``trial``, ``state``, each metric of the final measurement,
        ``params.<id>`` (only the active parameters), ``steps``, ``elapsed`` (seconds),
        ``start``, ``end`` (UTC datetimes or None), ``worker`` (the client id),
        ``infeasible_reason``, ``stop_reason``, ``stopped_early_inferred``, and in a study with
        constraints (safety metrics) ``safe``: whether the final values meet them."""
        spec = self.spec
        metric_ids = [m for m, _ in self.metrics]
        reported = {m for t in self.trials for m in wire.trial_final_metrics(t)}
        metric_ids += sorted(reported - set(metric_ids))
        longest = self._longest_finished()
        inferred = self.stops_inferred
        constrained = bool(studyspec.safety_metrics(spec))
        now = dt.datetime.now(dt.timezone.utc)
        rows = []
        for trial in self.trials:
            state = str(trial.get("state", "STATE_UNSPECIFIED"))
            extension = trial.get("vizierKeras") or {}
            steps = _steps(trial)
            guessed = False
            if state == "SUCCEEDED":
                if extension.get("stoppedEarly"):
                    state = STOPPED_EARLY
                elif inferred and longest and steps < longest:
                    state, guessed = STOPPED_EARLY, True
            final = wire.trial_final_metrics(trial)
            row: Json = {"trial": int(wire.trial_id(trial)), "state": state}
            for metric in metric_ids:
                row[metric] = final.get(metric, math.nan)
            values = studyspec.typed_values(spec, wire.trial_parameters(trial))
            for pid in self.parameter_ids:
                row[f"params.{pid}"] = values.get(pid)
            start = _time(trial.get("startTime"))
            end = _time(trial.get("endTime"))
            row["steps"] = steps
            row["elapsed"] = ((end or now) - start).total_seconds() if start else math.nan
            row["start"] = start
            row["end"] = end
            row["worker"] = trial.get("clientId", "")
            row["infeasible_reason"] = trial.get("infeasibleReason", "")
            row["stop_reason"] = extension.get("stopReason", "")
            row["stopped_early_inferred"] = guessed
            if constrained:
                row["safe"] = studyspec.is_safe(spec, final) if final else None
            rows.append(row)
        return rows

    def measurement_records(self) -> list[Json]:
        """One dict per measured metric: ``trial``, ``step``, ``elapsed``, ``metric``,
        ``value`` (intermediate measurements, in the order they were reported)."""
        rows = []
        for trial in self.trials:
            number = int(wire.trial_id(trial))
            for i, m in enumerate(trial.get("measurements", ()) or ()):
                step = wire.measurement_step(m) or i + 1
                elapsed = wire.measurement_elapsed(m)
                for metric, value in wire.measurement_metrics(m).items():
                    rows.append({"trial": number, "step": step, "elapsed": elapsed,
                                 "metric": metric, "value": value})
        return rows

    def trials_dataframe(self) -> Any:
        """:meth:`records` as a pandas DataFrame (a row per trial)."""
        pd = _pandas()
        rows = self.records()
        columns = list(rows[0]) if rows else ["trial", "state"]
        return pd.DataFrame(rows, columns=columns)

    def measurements_dataframe(self) -> Any:
        """:meth:`measurement_records` as a long pandas DataFrame."""
        pd = _pandas()
        return pd.DataFrame(self.measurement_records(),
                            columns=["trial", "step", "elapsed", "metric", "value"])

    # ------------------------------------------------------------------ best

    def best_trials(self, n: int = 1) -> list[Json]:
        """The ``n`` best finished trials as :meth:`records` rows.

        One objective: by its value (ties by trial id). Several: the Pareto front first (no
        other trial is at least as good in every objective and better in one), then the next
        fronts; within a front by the first objective, then trial id. Each row has ``front``
        (0 for the Pareto front). A trial that breaks a constraint is never among them.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        rows = [r for r in self.records() if r["state"] in _FINISHED and r.get("safe", True)
                is not False]
        metrics = self.metrics
        rows = [r for r in rows if all(_finite(r.get(m)) for m, _ in metrics)]
        points = [pareto.point(r, metrics) for r in rows]
        out: list[Json] = []
        for rank, front in enumerate(pareto.pareto_fronts(points)):
            front.sort(key=lambda i: (-points[i][0], rows[i]["trial"]))
            for i in front:
                out.append({**rows[i], "front": rank})
        return out[:n]


def load_study(study: str, *, source: Source | None = None,
               database: str | None = None, endpoint: str | None = None,
               token: str | None = None, project: str | None = None,
               region: str | None = None, client: Any = None) -> StudyResults:
    """The results of ``study`` (display name, id or resource name) from a database file, an
    endpoint (with its token), Vertex AI (``project``, ``region``), or a :class:`Source`.

    Raises:
        NotFoundError: No such study there.
        ValidationError: No source named, or a bad database file.
    """
    if source is None:
        source = open_source(database=database, endpoint=endpoint, token=token,
                             project=project, region=region, client=client)
    return StudyResults(source.find_study(study), source=source).refresh()


def _id_key(trial: Mapping[str, Any]) -> int:
    return int(wire.trial_id(trial))


def _steps(trial: Mapping[str, Any]) -> int:
    measurements = trial.get("measurements", ()) or ()
    if not measurements:
        final = trial.get("finalMeasurement")
        return wire.measurement_step(final) if final else 0
    return wire.measurement_step(measurements[-1]) or len(measurements)


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    moment = wire.parse_timestamp(value, "time")
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingExtraError("results as DataFrames", "results", ["pandas"]) from None
    return pandas
