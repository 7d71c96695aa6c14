"""How much time VizierReportingCallback takes on the training thread, per epoch.

    python benchmarks/callback_overhead.py            # ~3 minutes on 2 cores
    python benchmarks/callback_overhead.py --quick

Trains the quickstart's digits MLP (sklearn's bundled digits, batch 16) with plain
``model.fit`` under four set-ups, each against a real embedded Vizier server with median early
stopping on (each run in a study of its own, so that every epoch is measured and checked and
none is stopped):

* ``none``: no callback (the epoch time the others are compared with);
* ``background``: the default callback (measurements and stop checks on a background thread);
* ``background, +50 ms``: the same with the service 50 ms away (every HTTP request delayed by
  50 ms, on whatever thread sends it);
* ``blocking, +50 ms``: ``blocking=True``, the training thread waits for every request.

"per epoch ms" is the callback's own time on the training thread in its epoch hooks
(``VizierReportingCallback.stats``), "share" that over the mean epoch time without a callback;
"end of fit ms" is the wait, once per fit, for measurements still in flight; "all, share" both
together spread over the epochs. Prints a table and writes
``benchmarks/results/callback_overhead.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import keras_tuner as kt
import numpy as np
import requests
from sklearn.datasets import load_digits

import vizier_keras
from vizier_keras.client import VizierClient
from vizier_keras.server.embedded import start_local_server

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


class DelayedSession(requests.Session):
    """A session whose every request first waits ``delay`` seconds: a service that far away."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def request(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.delay)
        return super().request(*args, **kwargs)


class EpochClock(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self._began = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.times.append(time.perf_counter() - self._began)


def build(units: int, lr: float) -> keras.Model:
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def run(mode: str, delay: float, url: str, epochs: int, x: Any, y: Any) -> dict[str, Any]:
    hp = kt.HyperParameters()
    hp.Int("units", 32, 256, step=32)
    hp.Float("lr", 1e-4, 1e-2, sampling="log")
    client = VizierClient(url, session=DelayedSession(delay))
    # A study per run: every epoch still sends a measurement and a stop check (the server
    # runs the median rule), but no run is cut short by the others' results.
    trial = vizier_keras.suggest_trial(
        f"callback-overhead-{time.monotonic_ns()}", objective="val_accuracy", hyperparameters=hp,
        algorithm="RANDOM_SEARCH", early_stopping="median", client=client,
        worker_id=f"{mode}-{delay}")
    assert trial is not None
    clock = EpochClock()
    callbacks: list[Any] = [clock]
    reporter = None
    if mode != "none":
        reporter = vizier_keras.VizierReportingCallback(trial, blocking=mode == "blocking")
        callbacks.insert(0, reporter)
    model = build(128, 1e-3)
    with trial:
        model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=16, verbose=0,
                  callbacks=callbacks)
        if reporter is None:
            trial.complete({"val_accuracy": 0.0})
    client.close()
    epoch_times = clock.times[1:]  # the first epoch compiles
    stats = reporter.stats if reporter else {}
    seconds = stats.get("training_thread_seconds", 0.0)
    end = stats.get("end_of_fit_seconds", 0.0)
    per_epoch = (seconds - end) / max(1, len(clock.times))
    return {"mode": mode, "delay_ms": delay * 1000, "epochs": len(clock.times),
            "epoch_ms": 1000 * statistics.mean(epoch_times),
            "callback_ms_per_epoch": 1000 * per_epoch,
            "end_of_fit_ms": 1000 * end, "total_ms_per_epoch": 1000 * seconds / max(
                1, len(clock.times)),
            "measurements_sent": reporter.stats["measurements_sent"] if reporter else 0,
            "stopped_early": bool(reporter and reporter.stopped_early)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS / "callback_overhead.json")
    args = parser.parse_args(argv)
    epochs = args.epochs or (10 if args.quick else 30)
    repeats = args.repeats or (1 if args.quick else 3)

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    setups = [("none", 0.0), ("background", 0.0), ("background", 0.05), ("blocking", 0.05)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_local_server(os.path.join(tmp, "vizier.db"))
        try:
            for _ in range(repeats):  # interleaved, so drift hits every set-up alike
                for mode, delay in setups:
                    rows.append(run(mode, delay, server.url, epochs, x, y))
        finally:
            server.stop()

    baseline = statistics.median(r["epoch_ms"] for r in rows if r["mode"] == "none")
    table = []
    for mode, delay in setups:
        mine = [r for r in rows if r["mode"] == mode and r["delay_ms"] == delay * 1000]
        cb = statistics.median(r["callback_ms_per_epoch"] for r in mine)
        total = statistics.median(r["total_ms_per_epoch"] for r in mine)
        table.append({"setup": mode + (f", +{delay * 1000:.0f} ms" if delay else ""),
                      "epoch_ms": statistics.median(r["epoch_ms"] for r in mine),
                      "callback_ms_per_epoch": cb,
                      "share_of_epoch": cb / baseline,
                      "end_of_fit_ms": statistics.median(r["end_of_fit_ms"] for r in mine),
                      "total_ms_per_epoch": total, "total_share": total / baseline,
                      "stopped_early": sum(r["stopped_early"] for r in mine),
                      "runs": len(mine)})
    print(f"digits MLP, batch 16, {epochs} epochs, {repeats} repeats; "
          f"epoch time without callback {baseline:.1f} ms")
    print(f"{'setup':<22}{'epoch ms':>10}{'per epoch ms':>14}{'share':>8}{'end of fit ms':>15}"
          f"{'all, share':>12}")
    for row in table:
        print(f"{row['setup']:<22}{row['epoch_ms']:>10.1f}{row['callback_ms_per_epoch']:>14.3f}"
              f"{100 * row['share_of_epoch']:>7.2f}%{row['end_of_fit_ms']:>15.1f}"
              f"{100 * row['total_share']:>11.2f}%")
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, Keras {keras.__version__}"
        f" ({keras.backend.backend()})", "epochs": epochs, "repeats": repeats,
        "baseline_epoch_ms": baseline, "table": table, "runs": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
