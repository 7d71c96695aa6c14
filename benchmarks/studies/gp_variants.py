"""Configurations of the default algorithm (GP-UCB-PE) side by side, in process.

Run:  python benchmarks/studies/gp_variants.py --variants '{"ucb1.0": {"ucb_coefficient": 1.0}}'
          --tasks rosenbrock-4d,rastrigin-4d --seeds 10
      python benchmarks/studies/gp_variants.py --summarize     (the table again, from --out)

The embedded service's default algorithm is Open Source Vizier's GP-UCB-PE
(:mod:`vizier_keras.server.gp`). This script runs that designer directly, without the
service, once with OSS's settings (``default``: ``gp.gp_ucb_pe_designer``; the service's
default until 2026-11-29, when it took the variant ``seed5-ucb1.0``, ``gp.SERVICE_SETTINGS``)
and once per variant, on the tasks of ``benchmarks/lib/tasks.py``, and reports median best-so-far
values and, seed by seed, how often a variant did better or worse than ``default`` (with an
exact sign test over all tasks): the evidence for or against changing a setting. A variant is
a set of settings as ``gp.gp_ucb_pe_designer_with`` takes them, the form of
``gp.SERVICE_SETTINGS``: ``UCBPEConfig`` fields (e.g. ``ucb_coefficient``) and designer
arguments (``num_seed_trials``, ``use_trust_region``, ``ensemble_size``), both written as in
OSS's ``gp_ucb_pe`` module without the leading underscore. One more key, ``gp_seed_offset``,
changes only the designer's random key (task seed + offset): the same settings with other
draws, e.g. ``{"local2-r0.1-gp1000": {...local2-r0.1's settings..., "gp_seed_offset": 1000}}``.

The search space is the one the service builds from the task's KerasTuner space (the same
conversion), and each run's designer sees its trials one at a time, as a single worker's study
does. Keras tasks train on the JAX backend here (OSS's GP fails with TensorFlow imported in the
same process), so their values are comparable between variants, not to ``quality.py``'s.

Results are written after every run and a rerun with the same ``--out`` skips the runs it
already has, so a long comparison can be run in parts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analyze import sign_test
from lib import _common
from lib import tasks as task_defs


def _worker_init() -> None:
    os.environ["KERAS_BACKEND"] = "jax"


def problem_of(task: Any) -> Any:
    """The OSS problem the service's default algorithm would see for ``task``."""
    import keras_tuner as kt
    from vizier.service import pyvizier as svz

    from vizier_keras import convert
    from vizier_keras.server.messages import flat_oss_spec

    spec = convert.study_spec(task.space(), kt.Objective("value", "min"))
    proto = flat_oss_spec(spec)
    return svz.StudyConfig.from_proto(proto).to_problem()


def settings_of(variant: dict[str, Any]) -> dict[str, Any]:
    """The variant's designer settings: all its keys but ``gp_seed_offset``."""
    return {k: v for k, v in variant.items() if k != "gp_seed_offset"}


def designer_for(problem: Any, variant: dict[str, Any], seed: int) -> Any:
    """The variant's designer for task seed ``seed``; its random key is ``seed`` plus the
    variant's ``gp_seed_offset`` (0 unless given: a variant that repeats another's settings
    with other random draws for the GP, to see how much of a difference is the draws')."""
    import jax

    from vizier_keras.server import gp

    key = jax.random.PRNGKey(seed + int(variant.get("gp_seed_offset", 0)))
    return gp.gp_ucb_pe_designer_with(problem, settings_of(variant), rng=key)


def one_run(task_name: str, variant_name: str, variant: dict[str, Any], seed: int,
            trials: int) -> dict[str, Any]:
    import jax

    jax.config.update("jax_enable_x64", True)  # as the service runs its GP designers
    from vizier import pyvizier as vz
    from vizier._src.algorithms.core import abstractions

    from vizier_keras.server import process

    process.enable_compilation_cache(os.path.join(_common.ROOT, ".jax-cache"))
    task = task_defs.by_name(task_name)
    problem = problem_of(task)
    designer = designer_for(problem, variant, seed)
    metric = problem.metric_information.item().name
    best, curve, values, ask_s = float("inf"), [], [], []
    for number in range(1, trials + 1):
        start = time.perf_counter()
        (suggestion,) = designer.suggest(1)
        ask_s.append(time.perf_counter() - start)
        params = {k: v.value for k, v in suggestion.parameters.items()}
        if len(params) != len(problem.search_space.parameters):
            raise RuntimeError(f"{task_name} {variant_name} seed {seed}: trial {number} has "
                               f"parameters {sorted(params)}")
        value = task.evaluate(params, seed)
        trial = suggestion.to_trial(number)
        trial.complete(vz.Measurement({metric: value}))
        designer.update(abstractions.CompletedTrials([trial]), abstractions.ActiveTrials())
        values.append(value)
        best = min(best, value)
        curve.append(best)
    return {"task": task_name, "variant": variant_name, "seed": seed, "values": values,
            "curve": curve, "ask_seconds": ask_s}


