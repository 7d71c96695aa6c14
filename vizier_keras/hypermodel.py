"""``@tunable``: an existing model-building function as a KerasTuner HyperModel.

(The module is not called ``tunable``: importing it would then replace
``vizier_keras.tunable``, the decorator, with the module.)

Two ways, for the two kinds of functions people already have.

A KerasTuner function, ``build_model(hp)``, stays as it is::

    @tunable
    def build_model(hp):
        ...
    build_model(kt.HyperParameters())   # still callable as before
    CloudTuner(build_model, ...)        # and a keras_tuner.HyperModel

A function of plain values gets its search space in the decorator; it is called with plain
values, and keeps working without any tuner::

    @tunable(units=Int(32, 512, step=32), lr=Float(1e-4, 1e-2, sampling="log"),
             activation=["relu", "tanh"], batch_size=[32, 64, 128])
    def build_model(units=64, lr=1e-3, activation="relu"):
        ...
    build_model(units=128)              # an ordinary call

Declarations: :class:`Int`, :class:`Float`, :class:`Choice`, :class:`Boolean`, :class:`Fixed`,
and shorthands: a list is a ``Choice``, a ``range`` an ``Int`` (stop excluded, as in Python).
A declared name that is not a parameter of the function but a ``model.fit`` argument
(``batch_size``, ``epochs``, ``shuffle``, ``steps_per_epoch``, ``validation_batch_size``) is
tuned as a fit argument. A function parameter's own default becomes the hyperparameter's default
(when the declaration gives none). A function that also takes ``hp`` receives it, to declare
more in its body.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras_tuner as kt

from vizier_keras.errors import ValidationError

__all__ = ["Boolean", "Choice", "Fixed", "Float", "Int", "TunableModel", "tunable"]

FIT_ARGUMENTS = ("batch_size", "epochs", "shuffle", "steps_per_epoch", "validation_batch_size")
_UNSET: Any = object()


@dataclass(frozen=True)
class Int:
    """An integer hyperparameter (``max_value`` included), as ``hp.Int``."""

    min_value: int
    max_value: int
    step: int | None = None
    sampling: str = "linear"
    default: int | None = None

    def declare(self, hp: Any, name: str, default: Any = None) -> Any:
        return hp.Int(name, self.min_value, self.max_value, step=self.step,
                      sampling=self.sampling, default=_pick(self.default, default))


@dataclass(frozen=True)
class Float:
    """A float hyperparameter, as ``hp.Float``."""

    min_value: float
    max_value: float
    step: float | None = None
    sampling: str = "linear"
    default: float | None = None

    def declare(self, hp: Any, name: str, default: Any = None) -> Any:
        return hp.Float(name, self.min_value, self.max_value, step=self.step,
                        sampling=self.sampling, default=_pick(self.default, default))


@dataclass(frozen=True)
class Choice:
    """One of ``values``, as ``hp.Choice``."""

    values: Sequence[Any]
    ordered: bool | None = None
    default: Any = None

    def declare(self, hp: Any, name: str, default: Any = None) -> Any:
        default = _pick(self.default, default)
        if default is not None and default not in self.values:
            default = None
        return hp.Choice(name, list(self.values), ordered=self.ordered, default=default)


@dataclass(frozen=True)
class Boolean:
    """True or False, as ``hp.Boolean``."""

    default: bool = False

    def declare(self, hp: Any, name: str, default: Any = None) -> Any:
        return hp.Boolean(name, default=bool(_pick(self.default, default)))


@dataclass(frozen=True)
class Fixed:
    """A value that is recorded with each trial but not tuned, as ``hp.Fixed``."""

    value: Any

    def declare(self, hp: Any, name: str, default: Any = None) -> Any:
        return hp.Fixed(name, self.value)


Declaration = Int | Float | Choice | Boolean | Fixed


def _pick(declared: Any, from_function: Any) -> Any:
    return declared if declared is not None else from_function


def _declaration(name: str, spec: Any) -> Declaration:
    if isinstance(spec, (Int, Float, Choice, Boolean, Fixed)):
        return spec
    if isinstance(spec, range):
        if len(spec) == 0:
            raise ValidationError(name, spec, "is an empty range")
        return Int(spec.start, spec[-1], step=abs(spec.step) if spec.step != 1 else None)
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ValidationError(name, spec, "an empty list of choices")
        return Choice(list(spec))
    raise ValidationError(name, spec, "must be Int(...), Float(...), Choice(...), Boolean(), "
                          "Fixed(...), a list of choices, or a range")


class TunableModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` made by :func:`tunable`; calling it calls the function."""

    def __init__(self, fn: Callable[..., Any], space: dict[str, Declaration]) -> None:
        super().__init__(name=getattr(fn, "__name__", None))
        self.fn = fn
        functools.update_wrapper(self, fn, updated=())
        signature = inspect.signature(fn)
        self._params = signature.parameters
        self._takes_hp = "hp" in self._params
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD
                           for p in self._params.values())
        self.space = space
        self.build_space: dict[str, Declaration] = {}
        self.fit_space: dict[str, Declaration] = {}
        for name, declaration in space.items():
            if name == "hp":
                raise ValidationError(name, declaration, "is the HyperParameters argument, "
                                      "not a hyperparameter name")
            if name in self._params or (takes_kwargs and name not in FIT_ARGUMENTS):
                self.build_space[name] = declaration
            elif name in FIT_ARGUMENTS:
                self.fit_space[name] = declaration
            else:
                raise ValidationError(
                    name, declaration, f"is neither a parameter of {self.name}() nor a "
                    f"model.fit argument ({', '.join(FIT_ARGUMENTS)})")
        if not space:
            positional = [p for p in self._params.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            required = [p for p in positional if p.default is p.empty]
            if not positional or len(required) > 1:
                raise ValidationError(
                    "fn", self.name, "a function without a declared search space must take the "
                    "HyperParameters as its one argument: def build_model(hp), or declare the "
                    "space: @tunable(units=Int(32, 512))")

    def _default(self, name: str) -> Any:
        param = self._params.get(name)
        return None if param is None or param.default is param.empty else param.default

    def _values(self, hp: Any, space: dict[str, Declaration]) -> dict[str, Any]:
        return {name: d.declare(hp, name, self._default(name)) for name, d in space.items()}

    def declare_hyperparameters(self, hp: Any) -> None:
        self._values(hp, self.build_space)
        self._values(hp, self.fit_space)

    def build(self, hp: Any) -> Any:
        if not isinstance(hp, kt.HyperParameters):
            raise ValidationError("hp", type(hp).__name__, "build() takes a "
                                  "keras_tuner.HyperParameters")
        if not self.space:
            return self.fn(hp)
        kwargs = self._values(hp, self.build_space)
        if self._takes_hp:
            kwargs["hp"] = hp
        return self.fn(**kwargs)

    def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.update(self._values(hp, self.fit_space))
        return model.fit(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<tunable {self.name}: {', '.join(self.space) or 'build(hp)'}>"


def tunable(fn: Callable[..., Any] | None = None, /, **space: Any) -> Any:
    """Make ``fn`` a KerasTuner HyperModel, still callable as before (see the module docstring).

    Use as ``@tunable`` on ``def build_model(hp)``, or as ``@tunable(name=declaration, ...)`` on
    a function of plain values.

    Raises:
        ValidationError: ``fn`` is not callable; a declared name is neither one of its
            parameters nor a ``model.fit`` argument; a declaration is not understood.
    """
    declared = {name: _declaration(name, spec) for name, spec in space.items()}

    def wrap(function: Callable[..., Any]) -> TunableModel:
        if not callable(function) or isinstance(function, kt.HyperModel):
            raise ValidationError("fn", function, "@tunable decorates a model-building "
                                  "function")
        return TunableModel(function, declared)

    if fn is None:
        return wrap
    if space:
        raise ValidationError("fn", fn, "use @tunable(name=...) to declare a space, with no "
                              "positional argument")
    return wrap(fn)
