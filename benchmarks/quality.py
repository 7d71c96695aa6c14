"""Optimizer quality: best objective after N trials, Vizier's default algorithm against the peers.

Run:  python benchmarks/quality.py [--quick] [--trials 50] [--seeds 5]

Every (task, optimizer, seed) run asks for N trials one at a time and records the best value so
far after each. Tasks (``benchmarks/tasks.py``): shifted BBOB-style functions (sphere,
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
import itertools
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import zlib
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import tasks as task_defs

DEFAULT_PEERS = ("vizier", "optuna-tpe", "kt-bo", "kt-random")
_COST = {"vizier": 3, "oss": 9, "kt-bo": 2}  # rough, to start the longest runs first


def one_run(task_name: str, peer: str, seed: int, trials: int, endpoint: str | None
            ) -> dict[str, Any]:
    """One optimizer on one task for ``trials`` trials (in a worker process)."""
    import math

    import peers

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


def _oss_worker_init() -> None:
    # Open Source Vizier's GP (the "oss" peer, in process) fails with TensorFlow imported;
    # these workers run the test functions only, so Keras (for KerasTuner's HyperParameters)
    # may load JAX instead.
    os.environ["KERAS_BACKEND"] = "jax"


def _interleave(iterators: list[Any]) -> Any:
    """Results of several pools' imap_unordered as they come (polling each in turn)."""
    active = list(iterators)
    while active:
        for it in list(active):
            try:
                yield it.next(timeout=0.5)
            except mp.TimeoutError:
                continue
            except StopIteration:
                active.remove(it)


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


def print_summary(summary: dict[str, Any]) -> None:
    at = summary["at"]
    rows = []
    for task, entry in summary["tasks"].items():
        for peer, e in sorted(entry.items()):
            reach = e.get("vizier_trials_to_reach", "")
            rows.append([task, peer, e["seeds"], e["trials"], e[f"median_best_at_{at}"],
                         e["median_best"],
                         "-" if reach is None else reach, e["median_ask_seconds"] * 1000])
    print(_common.table(["task", "optimizer", "seeds", "trials", f"median best @{at}",
                         "median best @last", "vizier trials to reach @last",
                         "ask ms (median)"], rows))
    for k, v in summary["targets"].items():
        print(f"  {k}: {'not read (the peer did not run on every task)' if v is None else v}")


