"""Quickstart: tune an MLP on sklearn's digits with Vizier, on the embedded service.

    pip install ".[tensorflow-cpu,local,examples]" && python examples/quickstart.py

No Google account, no network: with project_id=None the tuner starts a local Vizier server
(Open Source Vizier's algorithms; the default is GP-UCB-PE) whose database lives in
runs/quickstart/. Vizier's median rule stops trials that are clearly behind.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from vizier_keras import CloudTuner


def build_model(hp):
    """KerasTuner's getting-started model: its layer widths are declared inside a loop."""
    model = keras.Sequential([keras.Input((64,))])
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 32, 256, step=32), activation="relu"))
        model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--directory", default="runs")
    parser.add_argument("--algorithm", default=None, help="default: GP-UCB-PE")
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0,
                                                        stratify=y)
    tuner = CloudTuner(
        build_model,
        project_id=None,  # no Google project: the embedded Vizier service
        region=None,
        objective="val_accuracy",
        max_trials=args.max_trials,
        early_stopping="median",
        algorithm=args.algorithm,
        directory=args.directory,
        project_name="quickstart",
        overwrite=True,
    )
    started = time.monotonic()
    tuner.search(x_train, y_train, validation_split=0.2, epochs=args.epochs, batch_size=16,
                 verbose=0)
    took = time.monotonic() - started
    tuner.results_summary(5)
    best_hp = tuner.get_best_hyperparameters(1)[0]
    model = tuner.get_best_models(1)[0]
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    stats = tuner.search_stats
    print(f"\nbest hyperparameters: {best_hp.values}")
    print(f"best model: test accuracy {test_accuracy:.4f} on {len(x_test)} held-out digits")
    print(f"search: {int(stats['trials'])} trials in {took:.0f} s, "
          f"{int(stats['stopped_early'])} stopped early by Vizier, "
          f"tuner idle (outside model.fit) {stats['idle_share']:.0%} of the time")
    database = os.path.join(args.directory, "quickstart", "vizier.db")
    print(f"look at the study: vizier-keras trials quickstart --database {database}\n"
          f"               or: vizier-keras dashboard --database {database}  "
          "(pip install '.[dashboard]')")


if __name__ == "__main__":
    main()
