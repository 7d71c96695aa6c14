"""The early-stopping rules on crafted curves: a clearly bad curve is stopped, the best curve is
never stopped, the minimum counts hold, and the x axis can be elapsed time."""

from __future__ import annotations

import pytest

from vizier_keras.server import stopping
from vizier_keras.server.stopping import Curve


def curve(values, final=None, xs=None):
    xs = tuple(xs or range(1, len(values) + 1))
    return Curve(tuple(float(x) for x in xs), tuple(float(v) for v in values),
                 None if final is None else float(final))


# Completed learning curves (higher is better), rising with diminishing returns.
COMPLETED = [
    curve([0.50, 0.62, 0.70, 0.74, 0.76, 0.77], final=0.77),
    curve([0.55, 0.66, 0.73, 0.77, 0.79, 0.80], final=0.80),
    curve([0.45, 0.58, 0.66, 0.70, 0.72, 0.73], final=0.73),
    curve([0.52, 0.64, 0.71, 0.75, 0.78, 0.79], final=0.79),
]
BAD = curve([0.20, 0.25, 0.28])
BEST = curve([0.60, 0.72, 0.80])


@pytest.mark.parametrize("rule", [stopping.median_rule, stopping.decay_curve_rule])
def test_a_clearly_bad_curve_is_stopped_and_the_best_never(rule):
    assert rule(BAD, COMPLETED).should_stop
    for n in range(1, 4):
        prefix = Curve(BEST.xs[:n], BEST.ys[:n])
        assert not rule(prefix, COMPLETED).should_stop, n


@pytest.mark.parametrize("rule", [stopping.median_rule, stopping.decay_curve_rule])
def test_too_few_completed_trials_never_stop(rule):
    decision = rule(BAD, COMPLETED[:2])
    assert not decision.should_stop and "needed" in decision.reason
    assert not rule(Curve((), ()), COMPLETED).should_stop


def test_median_rule_is_the_documented_comparison():
    # At x=2 the running averages are 0.56, 0.605, 0.515, 0.58: median 0.57.
    assert stopping.median_rule(curve([0.40, 0.565]), COMPLETED).should_stop
    assert not stopping.median_rule(curve([0.40, 0.575]), COMPLETED).should_stop


def test_median_rule_is_deterministic():
    decisions = {stopping.median_rule(curve([0.3, 0.5]), COMPLETED) for _ in range(20)}
    assert len(decisions) == 1


def test_decay_rule_keeps_a_curve_that_may_still_win():
    # Near the best completed curve at step 3 (0.72 against 0.73): it may still win.
    assert not stopping.decay_curve_rule(curve([0.5, 0.63, 0.72]), COMPLETED).should_stop
    # Far below all of them (0.60 against 0.66..0.73): it will not.
    assert stopping.decay_curve_rule(curve([0.5, 0.58, 0.60]), COMPLETED).should_stop


CONVEX = {"minMeasurementCount": "2", "maxStepCount": "6", "minStepCount": "1"}


def test_convex_rule_stops_a_curve_whose_optimistic_extension_loses():
    decision = stopping.convex_rule(curve([0.30, 0.31, 0.32]), COMPLETED, CONVEX, False)
    assert decision.should_stop, decision.reason
    assert not stopping.convex_rule(BEST, COMPLETED, CONVEX, False).should_stop


def test_convex_rule_gates_and_flat_curves():
    flat = curve([0.3, 0.3, 0.3])
    assert "flat" in stopping.convex_rule(flat, COMPLETED, CONVEX, False).reason
    early = stopping.convex_rule(curve([0.1, 0.11]), COMPLETED,
                                 {**CONVEX, "minStepCount": "2"}, False)
    assert not early.should_stop and "min" in early.reason
    few = stopping.convex_rule(curve([0.1, 0.11, 0.12]), COMPLETED[:2], CONVEX, False)
    assert not few.should_stop
    default_count = stopping.convex_rule(curve([0.1, 0.11, 0.12]), COMPLETED, {}, False)
    assert not default_count.should_stop and "needed" in default_count.reason


def _trial(values, *, final=None, elapsed=None, minimize=False):
    sign = -1 if minimize else 1
    measurements = []
    for i, v in enumerate(values):
        m = {"stepCount": str(i + 1), "metrics": [{"metricId": "m", "value": sign * v}]}
        if elapsed is not None:
            m["elapsedDuration"] = f"{elapsed[i]}s"
        measurements.append(m)
    trial = {"measurements": measurements}
    if final is not None:
        trial["finalMeasurement"] = {"metrics": [{"metricId": "m", "value": sign * final}]}
    return trial


@pytest.mark.parametrize("minimize", [False, True])
def test_decide_reads_trials_in_either_direction(minimize):
    goal = "MINIMIZE" if minimize else "MAXIMIZE"
    spec = {"metrics": [{"metricId": "m", "goal": goal}], "medianAutomatedStoppingSpec": {}}
    done = [_trial(c.ys, final=c.final, minimize=minimize) for c in COMPLETED]
    assert stopping.decide(spec, _trial(BAD.ys, minimize=minimize), done).should_stop
    assert not stopping.decide(spec, _trial(BEST.ys, minimize=minimize), done).should_stop


def test_decide_without_a_stopping_spec_never_stops():
    spec = {"metrics": [{"metricId": "m", "goal": "MAXIMIZE"}]}
    done = [_trial(c.ys, final=c.final) for c in COMPLETED]
    assert not stopping.decide(spec, _trial(BAD.ys), done).should_stop


def test_use_elapsed_duration_changes_the_axis():
    spec = {"metrics": [{"metricId": "m", "goal": "MAXIMIZE"}],
            "medianAutomatedStoppingSpec": {"useElapsedDuration": True}}
    # Completed trials took 1 s per measurement; this one takes 10 s. At 30 s the completed
    # trials' running averages cover all six values (median 0.69); at step 3 only three (0.615).
    done = [_trial(c.ys, final=c.final, elapsed=[i + 1 for i in range(len(c.ys))])
            for c in COMPLETED]
    slow = _trial([0.60, 0.64, 0.66], elapsed=[10, 20, 30])
    assert stopping.decide(spec, slow, done).should_stop
    by_steps = {**spec, "medianAutomatedStoppingSpec": {}}
    assert not stopping.decide(by_steps, slow, done).should_stop


def test_nan_measurements_are_ignored_not_trusted():
    spec = {"metrics": [{"metricId": "m", "goal": "MAXIMIZE"}], "medianAutomatedStoppingSpec": {}}
    trial = {"measurements": [{"stepCount": "1", "metrics": [{"metricId": "m",
                                                              "value": float("nan")}]}]}
    assert stopping.curve_of(trial, "m", True, False).xs == ()
    assert not stopping.decide(spec, trial, []).should_stop
