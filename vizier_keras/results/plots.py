"""Plots of one study: optimization history, learning curves, parallel coordinates, parameter
importance. PNG (or SVG, PDF) through matplotlib, interactive HTML through plotly.

Parallel coordinates and importance are Optuna's plots, fed by a mirror of the study
(:mod:`vizier_keras.results.mirror`); importance is Optuna's fANOVA, seeded. History and learning
curves are drawn here, because they must show what Optuna's do not: Vizier's trial ids (Optuna
numbers trials from 0) and which trials Vizier stopped early. History: each finished trial's
objective by trial id (stopped ones in red) and the best so far as a step line. Curves: each
measured trial is one line of its first objective by step, solid when it ran to the end, dashed
red when Vizier stopped it early, dotted while it runs. Pareto (two or more objectives): the
finished trials that meet the constraints by the first two objectives, the front in red.
Needs the ``[plots]`` extra.

Example::

    save_plot(load_study("my-study", database="vizier.db"), "curves", "curves.png")
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vizier_keras import wire
from vizier_keras.errors import MissingExtraError, ValidationError
from vizier_keras.results.mirror import optuna_study
from vizier_keras.results.study import STOPPED_EARLY, StudyResults

__all__ = ["KINDS", "figure", "save_plot"]

KINDS = ("history", "curves", "parallel", "importance", "pareto")
_IMAGE = (".png", ".svg", ".pdf")
_STYLE = {  # state -> (label, color, line style)
    "SUCCEEDED": ("completed", "#1f77b4", "-"),
    STOPPED_EARLY: ("stopped early by Vizier", "#d62728", "--"),
    "RUNNING": ("running", "#7f7f7f", ":"),
}


@contextmanager
def _restored_style(interactive: bool) -> Iterator[None]:
    """Optuna's matplotlib plots set a global style; it stays inside them."""
    if interactive:
        yield
        return
    import matplotlib

    with matplotlib.rc_context():
        yield


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna marks its matplotlib plots experimental; that warning is not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is experimental")
        yield


def _need(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise MissingExtraError("plots", "plots", [module.split(".")[0]]) from None


def figure(results: StudyResults, kind: str, *, interactive: bool = False) -> Any:
    """The plot of ``kind`` (:data:`KINDS`): a matplotlib Figure, or a plotly Figure when
    ``interactive``.

    Raises:
        ValidationError: An unknown kind, or a study with nothing to plot for it.
    """
    if kind not in KINDS:
        raise ValidationError("kind", kind, f"must be one of {', '.join(KINDS)}")
    if kind == "curves":
        return _curves_plotly(results) if interactive else _curves(results)
    if kind == "history":
        return _history_plotly(results) if interactive else _history(results)
    if kind == "pareto":
        return _pareto_plotly(results) if interactive else _pareto(results)
    finished = [r for r in results.records() if r["state"] in ("SUCCEEDED", STOPPED_EARLY)]
    if not finished:
        raise ValidationError("study", results.display_name,
                              f"has no finished trial yet: nothing to plot as {kind}")
    study = optuna_study(results)
    target, target_name = None, results.metrics[0][0]
    if len(results.metrics) > 1:
        def target(t: Any) -> float:
            return float(t.values[0])
    optuna = _need("optuna")
    module = optuna.visualization if interactive else optuna.visualization.matplotlib
    if not interactive:
        _need("matplotlib")
    with _quiet(), _restored_style(interactive):
        if kind == "parallel":
            plot = module.plot_parallel_coordinate(study, target=target,
                                                   target_name=target_name)
        else:
            if len(finished) < 2:
                raise ValidationError("study", results.display_name, "needs two finished "
                                      "trials for parameter importance")
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            plot = module.plot_param_importances(study, evaluator=evaluator, target=target,
                                                 target_name=target_name)
    return plot if interactive else plot.figure


def _finish(fig: Any, x: str, y: str, title: str, legend: bool = True) -> Any:
    """Axis labels, title, a light grid and the legend of a figure's one plot."""
    ax = fig.axes[0]
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend()
    return fig


def _history_points(results: StudyResults) -> tuple[list[Any], list[float]]:
    """The finished trials' rows with the objective, and the best so far after each."""
    metric, goal = results.metrics[0]
    rows = [r for r in results.records() if r["state"] in ("SUCCEEDED", STOPPED_EARLY)
            and isinstance(r.get(metric), float) and r[metric] == r[metric]]
    if not rows:
        raise ValidationError("study", results.display_name,
                              "has no finished trial yet: nothing to plot as history")
    best: list[float] = []
    for row in rows:
        value = row[metric]
        better = max if goal is wire.Goal.MAXIMIZE else min
        best.append(value if not best else better(best[-1], value))
    return rows, best


def _history(results: StudyResults) -> Any:
    _need("matplotlib")
    from matplotlib.figure import Figure

    rows, best = _history_points(results)
    metric = results.metrics[0][0]
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for state in ("SUCCEEDED", STOPPED_EARLY):
        chosen = [r for r in rows if r["state"] == state]
        if chosen:
            label, color, _ = _STYLE[state]
            ax.scatter([r["trial"] for r in chosen], [r[metric] for r in chosen], color=color,
                       label=label, zorder=3)
    ax.step([r["trial"] for r in rows], best, where="post", color="black", label="best so far")
    return _finish(fig, "trial", metric, f"Optimization history: {results.display_name}")


def _history_plotly(results: StudyResults) -> Any:
    go = _need("plotly.graph_objects")
    rows, best = _history_points(results)
    metric = results.metrics[0][0]
    fig = go.Figure()
    for state in ("SUCCEEDED", STOPPED_EARLY):
        chosen = [r for r in rows if r["state"] == state]
        if chosen:
            label, color, _ = _STYLE[state]
            fig.add_trace(go.Scatter(x=[r["trial"] for r in chosen],
                                     y=[r[metric] for r in chosen], mode="markers", name=label,
                                     marker={"color": color}))
    fig.add_trace(go.Scatter(x=[r["trial"] for r in rows], y=best, mode="lines",
                             line={"shape": "hv", "color": "black"}, name="best so far"))
    fig.update_layout(title=f"Optimization history: {results.display_name}",
                      xaxis_title="trial", yaxis_title=metric)
    return fig


def _pareto_points(results: StudyResults) -> tuple[list[Any], list[Any], str, str]:
    """(every finished safe trial's row, the Pareto front's rows by the first objective, the
    two objectives plotted)."""
    if len(results.metrics) < 2:
        raise ValidationError("study", results.display_name, "has one objective; a Pareto "
                              "front needs two or more (the first two are plotted)")
    (x, _), (y, _) = results.metrics[:2]
    rows = results.best_trials(len(results.trials) or 1)
    if not rows:
        raise ValidationError("study", results.display_name,
                              "has no finished trial yet: nothing to plot as pareto")
    front = sorted((r for r in rows if r["front"] == 0), key=lambda r: r[x])
    return rows, front, x, y


def _pareto(results: StudyResults) -> Any:
    _need("matplotlib")
    from matplotlib.figure import Figure

    rows, front, x, y = _pareto_points(results)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    others = [r for r in rows if r["front"] != 0]
    ax.scatter([r[x] for r in others], [r[y] for r in others], color="#7f7f7f",
               label="dominated")
    ax.plot([r[x] for r in front], [r[y] for r in front], "o-", color="#d62728",
            label="Pareto front")
    for r in front:
        ax.annotate(str(r["trial"]), (r[x], r[y]), textcoords="offset points", xytext=(4, 4))
    return _finish(fig, x, y, f"Pareto front: {results.display_name}")


def _pareto_plotly(results: StudyResults) -> Any:
    go = _need("plotly.graph_objects")
    rows, front, x, y = _pareto_points(results)
    others = [r for r in rows if r["front"] != 0]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[r[x] for r in others], y=[r[y] for r in others],
                             mode="markers", name="dominated", marker={"color": "#7f7f7f"},
                             text=[f"trial {r['trial']}" for r in others]))
    fig.add_trace(go.Scatter(x=[r[x] for r in front], y=[r[y] for r in front],
                             mode="lines+markers", name="Pareto front",
                             marker={"color": "#d62728"},
                             text=[f"trial {r['trial']}" for r in front]))
    fig.update_layout(title=f"Pareto front: {results.display_name}", xaxis_title=x,
                      yaxis_title=y)
    return fig


