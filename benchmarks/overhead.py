"""Overhead per tuning operation: Vizier over REST against the peers' in-process calls.

Run:  python benchmarks/overhead.py [--quick]

For each back end, one study of ``--trials`` trials, each with ``--steps`` intermediate
measurements, on the 4-parameter space of ``scaling.py``; the time of every call is kept and
the median and 90th percentile reported in milliseconds:

* ``vizier-rest``: the embedded Vizier server over HTTP on loopback (what a CloudTuner without
  a Google project pays): suggest (RANDOM_SEARCH), addTrialMeasurement,
  checkTrialEarlyStoppingState (median rule), complete.
* ``oss``: plain Open Source Vizier through its own client and in-process service (RANDOM_SEARCH;
  its stop check is its random policy).
* ``optuna``: ``study.ask`` (RandomSampler), ``trial.report``, ``trial.should_prune``
  (MedianPruner), ``study.tell``; in memory.
* ``kt-random``: KerasTuner's RandomSearchOracle: create_trial, update_trial (a step's metrics),
  end_trial. KerasTuner has no stop check.

Random samplers everywhere, so that the numbers are the machinery's cost, not an algorithm's.
The callback's share of epoch time is measured by ``callback_overhead.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scaling
from lib import _common

OPS = ("suggest", "measurement", "stop_check", "complete")


class Timer:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {op: [] for op in OPS}

    @contextlib.contextmanager
    def __call__(self, op: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.times[op].append(time.perf_counter() - start)


def vizier_rest(trials: int, steps: int) -> dict[str, list[float]]:
    from vizier_keras.client import VizierClient
    from vizier_keras.server.embedded import start_local_server

    server = start_local_server(os.path.join(tempfile.mkdtemp(), "overhead.db"))
    timer = Timer()
    try:
        with VizierClient(server.url) as client:
            spec = {**scaling.spec("RANDOM_SEARCH"), "medianAutomatedStoppingSpec": {}}
            study = client.create_study(_common.PARENT, f"overhead-{time.time_ns()}", spec)
            for _ in range(trials):
                with timer("suggest"):
                    trial = client.suggest_trials(study, 1, client_id="w").trials[0]
                for step in range(steps):
                    with timer("measurement"):
                        client.add_trial_measurement(trial, {"objective": 1.0 / (step + 1)},
                                                     step_count=step + 1)
                    with timer("stop_check"):
                        client.check_trial_early_stopping_state(trial)
                with timer("complete"):
                    client.complete_trial(trial)
    finally:
        server.stop()
    return timer.times


def plain_oss(trials: int, steps: int) -> dict[str, list[float]]:
    from lib import peers
    from vizier.service import clients
    from vizier.service import pyvizier as ovz

    peers.use_oss_in_process()
    config = ovz.StudyConfig(algorithm="RANDOM_SEARCH")
    root = config.search_space.root
    root.add_float_param("a", 0.0, 1.0)
    root.add_float_param("b", 1e-3, 1.0, scale_type=ovz.ScaleType.LOG)
    root.add_int_param("c", 1, 10)
    root.add_categorical_param("d", ["x", "y", "z"])
    config.metric_information.append(
        ovz.MetricInformation("objective", goal=ovz.ObjectiveMetricGoal.MINIMIZE))
    study = clients.Study.from_study_config(config, owner="bench", study_id="overhead")
    timer = Timer()
    for _ in range(trials):
        with timer("suggest"):
            trial = study.suggest(count=1, client_id="w")[0]
        for step in range(steps):
            with timer("measurement"):
                trial.add_measurement(
                    ovz.Measurement(metrics={"objective": 1.0 / (step + 1)}, steps=step + 1))
            with timer("stop_check"):
                trial.check_early_stopping()
        with timer("complete"):
            trial.complete(ovz.Measurement(metrics={"objective": 0.5}))
    return timer.times


def optuna_ops(trials: int, steps: int) -> dict[str, list[float]]:
    import optuna
    from lib import peers, tasks

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = peers.optuna_distributions(tasks.KerasTask("digits").space())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.MedianPruner())
    timer = Timer()
    for _ in range(trials):
        with timer("suggest"):
            trial = study.ask(space)
        for step in range(steps):
            with timer("measurement"):
                trial.report(1.0 / (step + 1), step + 1)
            with timer("stop_check"):
                trial.should_prune()
        with timer("complete"):
            study.tell(trial, 0.5)
    return timer.times


def keras_tuner_ops(trials: int, steps: int) -> dict[str, list[float]]:
    import keras_tuner as kt
    from lib import tasks

    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("objective", "min"),
                                           max_trials=trials + 1,
                                           hyperparameters=tasks.KerasTask("digits").space(),
                                           seed=0)
    oracle._set_project_dir(tempfile.mkdtemp(), "overhead")
    timer = Timer()
    for _ in range(trials):
        with timer("suggest"), contextlib.redirect_stdout(io.StringIO()):
            trial = oracle.create_trial("w")  # (prints "Running Trial #n" and the values)
        for step in range(steps):
            with timer("measurement"):
                oracle.update_trial(trial.trial_id, {"objective": 1.0 / (step + 1)},
                                    step=step + 1)
        with timer("complete"), contextlib.redirect_stdout(io.StringIO()):
            # (end_trial prints a summary of the trial; its printing is part of its cost.)
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
    return timer.times


BACKENDS: dict[str, Callable[[int, int], dict[str, list[float]]]] = {
    "vizier-rest": vizier_rest, "oss": plain_oss, "optuna": optuna_ops,
    "kt-random": keras_tuner_ops,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 trials")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "overhead.json"))
    args = parser.parse_args()
    if args.quick:
        args.trials = 30
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args), "backends": {}}
    for name, fn in BACKENDS.items():
        times = _common.in_process(fn, args.trials, args.steps)
        summary = {op: {"calls": len(ts), "median_ms": _common.median(ts) * 1000,
                        "p90_ms": _common.percentile(ts, 90) * 1000}
                   for op, ts in times.items() if ts}
        report["backends"][name] = summary
        _common.save(report, args.out)
    print(table(report))


def table(report: dict[str, Any]) -> str:
    """ms per call of each operation, median and 90th percentile, per back end."""
    rows = []
    for name, summary in report["backends"].items():
        rows.append([name, *(summary[op]["median_ms"] if op in summary else float("nan")
                             for op in OPS),
                     *(summary[op]["p90_ms"] if op in summary else float("nan") for op in OPS)])
    return _common.table(["back end", *(f"{op} ms" for op in OPS),
                          *(f"{op} p90" for op in OPS)], rows)


if __name__ == "__main__":
    main()
