"""KerasTuner search spaces and objectives <-> Vertex AI StudySpec JSON, faithful both ways.
One idea, the mapping below, both directions; long because every KerasTuner type has its case.

The mapping (``kt`` is ``keras_tuner``):

=============================================  ============================================
KerasTuner                                      StudySpec ParameterSpec
=============================================  ============================================
``Int`` (linear, step 1)                        ``integerValueSpec``, UNIT_LINEAR_SCALE
``Int`` (log / reverse_log, no step)            ``integerValueSpec``, UNIT_LOG / REVERSE_LOG
``Int`` / ``Float`` with a step                 ``discreteValueSpec`` of every reachable value
                                                (``step`` multiplies under log sampling, as in
                                                KerasTuner), with the sampling's scaleType
``Float`` (no step)                             ``doubleValueSpec`` with the sampling's scaleType
``Choice`` of str                               ``categoricalValueSpec`` (order kept)
``Choice`` of numbers, ordered (the default)    ``discreteValueSpec`` (sorted), no scaleType
``Choice`` of numbers, ``ordered=False``        ``categoricalValueSpec`` of the numbers' text
``Boolean``                                     ``categoricalValueSpec`` "False", "True"
``Fixed``                                       a one-value categorical or discrete spec
``conditional_scope(parent, values)``           ``conditionalParameterSpecs`` with
                                                parentCategoricalValues / parentIntValues /
                                                parentDiscreteValues, nested as deep as needed
defaults                                        ``defaultValue``, unless it is KerasTuner's
                                                implicit default (min_value, the first choice),
                                                which is no hint to the optimizer
=============================================  ============================================

Grids of ``Float`` steps are computed in decimal arithmetic, so ``Float(0, 1, step=0.1)`` gives
exactly 0.0, 0.1, ..., 1.0 (max included, as KerasTuner documents; its own float arithmetic
drops 1.0 here).

Values coming back from a trial are typed by the KerasTuner parameter: an ``Int`` is an ``int``
although Vertex sends a double, a ``Boolean`` a ``bool``, a stepped ``Float`` the exact grid
value; parameters whose conditions are not met are absent.

From a spec alone (``hyperparameters_from_spec``) the KerasTuner types are rebuilt: a discrete
spec with a scaleType becomes the ``Int``/``Float`` with step that generates exactly its values,
when one does, else an ordered ``Choice``; a categorical spec of exactly "False", "True" becomes a
``Boolean``; another one-value spec a ``Fixed``. So ``spec -> hyperparameters -> spec`` is the
identity, and ``hyperparameters -> spec -> hyperparameters`` keeps every name, domain, default
and condition (a one-value ``Choice`` comes back as a ``Fixed``). KerasTuner itself turns a
``Choice`` of bools into a ``Choice`` of ints 1 and 0; it travels as such.

What Vertex cannot express raises :class:`~vizier_keras.errors.ValidationError` (a
``ValueError``) naming the parameter, before anything is sent: a condition on a continuous
``Float``, conditions that are not a chain (``c`` under both ``a`` and an unconditional ``b``),
one name under two different parents or with overlapping conditions, a grid of more than 1,000
values, names with whitespace.

Objectives: a metric name (direction inferred as KerasTuner infers it), a
``keras_tuner.Objective``, or a list of them (a multi-objective study: Vizier optimises the Pareto
front, where KerasTuner would sum them).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import keras_tuner as kt

from vizier_keras import studyspec, wire
from vizier_keras.errors import ValidationError

__all__ = [
    "hyperparameters_from_spec",
    "metric_specs",
    "objective_from_spec",
    "parameter_specs",
    "study_spec",
    "trial_parameters_from_values",
    "values_from_trial",
]

logger = logging.getLogger(__name__)

_MAX_GRID = 1000
_SCALE_OF_SAMPLING = {
    "linear": wire.ScaleType.UNIT_LINEAR_SCALE.value,
    "log": wire.ScaleType.UNIT_LOG_SCALE.value,
    "reverse_log": wire.ScaleType.UNIT_REVERSE_LOG_SCALE.value,
}
_SAMPLING_OF_SCALE = {v: k for k, v in _SCALE_OF_SAMPLING.items()}
_TRUE, _FALSE = "True", "False"


def _hp_field(hp: Any) -> str:
    return f"hyperparameters[{hp.name!r}]"


def _user_default(hp: Any) -> Any:
    """The default worth sending: None when it is KerasTuner's implicit one.

    KerasTuner falls back to min_value (Int, Float) or the first choice (Choice), which is no
    hint to an optimizer. Registration copies a parameter through its config, which makes the
    fallback explicit for Float and Choice, so a default equal to the fallback is not sent.
    """
    default = getattr(hp, "_default", None)
    if default is None:
        return None
    implicit = hp.values[0] if isinstance(hp, kt.engine.hyperparameters.Choice) else getattr(
        hp, "min_value", None)
    return None if default == implicit else default


# --------------------------------------------------------------------------- grids

def _decimal(x: float | int) -> Decimal:
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def _grid(min_value: Any, max_value: Any, step: Any, sampling: str, field_name: str,
          as_int: bool) -> list[float | int]:
    """Every value a stepped Int/Float can take, ascending, computed without float drift."""
    lo, hi, st = _decimal(min_value), _decimal(max_value), _decimal(step)
    raw: list[Decimal] = []
    if sampling == "linear":
        if st <= 0:
            raise ValidationError(field_name, step, "step must be positive")
        count = int((hi - lo) / st) + 1
        if count > _MAX_GRID:
            raise ValidationError(field_name, step, f"this step gives {count} values; Vertex "
                                  f"allows at most {_MAX_GRID} discrete values (drop the step "
                                  "or make it larger)")
        raw = [lo + i * st for i in range(count)]
    else:
        if st <= 1 or lo <= 0:
            raise ValidationError(field_name, step, "log sampling needs step > 1 and "
                                  "min_value > 0")
        power = lo
        while power <= hi:
            raw.append(power)
            if len(raw) > _MAX_GRID:
                raise ValidationError(field_name, step, f"this step gives more than "
                                      f"{_MAX_GRID} values, Vertex's limit")
            power *= st
        if sampling == "reverse_log":
            raw = sorted(hi + lo - p for p in raw)
    return [int(v) if as_int else float(v) for v in raw]


# --------------------------------------------------------------------------- one parameter

@dataclass
class _Form:
    """How one KerasTuner parameter travels: its ParameterSpec (without children) and the
    functions between KerasTuner values and JSON values."""

    hp: Any
    spec: dict[str, Any]
    kind: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    children: list[dict[str, Any]] = field(default_factory=list)

    def condition_values(self, values: Sequence[Any], child: Any) -> dict[str, Any]:
        """The ``parent*Values`` field for a child active when this parameter is in
        ``values`` (KerasTuner values)."""
        where = f"{_hp_field(child)}.conditions[{self.hp.name!r}]"
        if self.kind == studyspec.DOUBLE:
            raise ValidationError(where, list(values), f"the parent {self.hp.name!r} is a "
                                  "continuous Float; Vertex conditions need a parent with "
                                  "discrete values (Int, Choice, Boolean, or a Float with a step)")
        out = []
        for value in values:
            try:
                encoded = self.encode(value)
            except (ValidationError, ValueError, TypeError):
                encoded = None
            if encoded is None or not studyspec.ParameterNode(self.spec, where).feasible(
                    studyspec.decode_value(self.spec, encoded, where)):
                raise ValidationError(where, value, f"is not a value of the parent parameter "
                                      f"{self.hp.name!r}")
            out.append(encoded)
        if self.kind == studyspec.INTEGER:
            return {"parentIntValues": {"values": [wire.format_int64(v) for v in out]}}
        if self.kind == studyspec.DISCRETE:
            return {"parentDiscreteValues": {"values": [float(v) for v in out]}}
        return {"parentCategoricalValues": {"values": out}}


def _form(hp: Any) -> _Form:
    where = _hp_field(hp)
    wire.check_id(f"{where}.name", hp.name)
    if isinstance(hp, kt.engine.hyperparameters.Boolean):
        return _boolean_form(hp, [_FALSE, _TRUE], _TRUE if hp.default else None)
    if isinstance(hp, kt.engine.hyperparameters.Fixed):
        return _fixed_form(hp)
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return _choice_form(hp)
    if isinstance(hp, kt.engine.hyperparameters.Int):
        return _numeric_form(hp, as_int=True)
    if isinstance(hp, kt.engine.hyperparameters.Float):
        return _numeric_form(hp, as_int=False)
    raise ValidationError(where, type(hp).__name__, "is not a KerasTuner type that can be "
                          "converted (Int, Float, Choice, Boolean, Fixed)")


def _categorical(values: list[str], default: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"values": values}
    if default is not None:
        spec["defaultValue"] = default
    return {"categoricalValueSpec": spec}


def _discrete(values: list[Any], default: Any, scale: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"values": [float(v) for v in values]}
    if default is not None:
        spec["defaultValue"] = float(default)
    out: dict[str, Any] = {"discreteValueSpec": spec}
    if scale is not None:
        out["scaleType"] = scale
    return out


def _snap(grid: Sequence[Any], where: str) -> Callable[[Any], Any]:
    """A decoder that maps a JSON number to the grid value it stands for."""

    def decode(raw: Any) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValidationError(where, raw, "must be a number")
        best = min(grid, key=lambda v: abs(float(v) - raw))
        if abs(float(best) - raw) > 1e-9 * max(1.0, abs(raw)):
            raise ValidationError(where, raw, f"is not one of the values {list(grid)[:10]}")
        return best

    return decode


def _encode_number(where: str, as_int: bool) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value):
            raise ValidationError(where, value, "must be a finite number")
        if as_int:
            if value != int(value):
                raise ValidationError(where, value, "must be a whole number")
            return int(value)
        return float(value)

    return encode


def _decode_int(where: str) -> Callable[[Any], int]:
    def decode(raw: Any) -> int:
        return int(studyspec.decode_value({"integerValueSpec": {}}, raw, where))

    return decode


def _bool_text(value: Any, where: str) -> str:
    if value is True or value == _TRUE:
        return _TRUE
    if value is False or value == _FALSE:
        return _FALSE
    raise ValidationError(where, value, "must be True or False")


def _decode_bool(where: str) -> Callable[[Any], bool]:
    def decode(raw: Any) -> bool:
        return _bool_text(raw, where) == _TRUE

    return decode


def _boolean_form(hp: Any, categories: list[str], default: str | None) -> _Form:
    where = _hp_field(hp)
    return _Form(hp, {"parameterId": hp.name, **_categorical(categories, default)},
                 studyspec.CATEGORICAL, lambda v: _bool_text(v, where), _decode_bool(where))


def _encode_text(where: str) -> Callable[[Any], str]:
    def encode(value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError(where, value, "must be a string")
        return value

    return encode


def _fixed_form(hp: Any) -> _Form:
    where = _hp_field(hp)
    value = hp.value
    encode: Callable[[Any], Any]
    if isinstance(value, bool):
        encode = functools.partial(_bool_text, where=where)
        spec, kind = _categorical([encode(value)], None), studyspec.CATEGORICAL
    elif isinstance(value, str):
        encode = _encode_text(where)
        spec, kind = _categorical([value], None), studyspec.CATEGORICAL
    else:
        encode = _encode_number(where, isinstance(value, int))
        spec, kind = _discrete([encode(value)], None, None), studyspec.DISCRETE
    expected = encode(value)

    def decode(raw: Any) -> Any:
        if isinstance(expected, str):
            same = raw == expected
        else:
            same = isinstance(raw, (int, float)) and not isinstance(raw, bool) and abs(
                raw - expected) <= 1e-9 * max(1.0, abs(expected))
        if not same:
            raise ValidationError(where, raw, f"must be the fixed value {value!r}")
        return value

    return _Form(hp, {"parameterId": hp.name, **spec}, kind, encode, decode)


def _choice_form(hp: Any) -> _Form:
    where = _hp_field(hp)
    values = list(hp.values)
    default = _user_default(hp)
    first = values[0]
    if isinstance(first, bool):
        texts = [_bool_text(v, where) for v in values]
        return _boolean_form(hp, list(dict.fromkeys(texts)),
                             None if default is None else _bool_text(default, where))
    if isinstance(first, str):
        if len(set(values)) != len(values):
            raise ValidationError(where, values, "has a value twice")
        text = _encode_text(where)
        return _Form(hp, {"parameterId": hp.name, **_categorical(values, default)},
                     studyspec.CATEGORICAL, text, text)
    as_int = isinstance(first, int)
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValidationError(where, v, "choices must be finite numbers")
    if not hp.ordered:
        by_text = {str(v) if as_int else repr(float(v)): v for v in values}
        if len(by_text) != len(values):
            raise ValidationError(where, values, "has a value twice")
        to_text = {v: t for t, v in by_text.items()}

        def encode_text(v: Any) -> str:
            if isinstance(v, bool) or v not in to_text:
                raise ValidationError(where, v, f"is not one of the choices {values}")
            return to_text[v]

        def decode_text(raw: Any) -> Any:
            if raw not in by_text:
                raise ValidationError(where, raw, f"is not one of the choices {list(by_text)}")
            return by_text[raw]

        return _Form(hp, {"parameterId": hp.name, **_categorical(
            list(by_text), None if default is None else encode_text(default))},
            studyspec.CATEGORICAL, encode_text, decode_text)
    grid = sorted(set(values))
    return _Form(hp, {"parameterId": hp.name, **_discrete(grid, default, None)},
                 studyspec.DISCRETE, _encode_number(where, as_int), _snap(grid, where))


def _numeric_form(hp: Any, as_int: bool) -> _Form:
    where = _hp_field(hp)
    sampling = (hp.sampling or "linear").lower()
    scale = _SCALE_OF_SAMPLING[sampling]
    default = _user_default(hp)
    if default is not None and not hp.min_value <= default <= hp.max_value:
        raise ValidationError(f"{where}.default", default,
                              f"must lie in [{hp.min_value}, {hp.max_value}]")
    encode = _encode_number(where, as_int)
    step = hp.step
    if (as_int and step in (None, 1)) or (not as_int and step is None):
        if as_int:
            bounds: dict[str, Any] = {"minValue": wire.format_int64(int(hp.min_value)),
                                      "maxValue": wire.format_int64(int(hp.max_value))}
            if default is not None:
                bounds["defaultValue"] = wire.format_int64(int(default))
            spec = {"integerValueSpec": bounds, "scaleType": scale}
            return _Form(hp, {"parameterId": hp.name, **spec}, studyspec.INTEGER, encode,
                         _decode_int(where))
        bounds = {"minValue": float(hp.min_value), "maxValue": float(hp.max_value)}
        if default is not None:
            bounds["defaultValue"] = float(default)
        spec = {"doubleValueSpec": bounds, "scaleType": scale}

        def decode_float(raw: Any) -> float:
            return float(studyspec.decode_value({"doubleValueSpec": {}}, raw, where))

        return _Form(hp, {"parameterId": hp.name, **spec}, studyspec.DOUBLE, encode,
                     decode_float)
    grid = _grid(hp.min_value, hp.max_value, step, sampling, f"{where}.step", as_int)
    return _Form(hp, {"parameterId": hp.name, **_discrete(grid, default, scale)},
                 studyspec.DISCRETE, encode, _snap(grid, where))


# --------------------------------------------------------------------------- the whole space

class _Space:
    """The KerasTuner space as a tree of forms, built in the space's order (parents first)."""

    def __init__(self, hyperparameters: Any) -> None:
        if not isinstance(hyperparameters, kt.HyperParameters):
            raise ValidationError("hyperparameters", type(hyperparameters).__name__,
                                  "must be a keras_tuner.HyperParameters")
        self.forms: list[_Form] = []
        self.roots: list[_Form] = []
        self._parent_of: dict[int, _Form | None] = {}
        self._place: dict[str, tuple[_Form | None, list[Any]]] = {}
        for hp in hyperparameters.space:
            self._add(hp)

    def _add(self, hp: Any) -> None:
        form = _form(hp)
        studyspec.validate_parameter_spec(form.spec, _hp_field(hp))
        conditions = list(hp.conditions)
        where = _hp_field(hp)
        parent: _Form | None = None
        if conditions:
            last = conditions[-1]
            if not hasattr(last, "name") or not hasattr(last, "values"):
                raise ValidationError(f"{where}.conditions", last, "only Parent conditions "
                                      "(conditional_scope) can be converted")
            candidates = [f for f in self.forms if f.hp.name == last.name]
            matches = [f for f in candidates if list(f.hp.conditions) == conditions[:-1]]
            if not matches:
                raise ValidationError(
                    f"{where}.conditions", [f"{c.name} in {list(c.values)}" for c in conditions],
                    f"{last.name!r} is not itself declared under the outer conditions; Vertex "
                    "can only express a chain of conditions, each parent inside the scope of "
                    "the one before" if candidates else f"{last.name!r} is not declared")
            parent = matches[0]
        self._check_unique(hp, parent, list(conditions[-1].values) if conditions else [])
        if parent is None:
            self.roots.append(form)
        else:
            parent.children.append({**parent.condition_values(list(conditions[-1].values), hp),
                                    "_form": form})
        self._parent_of[id(form)] = parent
        self.forms.append(form)

    def _check_unique(self, hp: Any, parent: _Form | None, values: list[Any]) -> None:
        where = _hp_field(hp)
        placed = self._place.get(hp.name)
        if placed is None:
            self._place[hp.name] = (parent, list(values))
            return
        other_parent, other_values = placed
        if parent is None or other_parent is not parent:
            raise ValidationError(where, hp.name, "is declared twice, not as two children of "
                                  "one parent; Vertex parameter ids must be unique (rename one)")
        overlap = [v for v in values if v in other_values]
        if overlap:
            raise ValidationError(where, hp.name, f"is declared twice under {parent.hp.name} "
                                  f"with overlapping conditions {overlap}")
        other_values.extend(values)

    def parameter_specs(self) -> list[dict[str, Any]]:
        def render(form: _Form) -> dict[str, Any]:
            spec = dict(form.spec)
            if form.children:
                spec["conditionalParameterSpecs"] = [
                    {**{k: v for k, v in child.items() if k != "_form"},
                     "parameterSpec": render(child["_form"])}
                    for child in form.children]
            return spec

        return [render(form) for form in self.roots]


