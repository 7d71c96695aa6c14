"""Small real Keras models on sklearn's bundled digits, for the Keras-layer tests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import keras
import numpy as np


@lru_cache(maxsize=1)
def digits(n: int = 900) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))[:n]
    return (x[order] / 16.0).astype("float32"), y[order].astype("int32")


def getting_started(hp: Any) -> keras.Model:
    """KerasTuner's getting-started model: hyperparameters first declared inside a loop."""
    model = keras.Sequential([keras.Input((64,))])
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 64, step=16),
                                     activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def mlp(hp: Any) -> keras.Model:
    model = keras.Sequential([keras.Input((64,)),
                              keras.layers.Dense(hp.Int("units", 16, 48, step=16),
                                                 activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
