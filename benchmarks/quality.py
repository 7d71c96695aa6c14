"""Optimizer quality: best objective after N trials, Vizier's default algorithm against the peers.

Run:  python benchmarks/quality.py [--quick] [--trials 50] [--seeds 5]

Every (task, optimizer, seed) run asks for N trials one at a time and records the best value so
far after each. Tasks (``benchmarks/lib/tasks.py``): shifted BBOB-style functions (sphere,
ellipsoid, rosenbrock, rastrigin) in 4 and 8 dimensions, values reported as regret; and Keras
MLPs on scikit-learn's digits, breast_cancer and wine, minimising validation loss after a fixed
number of epochs (5 hyperparameters). Per task and optimizer the median over seeds of the best-
so-far curve is reported, with the number of trials Vizier's median curve needs to reach each
peer's N-trial median best.

Targets (issue 5): with the default algorithm, reach Optuna TPE's 50-trial median best in <= 30
trials on at least two thirds of the tasks, and never be worse than KerasTuner's
BayesianOptimization at 30 trials.

Runs go to a pool of worker processes (``--workers``, default 2) that share one embedded Vizier
server; quality does not depend on timing, so sharing the CPUs changes no result. Prints tables
and writes the raw curves as JSON (after every run, so a long run leaves what it has).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import _common, peers
from lib import tasks as task_defs

DEFAULT_PEERS = ("vizier", "optuna-tpe", "kt-bo", "kt-random")
_COST = {"vizier": 3, "oss": 9, "kt-bo": 2}  # rough, to start the longest runs first


def one_run(task_name: str, peer: str, seed: int, trials: int, endpoint: str | None
            ) -> dict[str, Any]:
    """One optimizer on one task for ``trials`` trials (in a worker process)."""
    import math

    from lib import peers

    task = task_defs.by_name(task_name)
    optimizer = peers.make(peer, task.space(), seed, trials, endpoint)
    values, best, curve, ask_s, eval_s, asked = [], math.inf, [], [], [], []
    try:
        for _ in range(trials):
            start = time.perf_counter()
            params = optimizer.ask()
            ask_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            value = task.evaluate(params, seed)
            eval_s.append(time.perf_counter() - start)
            optimizer.tell(params, value)
            asked.append(dict(params))
            values.append(value)
            best = min(best, value)
            curve.append(best)
    finally:
        optimizer.close()
    return {"task": task_name, "peer": peer, "seed": seed, "values": values, "curve": curve,
            "params": asked, "ask_seconds": ask_s, "evaluate_seconds": eval_s}


def _run(job: tuple[Any, ...]) -> dict[str, Any]:
    return one_run(*job)


def median_curve(runs: list[dict[str, Any]]) -> list[float]:
    length = min(len(r["curve"]) for r in runs)
    return [_common.median([r["curve"][i] for r in runs]) for i in range(length)]


def trials_to_reach(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v <= target), None)


def summarize(runs: list[dict[str, Any]], trials: int, at: int) -> dict[str, Any]:
    """Median curves per task and optimizer; the targets."""
    by: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in runs:
        by.setdefault(r["task"], {}).setdefault(r["peer"], []).append(r)
    out: dict[str, Any] = {"tasks": {}, "at": at, "trials": trials}
    # A peer run for fewer trials than --trials is compared at its own last trial.
    reach_tpe, not_worse_bo = [], []
    without: dict[str, list[str]] = {"optuna-tpe": [], "kt-bo": []}  # Vizier ran, the peer not
    for task, per_peer in by.items():
        entry: dict[str, Any] = {}
        for peer, rs in per_peer.items():
            curve = median_curve(rs)
            entry[peer] = {"seeds": len(rs), "trials": len(curve), "median_curve": curve,
                           f"median_best_at_{at}": curve[min(at, len(curve)) - 1],
                           "median_best": curve[-1],
                           "median_ask_seconds": _common.median(
                               [s for r in rs for s in r["ask_seconds"]])}
        ours = entry.get("vizier")
        if ours is not None:
            for peer, e in entry.items():
                if peer != "vizier":
                    e["vizier_trials_to_reach"] = trials_to_reach(ours["median_curve"],
                                                                  e["median_best"])
            for peer in without:
                if peer not in entry:
                    without[peer].append(task)
            if "optuna-tpe" in entry:
                needed = entry["optuna-tpe"]["vizier_trials_to_reach"]
                reach_tpe.append(needed is not None and needed <= at)
            if "kt-bo" in entry:
                not_worse_bo.append(ours[f"median_best_at_{at}"]
                                    <= entry["kt-bo"][f"median_best_at_{at}"])
        out["tasks"][task] = entry
    # A target is read over every task Vizier ran: where the peer is missing on one (a file of
    # one optimizer's runs, or of parts), the verdict is None (not read), not a count over the
    # tasks that happen to have both.
    out["targets"] = {
        f"reach_tpe_{trials}_trial_median_within_{at}": f"{sum(reach_tpe)} of {len(reach_tpe)}",
        "reach_tpe_met": (sum(reach_tpe) * 3 >= 2 * len(reach_tpe)
                          if reach_tpe and not without["optuna-tpe"] else None),
        f"not_worse_than_kt_bo_at_{at}": f"{sum(not_worse_bo)} of {len(not_worse_bo)}",
        "not_worse_than_kt_bo_met": (all(not_worse_bo)
                                     if not_worse_bo and not without["kt-bo"] else None),
    }
    for peer, tasks in without.items():
        if tasks:
            out["targets"][f"tasks_without_{peer}"] = tasks
    return out


def summary_table(summary: dict[str, Any]) -> str:
    """Per task and optimizer: seeds, trials, median best at the targets' trial and at the last,
    and the trials Vizier's median curve needs to reach it."""
    at = summary["at"]
    rows = []
    for task, entry in summary["tasks"].items():
        for peer, e in sorted(entry.items()):
            reach = e.get("vizier_trials_to_reach", "")
            rows.append([task, peer, e["seeds"], e["trials"], e[f"median_best_at_{at}"],
                         e["median_best"],
                         "-" if reach is None else reach, e["median_ask_seconds"] * 1000])
    return _common.table(["task", "optimizer", "seeds", "trials", f"median best @{at}",
                          "median best @last", "vizier trials to reach @last",
                          "ask ms (median)"], rows)


