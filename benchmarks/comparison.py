"""The pre-registered quality comparison of issue 36 (``notes/quality-protocol.md``): 20
problems, our default algorithm against Optuna TPE, KerasTuner BO and KerasTuner random.

Run (from benchmarks/):
      python comparison.py run --seeds 0-2     (the screening: results/quality_screening.json)
      python comparison.py saturation results/quality_screening.json
      python comparison.py run --seeds 10-18 --out results/quality_verdict.json
      python comparison.py verdict results/quality_verdict.json --write
      python comparison.py best-case PART --missing mlp-digits,mlp-breast_cancer
                           (the amendments' early reading: could the targets still hold?)

``run`` is resumable: the runs already in ``--out`` (by problem, optimizer and seed) are kept and
not run again, and each finished run is written at once; parts made elsewhere are joined with
``combine``. Every optimizer runs ``--trials`` (50) trials; a run records what the optimizer
saw, and its incumbent (its own best by what it saw) at 30 and 50 trials with the protocol's
score z. Our service is started with ``--service-seed`` (``vizier-keras serve --seed``): each
suggestion's random key comes from that seed, the study's name (which holds the problem and the
run seed) and its trial count, so a run repeats exactly.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import _common, peers
from lib import problems as registry

OURS = "vizier"
PEERS = ("optuna-tpe", "kt-bo", "kt-random")
READ_AT = (30, 50)
# Reported apart, not ranked: plain Open Source Vizier through its own service.
APART = ("oss",)
# Nemenyi's critical value q_0.05 for k = 2..6 optimizers (Demsar 2006, table 5a).
NEMENYI_Q05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850}
Run = dict[str, Any]


def seed_range(text: str) -> list[int]:
    """'FIRST-LAST' (or one seed) as the list of seeds; an argparse error names the value."""
    first, _, last = text.partition("-")
    last = last or first
    if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise argparse.ArgumentTypeError(f"seeds must be FIRST-LAST, e.g. 0-2; got {text!r}")
    return list(range(int(first), int(last) + 1))


def incumbent(observed: list[float], count: int) -> int:
    """Index of the optimizer's own best among its first ``count`` trials (the first of ties)."""
    window = observed[:count]
    return min(range(len(window)), key=lambda i: (window[i], i))


def one_run(problem_name: str, optimizer: str, seed: int, trials: int, endpoint: str | None
            ) -> Run:
    """One optimizer on one problem: ``trials`` asks, each told what the problem shows."""
    problem = registry.by_name(problem_name)
    draws = np.random.default_rng([seed, zlib.crc32(problem_name.encode()), 36])
    opt = peers.make(optimizer, problem.space(), seed, trials, endpoint,
                     study_id=f"cmp-{problem_name}-{optimizer}-{seed}")
    params: list[dict[str, Any]] = []
    observed: list[float] = []
    ask_seconds: list[float] = []
    try:
        for _ in range(trials):
            began = time.perf_counter()
            values = opt.ask()
            ask_seconds.append(time.perf_counter() - began)
            value = problem.observe(values, seed, int(draws.integers(1 << 30)))
            opt.tell(values, value)
            params.append(dict(values))
            observed.append(value)
    finally:
        opt.close()
    run: Run = {"problem": problem_name, "family": problem.family, "optimizer": optimizer,
                "seed": seed, "params": params, "observed": observed,
                "ask_seconds": ask_seconds, "at": {}}
    for count in READ_AT:
        if count <= trials:
            i = incumbent(observed, count)
            run["at"][str(count)] = {"trial": i + 1, "score": problem.score(params[i], seed),
                                     "z": registry.z_score(problem, params[i], seed)}
    optimum, eps = problem.optimum(seed), problem.regret_floor(seed)
    run["optimum"], run["eps"] = optimum, eps
    return run


def _run(job: tuple[Any, ...]) -> Run:
    return one_run(*job)


def _key(run: Run) -> tuple[str, str, int]:
    return run["problem"], run["optimizer"], run["seed"]


def load(paths: Iterable[str]) -> list[Run]:
    """The runs of result files; a later file's run of the same key replaces an earlier one."""
    by_key: dict[tuple[str, str, int], Run] = {}
    for path in paths:
        with open(path) as f:
            for run in json.load(f)["runs"]:
                by_key[_key(run)] = run
    return list(by_key.values())