def parameter_specs(hyperparameters: Any) -> list[dict[str, Any]]:
    """The StudySpec ``parameters`` for a KerasTuner search space.

    Args:
        hyperparameters: A ``keras_tuner.HyperParameters`` (its ``space``).

    Returns:
        A list of ParameterSpec messages (conditional parameters nested under their parents).

    Raises:
        ValidationError: A parameter cannot be expressed; the message names it and says why.
    """
    return _Space(hyperparameters).parameter_specs()


def _direction(objective: Any, where: str) -> tuple[str, str]:
    if isinstance(objective, str):
        from keras_tuner.engine import metrics_tracking

        direction = metrics_tracking.infer_metric_direction(objective)
        if direction is None:
            raise ValidationError(where, objective, "cannot tell whether to minimize or "
                                  "maximize this metric; pass keras_tuner.Objective("
                                  f"{objective!r}, direction='min' or 'max')")
        return objective, direction
    # KerasTuner's DefaultObjective (run_trial returns a number) is "default_objective", min.
    if isinstance(objective, kt.Objective) and type(objective).__name__ != "MultiObjective":
        if objective.direction not in ("min", "max"):
            raise ValidationError(f"{where}.direction", objective.direction,
                                  "must be 'min' or 'max'")
        return objective.name, objective.direction
    raise ValidationError(where, objective, "must be a metric name, a keras_tuner.Objective, "
                          "or a list of them")


