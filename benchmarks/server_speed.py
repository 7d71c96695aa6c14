"""Speed, memory and quality of the embedded service against plain Open Source Vizier.

Run:  python benchmarks/server_speed.py [--quick] [--out benchmarks/results/server_speed.json]
      python benchmarks/server_speed.py --loop-only   (the headline alone, ~4 min)

Measured side by side in one run, each part in fresh processes:

0. The headline, GP suggestion latency in the loop a tuning run makes: from 50 completed
   trials (4 parameters, below), each suggested trial is evaluated and completed before the
   next suggest, so the trial count grows by one per call. Two warm-up calls (the first traces
   and compiles), then 10 timed calls (52 to 61 completed trials): plain OSS Vizier's own
   service in process against the vizier-keras server over HTTP, JAX's persistent compilation
   cache off for both.
1. GP suggestion latency at a fixed 50 completed trials, 4 parameters (two floats, one
   log-scaled; an integer; a categorical), default algorithm (GP-UCB-PE): plain OSS Vizier's
   own service in process (``VizierServicer`` with its default policies) against the
   vizier-keras server over HTTP. Each suggestion's trial is deleted again, so every call sees
   50 completed trials and none pending (not the loop a tuning run makes: see 0). The first
   call (tracing and compiling) is reported apart from the rest; JAX's persistent compilation
   cache is off for both.
2. RANDOM_SEARCH suggestion latency over HTTP (same study shape).
3. Memory of the server process: peak RSS with the GP at 50 trials, and RSS after every 100 of
   N suggestions (growth).
4. Quality: plain OSS GP-UCB-PE against the configuration the server runs
   (``gp.gp_ucb_pe_designer``), same seeds, on shifted test functions over the same space:
   best value found after T trials. Plain OSS is slow, so this runs few seeds.
5. Lockstep: the server's configuration against the same with OSS's own acquisition scores
   (TFP's path instead of the gp package's equivalent scores), two designers fed the same history:
   at every trial both suggest, the server's suggestion is evaluated and given to both. Counts
   the suggestions that agree (all parameters within 1e-6 of each other), over more seeds and
   two functions, with each side's time per suggestion.

Prints a table and writes the raw numbers as JSON. Numbers are never asserted in the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from lib import _common  # noqa: E402  (benchmarks/, on the path above)

PARENT = "projects/bench/locations/local"
METRIC = "objective"


def vertex_spec(algorithm: str) -> dict[str, Any]:
    return {
        "metrics": [{"metricId": METRIC, "goal": "MINIMIZE"}],
        "parameters": [
            {"parameterId": "a", "doubleValueSpec": {"minValue": 0.0, "maxValue": 1.0}},
            {"parameterId": "b", "doubleValueSpec": {"minValue": 1e-3, "maxValue": 1.0},
             "scaleType": "UNIT_LOG_SCALE"},
            {"parameterId": "c", "integerValueSpec": {"minValue": "1", "maxValue": "10"}},
            {"parameterId": "d", "categoricalValueSpec": {"values": ["x", "y", "z"]}},
        ],
        "algorithm": algorithm,
    }


def objective(values: dict[str, Any], shift: float = 0.3, kind: str = "bowl") -> float:
    """Shifted test functions over the space (minimum away from the centre)."""
    a, b, c, d = float(values["a"]), float(values["b"]), float(values["c"]), values["d"]
    lb = math.log10(b)  # in [-3, 0]
    penalty = {"x": 0.3, "y": 0.0, "z": 0.15}[d]
    if kind == "bowl":
        return (a - shift) ** 2 + ((lb + 2.2) / 3) ** 2 + ((c - 7) / 9) ** 2 + penalty
    # A curved valley (Rosenbrock-like in a and log b).
    u, v = 2 * (a - shift), (lb + 1.5) / 1.5
    return (1 - u) ** 2 * 0.1 + (v - u * u) ** 2 + ((c - 3) / 9) ** 2 + penalty


def seed_trials(n: int, seed: int = 0) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        values = {"a": rng.uniform(0, 1), "b": 10 ** rng.uniform(-3, 0),
                  "c": rng.randint(1, 10), "d": rng.choice(["x", "y", "z"])}
        out.append({"values": values, "objective": objective(values)})
    return out


def rss_mb(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


# --------------------------------------------------------------------------- workers

def _plain_study(n_trials: int, name: str) -> tuple[Any, Any]:
    """Plain OSS Vizier's own VizierServicer (default policies) in process, and a study on it
    with ``n_trials`` completed seed trials."""
    from google.protobuf import json_format
    from vizier._src.service import study_pb2, vizier_service, vizier_service_pb2

    db = os.path.join(tempfile.mkdtemp(), "oss.db")
    servicer = vizier_service.VizierServicer(database_url=f"sqlite:///{db}")
    study = servicer.CreateStudy(vizier_service_pb2.CreateStudyRequest(
        parent="owners/bench", study=json_format.ParseDict(
            {"displayName": name, "studySpec": vertex_spec("DEFAULT")}, study_pb2.Study())))
    for t in seed_trials(n_trials):
        trial = study_pb2.Trial(state=study_pb2.Trial.State.SUCCEEDED)
        for k, v in t["values"].items():
            p = trial.parameters.add(parameter_id=k)
            if isinstance(v, str):
                p.value.string_value = v
            else:
                p.value.number_value = float(v)
        trial.final_measurement.metrics.add(metric_id=METRIC, value=t["objective"])
        servicer.CreateTrial(vizier_service_pb2.CreateTrialRequest(parent=study.name,
                                                                   trial=trial))
    return servicer, study


def plain_oss_latency(n_trials: int, calls: int, queue: Any) -> None:
    """Plain OSS Vizier: its own VizierServicer (default policies), in process."""
    from vizier._src.service import vizier_service_pb2

    servicer, study = _plain_study(n_trials, "plain")
    times = []
    for i in range(calls):
        start = time.perf_counter()
        op = servicer.SuggestTrials(vizier_service_pb2.SuggestTrialsRequest(
            parent=study.name, suggestion_count=1, client_id=f"c{i}"))
        times.append(time.perf_counter() - start)
        assert op.done and not op.HasField("error"), op
        response = vizier_service_pb2.SuggestTrialsResponse.FromString(op.response.value)
        servicer.DeleteTrial(vizier_service_pb2.DeleteTrialRequest(
            name=response.trials[0].name))
    queue.put({"times": times, "rss": rss_mb(os.getpid())})


def plain_oss_loop(n_trials: int, warmup: int, calls: int, queue: Any) -> None:
    """Plain OSS Vizier in the growing loop: suggest, evaluate, complete, repeat."""
    from vizier._src.service import study_pb2, vizier_service_pb2

    servicer, study = _plain_study(n_trials, "plain-loop")
    times = []
    for _ in range(warmup + calls):
        start = time.perf_counter()
        op = servicer.SuggestTrials(vizier_service_pb2.SuggestTrialsRequest(
            parent=study.name, suggestion_count=1, client_id="worker"))
        times.append(time.perf_counter() - start)
        assert op.done and not op.HasField("error"), op
        trial = vizier_service_pb2.SuggestTrialsResponse.FromString(op.response.value).trials[0]
        values = {p.parameter_id: (p.value.string_value if p.value.HasField("string_value")
                                   else p.value.number_value) for p in trial.parameters}
        measurement = study_pb2.Measurement()
        measurement.metrics.add(metric_id=METRIC, value=objective(values))
        servicer.CompleteTrial(vizier_service_pb2.CompleteTrialRequest(
            name=trial.name, final_measurement=measurement))
    queue.put({"times": times})


def server_loop(n_trials: int, warmup: int, calls: int, queue: Any) -> None:
    """The vizier-keras server over HTTP in the growing loop."""
    from vizier_keras.client import VizierClient
    from vizier_keras.server.embedded import start_local_server

    db = os.path.join(tempfile.mkdtemp(), "server.db")
    server = start_local_server(db, compilation_cache="")
    try:
        with VizierClient(server.url, timeout=(10, 600)) as client:
            study = _server_study(client, "ALGORITHM_UNSPECIFIED", n_trials)
            times = []
            for _ in range(warmup + calls):
                start = time.perf_counter()
                trial = client.suggest_trials(study, 1, client_id="worker").trials[0]
                times.append(time.perf_counter() - start)
                values = {p["parameterId"]: p["value"] for p in trial["parameters"]}
                client.complete_trial(trial, {METRIC: objective(values)})
    finally:
        server.stop()
    queue.put({"times": times})


def loop_report(n_trials: int, warmup: int, calls: int) -> dict[str, Any]:
    """Part 0 (see the module docstring), printed and returned."""
    print(f"== The real loop: GP suggest from {n_trials} completed trials, each suggestion "
          f"completed before the next; {warmup} warm-up calls, then {calls} timed ==",
          flush=True)
    plain = run(plain_oss_loop, n_trials, warmup, calls)["times"]
    ours = run(server_loop, n_trials, warmup, calls)["times"]
    out = {"loop": "growing: each suggestion completed before the next suggest",
           "completed_trials_at_first_timed_call": n_trials + warmup,
           "warmup_calls": warmup, "timed_calls": calls,
           "plain_oss_in_process_s": plain, "vizier_keras_http_s": ours,
           "plain_p50_s": statistics.median(plain[warmup:]),
           "ours_p50_s": statistics.median(ours[warmup:]),
           "target_ours_p50_s": 0.5}
    out["p50_ratio"] = out["plain_p50_s"] / out["ours_p50_s"]
    print(f"{'':34}{'warm-up calls':>20}{'p50 timed':>12}{'max timed':>12}")
    for label, times in (("plain OSS Vizier (in process)", plain),
                         ("vizier-keras server (HTTP)", ours)):
        warm = ", ".join(f"{t:.1f}" for t in times[:warmup])
        print(f"{label:34}{warm + ' s':>20}{statistics.median(times[warmup:]):11.2f}s"
              f"{max(times[warmup:]):11.2f}s")
    print(f"p50 ratio plain/ours: {out['p50_ratio']:.1f}x; target ours <= 0.5 s: "
          f"{'met' if out['ours_p50_s'] <= 0.5 else 'NOT met'}", flush=True)
    return out


def _server_study(client: Any, algorithm: str, n_trials: int) -> dict[str, Any]:
    study = client.create_study(PARENT, f"{algorithm}-{time.time_ns()}", vertex_spec(algorithm))
    for t in seed_trials(n_trials):
        trial = client.create_trial(study, t["values"])
        client.complete_trial(trial, {METRIC: t["objective"]})
    return study


def server_latency(n_trials: int, gp_calls: int, random_calls: int, memory_calls: int,
                   cache: str, queue: Any) -> None:
    """The vizier-keras server over HTTP, in its own process."""
    from vizier_keras.client import VizierClient
    from vizier_keras.server.embedded import start_local_server

    db = os.path.join(tempfile.mkdtemp(), "server.db")
    server = start_local_server(db, compilation_cache=cache)
    result: dict[str, Any] = {}
    try:
        with VizierClient(server.url, timeout=(10, 600)) as client:
            for algorithm, calls in (("RANDOM_SEARCH", random_calls),
                                     ("ALGORITHM_UNSPECIFIED", gp_calls)):
                study = _server_study(client, algorithm, n_trials)
                times = []
                for i in range(calls):
                    start = time.perf_counter()
                    trial = client.suggest_trials(study, 1, client_id=f"c{i}").trials[0]
                    times.append(time.perf_counter() - start)
                    client.delete_trial(trial)
                result[algorithm] = times
            result["rss_after_gp"] = rss_mb(server.pid)
            memory = [rss_mb(server.pid)["VmRSS"]]
            study = _server_study(client, "ALGORITHM_UNSPECIFIED", n_trials)
            for i in range(memory_calls):
                trial = client.suggest_trials(study, 1, client_id=f"m{i}").trials[0]
                client.delete_trial(trial)
                if (i + 1) % 100 == 0 or i + 1 == memory_calls:
                    memory.append(rss_mb(server.pid)["VmRSS"])
            result["memory_rss_mb"] = memory
            result["rss_end"] = rss_mb(server.pid)
    finally:
        server.stop()
    queue.put(result)


def quality_runs(runs: list[tuple[str, int]], trials: int, which: str, queue: Any) -> None:
    """Best-so-far curves of one designer configuration on (function, seed) runs, in one process
    (compiled programs are reused from run to run, as in a server).

    ``which``: "plain" (OSS's GP-UCB-PE as OSS configures it) or "ours" (the server's
    configuration).
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    from google.protobuf import json_format
    from vizier import pyvizier as vz
    from vizier._src.algorithms.core import abstractions
    from vizier._src.algorithms.designers import gp_ucb_pe
    from vizier._src.service import study_pb2
    from vizier.service import pyvizier as svz

    from vizier_keras.server import gp

    spec = json_format.ParseDict(vertex_spec("DEFAULT"), study_pb2.StudySpec())
    problem = svz.StudyConfig.from_proto(spec).to_problem()
    out = []
    for kind, seed in runs:
        rng = jax.random.PRNGKey(seed)
        if which == "plain":
            designer = gp_ucb_pe.VizierGPUCBPEBandit(problem, rng=rng)
        else:
            designer = gp.gp_ucb_pe_designer(problem, rng=rng)
        shift = 0.2 + 0.07 * seed
        best = math.inf
        curve, times = [], []
        for i in range(trials):
            start = time.perf_counter()
            suggestion = designer.suggest(1)[0]
            times.append(time.perf_counter() - start)
            values = {k: v.value for k, v in suggestion.parameters.items()}
            value = objective(values, shift=shift, kind=kind)
            trial = suggestion.to_trial(i + 1)
            trial.complete(vz.Measurement(metrics={METRIC: value}))
            designer.update(abstractions.CompletedTrials([trial]), abstractions.ActiveTrials())
            best = min(best, value)
            curve.append(best)
        out.append({"function": kind, "seed": seed, "curve": curve, "times": times})
    queue.put(out)


