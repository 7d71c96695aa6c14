"""PNG plots of the benchmark results (benchmarks/results/*.json -> benchmarks/results/*.png).

Run:  python benchmarks/plots.py
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import _common

COLORS = {"vizier": "tab:blue", "vizier-random": "tab:cyan", "oss": "tab:purple",
          "optuna-tpe": "tab:orange", "kt-bo": "tab:green", "kt-random": "tab:gray",
          "none": "black", "vizier-median": "tab:blue", "vizier-decay": "tab:cyan",
          "optuna-median": "tab:orange", "optuna-hyperband": "tab:red",
          "kt-hyperband": "tab:green"}


def _load(name: str) -> dict[str, Any] | None:
    path = os.path.join(_common.RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def quality(plt: Any, report: dict[str, Any]) -> str:
    import quality as q

    summary = report.get("summary") or q.summarize(report["runs"], report["args"]["trials"],
                                                   report["args"]["at"])
    names = list(summary["tasks"])
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, task in zip(axes.flat, names, strict=False):
        for peer, e in sorted(summary["tasks"][task].items()):
            curve = e["median_curve"]
            ax.plot(range(1, len(curve) + 1), curve, label=peer, color=COLORS.get(peer))
        ax.set_title(task, fontsize=10)
        ax.set_yscale("log")  # regrets span decades; validation losses reach ~1e-4 on wine
        ax.axvline(summary["at"], color="k", lw=0.5, ls=":")
        ax.set_xlabel("trial")
        ax.set_ylabel("median best so far" if task.startswith("mlp") else "median best regret")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Best so far, median over seeds ({report['machine']['date']})", fontsize=11)
    fig.tight_layout()
    return _save(plt, fig, "quality")


def early_stopping(plt: Any, report: dict[str, Any]) -> str:
    names = list(report["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=True):
        summary = report["datasets"][name]
        for method, e in summary["methods"].items():
            xs = [r["epochs"] for r in e["replays"]]
            ys = [r["best"] for r in e["replays"]]
            ax.scatter(xs, ys, s=8, alpha=0.35, color=COLORS.get(method))
            ax.scatter([e["median_epochs"]], [e["median_best"]], s=60, marker="D",
                       color=COLORS.get(method), label=method, edgecolors="k")
        ax.axhline(summary["target"], color="k", lw=0.5, ls=":")
        ax.set_title(f"{name}: epochs used vs best val_loss", fontsize=10)
        ax.set_xlabel("epochs used (all trials of a replay)")
        ax.set_ylabel("best val_loss")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Early stopping replayed on recorded curves ({report['machine']['date']}; "
                 "diamonds: medians, dots: replays)", fontsize=11)
    fig.tight_layout()
    return _save(plt, fig, "early_stopping")


def scaling(plt: Any, report: dict[str, Any]) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for run in report["runs"]:
        groups.setdefault((run["algorithm"], run["objective_seconds"]), []).append(run)
    for (algorithm, objective), runs in groups.items():
        runs.sort(key=lambda r: r["workers"])
        one = runs[0]["trials_per_minute"]
        ax.plot([r["workers"] for r in runs], [r["trials_per_minute"] / one for r in runs],
                marker="o", label=f"{algorithm}, {objective:g} s objective")
    top = max(r["workers"] for r in report["runs"])
    ax.plot([1, top], [1, top], color="k", lw=0.5, ls=":", label="linear")
    ax.set_xlabel("worker processes")
    ax.set_ylabel("speed-up in trials per minute")
    ax.legend(fontsize=8)
    ax.set_title(f"One study, many workers ({report['machine']['date']})", fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, "scaling")


def quality_verdict(plt: Any, report: dict[str, Any]) -> str:
    """Critical-difference plot of #36's verdict: mean ranks (1 = best) at 30 and 50 trials,
    Nemenyi's critical difference, and bars over the optimizers it does not tell apart."""
    import comparison

    if "verdict" not in report:
        return "no verdict yet (comparison.py verdict --write)"
    entries = {at: e for at, e in report["verdict"]["at"].items() if "critical_difference" in e}
    fig, axes = plt.subplots(len(entries), 1, figsize=(7, 1.9 * len(entries)), squeeze=False)
    for ax, (at, entry) in zip(axes.flat, entries.items(), strict=True):
        ranks, cd = entry["mean_ranks"], entry["critical_difference"]
        k = len(ranks)
        ax.set_xlim(k + 0.2, 0.8)  # best (rank 1) on the right, as Demsar draws it
        ax.set_ylim(-1.6, 1.4)
        ax.axis("off")
        ax.plot([k, 1], [0, 0], color="k", lw=1)
        for r in range(1, k + 1):
            ax.plot([r, r], [0, 0.1], color="k", lw=1)
            ax.text(r, 0.2, str(r), ha="center", fontsize=8)
        ax.plot([k, k - cd], [1.1, 1.1], color="k", lw=2)
        ax.text(k - cd / 2, 1.2, f"CD {cd:.2f}", ha="center", fontsize=8)
        for i, name in enumerate(sorted(ranks, key=lambda o: ranks[o])):
            y = -0.45 - 0.35 * (i % 2)
            ax.plot([ranks[name]] * 2, [0, y + 0.1], color=COLORS.get(name, "k"), lw=1)
            ax.text(ranks[name], y, f"{name} {ranks[name]:.2f}", ha="center", va="top",
                    fontsize=8, color=COLORS.get(name, "k"))
        for j, group in enumerate(comparison.nemenyi_groups(ranks, cd)):
            y = 0.45 + 0.18 * j
            ax.plot([ranks[group[0]], ranks[group[-1]]], [y, y], color="k", lw=3)
        ax.set_title(f"@{at} trials: {entry['problems']} problems, Friedman p "
                     f"{entry['friedman_p']:.3g}", fontsize=9)
    fig.suptitle(f"Mean ranks with Nemenyi's critical difference, alpha 0.05 "
                 f"({report['machine']['date']})", fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, "quality_verdict_cd")


def _save(plt: Any, fig: Any, name: str) -> str:
    path = os.path.join(_common.RESULTS, f"{name}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, fn in (("quality", quality), ("early_stopping", early_stopping),
                     ("scaling", scaling), ("quality_verdict", quality_verdict)):
        report = _load(name)
        if report is None:
            print(f"{name}: no results yet (run benchmarks/{name}.py)")
            continue
        print(f"{name}: {fn(plt, report)}")


if __name__ == "__main__":
    main()