def metric_specs(objective: Any) -> list[dict[str, Any]]:
    """The StudySpec ``metrics`` for a KerasTuner objective.

    Args:
        objective: A metric name (direction inferred as KerasTuner infers it: ``val_accuracy``
            is maximized, ``val_loss`` minimized), a ``keras_tuner.Objective``, or a list of
            them (a multi-objective study).

    Raises:
        ValidationError: No objective, an unknown direction, a name used twice.
    """
    if objective is None:
        raise ValidationError("objective", None, "is required: a metric name such as "
                              "'val_loss', or a keras_tuner.Objective")
    if type(objective).__name__ == "MultiObjective":
        objective = list(objective.objectives)
    items = list(objective) if isinstance(objective, (list, tuple)) else [objective]
    if not items:
        raise ValidationError("objective", objective, "must not be an empty list")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"objective[{i}]" if len(items) > 1 else "objective"
        name, direction = _direction(item, where)
        wire.check_id(where, name)
        if any(m["metricId"] == name for m in out):
            raise ValidationError(where, name, "is listed twice")
        goal = wire.Goal.MAXIMIZE if direction == "max" else wire.Goal.MINIMIZE
        out.append({"metricId": name, "goal": goal.value})
    return out


def study_spec(hyperparameters: Any, objective: Any, *, algorithm: str | None = None,
               **fields: Any) -> dict[str, Any]:
    """A complete, checked StudySpec for a search space and an objective.

    Args:
        hyperparameters: The ``keras_tuner.HyperParameters``.
        objective: See :func:`metric_specs`.
        algorithm: A StudySpec algorithm name (default: the service's default).
        **fields: Other StudySpec fields, as JSON (``measurementSelectionType``,
            ``medianAutomatedStoppingSpec``, ...).

    Raises:
        ValidationError: naming what cannot be expressed, before anything is sent.
    """
    spec: dict[str, Any] = {"metrics": metric_specs(objective),
                            "parameters": parameter_specs(hyperparameters)}
    if algorithm is not None:
        spec["algorithm"] = algorithm
    spec.update(fields)
    studyspec.validate_study_spec(spec)
    return spec


