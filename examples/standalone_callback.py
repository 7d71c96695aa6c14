"""Vizier in your own training script: one trial, plain model.fit, the reporting callback.

    python examples/standalone_callback.py            # run it again for the next trial

Each run asks the study for a trial, trains with plain ``model.fit``, streams every epoch to
Vizier and lets Vizier stop it early; the trial is completed when ``fit`` ends (infeasible if
the script raises).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import keras_tuner as kt
from sklearn.datasets import load_digits

import vizier_keras


def main() -> None:
    hp = kt.HyperParameters()
    hp.Int("units", 32, 256, step=32)
    hp.Float("lr", 1e-4, 1e-2, sampling="log")

    trial = vizier_keras.suggest_trial("standalone-digits", objective="val_accuracy",
                                       hyperparameters=hp, max_trials=10,
                                       early_stopping="median", directory="runs/standalone")
    if trial is None:
        print("the study has all its trials")
        return
    print(f"trial {trial.id}: {trial.parameters}")
    x, y = load_digits(return_X_y=True)
    with trial:
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(trial.parameters["units"], activation="relu"),
            keras.layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.Adam(trial.parameters["lr"]),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x / 16.0, y, validation_split=0.2, epochs=20, verbose=0,
                  callbacks=[vizier_keras.VizierReportingCallback(trial)])
    done = trial.client.get_trial(trial.name)
    print(f"trial {trial.id}: {done['state']}, final {done.get('finalMeasurement')}")


if __name__ == "__main__":
    main()
