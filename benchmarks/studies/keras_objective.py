"""What the Keras tasks' objective is made of: cross-entropy on the validation set, and the L2
weight penalty that Keras adds to every loss it reports.

Run:  python benchmarks/studies/keras_objective.py [--configs 40] [--quick]
      python benchmarks/studies/keras_objective.py --best-of RESULTS.json   (quality.py's runs)
      python benchmarks/studies/keras_objective.py --saturation RESULTS.json
      python benchmarks/studies/keras_objective.py --roughness RESULTS.json [--radii 0.01,0.05]
      python benchmarks/studies/keras_objective.py --retrain RESULTS.json [...] [--retrain-at 30,50]
      python benchmarks/studies/keras_objective.py --table roughness|retrain  (again, from --out)

``quality.py`` minimizes each Keras task's validation loss as Keras reports it
(``tasks.KerasTask.evaluate``: ``model.evaluate``, the ``val_loss`` a KerasTuner search sees).
Every task's search space tunes an L2 coefficient, and Keras's reported loss includes the
penalty ``l2 * sum(w ** 2)``, which depends on the weights only, not on the data. Where a data
set is easy, the cross-entropy of a good model is near zero and the reported "validation loss"
is mostly the penalty: the task then rewards small weights, not a better fit. This script
measures how much of the objective that is: ``--configs`` configurations per task drawn at
random from the task's space (seeded, the same draws every run), each trained once as
``quality.py`` trains it (TensorFlow backend, task seed 0), split into its parts
(``tasks.KerasTask.loss_parts``). It prints, per task, the parts among the best quarter of the
configurations by the objective, and the lowest cross-entropy any configuration reached (how
close the data's part is to saturating); the JSON has every configuration.

``--best-of`` does the same for the configurations the optimizers found: the best trial of each
Keras run in a ``quality.py`` JSON (runs record their parameters since 2026-11-29), trained
again with the run's seed; ``reproduced`` is the largest relative difference between the loss
trained again and the value the run recorded.

``--saturation`` needs no training: a mean cross-entropy ``c`` over ``n`` validation samples
bounds each sample's ``-log p(true class)`` by ``n * c``, so a loss (cross-entropy plus a
penalty >= 0) under ``log(2) / n`` means every validation sample is classified correctly. It
counts, per Keras task and optimizer in a ``quality.py`` JSON, the runs whose best value
after ``--at`` trials is under that bound, and the trials per run that are: how many of the
values an optimizer is ranked on belong to models that are already perfect on the
validation set.

``--roughness`` asks how rough the objective is where the optimizers compete: per Keras task
and seed, the best configuration among a ``quality.py`` JSON's runs with parameters is trained
again (``reproduced`` as above), then ``--neighbours`` configurations around it per radius,
each parameter moved uniformly within +-radius of its range in the space's own scale (log where
the space samples in log; integers rounded; seeded draws). The table gives, per task and
radius, the medians over seeds of the neighbours' median relative change of the loss and of
the best neighbour's: if moving by 1% of every range changes the loss by more than what
separates two optimizers' medians, the ranking there is decided by how many trials land near
the good configurations, more than by where a model says the optimum is.

``--retrain`` reads the Keras runs a second way. A run's best value is the loss of one training
(the task seed's initialization), picked as the lowest of many: where the loss is that rough,
it is partly luck, and the configuration a user takes away, trained again, gives a fresh draw.
Each run's best configuration after each of ``--retrain-at`` trials (where the run has that
many) is trained again with the initializations ``--retrain-seeds`` (same data, same split);
its *retrained* loss is their mean. The table gives per task, optimizer and trial count the
median observed best and the median retrained loss over seeds, and ``--pair A@N B@M`` counts
the seeds on which A's configuration after N trials retrains lower than B's after M.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import analyze
from lib import _common
from lib import tasks as task_defs


def draw(task: Any, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` configurations drawn from ``task``'s KerasTuner space with its own sampling
    (log-scaled where the space says so)."""
    rng = random.Random(seed)
    space = task.space()
    return [{hp.name: hp.random_sample(rng.randrange(2 ** 31)) for hp in space.space}
            for _ in range(count)]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Of configurations with their ``loss``, ``crossentropy`` and ``penalty``: the medians of
    the best quarter by ``loss`` (at least one configuration), the penalty's share of the loss
    there, and the lowest cross-entropy of all."""
    finite = [r for r in rows
              if all(map(math.isfinite, (r["loss"], r["crossentropy"], r["penalty"])))]
    ranked = sorted(finite, key=lambda r: r["loss"])
    best = ranked[:max(1, len(ranked) // 4)] if ranked else []
    share = [r["penalty"] / r["loss"] for r in best if r["loss"] > 0]
    return {
        "configs": len(rows), "finite": len(finite), "best_quarter": len(best),
        "best_quarter_median_loss": _common.median([r["loss"] for r in best]),
        "best_quarter_median_crossentropy": _common.median([r["crossentropy"] for r in best]),
        "best_quarter_median_penalty_share": _common.median(share),
        "best_penalty_share": share[0] if share else float("nan"),
        "lowest_crossentropy": min((r["crossentropy"] for r in finite), default=float("nan")),
    }


def measure(configs: int, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": _common.machine(), "configs": configs, "seed": seed,
                              "tasks": {}}
    for task in task_defs.keras_tasks():
        started = time.time()
        rows = []
        for values in draw(task, configs, seed):
            rows.append({"values": values, **task.loss_parts(values, 0)})
        report["tasks"][task.name] = {"summary": summarize(rows), "rows": rows,
                                      "seconds": time.time() - started}
    return report


def keras_runs_with_params(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of Keras tasks that recorded each trial's parameters (since 2026-11-29)."""
    keras_names = {task.name for task in task_defs.keras_tasks()}
    return [run for run in runs if run["task"] in keras_names and "params" in run]


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best trial of each Keras run (with ``params``) in ``runs``, split into its parts."""
    out: dict[str, Any] = {"machine": _common.machine(), "rows": []}
    for run in keras_runs_with_params(runs):
        i = min(range(len(run["values"])), key=lambda k: run["values"][k])
        task = task_defs.by_name(run["task"])
        assert isinstance(task, task_defs.KerasTask)
        parts = task.loss_parts(run["params"][i], run["seed"])
        out["rows"].append({"task": run["task"], "peer": run["peer"], "seed": run["seed"],
                            "trial": i + 1, "recorded": run["values"][i],
                            "values": run["params"][i], **parts})
    return out


def best_of_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per task and peer: runs, median best loss, its cross-entropy and penalty share, and
    the largest relative difference between the loss trained again and the recorded one."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["peer"]), []).append(r)
    return [[task, peer, len(group), _common.median([r["loss"] for r in group]),
             _common.median([r["crossentropy"] for r in group]),
             _common.median([r["penalty"] / r["loss"] for r in group if r["loss"] > 0]),
             max((abs(r["loss"] - r["recorded"]) / abs(r["recorded"]) for r in group
                  if r["recorded"]), default=float("nan"))]
            for (task, peer), group in groups.items()]


def neighbour(space: Any, values: dict[str, Any], radius: float, rng: random.Random
              ) -> dict[str, Any]:
    """``values`` with every parameter of ``space`` moved uniformly within +-``radius`` of its
    range, in its own scale (log for log sampling), kept in bounds, integers rounded."""
    out = dict(values)
    for hp in space.space:
        low, high = float(hp.min_value), float(hp.max_value)
        log = getattr(hp, "sampling", "linear") == "log"
        to, back = (math.log, math.exp) if log else (float, float)
        moved = to(float(values[hp.name])) + rng.uniform(-radius, radius) * (to(high) - to(low))
        moved = min(max(back(moved), low), high)
        out[hp.name] = round(moved) if isinstance(values[hp.name], int) else moved
    return out


def best_configurations(runs: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (Keras task, seed): the lowest value among the runs with parameters, its
    configuration and where it came from."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for run in keras_runs_with_params(runs):
        for value, params in zip(run["values"], run["params"], strict=True):
            key = (run["task"], run["seed"])
            if math.isfinite(value) and (key not in best or value < best[key]["recorded"]):
                best[key] = {"recorded": value, "values": params, "peer": run["peer"]}
    return best


def roughness(runs: list[dict[str, Any]], radii: list[float], neighbours: int
              ) -> dict[str, Any]:
    """The best configuration per Keras task and seed trained again, and ``neighbours``
    neighbours per radius (see the module docstring)."""
    out: dict[str, Any] = {"machine": _common.machine(), "radii": radii,
                           "neighbours": neighbours, "rows": []}
    for (name, seed), best in sorted(best_configurations(runs).items()):
        task = task_defs.by_name(name)
        assert isinstance(task, task_defs.KerasTask)
        space = task.space()
        centre = task.evaluate(best["values"], seed)
        row = {"task": name, "seed": seed, "peer": best["peer"], "recorded": best["recorded"],
               "values": best["values"], "loss": centre, "neighbours": {}}
        rng = random.Random(f"{name}/{seed}")
        for radius in radii:
            moved = [neighbour(space, best["values"], radius, rng) for _ in range(neighbours)]
            row["neighbours"][str(radius)] = [
                {"values": v, "loss": task.evaluate(v, seed)} for v in moved]
        out["rows"].append(row)
        print(f"{name} seed {seed}: {centre:.4g} (recorded {best['recorded']:.4g})",
              file=sys.stderr, flush=True)
    return out


def middle_half_span(xs: list[float]) -> float:
    """The span of ``xs`` without its lowest and highest quarter (``len // 4`` each)."""
    ranked = sorted(xs)
    cut = len(ranked) // 4
    kept = ranked[cut:len(ranked) - cut]
    return kept[-1] - kept[0]


def roughness_rows(report: dict[str, Any]) -> list[list[Any]]:
    """Per task and radius: seeds; medians over seeds of the neighbours' median relative change
    of the loss, of the best neighbour's, of the share of neighbours worse by more than 5% and
    of the middle half's span of the changes; the seeds with a neighbour lower than the centre,
    and lower by more than 10%; the largest relative difference between the centre trained
    again and the recorded value."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in report["rows"]:
        for radius in row["neighbours"]:
            groups.setdefault((row["task"], radius), []).append(row)
    out = []
    for (task, radius), rows in sorted(groups.items()):
        medians, bests, worse, spans = [], [], [], []
        for row in rows:
            change = [n["loss"] / row["loss"] - 1 for n in row["neighbours"][radius]]
            medians.append(_common.median(change))
            bests.append(min(change))
            worse.append(sum(c > 0.05 for c in change) / len(change))
            spans.append(middle_half_span(change))
        out.append([task, float(radius), len(rows), _common.median(medians),
                    _common.median(bests), _common.median(worse), _common.median(spans),
                    sum(b < 0 for b in bests), sum(b < -0.1 for b in bests),
                    max(abs(r["loss"] - r["recorded"]) / abs(r["recorded"]) for r in rows)])
    return out


ROUGHNESS_COLUMNS = ["task", "radius", "seeds", "neighbours: median change",
                     "best neighbour: change", "share worse by > 5%", "middle half's span",
                     "seeds with a lower neighbour", "lower by > 10%", "reproduced"]


def retrain(runs: list[dict[str, Any]], at: list[int], seeds: list[int]) -> dict[str, Any]:
    """Each Keras run's best configuration after each trial count of ``at`` trained again with
    every initialization seed of ``seeds`` (a configuration once per seed, however many runs
    or trial counts picked it)."""
    cache: dict[str, list[float]] = {}
    out: dict[str, Any] = {"machine": _common.machine(), "at": at, "seeds": seeds, "rows": []}
    for run in keras_runs_with_params(runs):
        task = task_defs.by_name(run["task"])
        for n in at:
            if len(run["values"]) < n:
                continue
            i = min(range(n), key=lambda k: run["values"][k])
            values = run["params"][i]
            key = json.dumps([run["task"], values], sort_keys=True)
            if key not in cache:
                cache[key] = [task.evaluate(values, seed) for seed in seeds]
            out["rows"].append({"task": run["task"], "peer": run["peer"], "seed": run["seed"],
                                "at": n, "trial": i + 1, "observed": run["values"][i],
                                "values": values, "retrained": cache[key]})
        print(f"{run['task']} {run['peer']} seed {run['seed']}", file=sys.stderr, flush=True)
    return out


def retrain_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per task, optimizer and trial count: runs, the median observed best, the median
    retrained loss (each configuration's mean over the seeds), and the median of each run's
    retrained over observed, less 1."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["peer"], r["at"]), []).append(r)
    return [[task, f"{peer} @{at}", len(group), _common.median([r["observed"] for r in group]),
             _common.median([statistics.fmean(r["retrained"]) for r in group]),
             _common.median([statistics.fmean(r["retrained"]) / r["observed"] - 1 for r in group])]
            for (task, peer, at), group in sorted(groups.items())]


RETRAIN_COLUMNS = ["task", "optimizer", "runs", "observed best (median)", "retrained (median)",
                   "retrained / observed - 1 (median)"]


def print_retrained(rows: list[dict[str, Any]], pairs: list[list[tuple[str, int]]]) -> None:
    print(_common.table(RETRAIN_COLUMNS, retrain_rows(rows)))
    for first, second in pairs:
        print(_common.table(["task", "seeds", f"{first[0]}@{first[1]} lower",
                             f"{second[0]}@{second[1]} lower"],
                            retrain_pairs(rows, first, second)))


def retrain_pairs(rows: list[dict[str, Any]], first: tuple[str, int], second: tuple[str, int]
                  ) -> list[list[Any]]:
    """Per task, seed by seed: the seeds both have, on how many ``first`` (peer, trials)
    retrains lower than ``second`` and on how many higher (a tie counts in neither); seeds
    where either is missing are left out."""
    found: dict[tuple[str, str, int], dict[int, float]] = {}
    for r in rows:
        found.setdefault((r["task"], r["peer"], r["at"]), {})[r["seed"]] = statistics.fmean(
            r["retrained"])
    out = []
    for task in sorted({r["task"] for r in rows}):
        mine, theirs = found.get((task, *first), {}), found.get((task, *second), {})
        both = sorted(set(mine) & set(theirs))
        out.append([task, len(both), sum(mine[s] < theirs[s] for s in both),
                    sum(mine[s] > theirs[s] for s in both)])
    return out


def perfect_bound(validation_samples: int) -> float:
    """The loss under which every one of ``validation_samples`` is classified correctly."""
    return math.log(2) / validation_samples


def saturation_rows(runs: list[dict[str, Any]], bounds: dict[str, float], at: int
                    ) -> list[list[Any]]:
    """Per task (those in ``bounds``) and optimizer: runs, runs whose best of the first
    ``at`` values is under the task's bound, and the median count of values under it."""
    groups: dict[tuple[str, str], list[list[float]]] = {}
    for run in runs:
        if run["task"] in bounds:
            groups.setdefault((run["task"], run["peer"]), []).append(run["values"][:at])
    return [[task, peer, len(group),
             sum(min(values) < bounds[task] for values in group),
             _common.median([sum(v < bounds[task] for v in values) for values in group])]
            for (task, peer), group in sorted(groups.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 configurations per task")
    parser.add_argument("--best-of", metavar="JSON",
                        help="split the best trial of each Keras run of a quality.py JSON")
    parser.add_argument("--out", default=None,
                        help="default results/keras_objective.json (with --best-of: "
                             "results/keras_objective_best.json, with --roughness: "
                             "results/keras_roughness.json, with --retrain: "
                             "results/keras_retrained.json)")
    parser.add_argument("--saturation", metavar="JSON",
                        help="count runs of a quality.py JSON that found a model perfect on "
                             "the validation set (no training)")
    parser.add_argument("--at", type=int, default=30, help="with --saturation: trials read")
    parser.add_argument("--roughness", metavar="JSON",
                        help="train the best configuration per Keras task and seed of a "
                             "quality.py JSON, and neighbours around it")
    parser.add_argument("--radii", default="0.01,0.05",
                        help="with --roughness: neighbourhood half-widths, share of a range")
    parser.add_argument("--neighbours", type=int, default=8,
                        help="with --roughness: neighbours per radius")
    parser.add_argument("--retrain", nargs="+", metavar="JSON",
                        help="train each Keras run's best configuration again with other "
                             "initializations")
    parser.add_argument("--retrain-at", default="30,50",
                        help="with --retrain: the trial counts whose best is trained again")
    parser.add_argument("--retrain-seeds", default="1000,1001,1002",
                        help="with --retrain: initialization seeds")
    parser.add_argument("--only-seeds", metavar="FIRST-LAST", default=None,
                        type=analyze.seed_range,
                        help="with --retrain: only the runs of these task seeds")
    parser.add_argument("--only", default=None, metavar="TASKS/PEERS",
                        help="with --retrain: only these tasks and optimizers, e.g. "
                             "'mlp-digits,mlp-breast_cancer/vizier,optuna-tpe,kt-bo'")
    parser.add_argument("--pair", nargs=2, action="append", default=[],
                        metavar=("A@N", "B@M"), type=_common.peer_at_trial,
                        help="with --retrain: seed by seed, A after N trials against B after M")
    parser.add_argument("--table", choices=["roughness", "retrain"],
                        help="print the table of --out's saved --roughness or --retrain "
                             "results again (no training)")
    args = parser.parse_args()
    # Every mode that trains does so in a fresh process, with TensorFlow, as quality.py's Keras
    # tasks train (the backend is chosen at Keras's first import).
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if args.table:
        default = {"roughness": "keras_roughness.json", "retrain": "keras_retrained.json"}
        with open(args.out or os.path.join(_common.RESULTS, default[args.table])) as f:
            saved = json.load(f)
        if args.table == "roughness":
            print(_common.table(ROUGHNESS_COLUMNS, roughness_rows(saved)))
        else:
            print_retrained(saved["rows"], args.pair)
        return
    if args.retrain:
        runs = analyze.load_runs(*args.retrain)
        if args.only_seeds:
            first, last = args.only_seeds
            runs = [r for r in runs if first <= r["seed"] <= last]
        if args.only:
            only_tasks, _, only_peers = args.only.partition("/")
            runs = [r for r in runs if (not only_tasks or r["task"] in only_tasks.split(","))
                    and (not only_peers or r["peer"] in only_peers.split(","))]
        report = _common.in_process(retrain, runs,
                                    [int(n) for n in args.retrain_at.split(",")],
                                    [int(s) for s in args.retrain_seeds.split(",")])
        report["sources"] = [os.path.basename(p) for p in args.retrain]
        _common.save(report, args.out or os.path.join(_common.RESULTS, "keras_retrained.json"))
        print_retrained(report["rows"], args.pair)
        return
    if args.roughness:
        runs = analyze.load_runs(args.roughness)
        radii = [float(r) for r in args.radii.split(",")]
        report = _common.in_process(roughness, runs, radii, args.neighbours)
        report["source"] = os.path.basename(args.roughness)
        _common.save(report, args.out or os.path.join(_common.RESULTS,
                                                      "keras_roughness.json"))
        print(_common.table(ROUGHNESS_COLUMNS, roughness_rows(report)))
        return
    if args.saturation:
        runs = analyze.load_runs(args.saturation)
        bounds = {task.name: perfect_bound(len(task_defs.load(task.dataset)[3]))
                  for task in task_defs.keras_tasks()}
        print(_common.table(["task", "optimizer", "runs", f"best @{args.at} perfect",
                             f"perfect trials per run (median, of {args.at})"],
                            saturation_rows(runs, bounds, args.at)))
        return
    if args.best_of:
        runs = analyze.load_runs(args.best_of)
        report = _common.in_process(best_of, runs)
        report["source"] = os.path.basename(args.best_of)
        _common.save(report, args.out or os.path.join(_common.RESULTS,
                                                      "keras_objective_best.json"))
        print(_common.table(["task", "peer", "runs", "best loss", "its cross-entropy",
                             "penalty share", "reproduced"], best_of_rows(report["rows"])))
        return
    args.out = args.out or os.path.join(_common.RESULTS, "keras_objective.json")
    report = _common.in_process(measure, 5 if args.quick else args.configs, args.seed)
    _common.save(report, args.out)
    rows = []
    for name, entry in report["tasks"].items():
        s = entry["summary"]
        rows.append([name, s["configs"], s["best_quarter_median_loss"],
                     s["best_quarter_median_crossentropy"],
                     s["best_quarter_median_penalty_share"], s["best_penalty_share"],
                     s["lowest_crossentropy"]])
    print(_common.table(["task", "configs", "best quarter: loss", "cross-entropy",
                         "penalty share", "best config: penalty share",
                         "lowest cross-entropy"], rows))


if __name__ == "__main__":
    main()
