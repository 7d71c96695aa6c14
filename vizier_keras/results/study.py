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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vizier_keras import studyspec, wire
from vizier_keras.errors import MissingExtraError
from vizier_keras.results.sources import Source, open_source

__all__ = ["STOPPED_EARLY", "StudyResults", "load_study", "pareto_fronts"]

Json = dict[str, Any]

STOPPED_EARLY = "STOPPED_EARLY"
_STOPPING_RULES = ("medianAutomatedStoppingSpec", "decayCurveStoppingSpec",
                   "convexAutomatedStoppingSpec")
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
        return not recorded and any(rule in self.spec for rule in _STOPPING_RULES)

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
        ``infeasible_reason``, ``stop_reason`` and ``stopped_early_inferred``."""
        spec = self.spec
        metric_ids = [m for m, _ in self.metrics]
        reported = {m for t in self.trials for m in wire.trial_final_metrics(t)}
        metric_ids += sorted(reported - set(metric_ids))
        longest = self._longest_finished()
        inferred = self.stops_inferred
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
        (0 for the Pareto front).
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        rows = [r for r in self.records() if r["state"] in _FINISHED]
        metrics = self.metrics
        rows = [r for r in rows if all(_finite(r.get(m)) for m, _ in metrics)]
        signs = [1.0 if goal is wire.Goal.MAXIMIZE else -1.0 for _, goal in metrics]
        points = [[s * r[m] for (m, _), s in zip(metrics, signs, strict=True)] for r in rows]
        out: list[Json] = []
        for rank, front in enumerate(pareto_fronts(points)):
            front.sort(key=lambda i: (-points[i][0], rows[i]["trial"]))
            for i in front:
                out.append({**rows[i], "front": rank})
        return out[:n]


def pareto_fronts(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``points`` (higher is better in every coordinate) in non-dominated fronts:
    the first front holds the points no other point dominates, the next those dominated only
    by the first, and so on (Deb's fast non-dominated sort, O(m n^2); one coordinate is a
    sort, and each front is one value's ties)."""
    n = len(points)
    if n and len(points[0]) == 1:
        fronts: list[list[int]] = []
        for i in sorted(range(n), key=lambda i: -points[i][0]):
            if fronts and points[fronts[-1][0]][0] == points[i][0]:
                fronts[-1].append(i)
            else:
                fronts.append([i])
        return fronts
    beaten_by = [0] * n
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(points[i], points[j]):
                beats[i].append(j)
                beaten_by[j] += 1
            elif _dominates(points[j], points[i]):
                beats[j].append(i)
                beaten_by[i] += 1
    fronts = []
    current = [i for i in range(n) if beaten_by[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True))


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