# --------------------------------------------------------------------------- values

def values_from_trial(trial: Mapping[str, Any], hyperparameters: Any) -> dict[str, Any]:
    """The KerasTuner values of a Trial message, typed by the KerasTuner parameters.

    Only parameters whose conditions hold are returned. A parameter the trial lacks (declared
    after the study was made) is left out, for the caller to fill with its default; an id the
    space does not know is ignored.

    Raises:
        ValidationError: A value does not fit its parameter (wrong type, not a choice).
    """
    raw = wire.trial_parameters(trial)
    space = _Space(hyperparameters)
    values: dict[str, Any] = {}
    for form in space.forms:
        hp = form.hp
        if hp.name in values or not all(c.is_active(values) for c in hp.conditions):
            continue
        if hp.name in raw:
            values[hp.name] = form.decode(raw[hp.name])
    unknown = set(raw) - {f.hp.name for f in space.forms}
    if unknown:
        logger.debug("trial %s has parameters the search space does not know: %s",
                     trial.get("name"), sorted(unknown))
    return values


def trial_parameters_from_values(values: Mapping[str, Any], hyperparameters: Any
                                 ) -> list[dict[str, Any]]:
    """The Trial ``parameters`` for KerasTuner values: active parameters only, encoded as their
    specs want them (``"True"`` for a Boolean, a number for an Int).

    Raises:
        ValidationError: A value does not fit its parameter.
    """
    space = _Space(hyperparameters)
    out: dict[str, Any] = {}
    for form in space.forms:
        hp = form.hp
        if hp.name in out or hp.name not in values:
            continue
        if all(c.is_active(values) for c in hp.conditions):
            out[hp.name] = form.encode(values[hp.name])
    return [{"parameterId": k, "value": v} for k, v in out.items()]


