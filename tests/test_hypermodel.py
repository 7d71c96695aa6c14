"""@tunable: existing functions become KerasTuner HyperModels and stay callable as before."""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner as kt
import pytest

from vizier_keras import Boolean, Choice, Fixed, Float, Int, tunable
from vizier_keras.errors import ValidationError


def test_a_keras_tuner_function_keeps_working_and_becomes_a_hypermodel():
    calls: list[Any] = []

    @tunable
    def build_model(hp):
        calls.append(hp.Int("units", 8, 32, step=8))
        return "model"

    assert isinstance(build_model, kt.HyperModel)
    assert build_model.__name__ == "build_model" and build_model.__wrapped__
    hp = kt.HyperParameters()
    assert build_model(hp) == "model"  # the plain call, as before
    assert build_model.build(hp) == "model"  # the HyperModel way
    assert calls == [8, 8] and [p.name for p in hp.space] == ["units"]


def test_plain_value_functions_get_their_space_from_the_decorator():
    seen: list[dict[str, Any]] = []

    @tunable(units=Int(16, 128, step=16), lr=Float(1e-4, 1e-2, sampling="log"),
             activation=["relu", "tanh"], dropout=Choice([0.0, 0.2]), bn=Boolean(),
             seed=Fixed(3), layers=range(1, 4))
    def build_model(units=64, lr=1e-3, activation="tanh", dropout=0.2, bn=False, seed=0,
                    layers=1):
        seen.append(dict(units=units, lr=lr, activation=activation, dropout=dropout, bn=bn,
                         seed=seed, layers=layers))
        return "model"

    assert build_model(units=32) == "model"  # an ordinary call with plain values
    assert seen[-1]["units"] == 32
    hp = kt.HyperParameters()
    build_model.build(hp)
    # The function's own defaults are the hyperparameters' defaults.
    assert seen[-1] == {"units": 64, "lr": 1e-3, "activation": "tanh", "dropout": 0.2,
                        "bn": False, "seed": 3, "layers": 1}
    by_name = {p.name: p for p in hp.space}
    assert by_name["layers"].max_value == 3 and by_name["units"].step == 16
    hp.values.update(units=96, activation="relu", layers=3)
    build_model.build(hp)
    assert (seen[-1]["units"], seen[-1]["activation"], seen[-1]["layers"]) == (96, "relu", 3)


def test_fit_arguments_are_tuned_as_fit_arguments():
    @tunable(units=Int(4, 8), batch_size=[16, 32])
    def build_model(units):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units),
                                  keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    hp = kt.HyperParameters()
    build_model.declare_hyperparameters(hp)
    assert {p.name for p in hp.space} == {"units", "batch_size"}
    hp.values["batch_size"] = 32

    class Spy:
        def fit(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return kwargs

    assert build_model.fit(hp, Spy(), epochs=2)["batch_size"] == 32


def test_a_function_may_also_take_hp():
    @tunable(units=Int(4, 8))
    def build_model(hp, units):
        return units, hp.Boolean("extra")

    hp = kt.HyperParameters()
    assert build_model.build(hp) == (4, False)
    assert {p.name for p in hp.space} == {"units", "extra"}


@pytest.mark.parametrize(("make", "match"), [
    (lambda: tunable(42), "decorates"),
    (lambda: tunable(units=Int(1, 2))(lambda width: width), "neither a parameter"),
    (lambda: tunable(units={"min": 1})(lambda units: units), "Int"),
    (lambda: tunable(units=[])(lambda units: units), "empty"),
    (lambda: tunable(units=range(3, 3))(lambda units: units), "empty range"),
    (lambda: tunable(lambda a, b: a), "one argument"),
    (lambda: tunable(lambda: 1), "one argument"),
    (lambda: tunable(hp=Int(1, 2))(lambda hp: hp), "HyperParameters argument"),
    (lambda: tunable(lambda hp: hp, units=Int(1, 2)), "positional"),
])
def test_misuse_gives_clear_errors(make, match):
    with pytest.raises(ValidationError, match=match):
        make()


def test_build_checks_its_argument():
    @tunable
    def build_model(hp):
        return hp

    with pytest.raises(ValidationError, match="HyperParameters"):
        build_model.build({"units": 3})
