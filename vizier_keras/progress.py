"""What a search prints, so that nobody stares at a silent screen.

A line when a trial begins (its values) and one when it ends, with the whole study's state
(every worker's): trials done of the budget, running, stopped early by Vizier, the best so far
and an estimate of the time left. On a terminal, while ``model.fit`` is quiet (``verbose=0``),
a live line shows the epoch and its metrics, rewritten in place.

It has its own switch, ``CloudTuner(..., progress=False)``: ``search(verbose=0)`` silences
Keras' epoch bars as Keras users expect, not this. Example of a trial's end::

    [4/20] trial 4 COMPLETED in 6.2 s: val_accuracy=0.9421 | best 0.9555 (trial 2) |
    1 running, 1 stopped early | ETA ~1.6 min
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from vizier_keras import pareto, studyspec, wire

__all__ = ["SearchProgress"]


class SearchProgress:
    """KerasTuner's display interface (``on_trial_begin``, ``on_trial_end``, state) for a
    :class:`~vizier_keras.oracle.CloudOracle`, plus ``on_epoch_end``.

    Args:
        oracle: The oracle whose search this shows.
        enabled: Print at all.
        stream: Where to (default ``sys.stdout``); a terminal gets the live line.
    """

    def __init__(self, oracle: Any, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.oracle = oracle
        self.enabled = enabled
        self.verbose = 1  # KerasTuner's search() sets this from fit's verbose: Keras' switch
        self.stream = stream
        self._began: dict[str, float] = {}
        self._first: float | None = None  # when this worker's first trial began
        self._ended = 0
        self._live = False

    @property
    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    def _terminal(self) -> bool:
        isatty = getattr(self._out, "isatty", None)
        return bool(isatty and isatty())

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass

    def _print(self, line: str) -> None:
        if self._live:
            self._out.write("\r\033[K")
            self._live = False
        print(line, file=self._out, flush=True)

    def on_trial_begin(self, trial: Any) -> None:
        self._began[trial.trial_id] = time.monotonic()
        if self._first is None:
            self._first = self._began[trial.trial_id]
        if not self.enabled:
            return
        oracle = self.oracle
        of = f" of {oracle.max_trials}" if oracle.max_trials else ""
        values = ", ".join(f"{k}={_short(v)}" for k, v in trial.hyperparameters.values.items())
        self._print(f"Trial {trial.trial_id}{of} (worker {oracle.worker_tag}): {values}")

    def on_epoch_end(self, trial: Any, epoch: int, logs: dict[str, Any] | None) -> None:
        """The live line: only on a terminal, and only while Keras prints nothing itself."""
        if not self.enabled or self.verbose != 0 or not self._terminal():
            return
        took = time.monotonic() - self._began.get(trial.trial_id, time.monotonic())
        metrics = " ".join(f"{k}={_short(v)}" for k, v in (logs or {}).items()
                           if isinstance(v, (int, float)))
        self._out.write(f"\r\033[K  trial {trial.trial_id} epoch {epoch + 1} "
                        f"({took:.0f} s): {metrics}"[:200])
        self._out.flush()
        self._live = True

    def on_trial_end(self, trial: Any) -> None:
        began = self._began.pop(trial.trial_id, None)
        took = time.monotonic() - began if began is not None else math.nan
        self._ended += 1
        if not self.enabled:
            return
        oracle = self.oracle
        status = str(getattr(trial.status, "value", trial.status))
        if trial.trial_id in oracle.stopped_early:
            status += ", stopped early by Vizier"
        line = f"trial {trial.trial_id} {status} in {took:.1f} s"
        objectives = self._objectives()
        # Several objectives: each one's value from Vizier's record (read below with the
        # study), never KerasTuner's sum of them.
        each = None
        if trial.score is not None and status.startswith("COMPLETED"):
            if len(objectives) <= 1:
                line += f": {oracle.objective.name}={_short(trial.score)}"
            else:
                each = trial.trial_id
        elif trial.message:
            line += f": {trial.message.strip().splitlines()[-1][:200]}"
        try:
            line = self._study_line(line, each, objectives)
        except Exception:  # the progress line must never end a search
            pass
        self._print(line)

    def _objectives(self) -> list[tuple[str, wire.Goal]]:
        return list(studyspec.iter_metric_specs(getattr(self.oracle, "study_spec", None) or {}))

    def _study_line(self, line: str, values_of: str | None,
                    objectives: list[tuple[str, wire.Goal]]) -> str:
        """``line`` with the study's state; with ``values_of`` (a trial id), that trial's
        objective values first."""
        oracle = self.oracle
        study = oracle.existing_study()
        if study is None:
            return line
        trials = oracle.client.list_trials(study)
        if values_of is not None:
            mine: dict[str, Any] = next(
                (t for t in trials if wire.trial_id(t) == values_of), {})
            values = wire.trial_final_metrics(mine)
            line += ": " + ", ".join(f"{m}={_short(values[m])}" for m, _ in objectives
                                     if m in values)
        states = [wire.trial_state(t) for t in trials]
        done = sum(s in (wire.TrialState.SUCCEEDED, wire.TrialState.INFEASIBLE) for s in states)
        # A worker's prefetched next trial (client id "<worker>#next") is queued, not running:
        # running trials are counted by worker.
        running = len({str(t.get("clientId", "")).removesuffix("#next")
                       for t, s in zip(trials, states, strict=True)
                       if s in (wire.TrialState.ACTIVE, wire.TrialState.STOPPING)})
        stopped = sum(bool((t.get("vizierKeras") or {}).get("stoppedEarly")) for t in trials)
        stopped = max(stopped, len(oracle.stopped_early))
        budget = f"/{oracle.max_trials}" if oracle.max_trials else ""
        line = f"[{done}{budget}] {line}"
        if len(objectives) > 1:
            front = _front(objectives, trials, getattr(oracle, "study_spec", None) or {})
            if front:
                line += f" | Pareto front: trials {', '.join(front)}"
        else:
            spec = getattr(oracle, "study_spec", None) or {}
            best = _best(oracle.objective, [t for t in trials if studyspec.is_safe(
                spec, wire.trial_final_metrics(t))])
            if best is not None:
                line += f" | best {_short(best[0])} (trial {best[1]})"
        extra = [f"{running} running"] if running else []
        if stopped:
            extra.append(f"{stopped} stopped early")
        if extra:
            line += " | " + ", ".join(extra)
        if oracle.max_trials and self._first is not None:
            # Wall time per trial here (training and the wait for suggestions), shared by the
            # workers that are running trials now.
            per_trial = (time.monotonic() - self._first) / self._ended
            seconds = max(0, oracle.max_trials - done) * per_trial / max(1, running)
            if seconds > 0:
                line += f" | ETA ~{_duration(seconds)}"
        return line


def _front(objectives: list[tuple[str, wire.Goal]], trials: list[dict[str, Any]],
           spec: dict[str, Any]) -> list[str]:
    """The ids of the study's Pareto-optimal succeeded trials that meet the constraints
    (several objectives)."""
    ids, points = [], []
    for trial in trials:
        if wire.trial_state(trial) is not wire.TrialState.SUCCEEDED:
            continue
        values = wire.trial_final_metrics(trial)
        if all(m in values for m, _ in objectives) and studyspec.is_safe(spec, values):
            ids.append(wire.trial_id(trial))
            points.append(pareto.point(values, objectives))
    fronts = pareto.pareto_fronts(points)
    return sorted((ids[i] for i in fronts[0]), key=int) if fronts else []


def _best(objective: Any, trials: list[dict[str, Any]]) -> tuple[float, str] | None:
    """The best objective value among the study's succeeded trials, and its trial id."""
    best: tuple[float, str] | None = None
    for trial in trials:
        if wire.trial_state(trial) is not wire.TrialState.SUCCEEDED:
            continue
        metrics = wire.trial_final_metrics(trial)
        try:
            if not objective.has_value(metrics):
                continue
            value = float(objective.get_value(metrics))
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value) and (best is None or objective.better_than(value, best[0])):
            best = (value, wire.trial_id(trial))
    return best


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