# --------------------------------------------------------------------------- spec -> KerasTuner

def _typed_numbers(values: Iterable[float]) -> list[Any]:
    values = list(values)
    if all(float(v).is_integer() for v in values):
        return [int(v) for v in values]
    return [float(v) for v in values]


def _stepped(values: list[float], scale: str) -> tuple[Any, ...] | None:
    """(min, max, step, sampling, as_int) of a stepped Int/Float whose grid is exactly
    ``values``, if there is one (checked by generating its grid again). Whole numbers are tried
    as an Int first, then as a Float."""
    sampling = _SAMPLING_OF_SCALE.get(scale)
    if sampling is None:
        return None
    integral = all(float(v).is_integer() for v in values)
    for as_int in (True, False) if integral else (False,):
        found = _stepped_as(values, sampling, as_int)
        if found is not None:
            return found
    return None


def _stepped_as(values: list[float], sampling: str, as_int: bool) -> tuple[Any, ...] | None:
    typed: list[Any] = [int(v) for v in values] if as_int else [float(v) for v in values]
    lo, hi = typed[0], typed[-1]
    d = [_decimal(v) for v in typed]
    two = 2 if as_int else 2.0
    if len(values) == 1:
        # One value with a scale: a stepped Int/Float whose range holds one grid point.
        if sampling != "linear" and lo <= 0:
            return None
        return lo, hi, two, sampling, as_int
    if sampling == "linear":
        pairs = [(d[0], d[1] - d[0])]
    elif sampling == "log":
        if d[0] <= 0:
            return None
        pairs = [(d[0], d[1] / d[0])]
    else:
        # The grid is max + min - min * step**i (i = 0, 1, ...): min itself need not be on it.
        # With gaps g_i = max - v_i = min * (step**i - 1): step = g_2 / g_1 - 1, min = g_1 /
        # (step - 1). Two values fix only g_1: any step s with min * s <= max < min * s**2
        # fits, i.e. s >= r / (r - 1) and s**2 - r*s + r > 0 for r = max / g_1. Try the usual
        # user steps and the smallest steps that fit.
        gaps = [d[-1] - x for x in reversed(d[:-1])]
        if len(gaps) > 1:
            steps = [gaps[1] / gaps[0] - 1]
        else:
            r = d[-1] / gaps[0]
            bounds = [r / (r - 1)] if r > 1 else []
            if r >= 4:
                bounds.append((r + (r * r - 4 * r).sqrt()) / 2)
            steps = [Decimal(n) for n in (2, 3, 4, 5, 10)]
            steps += bounds + [Decimal(math.ceil(b)) for b in bounds]
        pairs = [(gaps[0] / (st - 1), st) for st in steps if st > 1]
    candidates: list[tuple[Any, Any]] = []
    for low_d, step in pairs:
        if low_d <= 0 and sampling != "linear":
            continue
        if as_int:
            if step != int(step) or low_d != int(low_d) or (step == 1 and sampling == "linear"):
                continue  # an Int with step 1 is an integerValueSpec, not a discrete one
            candidates.append((int(low_d), int(step)))
        else:
            # Floats lose digits on the way (most for reverse_log, where min comes from small
            # differences of large values). The user's min and step were short decimals: try
            # them rounded to fewer significant digits too; the grid check keeps exact fits.
            low_f, step_f = float(low_d), float(step)
            candidates += [(low_f, step_f)] + [
                (float(f"{low_f:.{n}g}"), float(f"{step_f:.{n}g}")) for n in (12, 10, 8, 6)]
    for low, step_value in candidates:
        try:
            grid = _grid(low, hi, step_value, sampling, "step", as_int)
        except ValidationError:
            continue
        if [float(v) for v in grid] == [float(v) for v in values]:
            return low, hi, step_value, sampling, as_int
    return None


