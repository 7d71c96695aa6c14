"""Shared by the benchmark scripts: the machine's description, tables, JSON, processes."""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PARENT = "projects/bench/locations/local"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    versions = {}
    for package in ("google-vizier", "jax", "tensorflow-cpu", "keras", "keras-tuner", "optuna",
                    "numpy", "scikit-learn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "cpu": cpu,
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions}


def save(report: dict[str, Any], path: str) -> None:
    """Writes ``report`` as JSON (after each part, so that a long run leaves what it has)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1, default=float)
    os.replace(tmp, path)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable as printed text)."""
    def cell(x: Any) -> str:
        if isinstance(x, float):
            if x != x:
                return "-"
            return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.0f}"
        return str(x)

    text = [[cell(x) for x in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h)
              for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in text]
    return "\n".join(lines)


def percentile(xs: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's); NaN when empty."""
    if not len(xs):
        return float("nan")
    return float(np.percentile(np.asarray(xs, dtype=float), q))


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def peer_at(spec: str, *, trials_required: bool = False) -> tuple[str, int | None]:
    """A peer read at a trial, as the scripts' options write it: ``PEER@N`` gives (PEER, N),
    ``PEER`` gives (PEER, None) (its last trial) unless ``trials_required``. N is a trial count,
    1 or more; anything else is an :class:`argparse.ArgumentTypeError` naming the value."""
    peer, sep, trials = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if not peer or ((sep or trials_required) and not (trials.isdigit() and int(trials) >= 1)):
        form = "PEER@N" if trials_required else "PEER or PEER@N"
        raise argparse.ArgumentTypeError(
            f"expected {form} with N a trial count (1 or more); got {spec!r}")
    return peer, int(trials) if sep else None


def peer_at_trial(spec: str) -> tuple[str, int]:
    """:func:`peer_at` with the trial required: ``PEER@N`` as (PEER, N)."""
    peer, trials = peer_at(spec, trials_required=True)
    assert trials is not None
    return peer, trials


def interleave(iterators: Sequence[Any]) -> Any:
    """Results of several pools' ``imap_unordered`` as they come (polling each in turn)."""
    active = list(iterators)
    while active:
        for it in list(active):
            try:
                yield it.next(timeout=0.5)
            except mp.TimeoutError:
                continue
            except StopIteration:
                active.remove(it)


def in_processes(target: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], workers: int
                 ) -> list[Any]:
    """Runs ``target(*job)`` for each job in ``workers`` fresh (spawned) processes; results in
    job order."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=None) as pool:
        return pool.starmap(target, jobs, chunksize=1)


def in_process(target: Callable[..., Any], *args: Any) -> Any:
    """Runs ``target(*args)`` in one fresh (spawned) process and returns its result."""
    return in_processes(target, [args], 1)[0]
