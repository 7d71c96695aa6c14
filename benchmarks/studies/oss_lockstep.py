"""OSS Vizier's GP-UCB-PE designer and this package's faster one, step by step on real runs.

Run:  python benchmarks/studies/oss_lockstep.py [--tasks rosenbrock-4d,rastrigin-4d] [--seeds 1]
          [--trials 30] [--out benchmarks/results/oss_lockstep.json]
      python benchmarks/studies/oss_lockstep.py --summarize     (the tables again, from --out)
      python benchmarks/studies/oss_lockstep.py --bests LABEL=JSON:NAME [...] --task rosenbrock-4d
          (run nothing: best at --at trials by seed, of runs in this script's, quality.py's or
          gp_variants.py's results; see :func:`compare_bests`)

``gp.gp_ucb_pe_designer`` is meant to compute what Open Source Vizier's
``VizierGPUCBPEBandit`` computes, faster. The agreement tests check pieces of it (the ARD fit,
the acquisition scores) and a suggestion on small random histories. This script checks whole
runs: at every step of a run of OSS's designer on a test function, both designers are built
fresh (as the service builds one per suggestion) with the same history, OSS's own trials so far,
and the same random key, and each suggests one trial. OSS's suggestion is evaluated and joins
the history; the table reports how far apart the two suggestions were, in the scaled space in
which the designers search ([0, 1] per parameter), step by step.

Exact agreement at every step is not to be expected: the ARD fit's L-BFGS-B starts include
ill-conditioned ones (gradient norms ~1e6), and differences of rounding (padded rows, the flat
gradient) can send one to another local optimum, so that the two GPs differ; and several
acquisition optima can be equally good. So each step is sorted: the same point; different
points of equal acquisition value (a tie); or one designer's acquisition value higher. A
designer that optimizes worse would come out lower more often than higher (the sign test in
the last line); rounding alone has no side.

Test functions only (OSS's GP fails with TensorFlow in the same process, and a Keras task would
train a model per step for nothing). OSS's designer compiles its programs again for every
suggestion (about 20 s each here), so each run takes ~10 minutes; each (task, seed) runs in a
fresh process (OSS keeps what it compiles; see ``quality.py``).
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

from lib import _common
from lib import tasks as task_defs

AGREE = 1e-3  # scaled units: suggestions closer than this count as the same point
TIE = 1e-4  # relative: different points whose acquisition values are this close tie
KINDS = ("same point", "tie", "ours lower", "ours higher", "seed trial")


def step_key(seed: int, step: int) -> Any:
    import jax

    return jax.random.PRNGKey(1000 * seed + step)


def one_run(task_name: str, seed: int, trials: int) -> dict[str, Any]:
    """OSS's designer for ``trials`` steps on ``task_name``, with this package's beside it."""
    os.environ["KERAS_BACKEND"] = "jax"  # keras_tuner (the space) must not load TensorFlow
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)  # as both services run their GP designers
    from gp_variants import problem_of
    from vizier import pyvizier as vz
    from vizier._src.algorithms.core import abstractions
    from vizier._src.algorithms.designers import gp_ucb_pe

    from vizier_keras.server import gp

    task = task_defs.by_name(task_name)
    problem = problem_of(task)
    metric = problem.metric_information.item().name
    names = [p.name for p in problem.search_space.parameters]
    low = np.array([problem.search_space.get(n).bounds[0] for n in names])
    span = np.array([problem.search_space.get(n).bounds[1] for n in names]) - low

    def suggest(make: Any, history: list[Any], key: Any) -> dict[str, Any]:
        designer = make(problem, rng=key)
        designer.update(abstractions.CompletedTrials(history), abstractions.ActiveTrials())
        start = time.perf_counter()
        (suggestion,) = designer.suggest(1)
        seconds = time.perf_counter() - start
        # What the designer reports of its choice (absent for seed trials): the acquisition
        # value it reached and whether it was UCB's or pure exploration's.
        meta = suggestion.metadata.ns("google_gp_ucb_pe_bandit").ns(
            "prediction_in_warped_y_space")
        return {"x": np.array([suggestion.parameters[n].value for n in names]),
                "seconds": seconds,
                "acquisition": float(meta["acquisition"]) if "acquisition" in meta else None,
                "use_ucb": meta.get("use_ucb")}

    history: list[Any] = []
    steps = []
    for step in range(trials):
        key = step_key(seed, step)
        oss = suggest(gp_ucb_pe.VizierGPUCBPEBandit, history, key)
        ours = suggest(gp.gp_ucb_pe_designer, history, key)
        diff = float(np.max(np.abs((oss["x"] - ours["x"]) / span)))
        params = dict(zip(names, (float(v) for v in oss["x"]), strict=True))
        value = task.evaluate(params, seed)
        trial = vz.Trial(id=step + 1, parameters=params)
        trial.complete(vz.Measurement({metric: value}))
        history.append(trial)
        steps.append({"step": step + 1, "oss": oss["x"].tolist(), "ours": ours["x"].tolist(),
                      "scaled_diff": diff, "value": value,
                      "oss_acquisition": oss["acquisition"],
                      "ours_acquisition": ours["acquisition"],
                      "oss_use_ucb": oss["use_ucb"], "ours_use_ucb": ours["use_ucb"],
                      "oss_seconds": oss["seconds"], "ours_seconds": ours["seconds"]})
        print(f"{task_name} seed {seed} step {step + 1}: scaled diff {diff:.2g}, acquisition "
              f"OSS {oss['acquisition']} ours {ours['acquisition']} (UCB {oss['use_ucb']}/"
              f"{ours['use_ucb']}), value {value:.4g} (OSS {oss['seconds']:.1f} s, ours "
              f"{ours['seconds']:.1f} s)", flush=True)
    return {"task": task_name, "seed": seed, "steps": steps}


def _run(job: tuple[Any, ...]) -> dict[str, Any]:
    return one_run(*job)


def compare_acquisition(step: dict[str, Any]) -> str:
    """How the two suggestions of a step compare under their designers' own acquisition
    values (the models are the same up to rounding): "same point", "tie" (different points,
    acquisition within :data:`TIE`), "ours lower", "ours higher", or "seed trial" (no GP)."""
    if step["scaled_diff"] < AGREE:
        return "same point"
    oss, ours = step["oss_acquisition"], step["ours_acquisition"]
    if oss is None or ours is None:
        return "seed trial"
    if abs(ours - oss) <= TIE * max(1.0, abs(oss)):
        return "tie"
    return "ours lower" if ours < oss else "ours higher"


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        steps = run["steps"]
        kinds = [compare_acquisition(s) for s in steps]
        rows.append({"task": run["task"], "seed": run["seed"], "steps": len(steps),
                     **{kind: kinds.count(kind) for kind in KINDS},
                     "ucb_choice_differs": sum(s["oss_use_ucb"] != s["ours_use_ucb"]
                                               for s in steps),
                     "max_scaled_diff": max(s["scaled_diff"] for s in steps),
                     "best": min(s["value"] for s in steps),
                     "oss_median_s": _common.median([s["oss_seconds"] for s in steps]),
                     "ours_median_s": _common.median([s["ours_seconds"] for s in steps])})
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """All runs together, with the two-sided sign test of "ours lower" against "ours higher"
    (a designer that optimizes its acquisition worse would be lower more often)."""
    from gp_variants import sign_test

    out: dict[str, Any] = {kind: sum(r[kind] for r in rows) for kind in KINDS}
    out["steps"] = sum(r["steps"] for r in rows)
    out["ucb_choice_differs"] = sum(r["ucb_choice_differs"] for r in rows)
    out["sign_test_p"] = sign_test(out["ours lower"], out["ours higher"])
    return out


def print_summary(rows: list[dict[str, Any]]) -> None:
    print(f"\nOSS's and this package's designer, same history and key, step by step: the same "
          f"point (within {AGREE} scaled), or different points whose acquisition values tie "
          f"(within {TIE} relative) or not")
    print(_common.table(
        ["task", "seed", "steps", *KINDS, "UCB/PE choice differs", "max diff", "best",
         "OSS s/suggest", "ours s/suggest"],
        [[r["task"], r["seed"], r["steps"], *(r[k] for k in KINDS), r["ucb_choice_differs"],
          r["max_scaled_diff"], r["best"], r["oss_median_s"], r["ours_median_s"]]
         for r in rows]))
    total = totals(rows)
    print(f"all runs: {total['steps']} steps; " + ", ".join(f"{k} {total[k]}" for k in KINDS)
          + f"; ours lower / higher sign test p = {total['sign_test_p']:.3g}")


def finish(report: dict[str, Any], out: str) -> None:
    """Adds the tables to ``report`` (runs in task and seed order), writes it and prints them."""
    report["runs"].sort(key=lambda r: (r["task"], r["seed"]))
    report["summary"] = summarize(report["runs"])
    report["totals"] = totals(report["summary"])
    _common.save(report, out)
    print_summary(report["summary"])


def best_at(run: dict[str, Any], at: int) -> float:
    """The best value within the first ``at`` trials of a run of this script (OSS's trajectory),
    of ``quality.py`` or of ``gp_variants.py``."""
    values = [s["value"] for s in run["steps"]] if "steps" in run else run["values"]
    return min(values[:at])


def load_bests(specs: list[str], task: str, at: int) -> dict[str, dict[int, float]]:
    """Best at ``at`` by seed, per label, from ``LABEL=JSON:NAME`` specs: the ``task`` runs in
    JSON of NAME (a peer of ``quality.py``, a variant of ``gp_variants.py``, or ``oss`` for this
    script's runs). Specs with the same label pool their files; a seed may appear once."""
    groups: dict[str, dict[int, float]] = {}
    for spec in specs:
        label, _, rest = spec.partition("=")
        path, _, name = rest.rpartition(":")
        if not (label and path and name):
            raise ValueError(f"--bests wants LABEL=JSON:NAME, got {spec!r}")
        with open(path) as f:
            runs = json.load(f)["runs"]
        group = groups.setdefault(label, {})
        for run in runs:
            if run["task"] != task or run.get("peer", run.get("variant", "oss")) != name:
                continue
            if run["seed"] in group:
                raise ValueError(f"{label}: seed {run['seed']} of {task} twice ({path})")
            group[run["seed"]] = best_at(run, at)
    return groups


def compare_bests(groups: dict[str, dict[int, float]], under: float | None = None
                  ) -> dict[str, dict[str, Any]]:
    """The first group against each other one: its median and (with ``under``) how many seeds
    are under that value; then on how many shared seeds the first group's best is lower and
    higher, and the two-sided Mann-Whitney p of the two groups' bests."""
    from scipy import stats

    first, *others = groups
    out: dict[str, dict[str, Any]] = {}
    for label, bests in groups.items():
        row: dict[str, Any] = {"runs": len(bests), "median": _common.median(list(bests.values()))}
        if under is not None:
            row["under"] = sum(v < under for v in bests.values())
        if label in others:
            shared = sorted(set(bests) & set(groups[first]))
            row["first_lower"] = sum(groups[first][s] < bests[s] for s in shared)
            row["first_higher"] = sum(groups[first][s] > bests[s] for s in shared)
            row["mann_whitney_p"] = float(stats.mannwhitneyu(
                list(groups[first].values()), list(bests.values()),
                alternative="two-sided").pvalue)
        out[label] = row
    return out


def print_bests(groups: dict[str, dict[int, float]], compared: dict[str, dict[str, Any]],
                under: float | None) -> None:
    seeds = sorted(set().union(*groups.values()))
    print(_common.table(["seed", *groups],
                        [[s, *(g.get(s, "-") for g in groups.values())] for s in seeds]))
    first = next(iter(groups))
    print(_common.table(
        ["group", "runs", "median", *([f"under {under:g}"] if under is not None else []),
         f"{first} lower / higher", "Mann-Whitney p (two-sided)"],
        [[label, r["runs"], r["median"], *([r["under"]] if under is not None else []),
          f"{r['first_lower']} / {r['first_higher']}" if "first_lower" in r else "-",
          r.get("mann_whitney_p", "-")] for label, r in compared.items()]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="rosenbrock-4d,rastrigin-4d")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="sphere-4d, 4 steps")
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: the tables again from --out (e.g. a run stopped "
                             "early: it keeps every finished (task, seed))")
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "oss_lockstep.json"))
    parser.add_argument("--bests", nargs="+", metavar="LABEL=JSON:NAME",
                        help="run nothing: compare bests at --at trials by seed of --task "
                             "(the first label against each other)")
    parser.add_argument("--task", default="rosenbrock-4d")
    parser.add_argument("--at", type=int, default=30)
    parser.add_argument("--under", type=float, help="with --bests: count bests under this")
    args = parser.parse_args(argv)
    if args.bests:
        groups = load_bests(args.bests, args.task, args.at)
        print_bests(groups, compare_bests(groups, args.under), args.under)
        return
    if args.summarize:
        with open(args.out) as f:
            finish(json.load(f), args.out)
        return
    if args.quick:
        args.tasks, args.seeds, args.trials = "sphere-4d", 1, 4
    names = args.tasks.split(",")
    for name in names:
        if not isinstance(task_defs.by_name(name), task_defs.FunctionTask):
            parser.error(f"--tasks: {name!r} is not a test function (only those run here)")
    jobs = [(name, seed, args.trials) for name in names
            for seed in range(args.first_seed, args.first_seed + args.seeds)]
    started = time.time()
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args), "runs": []}
    # A fresh process per run: OSS's designer keeps every program it compiles.
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for run in pool.imap_unordered(_run, jobs):
            report["runs"].append(run)
            report["wall_seconds"] = time.time() - started
            _common.save(report, args.out)
    finish(report, args.out)


if __name__ == "__main__":
    main()