def run_command(args: argparse.Namespace) -> None:
    problems = registry.registered() if args.problems == "all" else args.problems.split(",")
    unknown = sorted(set(problems) - set(registry.registered()) - set(registry.RESERVE))
    if unknown:
        raise SystemExit(f"comparison.py run: unknown problem(s) {', '.join(unknown)}; "
                         f"registered: {', '.join(registry.registered())}; reserve: "
                         f"{', '.join(registry.RESERVE)}")
    optimizers = args.optimizers.split(",")
    keras = sorted(p for p in problems if registry.by_name(p).family == "keras")
    if "oss" in optimizers and keras:
        raise SystemExit(f"comparison.py run: plain OSS (--optimizers oss) runs the functions "
                         f"only (its GP cannot run beside TensorFlow); not {', '.join(keras)}")
    report: dict[str, Any] = {"machine": _common.machine(), "protocol":
                              "notes/quality-protocol.md", "args": vars(args), "runs": []}
    if os.path.exists(args.out):
        with open(args.out) as f:
            report["runs"] = json.load(f)["runs"]
    done = {_key(r) for r in report["runs"]}
    jobs = [(p, o, s) for p in problems for s in args.seeds for o in optimizers
            if (p, o, s) not in done]
    # The slow first: Keras problems and the GP-based optimizers.
    jobs.sort(key=lambda j: (not j[0].startswith("mlp"), j[1] not in ("vizier", "kt-bo")))
    server = None
    if any(o.startswith("vizier") for o in optimizers) and jobs:
        from vizier_keras.server.embedded import start_local_server

        env = {"VIZIER_KERAS_SEED": str(args.service_seed)}
        if args.gp_settings:
            env["VIZIER_KERAS_GP_SETTINGS"] = args.gp_settings
        server = start_local_server(os.path.join(tempfile.mkdtemp(), "comparison.db"), env=env)
    began = time.time()
    try:
        full = [(p, o, s, args.trials, server.url if server else None) for p, o, s in jobs]
        # Plain OSS beside the others gets one process; alone, all the workers.
        oss_workers = args.workers if all(o == "oss" for _, o, _ in jobs) else 1
        for i, run in enumerate(peers.in_pools(_run, full, args.workers, oss_workers)):
            report["runs"].append(run)
            _common.save(report, args.out)
            z = " ".join(f"z@{k} {v['z']:.2f}" for k, v in run["at"].items())
            print(f"[{i + 1}/{len(jobs)} {time.time() - began:.0f} s] {run['problem']} "
                  f"{run['optimizer']} seed {run['seed']}: {z}", flush=True)
    finally:
        if server is not None:
            server.stop()
    print(f"{len(report['runs'])} runs in {args.out}")


# ------------------------------------------------------------------------------ statistics

