"""Compute saved by automated early stopping, replayed on a table of real learning curves.

Run:  python benchmarks/early_stopping.py [--quick] [--replays 10] [--trials 60]

The table (``benchmarks/data/curves.json``, made by ``record_curves.py``) holds real validation-
loss curves of a grid of MLPs on digits and breast_cancer. A *replay* draws ``--trials`` rows at
random (with replacement; the same draw for every method of that replay) and runs them as trials
one after another; a trial reports its validation loss after each epoch and may be stopped.
A trial's objective is its best validation loss so far (KerasTuner's rule: the best epoch
counts), so a stopped trial still has a value. Methods:

* ``none``: every trial runs all epochs.
* ``vizier-median`` / ``vizier-decay``: the embedded Vizier service over REST, a study with
  ``medianAutomatedStoppingSpec`` / ``decayCurveStoppingSpec``; after each epoch the trial's
  measurement is added and ``checkTrialEarlyStoppingState`` asked (what
  ``VizierReportingCallback`` does); a stopped trial is completed with its measurements.
* ``optuna-median`` / ``optuna-hyperband``: Optuna's MedianPruner / HyperbandPruner (defaults;
  ``max_resource`` = the epoch count), ``trial.report`` + ``should_prune`` after each epoch.
* ``kt-hyperband``: KerasTuner's Hyperband oracle (``max_epochs`` = the epoch count, factor 3,
  one iteration) choosing rows itself; a continued trial resumes from its parent's epoch, as
  KerasTuner does by loading the parent's weights. It runs its own number of trials.

Reported per method (median over replays): epochs used, best value found, its relative loss
against ``none`` on the same draw, epochs until the best so far reaches the target (the 95th
percentile of quality over the table's rows: only 5% of rows reach it), and the false-stop rate:
stopped trials whose row, run to the end, is in the table's top 10%.

Targets (issue 5), median rule: >= 30% fewer epochs than no stopping with <= 1% relative loss
in the final best, and epochs-to-target no worse than Optuna + MedianPruner.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import _common

TABLE = os.path.join(_common.ROOT, "benchmarks", "data", "curves.json")
METHODS = ("none", "vizier-median", "vizier-decay", "optuna-median", "optuna-hyperband",
           "kt-hyperband")


class Row:
    def __init__(self, index: int, run: dict[str, Any]) -> None:
        self.index = index
        self.curve = run["val_loss"]
        self.best = min(self.curve)


def replay_none(draw: list[Row], epochs: int, **_: Any) -> list[dict[str, Any]]:
    return [{"row": r.index, "epochs": epochs, "value": r.best, "stopped": False} for r in draw]


def replay_vizier(draw: list[Row], epochs: int, client: Any, rule: str, **_: Any
                  ) -> list[dict[str, Any]]:
    spec = {"metrics": [{"metricId": "val_loss", "goal": "MINIMIZE"}],
            "parameters": [{"parameterId": "row",
                            "integerValueSpec": {"minValue": "0", "maxValue": "100000"}}],
            "algorithm": "RANDOM_SEARCH",
            "measurementSelectionType": "BEST_MEASUREMENT",
            rule: {}}
    study = client.create_study(_common.PARENT, f"es-{rule}-{time.time_ns()}", spec)
    out = []
    try:
        for r in draw:
            # A suggested trial is ACTIVE (a created one waits, REQUESTED, for a suggest). Its
            # parameter value is random and unused: the replayed curve is row r's.
            trial = client.suggest_trials(study, 1, client_id="replay").trials[0]
            used, stopped = epochs, False
            for epoch in range(epochs):
                client.add_trial_measurement(trial, {"val_loss": r.curve[epoch]},
                                             step_count=epoch + 1)
                if epoch + 1 < epochs and client.check_trial_early_stopping_state(trial):
                    used, stopped = epoch + 1, True
                    break
            client.complete_trial(trial)
            out.append({"row": r.index, "epochs": used, "stopped": stopped,
                        "value": min(r.curve[:used])})
    finally:
        client.delete_study(study)
    return out


def replay_optuna(draw: list[Row], epochs: int, pruner: str, seed: int, **_: Any
                  ) -> list[dict[str, Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruners = {"median": lambda: optuna.pruners.MedianPruner(),
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1,
                                                                   max_resource=epochs)}
    study = optuna.create_study(direction="minimize", pruner=pruners[pruner](),
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for r in draw:
        trial = study.ask()
        used, stopped = epochs, False
        for epoch in range(epochs):
            trial.report(r.curve[epoch], epoch + 1)
            if epoch + 1 < epochs and trial.should_prune():
                used, stopped = epoch + 1, True
                break
        value = min(r.curve[:used])
        if stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        out.append({"row": r.index, "epochs": used, "stopped": stopped, "value": value})
    return out


def replay_kt_hyperband(rows: list[Row], epochs: int, seed: int, **_: Any
                        ) -> list[dict[str, Any]]:
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Int("row", 0, len(rows) - 1)
    oracle = kt.oracles.HyperbandOracle(objective=kt.Objective("val_loss", "min"),
                                        max_epochs=epochs, factor=3, hyperband_iterations=1,
                                        hyperparameters=hp, seed=seed)
    oracle._set_project_dir(tempfile.mkdtemp(), "kt-hyperband")
    out = []
    while True:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints trial summaries
            trial = oracle.create_trial("bench")
        if trial.status != "RUNNING":
            break
        values = trial.hyperparameters.values
        row = rows[values["row"]]
        start, end = values.get("tuner/initial_epoch", 0), values["tuner/epochs"]
        value = min(row.curve[:end])
        oracle.update_trial(trial.trial_id, {"val_loss": value})
        trial.status = "COMPLETED"
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a trial summary
            oracle.end_trial(trial)
        # A trial that ends before the last epoch is Hyperband's way of stopping it early.
        out.append({"row": row.index, "epochs": end - start, "stopped": end < epochs,
                    "value": value})
    return out


def summarize_replay(trials: list[dict[str, Any]], target: float, top10: set[int]
                     ) -> dict[str, Any]:
    used, best, reached = 0, math.inf, None
    for t in trials:
        used += t["epochs"]
        best = min(best, t["value"])
        if reached is None and best <= target:
            reached = used
    stopped = [t for t in trials if t["stopped"]]
    false_stops = sum(t["row"] in top10 for t in stopped)
    return {"trials": len(trials), "epochs": used, "best": best,
            "epochs_to_target": reached, "stopped": len(stopped),
            "false_stops": false_stops}


def run_dataset(name: str, data: dict[str, Any], epochs: int, methods: list[str], replays: int,
                trials: int, client: Any) -> dict[str, Any]:
    rows = [Row(i, run) for i, run in enumerate(data["runs"])]
    bests = sorted(r.best for r in rows)
    target = _common.percentile(bests, 5)
    top10 = {r.index for r in rows if r.best <= _common.percentile(bests, 10)}
    per_method: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    for replay in range(replays):
        rng = random.Random(replay)
        draw = [rows[rng.randrange(len(rows))] for _ in range(trials)]
        for method in methods:
            start = time.perf_counter()
            if method == "none":
                result = replay_none(draw, epochs)
            elif method.startswith("vizier-"):
                rule = {"median": "medianAutomatedStoppingSpec",
                        "decay": "decayCurveStoppingSpec"}[method.split("-")[1]]
                result = replay_vizier(draw, epochs, client=client, rule=rule)
            elif method.startswith("optuna-"):
                result = replay_optuna(draw, epochs, pruner=method.split("-")[1], seed=replay)
            elif method == "kt-hyperband":
                result = replay_kt_hyperband(rows, epochs, seed=replay)
            else:
                raise ValueError(method)
            seconds[method] += time.perf_counter() - start
            per_method[method].append(summarize_replay(result, target, top10))
    summary: dict[str, Any] = {"target": target, "rows": len(rows), "methods": {}}
    base = per_method.get("none")
    for method, results in per_method.items():
        stopped = sum(r["stopped"] for r in results)
        entry = {
            "replays": results,
            "median_trials": _common.median([r["trials"] for r in results]),
            "median_epochs": _common.median([r["epochs"] for r in results]),
            "median_best": _common.median([r["best"] for r in results]),
            "reached_target": sum(r["epochs_to_target"] is not None for r in results),
            "median_epochs_to_target": _median_or_inf([r["epochs_to_target"] for r in results]),
            "false_stop_rate": (sum(r["false_stops"] for r in results) / stopped
                                if stopped else 0.0),
            "stopped_share": stopped / max(1, sum(r["trials"] for r in results)),
            "seconds": seconds[method],
        }
        if base is not None:
            entry["median_epoch_saving"] = _common.median(
                [1 - r["epochs"] / b["epochs"] for r, b in zip(results, base, strict=True)])
            entry["median_relative_loss"] = _common.median(
                [(r["best"] - b["best"]) / abs(b["best"])
                 for r, b in zip(results, base, strict=True)])
            entry["max_relative_loss"] = max(
                (r["best"] - b["best"]) / abs(b["best"])
                for r, b in zip(results, base, strict=True))
        summary["methods"][method] = entry
    return summary


def _median_or_inf(xs: list[int | None]) -> float:
    return _common.median([math.inf if x is None else float(x) for x in xs])


def targets(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, summary in report["datasets"].items():
        methods = summary["methods"]
        if "vizier-median" not in methods:
            continue
        ours = methods["vizier-median"]
        entry = {"epoch_saving": ours.get("median_epoch_saving"),
                 "relative_loss": ours.get("median_relative_loss")}
        entry["saving_and_loss_met"] = (entry["epoch_saving"] is not None
                                        and entry["epoch_saving"] >= 0.30
                                        and entry["relative_loss"] <= 0.01)
        if "optuna-median" in methods:
            theirs = methods["optuna-median"]["median_epochs_to_target"]
            entry["epochs_to_target_vs_optuna_median"] = (ours["median_epochs_to_target"], theirs)
            entry["epochs_to_target_met"] = ours["median_epochs_to_target"] <= theirs
        out[name] = entry
    return out


def tables(report: dict[str, Any]) -> str:
    """One Markdown table per data set: each method's median trials, epochs, saving and best."""
    out = []
    for name, summary in report["datasets"].items():
        out.append(f"{name}: {summary['rows']} curves, target val_loss {summary['target']:.4f} "
                   f"(5% of rows reach it)\n")
        rows = []
        for method, e in summary["methods"].items():
            rows.append([method, e["median_trials"], e["median_epochs"],
                         e.get("median_epoch_saving", float("nan")) * 100, e["median_best"],
                         e.get("median_relative_loss", float("nan")) * 100,
                         e["median_epochs_to_target"],
                         f"{e['reached_target']}/{len(e['replays'])}",
                         e["false_stop_rate"] * 100, e["stopped_share"] * 100])
        out.append(_common.table(["method", "trials", "epochs", "saved %", "best val_loss",
                                  "rel. loss %", "epochs to target", "reached", "false stops %",
                                  "stopped %"], rows) + "\n")
    return "\n".join(out)


def print_report(report: dict[str, Any]) -> None:
    print(tables(report))
    for name, entry in report["targets"].items():
        print(f"  {name}: {entry}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 replay of 30 trials")
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--table", default=TABLE)
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "early_stopping.json"))
    args = parser.parse_args()
    if args.quick:
        args.replays, args.trials = 1, 30
    with open(args.table) as f:
        table = json.load(f)
    methods = args.methods.split(",")

    from vizier_keras.client import VizierClient
    from vizier_keras.server.embedded import start_local_server

    server = start_local_server(os.path.join(tempfile.mkdtemp(), "early_stopping.db"))
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args),
                              "table": {"epochs": table["epochs"], "grid": table["grid"],
                                        "backend": table["backend"],
                                        "recorded": table["machine"]["date"]},
                              "datasets": {}}
    try:
        with VizierClient(server.url) as client:
            for name, data in table["datasets"].items():
                report["datasets"][name] = run_dataset(name, data, table["epochs"], methods,
                                                       args.replays, args.trials, client)
                _common.save(report, args.out)
    finally:
        server.stop()
    report["targets"] = targets(report)
    _common.save(report, args.out)
    print_report(report)


if __name__ == "__main__":
    main()
