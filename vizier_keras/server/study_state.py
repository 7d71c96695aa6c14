"""When a study is over: Vertex's ``studyStoppingConfig`` as one pure function.

A study is ACTIVE until its config says otherwise:

* ``shouldStopAsap``: INACTIVE at once;
* ``maxNumTrials``: COMPLETED once that many trials exist (in any state);
* ``maximumRuntimeConstraint``: COMPLETED once ``maxDuration`` has passed since the study was
  created, or ``endTime`` has come;
* ``maxNumTrialsNoProgress``: COMPLETED once that many SUCCEEDED trials in a row (by id) have
  not beaten the best of the first metric, counted only after ``minNumTrials`` have succeeded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from vizier._src.service import study_pb2

from vizier_keras import studyspec, wire

__all__ = ["stopped_reason"]


def stopped_reason(spec: Mapping[str, Any], created: dt.datetime,
                   trials: list[study_pb2.Trial], now: dt.datetime) -> tuple[str, str] | None:
    """(state, reason) when the spec's studyStoppingConfig says the study is over, else None.

    Args:
        spec: The Vertex StudySpec.
        created: When the study was created (timezone-aware).
        trials: Every trial of the study.
        now: The time to judge at (timezone-aware).
    """
    config = spec.get("studyStoppingConfig")
    if not config:
        return None
    if config.get("shouldStopAsap"):
        return wire.StudyState.INACTIVE.value, "shouldStopAsap is set"
    max_trials = config.get("maxNumTrials")
    if max_trials is not None and len(trials) >= max_trials:
        return (wire.StudyState.COMPLETED.value,
                f"maxNumTrials ({max_trials}) trials have been created")
    runtime = (config.get("maximumRuntimeConstraint") or {})
    if "maxDuration" in runtime and (
            now - created).total_seconds() >= wire.parse_duration(runtime["maxDuration"]):
        return wire.StudyState.COMPLETED.value, "maximumRuntimeConstraint.maxDuration passed"
    if "endTime" in runtime and now >= wire.parse_timestamp(runtime["endTime"]):
        return wire.StudyState.COMPLETED.value, "maximumRuntimeConstraint.endTime passed"
    done = [t for t in trials if t.state == study_pb2.Trial.State.SUCCEEDED]
    if len(done) < config.get("minNumTrials", 0):
        return None
    no_progress = config.get("maxNumTrialsNoProgress")
    if no_progress:
        metric = studyspec.first_objective(spec)
        sign = 1.0 if metric["goal"] == "MAXIMIZE" else -1.0
        values = [sign * v for t in sorted(done, key=lambda t: int(t.id))
                  if (v := {m.metric_id: m.value for m in t.final_measurement.metrics}
                      .get(metric["metricId"])) is not None]
        if values:
            best_at = max(range(len(values)), key=lambda i: (values[i], -i))
            if len(values) - 1 - best_at >= no_progress:
                return (wire.StudyState.COMPLETED.value,
                        f"{no_progress} trials without progress")
    return None