def z_table(runs: list[Run], at: int) -> dict[tuple[str, str], dict[int, float]]:
    """z by (problem, optimizer) and seed, read at ``at`` trials."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for r in runs:
        if str(at) in r["at"]:
            out.setdefault((r["problem"], r["optimizer"]), {})[r["seed"]] = r["at"][str(at)]["z"]
    return out


def paired_d(mine: dict[int, float], peer: dict[int, float]) -> float | None:
    """Mean over the seeds both ran of z_ours - z_peer (None when no seed is shared)."""
    seeds = sorted(set(mine) & set(peer))
    if not seeds:
        return None
    return float(np.mean([mine[s] - peer[s] for s in seeds]))


def differences(runs: list[Run], peer: str, at: int, peer_at: int | None = None
                ) -> dict[str, float]:
    """Per problem, D = mean over shared seeds of z_ours@at - z_peer@peer_at."""
    ours, theirs = z_table(runs, at), z_table(runs, peer_at or at)
    out = {}
    for (problem, optimizer), mine in ours.items():
        if optimizer != OURS or (problem, peer) not in theirs:
            continue
        d = paired_d(mine, theirs[problem, peer])
        if d is not None:
            out[problem] = d
    return out


def wilcoxon_less(ds: list[float]) -> float:
    """One-sided Wilcoxon signed-rank p that the D values sit below 0 (1.0 when all are 0)."""
    if not ds or all(d == 0 for d in ds):
        return 1.0
    return float(stats.wilcoxon(ds, alternative="less", zero_method="wilcox").pvalue)


def mean_ranks(runs: list[Run], at: int, optimizers: list[str]
               ) -> tuple[dict[str, float], float, list[str]]:
    """Per optimizer, its mean rank over the problems every optimizer ran (rank 1 = lowest mean
    z; ties share the mean rank); the Friedman test's p; the problems used."""
    z = z_table(runs, at)
    problems = sorted({p for p, _ in z if all((p, o) in z for o in optimizers)})
    if not problems:
        return {}, math.nan, []
    matrix = np.array([[np.mean(list(z[p, o].values())) for o in optimizers] for p in problems])
    ranks = np.vstack([stats.rankdata(row) for row in matrix])
    p = math.nan
    if len(optimizers) >= 3 and len(problems) >= 2:
        p = float(stats.friedmanchisquare(*matrix.T).pvalue)
    return dict(zip(optimizers, ranks.mean(axis=0).tolist(), strict=True)), p, problems


def critical_difference(k: int, n: int) -> float:
    """Nemenyi's critical difference of mean ranks at alpha 0.05 (k optimizers, n problems)."""
    return NEMENYI_Q05[k] * math.sqrt(k * (k + 1) / (6.0 * n))


def nemenyi_groups(ranks: dict[str, float], cd: float) -> list[list[str]]:
    """The maximal groups of optimizers whose mean ranks lie within ``cd`` of each other (not
    told apart by Nemenyi's test), best first: the bars of a critical-difference plot."""
    order = sorted(ranks, key=lambda o: ranks[o])
    groups: list[list[str]] = []
    for i, first in enumerate(order):
        group = [o for o in order[i:] if ranks[o] - ranks[first] < cd]
        if len(group) > 1 and not (groups and set(group) <= set(groups[-1])):
            groups.append(group)
    return groups


def verdict(runs: list[Run]) -> dict[str, Any]:
    """The protocol's three targets, read from ``runs``."""
    optimizers = [OURS, *PEERS]
    out: dict[str, Any] = {"at": {}, "cross": {}, "families": {}}
    met = True
    for at in READ_AT:
        ranks, friedman_p, used = mean_ranks(runs, at, optimizers)
        entry: dict[str, Any] = {"mean_ranks": ranks, "friedman_p": friedman_p,
                                 "problems": len(used), "peers": {}}
        if used:
            entry["critical_difference"] = critical_difference(len(optimizers), len(used))
        for peer in PEERS:
            ds = differences(runs, peer, at)
            values = list(ds.values())
            entry["peers"][peer] = {"problems": len(ds), "median_d": float(np.median(values))
                                    if values else math.nan,
                                    "regret_ratio": 10 ** float(np.median(values))
                                    if values else math.nan,
                                    "wilcoxon_p": wilcoxon_less(values), "d": ds}
        best = bool(ranks) and min(ranks, key=lambda o: ranks[o]) == OURS
        entry["target_1_met"] = best and all(e["wilcoxon_p"] < 0.05
                                             for e in entry["peers"].values())
        met = met and entry["target_1_met"]
        out["at"][str(at)] = entry
    for peer in ("optuna-tpe", "kt-bo"):
        cross = list(differences(runs, peer, 30, peer_at=50).values())
        ok = bool(cross) and float(np.median(cross)) <= 0 and wilcoxon_less(cross) < 0.05
        out["cross"][peer] = {"median_d": float(np.median(cross)) if cross else math.nan,
                              "wilcoxon_p": wilcoxon_less(cross), "met": ok}
        met = met and ok
    # Target 3: per family, mean D against each problem's best peer (lowest mean z) at 30.
    z = z_table(runs, 30)
    families = {r["problem"]: r["family"] for r in runs}
    per_family: dict[str, list[float]] = {}
    for problem, family in families.items():
        if (problem, OURS) not in z:
            continue
        peers_here = {p: z[problem, p] for p in PEERS if (problem, p) in z}
        if not peers_here:
            continue
        best_peer = min(peers_here, key=lambda p: float(np.mean(list(peers_here[p].values()))))
        d = paired_d(z[problem, OURS], peers_here[best_peer])
        if d is not None:
            per_family.setdefault(family, []).append(d)
    for family, family_ds in per_family.items():
        mean = float(np.mean(family_ds))
        out["families"][family] = {"problems": len(family_ds), "mean_d_vs_best_peer": mean,
                                   "met": mean <= 0.1}
        met = met and mean <= 0.1
    out["met"] = met
    out["apart"] = {other: {str(at): differences(runs, other, at) for at in READ_AT}
                    for other in APART if any(r["optimizer"] == other for r in runs)}
    return out


