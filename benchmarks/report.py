"""Writes benchmarks/README.md from the result files: the open targets first, then one table per
question, each dated and linked to the JSON it was read from.

Run:  python benchmarks/report.py            (writes benchmarks/README.md)
      python benchmarks/report.py --check    (exit 1 when README.md is not what the results say)

The README is never edited by hand: a number in it is in a file under ``results/``, and what a
reading means beyond its table goes to a dated file under ``notes/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import comparison
import early_stopping
import overhead
import quickstart_idle
import scaling
import soak
from lib import _common

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "README.md")

Result = dict[str, Any]


def load(name: str) -> Result | None:
    """``results/NAME.json``, or None when it has not been measured."""
    path = os.path.join(_common.RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        result: Result = json.load(f)
    return result


def date_of(result: Result) -> str:
    machine = result.get("machine")
    if isinstance(machine, dict) and "date" in machine:
        return str(machine["date"])
    return str(result.get("date", "undated"))


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("**met**" if met else "**not met**")


# ------------------------------------------------------------------------------ the targets

def target_rows(results: dict[str, Result | None]) -> list[list[str]]:
    """The open issues' targets, each with its reading and the file it comes from."""
    rows = []
    loop = results["server_speed_loop"]
    if loop:
        r = loop["real_loop"]
        rows.append(["#33", "GP suggest p50, real growing loop, 52-61 trials: <= 0.5 s",
                     f"{r['ours_p50_s']:.2f} s (plain OSS {r['plain_p50_s']:.2f} s, "
                     f"{r['p50_ratio']:.1f}x)", _verdict(r["ours_p50_s"] <= 0.5),
                     "server_speed_loop"])
    else:
        rows.append(["#33", "GP suggest p50, real loop: <= 0.5 s", "-", _verdict(None),
                     "server_speed_loop"])
    burst = results["burst"]
    runs = [r for r in (burst or {}).get("runs", []) if r["workers"] == 32]
    if runs:
        r = runs[0]
        rows.append(["#33", "32 workers at once: <= 16x one warm suggest, 0 failed, 0 twice",
                     f"{r['ratio_to_warm']:.0f}x, {len(r['failed'])} failed, "
                     f"{r['computed_twice']} twice", _verdict((burst or {}).get("target_32_met")),
                     "burst"])
    trials = results["scaling_trials"]
    if trials and trials.get("target"):
        t = trials["target"]
        rows.append(["#33", "default algorithm, 5 s objective: 4 workers finish 40 trials in "
                     "<= 1/3.5 of 1 worker's time", f"{t['speedup']:.2f}x faster",
                     _verdict(t["met"]), "scaling_trials"])
    else:
        rows.append(["#33", "4 workers finish 40 trials in <= 1/3.5 of 1 worker's time", "-",
                     _verdict(None), "scaling_trials"])
    idle = results["quickstart_idle"]
    rows.append(["#33", "quickstart idle share, empty compilation cache: <= 5%",
                 f"{idle['idle_share']:.0%} of {idle['search_seconds']:.0f} s" if idle else "-",
                 _verdict(idle["idle_share"] <= 0.05 if idle else None), "quickstart_idle"])
    verdict, screening = results["quality_verdict"], results["quality_screening"]
    reading = "not run yet"
    if screening:
        reading = f"screening: {len(screening['runs'])} runs; verdict not run yet"
    rows.append(["#36", "pre-registered 20-problem comparison (notes/quality-protocol.md)",
                 verdict["reading"] if verdict else reading,
                 _verdict(verdict["met"] if verdict else None), "quality_verdict"])
    return rows


# ------------------------------------------------------------------------------ the sections

