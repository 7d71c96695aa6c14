"""Reading quality runs again, without running anything: ``python benchmarks/analyze.py
SUBCOMMAND ...``.

Subcommands:
  summary JSON                      the quality table of a result file again
  combine JSON [JSON ...] -o OUT    one result file from runs made in parts (a later file's run of
                                    the same task, peer and seed replaces an earlier one)
  compare BEFORE AFTER              seed by seed, where Vizier's best at --at in AFTER beat BEFORE's
  head-to-head JSON PEER            seed by seed, where Vizier's best at --at beat PEER's
  reach-chance JSON                 per task, the share of bootstrap resamples of the seeds in
                                    which Vizier at --at reaches the --against peer's median
  repeats FIRST SECOND              which runs in SECOND repeat FIRST's values

Counts of seed pairs carry a two-sided exact sign test (``scipy.stats.binomtest``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import quality
from lib import _common


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven if better and
    worse were equally likely (ties left out)."""
    if better + worse == 0:
        return 1.0
    return float(stats.binomtest(better, better + worse, 0.5).pvalue)


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
    report["summary"] = quality.summarize(runs, report["args"]["trials"], at)
    _common.save(report, out)
    quality.print_summary(report["summary"])


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
    """``combine --only-seeds``' value: 'FIRST-LAST', both whole numbers, FIRST <= LAST."""
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
        raise argparse.ArgumentTypeError(
            f"--only-seeds must be FIRST-LAST with FIRST <= LAST, e.g. 0-4; got {text!r}")
    return int(first), int(last)




def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    at = argparse.ArgumentParser(add_help=False)
    at.add_argument("--at", type=int, default=30, help="the trial count read (default 30)")

    summary = commands.add_parser("summary", parents=[at], help="a result file's table again")
    summary.add_argument("json")
    combined = commands.add_parser("combine", parents=[at],
                                   help="one result file from runs made in parts")
    combined.add_argument("json", nargs="+")
    combined.add_argument("-o", "--out", required=True)
    combined.add_argument("--only-seeds", metavar="FIRST-LAST", type=seed_range,
                          help="keep only the runs of these seeds, e.g. 0-4")
    compared = commands.add_parser("compare", parents=[at],
                                   help="Vizier's best, seed by seed, AFTER against BEFORE")
    compared.add_argument("before")
    compared.add_argument("after")
    h2h = commands.add_parser("head-to-head", parents=[at],
                              help="Vizier's best, seed by seed, against PEER's")
    h2h.add_argument("json")
    h2h.add_argument("peer")
    chance = commands.add_parser("reach-chance", parents=[at],
                                 help="bootstrap share of resamples where Vizier reaches a peer")
    chance.add_argument("json")
    chance.add_argument("--against", default="optuna-tpe", metavar="PEER[@N]",
                        type=_common.peer_at,
                        help="the peer, and the trial it is read at (default its last), "
                             "e.g. kt-bo@30")
    chance.add_argument("--draws", nargs="+", metavar="JSON",
                        help="other runs of Vizier on the same seeds, pooled with JSON's")
    repeated = commands.add_parser("repeats", help="which runs in SECOND repeat FIRST's")
    repeated.add_argument("first")
    repeated.add_argument("second")
    args = parser.parse_args(argv)

    if args.command == "summary":
        runs = load_runs(args.json)
        trials = max(len(r["curve"]) for r in runs)
        quality.print_summary(quality.summarize(runs, trials, args.at))
    elif args.command == "combine":
        combine(args.json, args.out, args.at, args.only_seeds)
    elif args.command == "compare":
        compare(args.before, args.after, args.at)
    elif args.command == "head-to-head":
        head_to_head(args.json, args.peer, args.at)
    elif args.command == "reach-chance":
        peer, peer_at = args.against
        reach_chance(args.json, peer=peer, at=args.at, draws=args.draws, peer_at=peer_at)
    else:
        repeats(args.first, args.second)


if __name__ == "__main__":
    main()