def _declare(hps: Any, spec: Mapping[str, Any], where: str) -> Callable[[Any], Any]:
    """Declare one parameter in ``hps``; return how to type its values for child conditions."""
    pid = spec["parameterId"]
    kind = studyspec.parameter_type(spec, where)
    scale = spec.get("scaleType")
    sampling = _SAMPLING_OF_SCALE.get(scale or "", "linear")
    if kind == studyspec.DOUBLE:
        lo, hi = studyspec.bounds(spec)
        hps.Float(pid, lo, hi, sampling=sampling,
                  default=spec["doubleValueSpec"].get("defaultValue"))
        return float
    if kind == studyspec.INTEGER:
        default = spec["integerValueSpec"].get("defaultValue")
        ilo, ihi = studyspec.bounds(spec)
        hps.Int(pid, ilo, ihi,
                step=None if sampling != "linear" else 1, sampling=sampling,
                default=None if default is None else wire.parse_int64(default))
        return int
    if kind == studyspec.DISCRETE:
        vs = spec["discreteValueSpec"]
        values = [float(v) for v in vs.get("values", [])]
        typed = _typed_numbers(values)
        cast: Callable[[Any], Any] = int if isinstance(typed[0], int) else float
        default = vs.get("defaultValue")
        stepped = _stepped(values, scale) if scale else None
        if stepped is not None:
            lo, hi, step, samp, as_int = stepped
            cast = int if as_int else float
            (hps.Int if as_int else hps.Float)(
                pid, lo, hi, step=step, sampling=samp,
                default=None if default is None else cast(default))
            return cast
        if len(values) == 1:
            hps.Fixed(pid, typed[0])
            return cast
        if default is not None:
            default = min(typed, key=lambda v: abs(v - float(default)))
        hps.Choice(pid, typed, ordered=True, default=default)
        return cast
    vs = spec["categoricalValueSpec"]
    categories = list(vs.get("values", []))
    default = vs.get("defaultValue")
    if categories == [_FALSE, _TRUE] or categories in ([_TRUE], [_FALSE]):
        # What a Boolean (or a Fixed bool) becomes; other orders stay string choices.
        if len(categories) == 1:
            hps.Fixed(pid, categories[0] == _TRUE)
        else:
            hps.Boolean(pid, default=default == _TRUE)
        return lambda v: v == _TRUE if isinstance(v, str) else bool(v)
    if len(categories) == 1:
        hps.Fixed(pid, categories[0])
    else:
        hps.Choice(pid, categories, default=default)
    return str


