"""Records the table of real learning curves that ``early_stopping.py`` replays.

Run:  python benchmarks/studies/record_curves.py [--epochs 30] [--seeds 2]
      (writes benchmarks/data/curves.json; ~15 minutes on 2 cores)

A grid of MLP configurations (units x layers x learning rate x dropout) is trained on
scikit-learn's bundled digits and breast_cancer data (``tasks.load``: standardised, fixed 75/25
split), each with ``--seeds`` weight-initialisation seeds, for ``--epochs`` epochs; the
validation loss and accuracy after every epoch are kept. Plain ``model.fit``, Keras' default
backend. Replaying the table lets stopping rules be compared on exactly the same curves, many
times, in seconds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib import _common, tasks

GRID: dict[str, list[Any]] = {
    "units": [16, 64, 256],
    "layers": [1, 2],
    "learning_rate": [1e-4, 1e-3, 1e-2, 1e-1],
    "dropout": [0.0, 0.4],
}
DATASETS = {"digits": 64, "breast_cancer": 32}  # dataset -> batch size
OUT = os.path.join(_common.ROOT, "benchmarks", "data", "curves.json")


def configurations() -> list[dict[str, Any]]:
    keys = list(GRID)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*GRID.values())]


def record(epochs: int, seeds: int, out: str) -> dict[str, Any]:
    import keras

    table: dict[str, Any] = {"machine": _common.machine(), "epochs": epochs, "grid": GRID,
                             "backend": keras.backend.backend(), "datasets": {}}
    for dataset, batch_size in DATASETS.items():
        x_train, y_train, x_val, y_val, classes = tasks.load(dataset)
        runs = []
        started = time.time()
        for config in configurations():
            for seed in range(seeds):
                keras.utils.set_random_seed(seed)
                keras.backend.clear_session()
                model = tasks.build_mlp({**config, "l2": 0.0}, x_train.shape[1], classes)
                model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                history = model.fit(x_train, y_train, validation_data=(x_val, y_val),
                                    epochs=epochs, batch_size=batch_size, verbose=0).history
                runs.append({"config": config, "seed": seed,
                             "val_loss": [round(float(v), 5) for v in history["val_loss"]],
                             "val_accuracy": [round(float(v), 5)
                                              for v in history["val_accuracy"]]})
        table["datasets"][dataset] = {"batch_size": batch_size, "runs": runs,
                                      "seconds": round(time.time() - started, 1)}
        _common.save(table, out)  # after each data set
        print(f"{dataset}: {len(runs)} curves of {epochs} epochs in "
              f"{time.time() - started:.0f} s", flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    record(args.epochs, args.seeds, args.out)


if __name__ == "__main__":
    main()