def _run(job: tuple[Any, ...]) -> dict[str, Any]:
    return one_run(*job)


def _bests(runs: list[dict[str, Any]], at: int) -> dict[str, dict[str, dict[int, float]]]:
    """Each run's best after ``at`` trials, by task, variant and seed."""
    by: dict[str, dict[str, dict[int, float]]] = {}
    for r in runs:
        curve = r["curve"]
        by.setdefault(r["task"], {}).setdefault(r["variant"], {})[r["seed"]] = (
            curve[min(at, len(curve)) - 1])
    return by


def _better_worse(bests: dict[int, float], other: dict[int, float]) -> list[int]:
    """On the seeds both ran: how many of ``bests`` were lower than ``other``'s, and higher."""
    paired = [s for s in bests if s in other]
    return [sum(bests[s] < other[s] for s in paired), sum(bests[s] > other[s] for s in paired)]


def summarize(runs: list[dict[str, Any]], at: int, baseline: str = "default"
              ) -> dict[str, Any]:
    """Per task and variant: the median best after ``at`` trials, the bests in seed order, and
    for each variant but ``baseline`` the seeds both ran on which it did better (lower) or
    worse (``better_than_<baseline>``, ``worse_than_<baseline>``)."""
    by = _bests(runs, at)
    summary: dict[str, Any] = {}
    for task, per in by.items():
        summary[task] = {}
        base = per.get(baseline, {})
        for variant, bests in sorted(per.items()):
            seeds = sorted(bests)
            in_order = [bests[s] for s in seeds]
            entry = {"seeds": len(seeds), f"median_best_at_{at}": _common.median(in_order),
                     "bests": in_order}
            if variant != baseline:
                better, worse = _better_worse(bests, base)
                entry[f"better_than_{baseline}"] = better
                entry[f"worse_than_{baseline}"] = worse
            summary[task][variant] = entry
    return summary


def print_summary(summary: dict[str, Any], at: int, baseline: str = "default") -> None:
    rows = []
    totals: dict[str, list[int]] = {}
    for task, per in summary.items():
        base = per.get(baseline, {}).get(f"median_best_at_{at}")
        for variant, e in per.items():
            m = e[f"median_best_at_{at}"]
            better = e.get(f"better_than_{baseline}")
            worse = e.get(f"worse_than_{baseline}")
            if better is not None:
                t = totals.setdefault(variant, [0, 0])
                t[0], t[1] = t[0] + better, t[1] + worse
            rows.append([task, variant, e["seeds"], m,
                         "" if base in (None, 0) or variant == baseline else m / base,
                         "" if better is None else f"{better} / {worse}"])
    print(_common.table(["task", "variant", "seeds", f"median best @{at}", f"/ {baseline}",
                         "seeds better / worse"], rows))
    for variant, (better, worse) in totals.items():
        print(f"  {variant}, all tasks: better than {baseline} on {better} seeds, worse on "
              f"{worse} (sign test p = {sign_test(better, worse):.3g})")


def draws_of(variants: dict[str, dict[str, Any]], baseline: str) -> list[str]:
    """The variants with ``baseline``'s settings (``baseline`` first), whatever their
    ``gp_seed_offset``: the same settings run with other random draws for the GP."""
    mine = settings_of(variants[baseline])
    same = sorted(name for name in variants
                  if name != baseline and settings_of(variants[name]) == mine)
    return [baseline, *same]