def target_reads(result: dict[str, Any]) -> dict[str, bool]:
    """Each target of a verdict by name ("target 1 @30", "target 2 vs kt-bo", "target 3
    tables"), met or not."""
    reads = {f"target 1 @{at}": e["target_1_met"] for at, e in result["at"].items()}
    reads |= {f"target 2 vs {peer}": e["met"] for peer, e in result["cross"].items()}
    reads |= {f"target 3 {family}": e["met"] for family, e in result["families"].items()}
    return reads


def without(runs: list[Run], problems: Iterable[str]) -> list[Run]:
    """The runs on problems other than ``problems`` (those set aside as missing)."""
    aside = set(problems)
    return [r for r in runs if r["problem"] not in aside]


def best_case(runs: list[Run], missing: Iterable[str], family: str | None = None
              ) -> dict[str, Any]:
    """Whether the targets could still hold whatever the ``missing`` problems give: the
    verdict with each missing problem filled in as favourably to ours as anything can be (ours
    far below every peer on every seed, which is the extreme for every Wilcoxon test, median and
    family mean), over every order of the peers on those problems. Only the mean ranks depend on
    the orders, and a peer's rank sum only on how many missing problems put it at each rank, so
    every multiset of orders is tried once (21 for two missing problems, 792 for seven) rather
    than every assignment of orders to problems. ``possible`` is False when no filling meets all
    targets: the verdict is then "not met" without running the missing problems (the protocol's
    amendments). A missing problem's family is its registered one unless ``family`` is given;
    the runs it already has are set aside. Every other problem must be complete: each
    optimizer on each seed ours ran."""
    missing = list(missing)
    kept = without(runs, missing)
    seeds = sorted({r["seed"] for r in kept if r["optimizer"] == OURS})
    have = {(r["problem"], r["optimizer"], r["seed"]) for r in kept}
    incomplete = sorted({p for p, _, _ in have
                         if any((p, o, s) not in have for o in (OURS, *PEERS) for s in seeds)})
    if incomplete:
        raise ValueError(f"problems {', '.join(incomplete)} lack some runs of the "
                         f"four optimizers on seeds {seeds}; complete them or name them missing")
    families = {p: family or registry.by_name(p).family for p in missing}
    values = [r["at"][a]["z"] for r in kept for a in r["at"]]
    low, high = min(values) - 100.0, max(values) + 100.0
    orders = list(itertools.permutations(PEERS))
    possible: dict[str, bool] = {}
    for filling in itertools.combinations_with_replacement(orders, len(missing)):
        filled = list(kept)
        for problem, order in zip(missing, filling, strict=True):
            z_by = {OURS: low, **{peer: high + i for i, peer in enumerate(order)}}
            filled += [{"problem": problem, "family": families[problem], "optimizer": o,
                        "seed": s, "optimum": None, "eps": None,
                        "at": {str(a): {"z": z, "score": 10 ** z} for a in READ_AT}}
                       for o, z in z_by.items() for s in seeds]
        result = verdict(filled)
        reads = target_reads(result)
        reads["all"] = result["met"]
        for name, met in reads.items():
            possible[name] = possible.get(name, False) or bool(met)
    return {"missing": missing, "possible": possible["all"], "targets": possible}


def cannot_hold(bound: dict[str, Any]) -> list[str]:
    """The targets a ``best_case`` bound says no filling of the missing problems can meet."""
    return [name for name, could in bound["targets"].items() if not could and name != "all"]


