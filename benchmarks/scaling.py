"""Scaling: trials per minute with 1, 2 and 4 worker processes tuning one study.

Run:  python benchmarks/scaling.py [--quick]

One embedded Vizier server; each worker is a separate process with its own client id that asks
for a trial, "trains" (sleeps ``--objective`` seconds: 0.5 and 5), completes the trial and asks
again, for a fixed wall-clock window. Throughput counts the trials completed in the window. After
the window each study's trials are checked: a trial handed to two workers (duplicated) or a
trial a worker completed that the study does not hold as SUCCEEDED (lost) must not happen.
Algorithms: RANDOM_SEARCH and the default (GP-UCB-PE; the server's programs are compiled by a
warm-up study first, as in a running service).

Target (issue 5): RANDOM_SEARCH with the 5 s objective, >= 3.5x trials per minute at 4 workers.

Fixed trial count (``--trials 40``; issue 33): the default algorithm, the 5 s objective; 1 and
then 4 workers (the same processes as above) take trials from one study until 40 have been
handed out, and the time from the start until the last one is completed is measured: the time a
user waits for a 40-trial search. Target: 4 workers finish in <= 1/3.5 of one worker's time.
Writes ``results/scaling_trials.json``.

Burst (``--burst 1,8,32``; issue 33): a default-algorithm study with 20 completed trials; after
two warm suggestions (each completed, so the study grows as in a run) N workers, each with its
own client id and client, ask for one trial at the same moment. Measured: the time until every
worker holds its trial, against one warm suggestion timed just before; the workers whose
request failed (a timeout included); and the trials the study holds afterwards (exactly 20 + 2
+ N when no suggestion is computed twice). Target: 32 at once served within 16x one warm
suggestion, no client timeout, nothing computed twice.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import server_speed
from lib import _common

ALGORITHMS = ("RANDOM_SEARCH", "ALGORITHM_UNSPECIFIED")
# The 4-parameter study of server_speed.py (two floats, one log-scaled; an integer; a categorical).
spec = server_speed.vertex_spec


def value(trial: dict[str, Any]) -> float:
    p = {x["parameterId"]: x["value"] for x in trial["parameters"]}
    return (p["a"] - 0.3) ** 2 + (p["c"] - 7) ** 2 / 81 + (0.0 if p["d"] == "y" else 0.2)


def worker(endpoint: str, study: dict[str, Any], worker_id: int, objective: float,
           start_at: float, window: float, queue: Any) -> None:
    from vizier_keras.client import VizierClient

    done: list[str] = []
    asks: list[float] = []
    with VizierClient(endpoint, timeout=(10, 600)) as client:
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + window
        while time.time() < end:
            t0 = time.perf_counter()
            trial = client.suggest_trials(study, 1, client_id=f"worker-{worker_id}").trials[0]
            asks.append(time.perf_counter() - t0)
            time.sleep(objective)
            if time.time() > end:
                # Finished after the window: not counted; completed so that nothing is left.
                client.complete_trial(trial, {"objective": value(trial)})
                break
            client.complete_trial(trial, {"objective": value(trial)})
            done.append(trial["name"])
    queue.put({"worker": worker_id, "completed": done, "ask_seconds": asks})


def counted_worker(endpoint: str, study: dict[str, Any], worker_id: int, objective: float,
                   start_at: float, handed: Any, trials: int, queue: Any) -> None:
    """Takes trials until ``trials`` have been handed out (``handed``: a shared counter)."""
    from vizier_keras.client import VizierClient

    done: list[str] = []
    asks: list[float] = []
    with VizierClient(endpoint, timeout=(10, 600)) as client:
        time.sleep(max(0.0, start_at - time.time()))
        while True:
            with handed.get_lock():
                if handed.value >= trials:
                    break
                handed.value += 1
            t0 = time.perf_counter()
            trial = client.suggest_trials(study, 1, client_id=f"worker-{worker_id}").trials[0]
            asks.append(time.perf_counter() - t0)
            time.sleep(objective)
            client.complete_trial(trial, {"objective": value(trial)})
            done.append(trial["name"])
    queue.put({"worker": worker_id, "completed": done, "ask_seconds": asks,
               "finished_at": time.time()})


def measure_trials(endpoint: str, client: Any, algorithm: str, workers: int, objective: float,
                   trials: int) -> dict[str, Any]:
    """Seconds for ``workers`` processes to finish ``trials`` trials of one fresh study."""
    study = client.create_study(
        _common.PARENT, f"trials-{algorithm}-{workers}-{objective}-{time.time_ns()}",
        spec(algorithm))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    handed = ctx.Value("i", 0)
    start_at = time.time() + 3.0 + 0.5 * workers
    processes = [ctx.Process(target=counted_worker,
                             args=(endpoint, study, i, objective, start_at, handed, trials,
                                   queue)) for i in range(workers)]
    for p in processes:
        p.start()
    results = [queue.get() for _ in processes]
    for p in processes:
        p.join()
    completed = [name for r in results for name in r["completed"]]
    stored = client.list_trials(study)
    succeeded = {t["name"] for t in stored if t.get("state") == "SUCCEEDED"}
    asks = [a for r in results for a in r["ask_seconds"]]
    return {"algorithm": algorithm, "workers": workers, "objective_seconds": objective,
            "trials": len(completed),
            "seconds": max(r["finished_at"] for r in results) - start_at,
            "lost": len([n for n in completed if n not in succeeded]),
            "duplicated": len(completed) - len(set(completed)),
            "median_ask_seconds": _common.median(asks),
            "p90_ask_seconds": _common.percentile(asks, 90)}


def main_trials(args: argparse.Namespace) -> None:
    from vizier_keras.client import VizierClient
    from vizier_keras.server.embedded import start_local_server

    out = args.out if args.out != os.path.join(_common.RESULTS, "scaling.json") else (
        os.path.join(_common.RESULTS, "scaling_trials.json"))
    algorithm, objective = "ALGORITHM_UNSPECIFIED", 5.0
    server = start_local_server(os.path.join(tempfile.mkdtemp(), "trials.db"))
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args), "runs": []}
    try:
        with VizierClient(server.url, timeout=(10, 600)) as client:
            warm_up(client, algorithm)
            for workers in (1, 4):
                run = measure_trials(server.url, client, algorithm, workers, objective,
                                     args.trials)
                report["runs"].append(run)
                _common.save(report, out)
                print(f"{workers} workers: {run['trials']} trials in {run['seconds']:.1f} s, "
                      f"lost {run['lost']}, duplicated {run['duplicated']}", flush=True)
    finally:
        server.stop()
    one, four = report["runs"]
    speedup = one["seconds"] / four["seconds"]
    report["target"] = {"speedup": speedup, "met": speedup >= 3.5 and not four["lost"]
                        and not four["duplicated"]}
    _common.save(report, out)
    print(trials_table(report))
    print(f"  4 workers {speedup:.2f}x faster than 1 (target >= 3.5x): "
          f"{'met' if report['target']['met'] else 'NOT met'}")


def trials_table(report: dict[str, Any]) -> str:
    """Per worker count: the seconds to finish the trials, and the ask latency."""
    one = report["runs"][0]["seconds"]
    return _common.table(
        ["algorithm", "objective s", "workers", "trials", "seconds", "speed-up",
         "ask s (median)", "ask s (p90)", "lost", "duplicated"],
        [[r["algorithm"], r["objective_seconds"], r["workers"], r["trials"], r["seconds"],
          one / r["seconds"], r["median_ask_seconds"], r["p90_ask_seconds"], r["lost"],
          r["duplicated"]] for r in report["runs"]])


def warm_up(client: Any, algorithm: str) -> None:
    study = client.create_study(_common.PARENT, f"warmup-{algorithm}-{time.time_ns()}",
                                spec(algorithm))
    for round_ in range(3):
        trials = [client.suggest_trials(study, 1, client_id=f"w{round_}-{i}").trials[0]
                  for i in range(2)]
        for trial in trials:
            client.complete_trial(trial, {"objective": value(trial)})
    client.delete_study(study)


def measure(endpoint: str, client: Any, algorithm: str, workers: int, objective: float,
            window: float) -> dict[str, Any]:
    study = client.create_study(
        _common.PARENT, f"scaling-{algorithm}-{workers}-{objective}-{time.time_ns()}",
        spec(algorithm))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 3.0 + 0.5 * workers  # after every worker has imported its client
    processes = [ctx.Process(target=worker, args=(endpoint, study, i, objective, start_at,
                                                  window, queue)) for i in range(workers)]
    for p in processes:
        p.start()
    results = [queue.get() for _ in processes]
    for p in processes:
        p.join()
    completed = [name for r in results for name in r["completed"]]
    trials = client.list_trials(study)
    succeeded = {t["name"] for t in trials if t.get("state") == "SUCCEEDED"}
    lost = [n for n in completed if n not in succeeded]
    duplicated = len(completed) - len(set(completed))
    asks = [s for r in results for s in r["ask_seconds"]]
    return {"algorithm": algorithm, "workers": workers, "objective_seconds": objective,
            "window_seconds": window, "completed": len(completed),
            "trials_per_minute": len(completed) / window * 60, "lost": len(lost),
            "duplicated": duplicated, "study_trials": len(trials),
            "median_ask_seconds": _common.median(asks), "p90_ask_seconds":
            _common.percentile(asks, 90)}


def burst(endpoint: str, client: Any, workers: int, completed: int = 20) -> dict[str, Any]:
    """N workers asking at once on a default-algorithm study (see the module docstring)."""
    from vizier_keras.client import VizierClient

    algorithm = "ALGORITHM_UNSPECIFIED"
    study = client.create_study(_common.PARENT, f"burst-{workers}-{time.time_ns()}",
                                spec(algorithm))
    rng = random.Random(workers)
    for _ in range(completed):
        values = {"a": rng.uniform(0, 1), "b": 10 ** rng.uniform(-3, 0),
                  "c": rng.randint(1, 10), "d": rng.choice(["x", "y", "z"])}
        trial = client.create_trial(study, values)
        client.complete_trial(trial, {"objective": value(trial)})
    warm = []
    for i in range(2):
        t0 = time.perf_counter()
        trial = client.suggest_trials(study, 1, client_id=f"warm-{i}").trials[0]
        warm.append(time.perf_counter() - t0)
        client.complete_trial(trial, {"objective": value(trial)})
    go = threading.Event()
    got: dict[int, Any] = {}

    def ask(i: int) -> None:
        with VizierClient(endpoint) as mine:  # the default timeouts, as a user has them
            go.wait()
            try:
                trial = mine.suggest_trials(study, 1, client_id=f"burst-{i}").trials[0]
                got[i] = (time.perf_counter(), trial["name"])
            except Exception as e:  # counted as failed
                got[i] = (time.perf_counter(), e)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    start = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    failed = [repr(x) for _, x in got.values() if not isinstance(x, str)]
    names = [x for _, x in got.values() if isinstance(x, str)]
    all_served = max(t for t, _ in got.values()) - start
    trials = client.list_trials(study)
    for trial in trials:
        if trial.get("state") == "ACTIVE":
            client.complete_trial(trial, {"objective": value(trial)})
    client.delete_study(study)
    return {"workers": workers, "completed_before": completed + 2,
            "warm_suggest_seconds": warm[-1], "first_warm_seconds": warm[0],
            "all_served_seconds": all_served, "ratio_to_warm": all_served / warm[-1],
            "failed": failed, "distinct_trials": len(set(names)),
            "study_trials_after": len(trials),
            "computed_twice": len(trials) - (completed + 2 + workers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows, RANDOM_SEARCH")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--objectives", default="0.5,5")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--window", type=float, default=None,
                        help="seconds per measurement (default: 12x the objective, >= 30)")
    parser.add_argument("--burst", default=None,
                        help="only the burst measurement, for these worker counts (e.g. 1,8,32)")
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "scaling.json"))
    parser.add_argument("--trials", type=int, default=None,
                        help="only the fixed-trial-count measurement: 1 and 4 workers finish "
                             "this many trials (default algorithm, 5 s objective)")
    args = parser.parse_args()
    if args.burst:
        return main_burst(args)
    if args.trials:
        return main_trials(args)
    if args.quick:
        args.algorithms = "RANDOM_SEARCH"

    from vizier_keras.client import VizierClient
    from vizier_keras.server.embedded import start_local_server

    server = start_local_server(os.path.join(tempfile.mkdtemp(), "scaling.db"))
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args), "runs": []}
    try:
        with VizierClient(server.url, timeout=(10, 600)) as client:
            for algorithm in args.algorithms.split(","):
                warm_up(client, algorithm)
                for objective in (float(x) for x in args.objectives.split(",")):
                    window = args.window or max(30.0, 12 * objective)
                    if args.quick:
                        window = max(8.0, 3 * objective)
                    for workers in (int(x) for x in args.workers.split(",")):
                        run = measure(server.url, client, algorithm, workers, objective, window)
                        report["runs"].append(run)
                        _common.save(report, args.out)
                        print(f"{algorithm} {objective:g} s x {workers} workers: "
                              f"{run['trials_per_minute']:.1f} trials/min, lost {run['lost']}, "
                              f"duplicated {run['duplicated']}", flush=True)
    finally:
        server.stop()
    for run in report["runs"]:
        one = next(r for r in report["runs"] if r["workers"] == 1
                   and r["algorithm"] == run["algorithm"]
                   and r["objective_seconds"] == run["objective_seconds"])
        run["speedup"] = run["trials_per_minute"] / one["trials_per_minute"]
    target = [r for r in report["runs"] if r["algorithm"] == "RANDOM_SEARCH"
              and r["objective_seconds"] == 5 and r["workers"] == 4]
    report["target_random_5s_4_workers_speedup"] = target[0]["speedup"] if target else None
    _common.save(report, args.out)
    print(table(report))
    if target:
        print(f"  RANDOM_SEARCH, 5 s objective, 4 workers: {target[0]['speedup']:.2f}x "
              f"(target >= 3.5x)")


def table(report: dict[str, Any]) -> str:
    """Trials per minute and speed-up over one worker, per algorithm, objective and workers."""
    return _common.table(
        ["algorithm", "objective s", "workers", "trials/min", "speed-up", "ask ms (median)",
         "lost", "duplicated"],
        [[r["algorithm"], r["objective_seconds"], r["workers"], r["trials_per_minute"],
          r["speedup"], r["median_ask_seconds"] * 1000, r["lost"], r["duplicated"]]
         for r in report["runs"]])


def burst_table(report: dict[str, Any]) -> str:
    """Per burst size: one warm suggest, the time until every worker had a trial, the ratio."""
    return _common.table(
        ["workers at once", "warm suggest s", "all served s", "x warm", "failed",
         "computed twice"],
        [[r["workers"], r["warm_suggest_seconds"], r["all_served_seconds"], r["ratio_to_warm"],
          len(r["failed"]), r["computed_twice"]] for r in report["runs"]])


def main_burst(args: argparse.Namespace) -> None:
    from vizier_keras.client import VizierClient
    from vizier_keras.server.embedded import start_local_server

    out = args.out if args.out != os.path.join(_common.RESULTS, "scaling.json") else (
        os.path.join(_common.RESULTS, "burst.json"))
    server = start_local_server(os.path.join(tempfile.mkdtemp(), "burst.db"))
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args), "runs": []}
    try:
        with VizierClient(server.url, timeout=(10, 600)) as client:
            warm_up(client, "ALGORITHM_UNSPECIFIED")
            for workers in (int(x) for x in args.burst.split(",")):
                run = burst(server.url, client, workers)
                report["runs"].append(run)
                _common.save(report, out)
                print(f"{workers} at once: all served in {run['all_served_seconds']:.2f} s "
                      f"({run['ratio_to_warm']:.1f}x one warm suggest of "
                      f"{run['warm_suggest_seconds']:.2f} s), failed {len(run['failed'])}, "
                      f"computed twice {run['computed_twice']}", flush=True)
    finally:
        server.stop()
    target = [r for r in report["runs"] if r["workers"] == 32]
    if target:
        r = target[0]
        report["target_32_met"] = (r["ratio_to_warm"] <= 16 and not r["failed"]
                                   and r["computed_twice"] == 0)
    _common.save(report, out)
    print(burst_table(report))
    if target:
        print(f"  32 at once: {target[0]['ratio_to_warm']:.1f}x one warm suggest "
              f"(target <= 16x, no failure, nothing computed twice): "
              f"{'met' if report['target_32_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
