"""Automated early stopping: the three rules of a Vertex AI StudySpec, each a pure function.

Open Source Vizier answers every early-stopping check with a random policy that ignores the
measurements. These rules read them. Each works on the study's first objective metric (the first
without safetyConfig), in "higher is better" form (values of a MINIMIZE metric are negated),
against the x axis of the measurements: ``stepCount``, or elapsed seconds when
``useElapsedDuration`` is set. Every rule is deterministic. A trial without measurements, or a
study without enough completed trials, is never stopped.

Median rule (``medianAutomatedStoppingSpec``)
    Let ``x`` be the last x of the trial under check. For each SUCCEEDED trial with a measurement
    at or before ``x``, its *performance* is the running average of its objective values over
    those measurements. The trial is stopped when its best value so far is strictly worse than
    the median of those performances. At least :data:`MIN_COMPLETED_TRIALS` completed trials
    must have a measurement at or before ``x``.

Decay-curve rule (``decayCurveStoppingSpec``)
    Predicts the trial's final objective from its value at ``x``: across the completed trials,
    their final objective is regressed linearly on their value at ``x`` (the last measurement at
    or before ``x``). ``mu`` is the prediction for the trial's best value so far and ``sigma`` the
    standard error of that prediction (floored at 5% of the spread of the final values, so that a
    few nearly collinear curves do not make the rule certain). The trial is stopped when the
    probability of beating the best completed final objective, ``1 - Phi((best - mu) / sigma)``,
    is below :data:`DECAY_STOP_PROBABILITY`. Needs :data:`MIN_COMPLETED_TRIALS` completed trials
    with a measurement at or before ``x``.

Convex rule (``convexAutomatedStoppingSpec``)
    ``max_x`` is ``maxStepCount`` (or the largest last x of the completed trials), ``min_x`` is
    ``minStepCount`` (default ``max_x / 10``), ``min_count`` is ``minMeasurementCount`` (default
    5). The rule acts only when at least ``min_count + 1`` trials have completed, the trial has
    at least ``min_count`` measurements and its last x exceeds ``min_x``. Training curves are
    taken to be concave in "higher is better" form (diminishing returns), so extending the slope
    of the last two measurements to ``max_x`` overestimates the final value. The trial is
    stopped when that overestimate (never less than its best value so far) is worse than the
    best final objective of the completed trials. A flat curve gives no prediction and is not
    stopped. ``learningRateParameterName`` and ``updateAllStoppedTrials`` are accepted and not
    used; no predicted measurement is added to a stopped trial.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vizier_keras import studyspec, wire

__all__ = [
    "DECAY_STOP_PROBABILITY",
    "MIN_COMPLETED_TRIALS",
    "Curve",
    "Decision",
    "decide",
    "convex_rule",
    "decay_curve_rule",
    "median_rule",
]

MIN_COMPLETED_TRIALS = 3
DECAY_STOP_PROBABILITY = 0.05


@dataclass(frozen=True)
class Curve:
    """A trial's objective curve in "higher is better" form, sorted by x.

    Attributes:
        xs: Steps (or elapsed seconds), ascending.
        ys: Objective values at those xs, negated for a MINIMIZE metric.
        final: The final objective (completed trials), same orientation; None otherwise.
    """

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    final: float | None = None

    def best(self, upto: float = math.inf) -> float | None:
        values = [y for x, y in zip(self.xs, self.ys, strict=True) if x <= upto]
        return max(values) if values else None

    def value_at(self, x: float) -> float | None:
        """The value of the last measurement at or before ``x``."""
        value = None
        for xi, yi in zip(self.xs, self.ys, strict=True):
            if xi > x:
                break
            value = yi
        return value

    def running_average(self, x: float) -> float | None:
        values = [y for xi, y in zip(self.xs, self.ys, strict=True) if xi <= x]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Decision:
    should_stop: bool
    reason: str


def _keep(reason: str) -> Decision:
    return Decision(False, reason)


def median_rule(trial: Curve, completed: Sequence[Curve]) -> Decision:
    if not trial.xs:
        return _keep("no measurement yet")
    x = trial.xs[-1]
    performances = [p for c in completed if (p := c.running_average(x)) is not None]
    if len(performances) < MIN_COMPLETED_TRIALS:
        return _keep(f"{len(performances)} completed trials reach x={x:g}; "
                     f"{MIN_COMPLETED_TRIALS} needed")
    median = statistics.median(performances)
    best = trial.best()
    assert best is not None
    if best < median:
        return Decision(True, f"best value {best:g} is worse than the median {median:g} of "
                              f"completed trials' running averages at x={x:g}")
    return _keep(f"best value {best:g} is not worse than the median {median:g}")


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def decay_curve_rule(trial: Curve, completed: Sequence[Curve]) -> Decision:
    if not trial.xs:
        return _keep("no measurement yet")
    x = trial.xs[-1]
    pairs = [(v, c.final) for c in completed
             if c.final is not None and (v := c.value_at(x)) is not None]
    if len(pairs) < MIN_COMPLETED_TRIALS:
        return _keep(f"{len(pairs)} completed trials reach x={x:g}; "
                     f"{MIN_COMPLETED_TRIALS} needed")
    vs = [p[0] for p in pairs]
    fs = [p[1] for p in pairs]
    mean_v, mean_f = sum(vs) / len(vs), sum(fs) / len(fs)
    var_v = sum((v - mean_v) ** 2 for v in vs)
    slope = 0.0 if var_v == 0 else sum(
        (v - mean_v) * (f - mean_f) for v, f in pairs) / var_v
    intercept = mean_f - slope * mean_v
    residuals = [f - (intercept + slope * v) for v, f in pairs]
    dof = max(len(pairs) - 2, 1)
    spread = max(fs) - min(fs)
    s = math.sqrt(sum(r * r for r in residuals) / dof)
    current = trial.best()
    assert current is not None
    mu = intercept + slope * current
    # The standard error of a new prediction from the regression, floored at 5% of the spread
    # of the final values, so that a few nearly collinear curves do not make the rule certain.
    leverage = 1 + 1 / len(pairs) + ((current - mean_v) ** 2 / var_v if var_v else 0.0)
    sigma = max(s * math.sqrt(leverage), 0.05 * spread, 1e-12)
    best_final = max(fs)
    p_better = 1.0 - _normal_cdf((best_final - mu) / sigma)
    if p_better < DECAY_STOP_PROBABILITY:
        return Decision(True, f"predicted final {mu:g} (sigma {sigma:g}) beats the best "
                              f"{best_final:g} with probability {p_better:.3g}")
    return _keep(f"predicted final {mu:g} beats the best {best_final:g} with probability "
                 f"{p_better:.3g}")


def convex_rule(trial: Curve, completed: Sequence[Curve], spec: Mapping[str, Any],
                use_elapsed: bool) -> Decision:
    finals = [c.final for c in completed if c.final is not None]
    min_count = wire.parse_int64(spec.get("minMeasurementCount", 5))
    if len(finals) < min_count + 1:
        return _keep(f"{len(finals)} completed trials; {min_count + 1} needed")
    if len(trial.xs) < max(min_count, 2):
        return _keep(f"{len(trial.xs)} measurements; {max(min_count, 2)} needed")
    if "maxStepCount" in spec and not use_elapsed:
        max_x = float(wire.parse_int64(spec["maxStepCount"]))
    else:
        max_x = max((c.xs[-1] for c in completed if c.xs), default=0.0)
    min_x = float(wire.parse_int64(spec["minStepCount"])) if (
        "minStepCount" in spec and not use_elapsed) else max_x / 10
    x_last = trial.xs[-1]
    if x_last <= min_x:
        return _keep(f"last x {x_last:g} is not past min {min_x:g}")
    x_prev, y_prev = trial.xs[-2], trial.ys[-2]
    y_last = trial.ys[-1]
    if x_last == x_prev or y_last == y_prev:
        return _keep("the curve is flat; no prediction")
    slope = (y_last - y_prev) / (x_last - x_prev)
    best = trial.best()
    assert best is not None
    estimate = max(best, y_last + slope * max(max_x - x_last, 0.0))
    best_final = max(finals)
    if estimate < best_final:
        return Decision(True, f"optimistic estimate {estimate:g} at x={max_x:g} is worse than "
                              f"the best final {best_final:g}")
    return _keep(f"optimistic estimate {estimate:g} is not worse than {best_final:g}")


def curve_of(trial: Mapping[str, Any], metric_id: str, maximize: bool,
             use_elapsed: bool) -> Curve:
    """The objective curve of a Trial message (measurements, and the final measurement)."""
    sign = 1.0 if maximize else -1.0
    points: dict[float, float] = {}
    for m in trial.get("measurements", ()) or ():
        value = wire.measurement_metrics(m).get(metric_id)
        if value is None or not math.isfinite(value):
            continue
        x = wire.measurement_elapsed(m) if use_elapsed else float(wire.measurement_step(m))
        points[x] = sign * value
    final = wire.trial_final_metrics(trial).get(metric_id)
    xs = tuple(sorted(points))
    return Curve(xs, tuple(points[x] for x in xs),
                 None if final is None or not math.isfinite(final) else sign * final)


def decide(spec: Mapping[str, Any], trial: Mapping[str, Any],
           completed: Sequence[Mapping[str, Any]]) -> Decision:
    """Whether the study's automated stopping spec stops ``trial`` now.

    Args:
        spec: The Vertex StudySpec.
        trial: The Trial under check (its measurements).
        completed: The study's SUCCEEDED trials.
    """
    rule = studyspec.stopping_rule(spec)
    if rule is None:
        return _keep("the study has no automated stopping spec")
    options = spec[rule] or {}
    use_elapsed = bool(options.get("useElapsedDuration", False))
    metric = studyspec.first_objective(spec)
    maximize = metric["goal"] == wire.Goal.MAXIMIZE.value
    metric_id = metric["metricId"]
    mine = curve_of(trial, metric_id, maximize, use_elapsed)
    others = [curve_of(t, metric_id, maximize, use_elapsed) for t in completed]
    if rule == "medianAutomatedStoppingSpec":
        return median_rule(mine, others)
    if rule == "decayCurveStoppingSpec":
        return decay_curve_rule(mine, others)
    return convex_rule(mine, others, options, use_elapsed)