def verdict_table(result: dict[str, Any]) -> str:
    """One row per peer and trial count: problems, median D, regret ratio, Wilcoxon p."""
    rows = []
    for at, entry in result["at"].items():
        for peer, e in entry["peers"].items():
            rows.append([f"@{at}", peer, e["problems"], e["median_d"], e["regret_ratio"],
                         e["wilcoxon_p"], entry["mean_ranks"].get(peer, math.nan)])
        rows.append([f"@{at}", f"{OURS} (ours)", entry["problems"], "", "", "",
                     entry["mean_ranks"].get(OURS, math.nan)])
    for peer, e in result["cross"].items():
        rows.append(["ours @30 vs peer @50", peer, "", e["median_d"], 10 ** e["median_d"]
                     if e["median_d"] == e["median_d"] else math.nan, e["wilcoxon_p"], ""])
    return _common.table(["read at", "optimizer", "problems", "median D", "regret ratio",
                          "Wilcoxon p (D < 0)", "mean rank"], rows)


def reading(result: dict[str, Any], bound: dict[str, Any] | None = None) -> str:
    """The verdict in one line (the report's row of open targets)."""
    if result["met"]:
        return "all three targets met"
    unmet = [name for name, met in target_reads(result).items() if not met]
    if bound is None:
        return f"not met: {', '.join(unmet)}"
    cannot = cannot_hold(bound)
    text = f"not met: {', '.join(cannot)}, whatever {', '.join(bound['missing'])} give (not run)"
    also = [name for name in unmet if name not in cannot]
    return text + (f"; also unmet without them: {', '.join(also)}" if also else "")


def verdict_summary(result: dict[str, Any], bound: dict[str, Any] | None = None
                    ) -> list[str]:
    """Sentences: the families' mean D against their best peer, the mean ranks' tests, the
    early reading's bound, the reading, and what is read apart."""
    lines = ["Mean D at 30 trials against each problem's best peer, by family (target 3: "
             "<= +0.1): " + ", ".join(f"{family} {e['mean_d_vs_best_peer']:+.2f} "
                                      f"({e['problems']})"
                                      for family, e in result["families"].items()) + "."]
    tests = []
    for at, entry in result["at"].items():
        if "critical_difference" not in entry:
            continue
        groups = nemenyi_groups(entry["mean_ranks"], entry["critical_difference"])
        tests.append(f"@{at} Friedman p {entry['friedman_p']:.3g}, not told apart by Nemenyi "
                     f"(critical difference {entry['critical_difference']:.2f}): "
                     + (", ".join(f"({', '.join(g)})" for g in groups) if groups else "none"))
    if tests:
        lines.append("Mean ranks: " + "; ".join(tests) + ".")
    if bound is not None:
        cannot = cannot_hold(bound)
        lines.append(f"Read without {', '.join(bound['missing'])} (protocol amendment): with them "
                     "filled in as favourably to ours as anything can be, these targets still "
                     f"fail: {', '.join(cannot)}.")
    lines.append(f"All targets: {'met' if result['met'] else 'NOT met'}.")
    for other, by_at in result.get("apart", {}).items():
        first, last = (by_at[str(at)] for at in READ_AT)
        lines.append(f"Apart, not ranked: D(ours - {other}) at {READ_AT[0]} / {READ_AT[1]} "
                     "trials: " + ", ".join(f"{p} {first[p]:+.2f} / {last[p]:+.2f}"
                                            for p in sorted(first)) + ".")
    return lines


def saturation(runs: list[Run]) -> dict[str, bool]:
    """Per problem, the protocol's saturation rule at 30 trials: the best peer's median regret
    is at or under eps (Keras: half of the peers' incumbents have a validation loss under
    1e-3, the operational form of "perfect on validation")."""
    out: dict[str, bool] = {}
    by_problem: dict[str, list[Run]] = {}
    for r in runs:
        if r["optimizer"] in PEERS and "30" in r["at"]:
            by_problem.setdefault(r["problem"], []).append(r)
    for problem, rs in by_problem.items():
        if rs[0]["optimum"] is None:
            out[problem] = sum(r["at"]["30"]["score"] < 1e-3 for r in rs) >= len(rs) / 2
            continue
        medians = []
        for peer in PEERS:
            regrets = [abs(r["at"]["30"]["score"] - r["optimum"]) for r in rs
                       if r["optimizer"] == peer]
            if regrets:
                medians.append(float(np.median(regrets)))
        eps = float(np.median([r["eps"] for r in rs]))
        out[problem] = bool(medians) and min(medians) <= eps
    return out


