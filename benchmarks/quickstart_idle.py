"""The quickstart's idle share on a machine whose JAX compilation cache is empty (issue 33).

Run:  python benchmarks/quickstart_idle.py [--max-trials 20] [--epochs 30]

The README's quickstart as shipped (``examples/quickstart.py``: its model, data and tuner
arguments, 20 trials of 30 epochs, the default algorithm, the median stopping rule) runs in a
fresh process whose cache home is an empty directory, so the embedded server compiles every
program. Idle = wall time from the tuner's construction (the server start counts) to the end of
``search()``, less the time inside ``model.fit``. Target: <= 5%. Writes
``results/quickstart_idle.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import _common

_CHILD = """
import json, os, sys, time
sys.path.insert(0, os.path.join({root!r}, "examples"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import quickstart
from vizier_keras import CloudTuner

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
x_train, _, y_train, _ = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
began = time.monotonic()
tuner = CloudTuner(quickstart.build_model, project_id=None, region=None,
                   objective="val_accuracy", max_trials={trials}, early_stopping="median",
                   directory={directory!r}, project_name="quickstart", overwrite=True)
tuner.search(x_train, y_train, validation_split=0.2, epochs={epochs}, batch_size=16, verbose=0)
total = time.monotonic() - began
stats = tuner.search_stats
print("RESULT " + json.dumps({{"total_seconds": total, "search_seconds": stats["search_seconds"],
                              "fit_seconds": stats["fit_seconds"],
                              "suggest_wait_seconds": stats["suggest_wait_seconds"],
                              "trials": stats["trials"],
                              "stopped_early": stats["stopped_early"]}}))
"""


def measure(trials: int, epochs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_CACHE_HOME": os.path.join(home, "cache")}
        code = _CHILD.format(root=_common.ROOT, trials=trials, epochs=epochs,
                             directory=os.path.join(home, "runs"))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the quickstart failed:\n{out.stderr[-3000:]}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT "):])
    idle = result["total_seconds"] - result["fit_seconds"]
    result.update(idle_seconds=idle, idle_share=idle / result["total_seconds"])
    return result


def table(report: dict[str, Any]) -> str:
    """One row: the wall time from construction to the end of search, and what was idle."""
    r = report["run"]
    return _common.table(
        ["trials", "stopped early", "tuner + search s", "in model.fit s", "idle s",
         "waiting for suggestions s", "idle share %"],
        [[r["trials"], r["stopped_early"], r["total_seconds"], r["fit_seconds"],
          r["idle_seconds"], r["suggest_wait_seconds"], r["idle_share"] * 100]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "quickstart_idle.json"))
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": _common.machine(), "args": vars(args),
              "run": measure(args.max_trials, args.epochs)}
    report["idle_share"] = report["run"]["idle_share"]
    report["search_seconds"] = report["run"]["total_seconds"]
    _common.save(report, args.out)
    print(table(report))
    print(f"  idle share {report['idle_share']:.1%} (target <= 5%): "
          f"{'met' if report['idle_share'] <= 0.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