def hyperparameters_from_spec(spec: Mapping[str, Any]) -> Any:
    """A ``keras_tuner.HyperParameters`` holding the search space of a StudySpec.

    Args:
        spec: A StudySpec (or just ``{"parameters": [...]}``); checked first.

    Raises:
        ValidationError: The spec is malformed.
    """
    if "metrics" in spec:
        studyspec.validate_study_spec(spec)
    hps = kt.HyperParameters()

    def visit(pspec: Mapping[str, Any], where: str) -> None:
        cast = _declare(hps, pspec, where)
        for j, child in enumerate(pspec.get("conditionalParameterSpecs", ()) or ()):
            key = next(k for k in child if k != "parameterSpec")
            parent_values = [cast(v) for v in child[key].get("values", [])]
            with hps.conditional_scope(pspec["parameterId"], parent_values):
                visit(child["parameterSpec"],
                      f"{where}.conditionalParameterSpecs[{j}].parameterSpec")

    for i, pspec in enumerate(spec.get("parameters", ()) or ()):
        visit(pspec, f"studySpec.parameters[{i}]")
    return hps


def objective_from_spec(spec: Mapping[str, Any]) -> Any:
    """The KerasTuner objective of a StudySpec: one ``keras_tuner.Objective``, or a list of them
    for a multi-objective study."""
    objectives = [kt.Objective(metric_id, "max" if goal is wire.Goal.MAXIMIZE else "min")
                  for metric_id, goal in studyspec.iter_metric_specs(spec)]
    if not objectives:
        raise ValidationError("studySpec.metrics", [], "must not be empty")
    return objectives[0] if len(objectives) == 1 else objectives