def combine(paths: list[str], out: str, at: int,
            seeds: tuple[int, int] | None = None) -> None:
    """Write ``out`` from the runs of ``paths``; with ``seeds`` (first, last), only those seeds'
    runs (to read a peer that ran more trials on fewer seeds on the seeds it ran)."""
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    # A later file's run of the same task, peer and seed replaces an earlier one (a rerun).
    by_key = {(r["task"], r["peer"], r["seed"]): r for p in parts for r in p["runs"]}
    runs = [r for r in by_key.values()
            if seeds is None or seeds[0] <= r["seed"] <= seeds[1]]
    # The parts may have run on different days: the combined report names the first and last.
    dates = sorted({p["machine"]["date"] for p in parts})
    machine = {**parts[-1]["machine"],
               "date": dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"}
    report = {"machine": machine, "parts": [p["args"] for p in parts],
              "wall_seconds": sum(p.get("wall_seconds", 0) for p in parts), "runs": runs,
              "args": {**parts[0]["args"], "at": at,
                       "trials": max(p["args"]["trials"] for p in parts)}}
    report["summary"] = summarize(runs, report["args"]["trials"], at)
    _common.save(report, out)
    print_summary(report["summary"])


def load_runs(*paths: str) -> list[dict[str, Any]]:
    """The runs of one or more result files, in order."""
    runs: list[dict[str, Any]] = []
    for path in paths:
        with open(path) as f:
            runs.extend(json.load(f)["runs"])
    return runs


def _bests(runs: list[dict[str, Any]], peer: str, at: int | None
           ) -> dict[tuple[str, int], float]:
    """``peer``'s best at trial ``at`` (or its last, for a shorter run or ``at`` None) by
    (task, seed)."""
    return {(r["task"], r["seed"]): r["curve"][min(at or len(r["curve"]), len(r["curve"])) - 1]
            for r in runs if r["peer"] == peer}


def _count(ours: dict[tuple[str, int], float], theirs: dict[tuple[str, int], float]
           ) -> dict[str, tuple[int, int]]:
    """Per task and all: on how many seeds ``ours`` was lower than ``theirs``, and higher."""
    from gp_variants import sign_test

    counts: dict[str, tuple[int, int]] = {}
    for (task, seed), value in ours.items():
        if (task, seed) in theirs:
            better, worse = counts.get(task, (0, 0))
            counts[task] = (better + (value < theirs[task, seed]),
                            worse + (value > theirs[task, seed]))
    counts["all"] = (sum(b for b, _ in counts.values()), sum(w for _, w in counts.values()))
    print(_common.table(["task", "better", "worse", "sign test p"],
                        [[task, b, w, sign_test(b, w)] for task, (b, w) in counts.items()]))
    return counts


def compare(before_path: str, after_path: str, at: int, peer: str = "vizier"
            ) -> dict[str, tuple[int, int]]:
    """Seed by seed, how often ``peer``'s best at trial ``at`` in the second file beat (was
    lower than) the same task and seed in the first, and how often it lost: per task and all."""
    return _count(_bests(load_runs(after_path), peer, at),
                  _bests(load_runs(before_path), peer, at))


def head_to_head(path: str, other: str, at: int, peer: str = "vizier"
                 ) -> dict[str, tuple[int, int]]:
    """Seed by seed within one file, how often ``peer``'s best at trial ``at`` beat (was lower
    than) ``other``'s on the same task and seed, and how often it lost: per task and all."""
    runs = load_runs(path)
    return _count(_bests(runs, peer, at), _bests(runs, other, at))


def repeats(first_path: str, second_path: str) -> dict[str, dict[str, Any]]:
    """Whether the runs in the second file repeat the first's: for every task, peer and seed in
    both, the values over the trials both ran must be equal (a longer run repeats a shorter one
    when it starts with it). Per peer: runs compared, runs repeated, and for the others the
    task, seed and first trial that differs."""
    def values_by_run(path: str) -> dict[tuple[str, str, int], list[float]]:
        return {(r["task"], r["peer"], r["seed"]): r["values"] for r in load_runs(path)}

    first, second = values_by_run(first_path), values_by_run(second_path)
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(first.keys() & second.keys()):
        task, peer, seed = key
        a, b = first[key], second[key]
        entry = out.setdefault(peer, {"compared": 0, "repeated": 0, "differ": []})
        entry["compared"] += 1
        differs = next((i + 1 for i, (x, y) in enumerate(zip(a, b, strict=False))
                        if x != y), None)
        if differs is None:
            entry["repeated"] += 1
        else:
            entry["differ"].append((task, seed, differs))
    print(_common.table(
        ["peer", "runs in both", "repeated", "differ (task seed: first trial)"],
        [[peer, e["compared"], e["repeated"],
          ", ".join(f"{t} {s}: {i}" for t, s, i in e["differ"]) or "-"]
         for peer, e in out.items()]))
    return out


def reach_chance(path: str, peer: str = "optuna-tpe", at: int = 30, resamples: int = 10_000,
                 ours: str = "vizier", draws: list[str] | None = None,
                 peer_at: int | None = None) -> dict[str, dict[str, Any]]:
    """How firmly a quality target's verdict stands, per task: over ``resamples`` bootstrap
    resamples of the seeds both ran (paired: a seed fixes the task instance for both), the share
    in which ``ours``' median best at trial ``at`` is at or below ``peer``'s median best at its
    last trial, or at ``peer_at`` (the first target compares Vizier at 30 with TPE at 50, the
    second with KerasTuner BO at 30). Near 0 or 1 the verdict would stand with other seeds;
    near one half it is a coin toss. Also, per task, on how many runs
    ``ours`` at ``at`` was at or below ``peer``'s on the same seed.

    ``draws``: files with other runs of ``ours`` on the same seeds (an unseeded optimizer run
    again). Their runs are pooled with ``path``'s: a resampled seed brings all its draws, and
    the median is over them all; a seed counts only where every file has it. ``peer``'s runs
    are read from ``path`` alone."""
    import numpy as np

    files = [load_runs(f) for f in [path, *(draws or [])]]
    mine = [_bests(runs, ours, at) for runs in files]
    theirs = _bests(files[0], peer, peer_at)
    peer_label = f"at_{peer_at}" if peer_at else "at_last"
    out: dict[str, dict[str, Any]] = {}
    for task in dict.fromkeys(t for t, _ in mine[0]):
        seeds = sorted(s for t, s in mine[0]
                       if t == task and (t, s) in theirs and all((t, s) in m for m in mine))
        if not seeds:
            continue
        # One random stream per task, keyed by its name: a task's share does not depend on
        # which other tasks the files hold, or in what order.
        rng = np.random.default_rng([0, zlib.crc32(task.encode())])
        a = np.array([[m[task, s] for m in mine] for s in seeds])  # seeds x draws
        b = np.array([theirs[task, s] for s in seeds])
        pick = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
        pooled = a[pick].reshape(resamples, -1)
        share = float(np.mean(np.median(pooled, axis=1) <= np.median(b[pick], axis=1)))
        # Run by run, the comparison the medians summarise: ours at ``at`` at or under the
        # peer's best on the same task instance.
        out[task] = {"seeds": len(seeds), "draws": len(files),
                     f"{ours}_median_at_{at}": float(np.median(a)),
                     f"{ours}_median_at_{at}_per_draw": [float(v) for v in np.median(a, axis=0)],
                     f"{peer}_median_{peer_label}": float(np.median(b)), "share": share,
                     "runs_reaching": int(np.sum(a <= b[:, None]))}
    print(_common.table(
        ["task", "seeds", "draws", f"{ours} median @{at} per draw", f"{ours} median @{at}",
         f"{peer} median @{peer_label[3:]}", "share of resamples reaching", "runs reaching"],
        [[t, e["seeds"], e["draws"],
          " / ".join(f"{v:.3g}" for v in e[f"{ours}_median_at_{at}_per_draw"]),
          e[f"{ours}_median_at_{at}"], e[f"{peer}_median_{peer_label}"], e["share"],
          e["runs_reaching"]] for t, e in out.items()]))
    return out


def seed_range(text: str) -> tuple[int, int]:
    """``--only-seeds``' value: 'FIRST-LAST', both whole numbers, FIRST <= LAST."""
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise argparse.ArgumentTypeError(
            f"--only-seeds must be FIRST-LAST with FIRST <= LAST, e.g. 0-4; got {text!r}")
    return int(first), int(last)


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
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="write --out from the runs of earlier result files (run in parts) "
                             "instead of running anything; a later file's run of the same "
                             "task, peer and seed replaces an earlier one")
    parser.add_argument("--only-seeds", metavar="FIRST-LAST", type=seed_range,
                        help="with --combine: keep only the runs of these seeds, e.g. 0-4")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="run nothing: count, seed by seed, where Vizier's best at --at in "
                             "AFTER beat BEFORE's (e.g. two settings of the default)")
    parser.add_argument("--head-to-head", nargs=2, metavar=("JSON", "PEER"),
                        help="run nothing: count, seed by seed, where Vizier's best at --at in "
                             "JSON beat PEER's (e.g. kt-bo, the target's second half)")
    parser.add_argument("--reach-chance", metavar="JSON",
                        help="run nothing: per task, the share of bootstrap resamples of the "
                             "seeds in which Vizier at --at reaches the --against peer's "
                             "median (TPE's at its last trial by default)")
    parser.add_argument("--against", default="optuna-tpe", metavar="PEER[@N]",
                        type=_common.peer_at,
                        help="with --reach-chance: the peer, and the trial it is read at "
                             "(default its last), e.g. kt-bo@30")
    parser.add_argument("--draws", nargs="+", metavar="JSON",
                        help="with --reach-chance: other runs of Vizier on the same seeds, "
                             "pooled with JSON's (the --against peer's runs are read from JSON)")
    parser.add_argument("--repeats", nargs=2, metavar=("FIRST", "SECOND"),
                        help="run nothing: which runs of the same task, peer and seed in "
                             "SECOND repeat FIRST's values over the trials both ran")
    args = parser.parse_args()
    if args.repeats:
        repeats(*args.repeats)
        return
    if args.reach_chance:
        peer, peer_at = args.against
        reach_chance(args.reach_chance, peer=peer, at=args.at, draws=args.draws, peer_at=peer_at)
        return
    if args.compare:
        before, after = args.compare
        compare(before, after, args.at)
        return
    if args.head_to_head:
        head_to_head(args.head_to_head[0], args.head_to_head[1], args.at)
        return
    if args.combine:
        combine(args.combine, args.out, args.at, args.only_seeds)
        return

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
    ctx = mp.get_context("spawn")
    oss_jobs = [j for j in jobs if j[1] == "oss"]
    other_jobs = [j for j in jobs if j[1] != "oss"]
    try:
        # A fresh process for every plain-OSS run: OSS traces and compiles its GP programs
        # again for every suggestion and keeps them, and a process doing so reaches Linux's
        # default limit of 65,530 memory maps within about four 30-trial runs (LLVM then fails
        # with "Cannot allocate memory" and the pool's worker dies, losing its run).
        with ctx.Pool(args.workers) as pool, ctx.Pool(1, _oss_worker_init,
                                                      maxtasksperchild=1) as oss_pool:
            pending = [oss_pool.imap_unordered(_run, oss_jobs),
                       pool.imap_unordered(_run, other_jobs)]
            results = itertools.chain(*pending) if not oss_jobs else _interleave(pending)
            for i, result in enumerate(results):
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