def comparison_section(result: Result) -> str:
    """#36's comparison: each peer against ours (median D = z_ours - z_peer over problems, the
    regret ratio 10^D, Wilcoxon's one-sided p, mean ranks). The verdict once it is read (its
    stored reading); before, the screening with the saturation rule's reading."""
    missing = (result.get("best_case") or {}).get("missing", [])
    runs = comparison.without(result["runs"], missing)
    problems = sorted({r["problem"] for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    aside = len(result["runs"]) - len(runs)
    head = (f"{len(runs)} runs: {len(problems)} problems, seeds {seeds[0]}-{seeds[-1]}, 50 trials "
            "each; D < 0 favours ours ([protocol](notes/quality-protocol.md))."
            + (f" Set aside, with their problems not read: {aside} peers' runs on "
               f"{', '.join(sorted({r['problem'] for r in result['runs']} & set(missing)))}."
               if aside else ""))
    if "verdict" in result:
        return "\n".join([
            head + " The verdict, read once:", "",
            comparison.verdict_table(result["verdict"]), "",
            " ".join(comparison.verdict_summary(result["verdict"], result.get("best_case"))), "",
            "Screening (seeds 0-2): [`results/quality_screening.json`]"
            "(results/quality_screening.json); the tuning candidate adopted there: "
            "[`results/quality_tuning_distinct.json`](results/quality_tuning_distinct.json)."])
    saturated = sorted(p for p, hit in comparison.saturation(runs).items() if hit)
    return "\n".join([
        head, "",
        comparison.verdict_table(comparison.verdict(runs)), "",
        "Saturated by the protocol's rule (replaced before the verdict): "
        f"{', '.join(saturated) or 'none'}. The tuning candidate adopted on these seeds: "
        "[`results/quality_tuning_distinct.json`](results/quality_tuning_distinct.json); the "
        "verdict's runs so far (not read until complete): "
        "[`results/quality_verdict_part.json`](results/quality_verdict_part.json)."])


def server_speed_section(result: Result) -> str:
    r = result["real_loop"]
    ours, plain = r["vizier_keras_http_s"], r["plain_oss_in_process_s"]
    warm = r["warmup_calls"]
    rows = [["plain OSS Vizier (in process)", ", ".join(f"{x:.1f}" for x in plain[:warm]),
             r["plain_p50_s"], max(plain[warm:])],
            ["vizier-keras server (HTTP)", ", ".join(f"{x:.1f}" for x in ours[:warm]),
             r["ours_p50_s"], max(ours[warm:])]]
    return (f"Loop: {r['loop']}; {r['timed_calls']} timed calls from "
            f"{r['completed_trials_at_first_timed_call']} completed trials.\n\n"
            + _common.table(["", "warm-up calls s", "p50 s", "max s"], rows))


def fixed_speed_section(result: Result) -> str:
    g, random = result["gp"], result["random"]
    rows = [["GP, plain OSS (in process)", g["plain_first_s"], g["plain_p50_s"]],
            ["GP, vizier-keras server (HTTP)", g["ours_first_s"], g["ours_p50_s"]],
            ["random search (HTTP)", random["http_ms"][0] / 1000, random["p50_ms"] / 1000]]
    memory = result["memory"]
    return (f"Each suggested trial deleted, so every call sees the same "
            f"{result['n_completed_trials']} trials (not the loop users run).\n\n"
            + _common.table(["suggest", "first call s", "p50 s"], rows)
            + f"\n\nServer memory after {memory['suggest_calls']} suggestions: peak "
              f"{memory['rss_end_mb']['VmHWM']:.0f} MB, resident "
              f"{memory['rss_end_mb']['VmRSS']:.0f} MB.")


def callback_section(result: Result) -> str:
    rows = [[r["setup"], r["epoch_ms"], r["callback_ms_per_epoch"], r["share_of_epoch"] * 100,
             r["end_of_fit_ms"]] for r in result["table"]]
    return (f"{result['machine']}; {result['epochs']} epochs x {result['repeats']} runs.\n\n"
            + _common.table(["setup", "epoch ms", "callback ms / epoch", "share %",
                             "end of fit ms"], rows))


def early_stopping_section(result: Result) -> str:
    return early_stopping.tables(result).rstrip()


def scaling_trials_section(result: Result) -> str:
    return scaling.trials_table(result)


# A section's result file, and the one it shows (with the script that writes it) until that
# file exists.
FALLBACK = {"quality_verdict": ("quality_screening", "comparison.py run")}

# (question, result file, script that writes it, renderer)
SECTIONS: list[tuple[str, str, str, Callable[[Result], str]]] = [
    ("How good a model does each optimizer find? (#36's comparison over 20 problems)",
     "quality_verdict", "comparison.py run, then verdict --write", comparison_section),
    ("How fast is a GP suggestion in the loop a tuning run makes?", "server_speed_loop",
     "server_speed.py --loop-only", server_speed_section),
    ("How fast is a suggestion at a fixed trial count, and how much memory?", "server_speed",
     "server_speed.py", fixed_speed_section),
    ("How many epochs does automated early stopping save? (replayed on recorded curves)",
     "early_stopping", "early_stopping.py", early_stopping_section),
    ("What does each call cost? (ms per call, 100 trials x 10 measurements)", "overhead",
     "overhead.py", overhead.table),
    ("What does the callback cost the training thread?", "callback_overhead",
     "callback_overhead.py", callback_section),
    ("How do trials per minute grow with workers? (fixed time window, objective = sleep)",
     "scaling", "scaling.py", scaling.table),
    ("How long do workers take to finish a fixed number of trials?", "scaling_trials",
     "scaling.py --trials 40", scaling_trials_section),
    ("How much of the README's quickstart is the tuner waiting? (empty compilation cache)",
     "quickstart_idle", "quickstart_idle.py", quickstart_idle.table),
    ("How long until every worker of a burst has a trial? (GP study, 20 completed trials)",
     "burst", "scaling.py --burst 1,8,32", scaling.burst_table),
    ("Does anything get lost under kills, dropped connections and hostile requests?", "soak",
     "soak.py", soak.table),
]

STUDIES: list[tuple[str, str | None, str]] = [
    ("quality.py", "quality",
     "the earlier comparison on 7 tasks, 10 seeds, whose targets could not be decided; "
     "superseded by `comparison.py` (#36); `analyze.py` reads its runs"),
    ("studies/gp_variants.py", "gp_variants",
     "settings of the default algorithm side by side (the UCB coefficient, seed trials, local "
     "refinement, and the candidates not taken)"),
    ("studies/oss_lockstep.py", "oss_lockstep",
     "this server's designer against plain OSS's, step by step on the same history"),
    ("studies/keras_objective.py", "keras_objective",
     "what the Keras tasks' objective is made of (cross-entropy and weight penalty)"),
    ("studies/record_curves.py", None, "records the learning curves early_stopping.py replays "
     "(`data/curves.json`)"),
]


def render() -> str:
    names = {name for _, name, _, _ in SECTIONS} | {name for name, _ in FALLBACK.values()}
    results = {name: load(name) for name in names}
    dated = [r for r in results.values() if r and isinstance(r.get("machine"), dict)
             and "cpu" in r["machine"]]
    machine = max(dated, key=date_of)["machine"] if dated else None
    out = ["# Benchmarks", "",
           "<!-- Generated by benchmarks/report.py from benchmarks/results/*.json: edit those "
           "scripts, not this file. -->", "",
           "Rerunnable numbers for choosing a tuner: how good a model each optimizer finds, what "
           "early stopping saves, what the machinery costs and how a study scales. Everything "
           "runs offline on this repository's files.", "",
           "```",
           'pip install -e ".[bench]"',
           "python benchmarks/run_all.py --quick   # every script in its quick mode, < 10 min",
           "python benchmarks/run_all.py           # the full set (hours on 2 cores), then "
           "plots.py and report.py",
           "python benchmarks/analyze.py --help    # read quality runs again (combine, compare, "
           "head-to-head, ...)",
           "```", ""]
    if machine:
        versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
        out += [f"Measured on: {machine['cpu']}, {machine['cpus']} cores, Python "
                f"{machine['python']}; {versions}. Every result file carries its own machine "
                "and date.", ""]
    out += ["## Open targets", "",
            _common.table(["issue", "target", "reading", "verdict", "result file"],
                          target_rows(results)), ""]
    for question, name, script, renderer in SECTIONS:
        result = results[name]
        if result is None and name in FALLBACK:
            name, script = FALLBACK[name]
            result = results[name]
        out += [f"## {question}", ""]
        if result is None:
            out += [f"Not measured yet (`{script}`).", ""]
            continue
        out += [f"`{script}`, {date_of(result)}: [`results/{name}.json`](results/{name}.json)",
                "", renderer(result), ""]
    out += ["## Plots", ""]
    out += [", ".join(f"[`results/{p}`](results/{p})" for p in sorted(os.listdir(_common.RESULTS))
                      if p.endswith(".png"))]
    out += ["", "## Studies (`studies/`): questions asked once, read in the notes", ""]
    for script, study, what in STUDIES:
        link = f" ([`results/{study}.json`](results/{study}.json))" if study else ""
        out.append(f"- `{script}`: {what}{link}.")
    out += ["", "## Notes", "",
            "What the readings meant when they were made, candidates tried and left, and the "
            "history of each number:", ""]
    notes = sorted(n for n in os.listdir(os.path.join(HERE, "notes")) if n.endswith(".md"))
    out += [", ".join(f"[`notes/{n}`](notes/{n})" for n in notes)]
    out += ["", "## Layout", "",
            "`lib/` (machine description, tables, tasks, peers), the run scripts here (one "
            "result file each), `analyze.py`, `studies/`, `results/` (JSON and PNG), "
            "`notes/` (dated), `data/` (recorded curves). Numbers are never asserted in the test "
            "suite; `tests/test_benchmarks.py` checks the scripts' arithmetic and that this "
            "file is what `report.py` writes.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when README.md differs from the report")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        with open(README) as f:
            if f.read() != text:
                print("benchmarks/README.md is not what report.py writes: run "
                      "python benchmarks/report.py")
                return 1
        return 0
    with open(README, "w") as f:
        f.write(text)
    print(f"wrote {README} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
