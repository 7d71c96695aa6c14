"""A conditional search space: hyperparameters that exist only for some model types.

    python examples/conditional_space.py

Vizier receives the conditions as conditionalParameterSpecs, and each trial carries only the
parameters its conditions make active (a CNN trial has no MLP widths).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
from sklearn.datasets import load_digits

from vizier_keras import CloudTuner


def build_model(hp):
    kind = hp.Choice("model", ["mlp", "cnn"])
    inputs = keras.Input((8, 8, 1))
    if kind == "mlp":
        with hp.conditional_scope("model", ["mlp"]):
            x = keras.layers.Flatten()(inputs)
            x = keras.layers.Dense(hp.Int("mlp_units", 32, 256, step=32), activation="relu")(x)
    else:
        with hp.conditional_scope("model", ["cnn"]):
            x = keras.layers.Conv2D(hp.Choice("filters", [8, 16, 32]), 3, activation="relu")(
                inputs)
            x = keras.layers.GlobalAveragePooling2D()(x)
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("mlp_units", 32, 256, step=32)
    with hp.conditional_scope("model", ["cnn"]):
        hp.Choice("filters", [8, 16, 32])
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    tuner = CloudTuner(build_model, project_id=None, region=None, objective="val_accuracy",
                       max_trials=8, algorithm="RANDOM_SEARCH", directory="runs",
                       project_name="conditional", overwrite=True)
    tuner.search(x, y, validation_split=0.2, epochs=5, verbose=0)
    tuner.results_summary(8)


if __name__ == "__main__":
    main()