def print_summary(summary: dict[str, Any]) -> None:
    print(summary_table(summary))
    for k, v in summary["targets"].items():
        print(f"  {k}: {'not read (the peer did not run on every task)' if v is None else v}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, 8 trials (Vizier read at 6), 2 tasks (a few minutes)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run are first-seed .. first-seed + seeds - 1 (to add seeds "
                             "to an earlier run, then --combine)")
    parser.add_argument("--at", type=int, default=30, help="the trial count the targets use")
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS))
    parser.add_argument("--trials-for", default="",
                        help="fewer trials for slow optimizers, e.g. 'vizier=30,kt-bo=30' "
                             "(the targets read trial --at)")
    parser.add_argument("--tasks", default="all",
                        help="'all', 'functions', 'keras', or comma-separated task names")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gp-settings", metavar="JSON",
                        help="the service's default algorithm runs with these settings in "
                             "place of the shipped ones (the server's --gp-settings; '{}' is "
                             "Open Source Vizier's own), e.g. to compare the service with "
                             "plain OSS")
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "quality.json"))
    args = parser.parse_args()
    if args.quick:
        args.trials, args.seeds, args.at = 8, 2, 6
        if args.tasks == "all":
            args.tasks = "sphere-4d,mlp-wine"
    if args.tasks == "all":
        every: list[task_defs.Task] = [*task_defs.function_tasks(), *task_defs.keras_tasks()]
        names = [t.name for t in every]
    elif args.tasks == "functions":
        names = [t.name for t in task_defs.function_tasks()]
    elif args.tasks == "keras":
        names = [t.name for t in task_defs.keras_tasks()]
    else:
        names = args.tasks.split(",")
    peer_names = args.peers.split(",")

    from vizier_keras.server.embedded import start_local_server

    server = None
    if any(p.startswith("vizier") for p in peer_names):
        env = {"VIZIER_KERAS_GP_SETTINGS": args.gp_settings} if args.gp_settings else None
        server = start_local_server(os.path.join(tempfile.mkdtemp(), "quality.db"), env=env)
    trials_for = dict(item.split("=") for item in args.trials_for.split(",") if item)
    jobs = [(name, peer, seed, int(trials_for.get(peer, args.trials)),
             server.url if server else None)
            for name in names for peer in peer_names
            for seed in range(args.first_seed, args.first_seed + args.seeds)
            # Plain OSS takes ~10 s a suggestion here; it runs the test functions only.
            if not (peer == "oss" and name.startswith("mlp"))]
    jobs.sort(key=lambda j: -_COST.get(j[1], 1) * (3 if j[0].startswith("mlp") else 1))
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args), "runs": []}
    started = time.time()
    try:
        # Plain OSS in one process of its own beside the others (lib/peers.in_pools).
        for i, result in enumerate(peers.in_pools(_run, jobs, args.workers, 1)):
            report["runs"].append(result)
            report["wall_seconds"] = time.time() - started
            _common.save(report, args.out)
            print(f"[{i + 1}/{len(jobs)} {time.time() - started:.0f} s] {result['task']} "
                  f"{result['peer']} seed {result['seed']}: best {result['curve'][-1]:.4g}",
                  flush=True)
    finally:
        if server is not None:
            server.stop()
    report["summary"] = summarize(report["runs"], args.trials, args.at)
    _common.save(report, args.out)
    print_summary(report["summary"])


if __name__ == "__main__":
    main()