def summarize_draws(runs: list[dict[str, Any]], variants: dict[str, dict[str, Any]], at: int,
                    baseline: str) -> dict[str, Any]:
    """Per task: each draw of ``baseline``'s settings (:func:`draws_of`) and the median of all
    their runs together; and for every other variant, seed by seed, how often it was better
    (lower) or worse than each draw, so that a variant is read against the spread of the
    draws rather than against one of them. The draws themselves are compared with the first."""
    draws = draws_of(variants, baseline)
    by = _bests(runs, at)
    summary: dict[str, Any] = {}
    for task, per in by.items():
        present = [d for d in draws if d in per]
        if len(present) < 2:
            continue
        pooled = [v for d in present for v in per[d].values()]
        entry: dict[str, Any] = {"draws": {d: {"seeds": len(per[d]),
                                               "median": _common.median(list(per[d].values()))}
                                           for d in present},
                                 "pooled_median": _common.median(pooled), "variants": {}}
        for variant, bests in sorted(per.items()):
            if variant == present[0]:
                against: list[str] = []
            elif variant in present:
                against = [present[0]]
            else:
                against = present
            counts = [_better_worse(bests, per[d]) for d in against]
            entry["variants"][variant] = {
                "median": _common.median(list(bests.values())), "seeds": len(bests),
                "against": against, "better_worse": counts,
                "better": sum(c[0] for c in counts), "worse": sum(c[1] for c in counts)}
        summary[task] = entry
    return summary


def print_draws(summary: dict[str, Any], at: int) -> None:
    rows = []
    for task, entry in summary.items():
        for variant, e in entry["variants"].items():
            per_draw = ", ".join(f"{b} / {w}" for b, w in e["better_worse"]) or "-"
            rows.append([task, variant, e["seeds"], e["median"], entry["pooled_median"],
                         per_draw, f"{e['better']} / {e['worse']}" if e["against"] else "-"])
    print(_common.table(["task", "variant", "seeds", f"median best @{at}",
                         "draws pooled", "better / worse, per draw", "all draws"], rows))


def _summarize_save_print(report: dict[str, Any], out: str, at: int,
                          baseline: str = "default") -> None:
    # The stored summary always compares with ``default``; the printed one with ``baseline``.
    report["summary"] = summarize(report["runs"], at)
    _common.save(report, out)
    shown = report["summary"] if baseline == "default" else summarize(report["runs"], at,
                                                                      baseline)
    print_summary(shown, at, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default='{"ucb1.0": {"ucb_coefficient": 1.0}}',
                        help="JSON: name -> settings; 'default' (OSS's settings) always runs")
    parser.add_argument("--tasks", default="rosenbrock-4d,rastrigin-4d,ellipsoid-8d,rastrigin-8d")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "gp_variants.json"))
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: summarize the runs already in --out")
    parser.add_argument("--baseline", default="default",
                        help="the variant the printed table compares the others with")
    parser.add_argument("--draws", action="store_true",
                        help="run nothing: read the variants in --out against every run of "
                             "--baseline's settings with other GP draws (gp_seed_offset)")
    args = parser.parse_args()
    if args.summarize or args.draws:
        with open(args.out) as f:
            stored = json.load(f)
        if args.draws:
            print_draws(summarize_draws(stored["runs"], stored["variants"], args.trials,
                                        args.baseline), args.trials)
        else:
            _summarize_save_print(stored, args.out, args.trials, args.baseline)
        return

    variants = {"default": {}, **json.loads(args.variants)}
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args),
                              "variants": variants, "runs": []}
    if os.path.exists(args.out):
        with open(args.out) as f:
            earlier = json.load(f)
        known = {**earlier.get("variants", {}), **variants}
        report["variants"] = known
        report["runs"] = [r for r in earlier["runs"] if known.get(r["variant"]) ==
                          earlier["variants"].get(r["variant"])]
    done = {(r["task"], r["variant"], r["seed"]) for r in report["runs"]}
    jobs = [(task, name, variant, seed, args.trials)
            for seed in range(args.first_seed, args.first_seed + args.seeds)
            for task in args.tasks.split(",") for name, variant in variants.items()
            if (task, name, seed) not in done]
    started = time.time()
    with mp.get_context("spawn").Pool(args.workers, _worker_init) as pool:
        for i, result in enumerate(pool.imap_unordered(_run, jobs)):
            report["runs"].append(result)
            report["summary"] = summarize(report["runs"], args.trials)
            _common.save(report, args.out)
            print(f"[{i + 1}/{len(jobs)} {time.time() - started:.0f} s] {result['task']} "
                  f"{result['variant']} seed {result['seed']}: best {result['curve'][-1]:.4g}",
                  flush=True)
    _summarize_save_print(report, args.out, args.trials, args.baseline)


if __name__ == "__main__":
    main()