def _curve_lines(results: StudyResults) -> Iterator[tuple[int, str, list[int], list[float]]]:
    metric = results.metrics[0][0]
    for trial, row in zip(results.trials, results.records(), strict=True):
        steps, values = [], []
        for i, m in enumerate(trial.get("measurements", ()) or ()):
            value = wire.measurement_metrics(m).get(metric)
            if value is not None:
                steps.append(wire.measurement_step(m) or i + 1)
                values.append(value)
        if steps:
            state = row["state"] if row["state"] in _STYLE else "RUNNING"
            if row["state"] == "INFEASIBLE":
                continue
            yield row["trial"], state, steps, values


def _curves(results: StudyResults) -> Any:
    _need("matplotlib")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    labelled: set[str] = set()
    for number, state, steps, values in _curve_lines(results):
        label, color, style = _STYLE[state]
        ax.plot(steps, values, style, color=color, marker=".", alpha=0.8, gid=f"trial-{number}",
                label=None if state in labelled else label)
        labelled.add(state)
    metric, goal = results.metrics[0]
    better = "higher" if goal is wire.Goal.MAXIMIZE else "lower"
    return _finish(fig, "step", f"{metric} ({better} is better)",
                   f"Learning curves: {results.display_name}", legend=bool(labelled))


def _curves_plotly(results: StudyResults) -> Any:
    go = _need("plotly.graph_objects")
    fig = go.Figure()
    labelled: set[str] = set()
    for number, state, steps, values in _curve_lines(results):
        label, color, style = _STYLE[state]
        dash = {"-": "solid", "--": "dash", ":": "dot"}[style]
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=f"trial {number}",
                                 legendgroup=label, legendgrouptitle_text=label,
                                 line={"color": color, "dash": dash}, showlegend=True))
        labelled.add(state)
    fig.update_layout(title=f"Learning curves: {results.display_name}", xaxis_title="step",
                      yaxis_title=results.metrics[0][0])
    return fig


def save_plot(results: StudyResults, kind: str, path: str | os.PathLike[str]) -> str:
    """Write the plot of ``kind`` to ``path``: an image for .png, .svg or .pdf, an interactive
    page (plotly, its script inlined: it works offline) for .html. Returns the path."""
    out = os.fspath(path)
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in (*_IMAGE, ".html"):
        raise ValidationError("output", out, "must end in .png, .svg, .pdf or .html")
    if suffix == ".html":
        figure(results, kind, interactive=True).write_html(out, include_plotlyjs=True)
        return out
    fig = figure(results, kind)
    fig.savefig(out, dpi=120)
    _close(fig)
    return out


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