def lockstep_runs(runs: list[tuple[str, int]], trials: int, queue: Any) -> None:
    """The server's designer and the same with OSS's acquisition scores, fed the same history
    (the server's suggestions); one process, so compiled programs are reused as in a server."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from google.protobuf import json_format
    from vizier import pyvizier as vz
    from vizier._src.algorithms.core import abstractions
    from vizier._src.algorithms.optimizers import vectorized_base as vb
    from vizier._src.service import study_pb2
    from vizier.service import pyvizier as svz

    from vizier_keras.server import gp

    spec = json_format.ParseDict(vertex_spec("DEFAULT"), study_pb2.StudySpec())
    problem = svz.StudyConfig.from_proto(spec).to_problem()
    # OSS's optimizer factory with the gp package's stable sampler and projection (so that it is
    # compiled once too), scoring through OSS's own score functions.
    fast = gp.ACQUISITION_OPTIMIZER_FACTORY
    oss_scores = vb.VectorizedOptimizerFactory(
        strategy_factory=fast.strategy_factory, max_evaluations=fast.max_evaluations,
        suggestion_batch_size=fast.suggestion_batch_size)
    out = []
    for kind, seed in runs:
        ours = gp.gp_ucb_pe_designer(problem, rng=jax.random.PRNGKey(seed))
        theirs = gp.gp_ucb_pe_designer(problem, rng=jax.random.PRNGKey(seed),
                                           acquisition_optimizer_factory=oss_scores)
        shift = 0.2 + 0.07 * seed
        best = math.inf
        curve, distances, our_times, their_times, acquisitions = [], [], [], [], []
        for i in range(trials):
            start = time.perf_counter()
            mine = ours.suggest(1)[0]
            our_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            other = theirs.suggest(1)[0]
            their_times.append(time.perf_counter() - start)
            a = np.asarray(ours._converter.to_features([mine.to_trial()]).continuous.unpad())
            b = np.asarray(ours._converter.to_features([other.to_trial()]).continuous.unpad())
            same_categories = all(
                mine.parameters[k].value == other.parameters[k].value
                for k in mine.parameters if isinstance(mine.parameters[k].value, str))
            distances.append(float(np.max(np.abs(a - b))) if same_categories else math.inf)
            acquisitions.append([_acquisition(mine), _acquisition(other)])
            values = {k: v.value for k, v in mine.parameters.items()}
            value = objective(values, shift=shift, kind=kind)
            trial = mine.to_trial(i + 1)
            trial.complete(vz.Measurement(metrics={METRIC: value}))
            for designer in (ours, theirs):
                designer.update(abstractions.CompletedTrials([trial]),
                                abstractions.ActiveTrials())
            best = min(best, value)
            curve.append(best)
        out.append({"function": kind, "seed": seed, "seed_trials": ours._num_seed_trials,
                    "curve": curve, "distances": distances, "acquisitions": acquisitions,
                    "ours_times": our_times, "oss_scores_times": their_times})
    queue.put(out)


def _acquisition(suggestion: Any) -> float | None:
    """The acquisition value the designer found for its suggestion (OSS records it)."""
    raw = suggestion.metadata.ns("devinfo").get("acquisition_optimization")
    if not raw:
        return None
    value = json.loads(raw)["acquisition"]  # a NumPy scalar, written as {"value": ...}
    return float(value["value"] if isinstance(value, dict) else value)


def lockstep(kinds: list[str], seeds: list[int], trials: int) -> dict[str, Any]:
    runs = run(lockstep_runs, [(k, s) for k in kinds for s in seeds], trials)
    # The first suggestions are seeds (no GP): count the GP ones only; times leave out each
    # run's first GP suggestion too (tracing and compiling).
    gp_distances = [d for r in runs for d in r["distances"][r["seed_trials"]:]]
    agree = sum(d <= 1e-6 for d in gp_distances)
    # Where they differ: is the one found with the gp package's scores as good an optimum of the
    # acquisition function as the one found with OSS's?
    pairs = [a for r in runs for a in r["acquisitions"][r["seed_trials"]:]
             if None not in a]
    as_good = sum(mine >= theirs - 1e-9 * max(1.0, abs(theirs)) for mine, theirs in pairs)
    ours_t = [t for r in runs for t in r["ours_times"][r["seed_trials"] + 1:]]
    theirs_t = [t for r in runs for t in r["oss_scores_times"][r["seed_trials"] + 1:]]
    for r in runs:
        print(f"  {r['function']:7} seed {r['seed']}: best {r['curve'][-1]:.4f}; suggestions "
              f"agreeing {sum(d <= 1e-6 for d in r['distances'])}/{len(r['distances'])}, "
              f"largest difference {max(r['distances']):.2g}", flush=True)
    summary = {"trials": trials, "runs": runs, "gp_suggestions": len(gp_distances),
               "agreeing": agree, "acquisition_at_least_as_high": as_good,
               "acquisition_pairs": len(pairs),
               "ours_p50_s": statistics.median(ours_t) if ours_t else None,
               "oss_scores_p50_s": statistics.median(theirs_t) if theirs_t else None}
    print(f"  GP suggestions agreeing: {agree} of {len(gp_distances)}; acquisition value of "
          f"the gp package's at least as high as OSS's in {as_good} of {len(pairs)}",
          flush=True)
    print(f"  designer time per suggestion p50 "
          f"{summary['oss_scores_p50_s']:.2f} s (OSS scores) vs {summary['ours_p50_s']:.2f} s "
          f"(the gp package's scores), each run's first GP suggestion left out", flush=True)
    return summary


def compare(kinds: list[str], seeds: list[int], trials: int, a: str, b: str
            ) -> dict[str, Any]:
    runs = [(kind, seed) for kind in kinds for seed in seeds]
    results = {which: run(quality_runs, runs, trials, which) for which in (a, b)}
    rows = []
    for ra, rb in zip(results[a], results[b], strict=True):
        rows.append({"function": ra["function"], "seed": ra["seed"], a: ra, b: rb})
        print(f"  {ra['function']:7} seed {ra['seed']}: {a} {ra['curve'][-1]:.4f} "
              f"({statistics.median(ra['times']):.2f} s/suggest)   {b} "
              f"{rb['curve'][-1]:.4f} ({statistics.median(rb['times']):.2f} s/suggest)",
              flush=True)
    fa = [r[a]["curve"][-1] for r in rows]
    fb = [r[b]["curve"][-1] for r in rows]
    summary = {"trials": trials, "runs": rows, f"{a}_median_best": statistics.median(fa),
               f"{b}_median_best": statistics.median(fb),
               f"{a}_mean_best": statistics.fmean(fa), f"{b}_mean_best": statistics.fmean(fb),
               f"{b}_at_least_as_good": sum(y <= x for x, y in zip(fa, fb, strict=True)),
               "runs_total": len(rows)}
    print(f"  median best {a} {summary[f'{a}_median_best']:.4f}, {b} "
          f"{summary[f'{b}_median_best']:.4f}; mean {summary[f'{a}_mean_best']:.4f} vs "
          f"{summary[f'{b}_mean_best']:.4f}; {b} at least as good in "
          f"{summary[f'{b}_at_least_as_good']} of {len(rows)} runs", flush=True)
    return summary


def run(target: Any, *args: Any) -> Any:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


# --------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and seeds (~10 min)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "server_speed.json"))
    parser.add_argument("--memory-only", type=int, metavar="CALLS",
                        help="measure only the server's memory over CALLS GP suggests")
    parser.add_argument("--loop-only", action="store_true",
                        help="measure only the headline: GP suggest in the growing loop")
    args = parser.parse_args()
    quick = args.quick
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version()}
    if args.loop_only:
        os.environ["JAX_PLATFORMS"] = "cpu"
        save({"date": time.strftime("%Y-%m-%d"), "machine": machine,
              "real_loop": loop_report(50, 2, 10)}, args.out)
        print(f"wrote {args.out}")
        return
    if args.memory_only:
        os.environ["JAX_PLATFORMS"] = "cpu"
        memory = memory_report(run(server_latency, 50, 1, 1, args.memory_only, ""),
                               args.memory_only)
        save({"date": time.strftime("%Y-%m-%d"), "memory": memory}, args.out)
        print_memory(memory)
        return
    n_trials = 50
    gp_calls = 7
    random_calls = 100 if quick else 300
    memory_calls = 100 if quick else 500
    kinds = ["bowl"] if quick else ["bowl", "valley"]
    seeds = [0, 1, 2] if quick else list(range(8))
    quality_trials = 12 if quick else 20
    plain_seeds, plain_trials = (2, 10) if quick else (3, 15)

    os.environ["JAX_PLATFORMS"] = "cpu"
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "machine": machine,
        "quick": quick, "n_completed_trials": n_trials,
    }
    report["real_loop"] = loop_report(n_trials, 2, 10)
    save(report, args.out)
    print(f"\n== GP suggest at a fixed {n_trials} completed trials (4 parameters; each "
          "suggested trial deleted again) ==", flush=True)
    plain = run(plain_oss_latency, n_trials, gp_calls)
    ours = run(server_latency, n_trials, gp_calls, random_calls, memory_calls, "")
    cache = tempfile.mkdtemp(prefix="jax-cache-")
    run(server_latency, n_trials, 1, 1, 0, cache)  # fills the persistent compilation cache
    cached = run(server_latency, n_trials, 1, 1, 0, cache)
    plain_warm, ours_warm = plain["times"][1:], ours["ALGORITHM_UNSPECIFIED"][1:]
    report["gp"] = {
        "plain_oss_in_process_s": plain["times"], "vizier_keras_http_s":
            ours["ALGORITHM_UNSPECIFIED"],
        "plain_p50_s": statistics.median(plain_warm), "ours_p50_s": statistics.median(ours_warm),
        "p50_ratio": statistics.median(plain_warm) / statistics.median(ours_warm),
        "plain_first_s": plain["times"][0], "ours_first_s": ours["ALGORITHM_UNSPECIFIED"][0],
        "ours_first_with_compilation_cache_s": cached["ALGORITHM_UNSPECIFIED"][0],
        "plain_rss_mb": plain["rss"],
    }
    random_ms = [t * 1000 for t in ours["RANDOM_SEARCH"]]
    report["random"] = {"http_ms": random_ms, "p50_ms": statistics.median(random_ms),
                        "p90_ms": _common.percentile(random_ms, 90)}
    report["memory"] = memory_report(ours, memory_calls)
    save(report, args.out)  # each part as soon as it is measured
    g = report["gp"]
    print(f"{'':34}{'first call':>12}{'p50 after':>12}{'p90 after':>12}")
    print(f"{'plain OSS Vizier (in process)':34}{g['plain_first_s']:11.2f}s"
          f"{g['plain_p50_s']:11.2f}s{_common.percentile(plain_warm, 90):11.2f}s")
    print(f"{'vizier-keras server (HTTP)':34}{g['ours_first_s']:11.2f}s"
          f"{g['ours_p50_s']:11.2f}s{_common.percentile(ours_warm, 90):11.2f}s")
    print(f"p50 ratio plain/ours: {g['p50_ratio']:.1f}x   (target: ours <= 2.0 s); first call "
          f"with a filled compilation cache: {g['ours_first_with_compilation_cache_s']:.1f} s")
    print(f"RANDOM_SEARCH over HTTP: p50 {report['random']['p50_ms']:.1f} ms, "
          f"p90 {report['random']['p90_ms']:.1f} ms over {random_calls} calls "
          "(target: p50 <= 15 ms)")
    print_memory(report["memory"])

    print(f"\n== Quality, plain OSS against the server's configuration: best value after "
          f"{plain_trials} trials (lower is better) ==", flush=True)
    report["quality_plain_vs_ours"] = compare(kinds[:1], seeds[:plain_seeds], plain_trials,
                                              "plain", "ours")
    save(report, args.out)
    print(f"\n== Lockstep, OSS's acquisition scores against the gp package's, same history, "
          f"{quality_trials} trials ==", flush=True)
    report["lockstep_scores"] = lockstep(kinds, seeds, quality_trials)
    save(report, args.out)
    print(f"\nwrote {args.out}")


def memory_report(result: dict[str, Any], calls: int) -> dict[str, Any]:
    """The memory part of a :func:`server_latency` result."""
    return {"rss_after_gp_mb": result["rss_after_gp"],
            "rss_every_100_suggests_mb": result["memory_rss_mb"],
            "rss_end_mb": result["rss_end"], "suggest_calls": calls}


def print_memory(memory: dict[str, Any]) -> None:
    print(f"server memory: peak {memory['rss_end_mb']['VmHWM']:.0f} MB; RSS before and after "
          f"every 100 of {memory['suggest_calls']} more GP suggests: "
          + ", ".join(f"{x:.0f}" for x in memory["rss_every_100_suggests_mb"]) + " MB",
          flush=True)


def save(report: dict[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
