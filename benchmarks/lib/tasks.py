"""The tuning tasks the benchmarks run: shifted BBOB-style test functions and Keras MLPs on
scikit-learn's bundled data sets (no downloads).

Each task has a KerasTuner search space (:func:`Task.space`) and an objective to MINIMIZE
(:func:`Task.evaluate`). Test functions are written here from their published definitions
(Hansen et al., "Real-Parameter Black-Box Optimization Benchmarking 2009: Noiseless Functions
Definitions"): the optimum ``x_opt`` is drawn per seed uniformly in [-4, 4]^d (away from the
centre of the [-5, 5]^d domain), ``f_opt = 0``, so the value reported is the regret.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BOUND = 5.0


def _sphere(z: np.ndarray) -> float:
    return float(np.sum(z * z))


def _ellipsoid(z: np.ndarray) -> float:
    d = len(z)
    weights = 10.0 ** (6.0 * np.arange(d) / max(d - 1, 1))
    return float(np.sum(weights * z * z))


def _rosenbrock(z: np.ndarray) -> float:
    # BBOB f8: z = max(1, sqrt(d)/8) * (x - x_opt) + 1, optimum at z = 1.
    z = max(1.0, math.sqrt(len(z)) / 8.0) * z + 1.0
    return float(np.sum(100.0 * (z[:-1] ** 2 - z[1:]) ** 2 + (z[:-1] - 1.0) ** 2))


def _rastrigin(z: np.ndarray) -> float:
    return float(10.0 * (len(z) - np.sum(np.cos(2 * np.pi * z))) + np.sum(z * z))


FUNCTIONS: dict[str, Callable[[np.ndarray], float]] = {
    "sphere": _sphere, "ellipsoid": _ellipsoid, "rosenbrock": _rosenbrock,
    "rastrigin": _rastrigin,
}


@dataclass(frozen=True)
class FunctionTask:
    """A shifted test function over [-5, 5]^dims."""

    function: str
    dims: int
    kind: str = field(default="function", init=False)

    @property
    def name(self) -> str:
        return f"{self.function}-{self.dims}d"

    def space(self) -> Any:
        import keras_tuner as kt

        hp = kt.HyperParameters()
        for i in range(self.dims):
            hp.Float(f"x{i}", -BOUND, BOUND)
        return hp

    def optimum(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        return rng.uniform(-4.0, 4.0, self.dims)

    def evaluate(self, values: dict[str, Any], seed: int) -> float:
        x = np.array([float(values[f"x{i}"]) for i in range(self.dims)])
        return FUNCTIONS[self.function](x - self.optimum(seed))


# --------------------------------------------------------------------------- Keras tasks

DATASETS = ("digits", "breast_cancer", "wine")


def load(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Standardised train/validation split (75/25, stratified, fixed) and the class count."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data = getattr(datasets, f"load_{dataset}")()
    x, y = data.data.astype("float32"), data.target.astype("int32")
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, stratify=y,
                                                      random_state=0)
    scaler = StandardScaler().fit(x_train)
    return (scaler.transform(x_train).astype("float32"), y_train,
            scaler.transform(x_val).astype("float32"), y_val, int(y.max()) + 1)


_DATA: dict[str, Any] = {}


@dataclass(frozen=True)
class KerasTask:
    """An MLP on a bundled data set; the objective is the validation loss after a fixed number
    of epochs (accuracy on these sets saturates near 1)."""

    dataset: str
    epochs: int = 15
    batch_size: int = 32
    kind: str = field(default="keras", init=False)

    @property
    def name(self) -> str:
        return f"mlp-{self.dataset}"

    def space(self) -> Any:
        import keras_tuner as kt

        hp = kt.HyperParameters()
        hp.Int("units", 8, 256, sampling="log")
        hp.Int("layers", 1, 3)
        hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        hp.Float("dropout", 0.0, 0.5)
        hp.Float("l2", 1e-6, 1e-1, sampling="log")
        return hp

    def evaluate(self, values: dict[str, Any], seed: int) -> float:
        """The validation loss as Keras reports it (``model.evaluate``, and ``val_loss`` in a
        KerasTuner search): the cross-entropy on the validation set plus the L2 weight penalty
        (see :meth:`loss_parts`); 10 where training diverged."""
        model, (_, _, x_val, y_val, _) = self._trained(values, seed)
        loss = float(model.evaluate(x_val, y_val, batch_size=len(x_val), verbose=0))
        return loss if math.isfinite(loss) else 10.0

    def loss_parts(self, values: dict[str, Any], seed: int) -> dict[str, float]:
        """What :meth:`evaluate`'s value is made of, for the same training: ``loss`` (the
        value), ``crossentropy`` (on the validation set: the data's part) and ``penalty`` (the
        L2 terms Keras adds to every loss it reports, the same on any data)."""
        import keras

        model, (_, _, x_val, y_val, _) = self._trained(values, seed)
        loss = float(model.evaluate(x_val, y_val, batch_size=len(x_val), verbose=0))
        probabilities = model.predict(x_val, batch_size=len(x_val), verbose=0)
        crossentropy = float(np.mean(keras.ops.convert_to_numpy(
            keras.losses.sparse_categorical_crossentropy(y_val, probabilities))))
        penalty = float(sum(float(keras.ops.convert_to_numpy(term)) for term in model.losses))
        return {"loss": loss, "crossentropy": crossentropy, "penalty": penalty}

    def _trained(self, values: dict[str, Any], seed: int) -> tuple[Any, Any]:
        import keras

        if self.dataset not in _DATA:
            _DATA[self.dataset] = load(self.dataset)
        data = _DATA[self.dataset]
        x_train, y_train, _, _, classes = data
        keras.utils.set_random_seed(seed)
        keras.backend.clear_session()
        model = build_mlp(values, x_train.shape[1], classes)
        model.fit(x_train, y_train, epochs=self.epochs, batch_size=self.batch_size, verbose=0)
        return model, data


def build_mlp(values: dict[str, Any], features: int, classes: int) -> Any:
    import keras

    regularizer = keras.regularizers.l2(float(values.get("l2", 0.0)))
    layers: list[Any] = [keras.Input((features,))]
    for _ in range(int(values["layers"])):
        layers.append(keras.layers.Dense(int(values["units"]), activation="relu",
                                         kernel_regularizer=regularizer))
        layers.append(keras.layers.Dropout(float(values["dropout"])))
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(float(values["learning_rate"])),
                  loss="sparse_categorical_crossentropy")
    return model


Task = FunctionTask | KerasTask


def function_tasks(dims: tuple[int, ...] = (4, 8)) -> list[FunctionTask]:
    return [FunctionTask(f, d) for d in dims for f in FUNCTIONS]


def keras_tasks() -> list[KerasTask]:
    # Epochs and batches chosen so that a trial takes ~1-2 s here and the validation loss is
    # not saturated (on wine any fair MLP reaches ~1e-3 after 30 epochs: a poor task).
    return [KerasTask("digits", epochs=5, batch_size=64),
            KerasTask("breast_cancer", epochs=10, batch_size=64),
            KerasTask("wine", epochs=10, batch_size=32)]


def by_name(name: str) -> Task:
    known: list[Task] = [*function_tasks((2, 4, 8, 16)), *keras_tasks()]
    for task in known:
        if task.name == name:
            return task
    raise KeyError(name)