def _bound(args: argparse.Namespace, runs: list[Run]) -> dict[str, Any]:
    try:
        return best_case(runs, args.missing.split(","), args.family)
    except (ValueError, KeyError) as e:
        raise SystemExit(f"comparison.py {args.command}: {e}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) the comparison")
    run.add_argument("--seeds", type=seed_range, default=seed_range("0-2"))
    run.add_argument("--trials", type=int, default=50)
    run.add_argument("--problems", default="all", help="'all' or comma-separated names")
    run.add_argument("--optimizers", default=",".join((OURS, *PEERS)))
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--service-seed", type=int, default=36,
                     help="the embedded service's suggestion seed (VIZIER_KERAS_SEED)")
    run.add_argument("--gp-settings", default=None,
                     help="JSON: our default algorithm's settings in place of the shipped ones "
                          "(VIZIER_KERAS_GP_SETTINGS), to screen a candidate on seeds 0-2 into "
                          "a file of its own")
    run.add_argument("--out", default=os.path.join(_common.RESULTS, "quality_screening.json"))
    combined = commands.add_parser("combine", help="one result file from parts")
    combined.add_argument("json", nargs="+")
    combined.add_argument("-o", "--out", required=True)
    sat = commands.add_parser("saturation", help="which problems the saturation rule replaces")
    sat.add_argument("json", nargs="+")
    read = commands.add_parser("verdict", help="the targets, read from result files")
    read.add_argument("json", nargs="+")
    read.add_argument("--write", action="store_true",
                      help="store the verdict in the (last) result file, for the report")
    best = commands.add_parser(
        "best-case", help="whether the targets could still hold, whatever missing problems give")
    best.add_argument("json", nargs="+")
    for sub, required in ((read, False), (best, True)):
        sub.add_argument("--missing", required=required,
                         help="comma-separated problems not yet complete (verdict: read "
                              "without them only if no result of theirs could meet it)")
        sub.add_argument("--family", default=None,
                         help="the missing problems' family (default: each one's registered "
                              "family)")
    args = parser.parse_args(argv)
    if args.command == "run":
        run_command(args)
    elif args.command == "combine":
        runs = load(args.json)
        _common.save({"machine": _common.machine(), "protocol": "notes/quality-protocol.md",
                      "parts": args.json, "runs": runs}, args.out)
        print(f"{len(runs)} runs in {args.out}")
    elif args.command == "saturation":
        for problem, saturated in sorted(saturation(load(args.json)).items()):
            print(f"{problem}: {'SATURATED (replace from the reserve)' if saturated else 'ok'}")
    elif args.command == "best-case":
        result = _bound(args, load(args.json))
        for name, could in result["targets"].items():
            print(f"  {name}: {'could still hold' if could else 'cannot hold'}")
        print("  verdict: " + ("undecided: run the missing problems" if result["possible"]
                               else "NOT met, whatever the missing problems give"))
    else:
        runs = load(args.json)
        bound = None
        if args.missing:
            bound = _bound(args, runs)
            # Read as it stands without them: runs the peers already made there are set aside.
            runs = without(runs, bound["missing"])
            if bound["possible"]:
                raise SystemExit("comparison.py verdict: the targets could still hold with "
                                 f"{args.missing} filled in favourably; run them and read the "
                                 "verdict on every problem")
        result = verdict(runs)
        print(verdict_table(result))
        print("\n".join(verdict_summary(result, bound)))
        if args.write:
            with open(args.json[-1]) as f:
                report = json.load(f)
            report["verdict"], report["met"] = result, result["met"]
            report["best_case"] = bound
            report["reading"] = reading(result, bound)
            _common.save(report, args.json[-1])


if __name__ == "__main__":
    main()
