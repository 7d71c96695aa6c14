"""StudySpec JSON: validation, the tree of (conditional) parameters, values typed by the spec,
and its metrics (objectives and safety constraints). One idea, the StudySpec as data; the
validation is most of it and shares the tree's rules.

No Keras here: the client checks a spec with :func:`validate_study_spec` before sending it, and
the embedded server checks what it receives with the same function, so both sides name the same
field in the same words. :mod:`vizier_keras.convert` builds specs from KerasTuner objects.

Example::

    spec = {
        "metrics": [{"metricId": "val_loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4,
                        "maxValue": 1e-1}, "scaleType": "UNIT_LOG_SCALE"}],
    }
    validate_study_spec(spec)                 # raises ValidationError naming the field
    [node.id for node in parameter_nodes(spec)]   # ['lr']
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vizier_keras import protojson, wire
from vizier_keras.errors import ValidationError

__all__ = [
    "CATEGORICAL",
    "DISCRETE",
    "DOUBLE",
    "INTEGER",
    "ParameterNode",
    "active_parameters",
    "bounds",
    "decode_value",
    "encode_value",
    "first_objective",
    "is_safe",
    "iter_metric_specs",
    "parameter_nodes",
    "parameter_type",
    "safety_metrics",
    "stopping_rule",
    "typed_values",
    "validate_parameter_spec",
    "validate_study",
    "validate_study_spec",
]

DOUBLE, INTEGER, DISCRETE, CATEGORICAL = "DOUBLE", "INTEGER", "DISCRETE", "CATEGORICAL"

_VALUE_SPEC_KEYS = {
    "doubleValueSpec": DOUBLE,
    "integerValueSpec": INTEGER,
    "discreteValueSpec": DISCRETE,
    "categoricalValueSpec": CATEGORICAL,
}
# The condition field that a child must use under a parent of each type.
_CONDITION_KEYS = {
    INTEGER: "parentIntValues",
    DISCRETE: "parentDiscreteValues",
    CATEGORICAL: "parentCategoricalValues",
}
_STUDY_FIELDS = {"name", "displayName", "studySpec", "state", "createTime", "inactiveReason"}
_SPEC_FIELDS = {
    "metrics", "parameters", "algorithm", "observationNoise", "measurementSelectionType",
    "medianAutomatedStoppingSpec", "decayCurveStoppingSpec", "convexAutomatedStoppingSpec",
    "studyStoppingConfig",
}
# The automated stopping rules a StudySpec may set (one at most), by field name.
STOPPING_RULES = ("medianAutomatedStoppingSpec", "decayCurveStoppingSpec",
                  "convexAutomatedStoppingSpec")
_PARAMETER_FIELDS = {"parameterId", "scaleType", "conditionalParameterSpecs", *_VALUE_SPEC_KEYS}
_MAX_DISCRETE_VALUES = 1000
MAX_PARAMETERS = 1000
MAX_METRICS = 100
_DISCRETE_EPSILON = 1e-10


# --------------------------------------------------------------------------- small checks

def _mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(path, value, "must be a JSON object")
    return value


def _no_unknown(path: str, value: Mapping[str, Any], known: Iterable[str]) -> None:
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ValidationError(f"{path}.{unknown[0]}", value[unknown[0]],
                              f"is not a field of this message (known: {', '.join(sorted(known))})")


def _list(path: str, value: Any, *, non_empty: bool = True) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValidationError(path, value, "must be a list")
    if non_empty and not value:
        raise ValidationError(path, value, "must not be empty")
    return value


def _number(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(path, value, "must be a number")
    if not math.isfinite(value):
        raise ValidationError(path, value, "must be finite")
    return float(value)


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(path, value, "must be true or false")
    return value


def _string(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError(path, value, "must be a string")
    return value


# --------------------------------------------------------------------------- the parameter tree

def parameter_type(spec: Mapping[str, Any], path: str = "parameter") -> str:
    """``DOUBLE``, ``INTEGER``, ``DISCRETE`` or ``CATEGORICAL``: which value spec is set."""
    present = [key for key in _VALUE_SPEC_KEYS if key in spec]
    if len(present) != 1:
        raise ValidationError(
            path, spec.get("parameterId"),
            "must set exactly one of doubleValueSpec, integerValueSpec, discreteValueSpec, "
            f"categoricalValueSpec (found {', '.join(present) or 'none'})")
    return _VALUE_SPEC_KEYS[present[0]]


@dataclass(frozen=True)
class ParameterNode:
    """One parameter of a StudySpec, where it stands in the tree of conditions.

    Attributes:
        spec: The ParameterSpec message (with its children left in it).
        path: Its field path, for messages: ``studySpec.parameters[1].conditionalParameterSpecs[0]
            .parameterSpec``.
        parent: The node it is conditional on, or None at the top level.
        parent_values: The parent's values that make it active, typed as :func:`decode_value`
            types them (empty at the top level).
    """

    spec: Mapping[str, Any] = field(repr=False)
    path: str
    parent: ParameterNode | None = None
    parent_values: tuple[Any, ...] = ()

    @property
    def id(self) -> str:
        return str(self.spec["parameterId"])

    @property
    def type(self) -> str:
        return parameter_type(self.spec, self.path)

    @property
    def scale(self) -> str | None:
        return self.spec.get("scaleType")

    def feasible(self, value: Any) -> bool:
        """Whether a typed value lies in this parameter's domain."""
        return _feasible(self.spec, self.type, value)


def parameter_nodes(spec: Mapping[str, Any], path: str = "studySpec") -> list[ParameterNode]:
    """Every parameter of a StudySpec, parents before their children (depth first)."""
    out: list[ParameterNode] = []

    def visit(pspec: Mapping[str, Any], where: str, parent: ParameterNode | None,
              values: tuple[Any, ...]) -> None:
        node = ParameterNode(pspec, where, parent, values)
        out.append(node)
        for j, child in enumerate(pspec.get("conditionalParameterSpecs", ()) or ()):
            cpath = f"{where}.conditionalParameterSpecs[{j}]"
            key = _CONDITION_KEYS.get(node.type)
            raw = ((child.get(key) or {}).get("values", ())) if key else ()
            typed = tuple(_decode_condition_value(node, v) for v in raw)
            visit(child.get("parameterSpec", {}), f"{cpath}.parameterSpec", node, typed)

    for i, pspec in enumerate(spec.get("parameters", ()) or ()):
        visit(pspec, f"{path}.parameters[{i}]", None, ())
    return out


def _decode_condition_value(parent: ParameterNode, raw: Any) -> Any:
    if parent.type == INTEGER:
        return wire.parse_int64(raw, f"{parent.path}.parentIntValues")
    if parent.type == DISCRETE:
        return float(raw)
    return raw


def active_parameters(spec: Mapping[str, Any], values: Mapping[str, Any]) -> list[ParameterNode]:
    """The parameters active under ``values`` (id -> typed value): a child is active when its
    parent is active and the parent's value is among the child's parent values."""
    active: list[ParameterNode] = []
    chosen: dict[int, bool] = {}
    for node in parameter_nodes(spec):
        if node.parent is None:
            on = True
        else:
            on = chosen.get(id(node.parent), False) and node.parent.id in values and any(
                same_value(node.parent.type, values[node.parent.id], v) for v in node.parent_values)
        chosen[id(node)] = on
        if on:
            active.append(node)
    return active


def typed_values(spec: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's raw values (parameter id -> JSON value) typed by the StudySpec (INTEGER ->
    int, ...), only the active ones: a value whose parameter is inactive under the others is
    left out, as is a parameter with no value."""
    out: dict[str, Any] = {}
    for node in parameter_nodes(spec):  # parents before children
        parent = node.parent
        active = parent is None or (parent.id in out and any(
            same_value(parent.type, out[parent.id], v) for v in node.parent_values))
        if active and node.id in raw and node.id not in out:
            out[node.id] = decode_value(node.spec, raw[node.id], node.id)
    return out


def same_value(kind: str, a: Any, b: Any) -> bool:
    """Whether two typed values of a parameter of type ``kind`` are the same (discrete values
    match within 1e-10, as Vertex matches them)."""
    if kind == DISCRETE:
        return abs(float(a) - float(b)) <= _DISCRETE_EPSILON
    if kind == INTEGER:
        return int(a) == int(b)
    return a == b


# --------------------------------------------------------------------------- typed values

def decode_value(spec: Mapping[str, Any], raw: Any, path: str = "value") -> int | float | str:
    """A trial's raw JSON value typed by its ParameterSpec.

    INTEGER gives an ``int`` (Vertex sends a double), DOUBLE and DISCRETE a ``float``,
    CATEGORICAL a ``str``. The value is not checked against the domain; see
    :meth:`ParameterNode.feasible`.

    Raises:
        ValidationError: The value's JSON type does not fit the parameter's type.
    """
    kind = parameter_type(spec, path)
    if kind == CATEGORICAL:
        if not isinstance(raw, str):
            raise ValidationError(path, raw, "must be a string for a CATEGORICAL parameter")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValidationError(path, raw, f"must be a number for a {kind} parameter")
    if not math.isfinite(raw):
        raise ValidationError(path, raw, "must be finite")
    if kind == INTEGER:
        if abs(raw - round(raw)) > 1e-6:
            raise ValidationError(path, raw, "must be a whole number for an INTEGER parameter")
        return round(raw)
    return float(raw)


def encode_value(spec: Mapping[str, Any], value: Any, path: str = "value") -> int | float | str:
    """The JSON value to send for a typed value of a ParameterSpec."""
    kind = parameter_type(spec, path)
    if kind == CATEGORICAL:
        if not isinstance(value, str):
            raise ValidationError(path, value, "must be a string for a CATEGORICAL parameter")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(path, value, f"must be a finite number for a {kind} parameter")
    return int(value) if kind == INTEGER else float(value)


def bounds(spec: Mapping[str, Any]) -> tuple[int, int] | tuple[float, float]:
    """(minValue, maxValue) of a DOUBLE or INTEGER ParameterSpec, typed; an absent bound is 0
    (proto3 JSON leaves a 0 bound out)."""
    if parameter_type(spec) == INTEGER:
        vs = spec["integerValueSpec"]
        return (wire.parse_int64(vs.get("minValue", 0), "integerValueSpec.minValue"),
                wire.parse_int64(vs.get("maxValue", 0), "integerValueSpec.maxValue"))
    vs = spec["doubleValueSpec"]
    return float(vs.get("minValue", 0.0)), float(vs.get("maxValue", 0.0))


def _feasible(spec: Mapping[str, Any], kind: str, value: Any) -> bool:
    if kind == CATEGORICAL:
        return value in spec["categoricalValueSpec"].get("values", ())
    if kind == DISCRETE:
        return any(abs(float(value) - v) <= _DISCRETE_EPSILON
                   for v in spec["discreteValueSpec"].get("values", ()))
    lo, hi = bounds(spec)
    if kind == INTEGER and float(value) != int(value):
        return False
    return lo <= value <= hi


# --------------------------------------------------------------------------- validation

def validate_study(study: Any, path: str = "study", *, allow_extensions: bool = False) -> None:
    """Check a Study message as a create request carries it (displayName and studySpec).

    Raises:
        ValidationError: naming the first offending field.
    """
    study = _mapping(path, study)
    _no_unknown(path, study, _STUDY_FIELDS)
    name = study.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{path}.displayName", name, "must be a non-empty string")
    if len(name) > 128:
        raise ValidationError(f"{path}.displayName", name, "must be at most 128 characters")
    if not name.isprintable():
        raise ValidationError(f"{path}.displayName", name, "must not hold control characters")
    if "studySpec" not in study:
        raise ValidationError(f"{path}.studySpec", None, "is required")
    validate_study_spec(study["studySpec"], f"{path}.studySpec",
                        allow_extensions=allow_extensions)


def validate_study_spec(spec: Any, path: str = "studySpec", *,
                        allow_extensions: bool = False) -> None:
    """Check a StudySpec the way Vertex AI Vizier does, before it is sent or stored.

    Checks field names (no unknown fields), types, enum names, that metrics and parameters are
    present with unique, whitespace-free ids, that every value spec is well formed (bounds in
    order, defaults inside, discrete values increasing and at most 1,000, log scales positive),
    and that every conditional parameter uses the condition field of its parent's type with
    values from the parent's domain. At most one automated stopping spec may be set.

    Args:
        spec: The StudySpec message.
        path: The field path to name in errors.
        allow_extensions: Accept algorithm names beyond Vertex AI's three (upper-case
            identifiers such as ``NSGA2``), for a self-hosted service that runs more.

    Raises:
        ValidationError: naming the first offending field and its value.
    """
    # Field names, JSON types, enum names or numbers and int64 forms first, as a proto3 JSON
    # parser reads them; then what Vertex checks beyond the types.
    spec = protojson.canonical("StudySpec", _mapping(path, spec), path=path)
    _no_unknown(path, spec, _SPEC_FIELDS)

    metrics = _list(f"{path}.metrics", spec.get("metrics"))
    if len(metrics) > MAX_METRICS:
        raise ValidationError(f"{path}.metrics", f"<{len(metrics)} metrics>",
                              f"must hold at most {MAX_METRICS} metrics")
    metric_ids: set[str] = set()
    for i, metric in enumerate(metrics):
        mpath = f"{path}.metrics[{i}]"
        metric = _mapping(mpath, metric)
        _no_unknown(mpath, metric, {"metricId", "goal", "safetyConfig"})
        metric_id = wire.check_id(f"{mpath}.metricId", metric.get("metricId"))
        if metric_id in metric_ids:
            raise ValidationError(f"{mpath}.metricId", metric_id, "is used by two metrics")
        metric_ids.add(metric_id)
        goal = wire.Goal.parse(metric.get("goal"), f"{mpath}.goal")
        if goal is wire.Goal.GOAL_TYPE_UNSPECIFIED:
            raise ValidationError(f"{mpath}.goal", metric.get("goal"),
                                  "is required: MAXIMIZE or MINIMIZE")
        if "safetyConfig" in metric:
            safety = _mapping(f"{mpath}.safetyConfig", metric["safetyConfig"])
            _no_unknown(f"{mpath}.safetyConfig", safety,
                        {"safetyThreshold", "desiredMinSafeTrialsFraction"})
            for key, value in safety.items():
                _number(f"{mpath}.safetyConfig.{key}", value)
            fraction = safety.get("desiredMinSafeTrialsFraction")
            if fraction is not None and not 0.0 <= float(fraction) <= 1.0:
                raise ValidationError(f"{mpath}.safetyConfig.desiredMinSafeTrialsFraction",
                                      fraction, "must be between 0.0 and 1.0")
    if metrics and all("safetyConfig" in m for m in metrics if isinstance(m, Mapping)):
        raise ValidationError(f"{path}.metrics", [m.get("metricId") for m in metrics],
                              "holds only safety metrics; a study needs at least one objective "
                              "metric (without safetyConfig)")

    parameters = _list(f"{path}.parameters", spec.get("parameters"))
    seen_ids: dict[str, str] = {}
    for i, pspec in enumerate(parameters):
        _validate_parameter(pspec, f"{path}.parameters[{i}]", seen_ids)
        if len(seen_ids) > MAX_PARAMETERS:
            raise ValidationError(f"{path}.parameters", f"<over {MAX_PARAMETERS} parameters>",
                                  f"must hold at most {MAX_PARAMETERS} parameters, "
                                  "conditional ones included")

    for key, enum in (("algorithm", wire.Algorithm), ("observationNoise", wire.ObservationNoise),
                      ("measurementSelectionType", wire.MeasurementSelectionType)):
        if key not in spec:
            continue
        if key == "algorithm" and allow_extensions:
            if not isinstance(spec[key], str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", spec[key]):
                raise ValidationError(f"{path}.algorithm", spec[key],
                                      "must be an algorithm name such as RANDOM_SEARCH")
            continue
        enum.parse(spec[key], f"{path}.{key}")

    stopping = [key for key in STOPPING_RULES if key in spec]
    if len(stopping) > 1:
        raise ValidationError(f"{path}.{stopping[1]}", spec[stopping[1]],
                              f"only one automated stopping spec may be set (also {stopping[0]})")
    for key in stopping:
        _validate_stopping_spec(f"{path}.{key}", spec[key], key)
    if "studyStoppingConfig" in spec:
        _validate_study_stopping_config(f"{path}.studyStoppingConfig", spec["studyStoppingConfig"])


def validate_parameter_spec(pspec: Any, path: str = "parameter") -> None:
    """Check one ParameterSpec (and its conditional children) on its own.

    Raises:
        ValidationError: naming the first offending field under ``path``.
    """
    _validate_parameter(pspec, path, {})


def _validate_parameter(pspec: Any, path: str, seen_ids: dict[str, str],
                        siblings: dict[str, list[tuple[Any, ...]]] | None = None,
                        condition: tuple[Any, ...] = ()) -> None:
    pspec = _mapping(path, pspec)
    _no_unknown(path, pspec, _PARAMETER_FIELDS)
    pid = wire.check_id(f"{path}.parameterId", pspec.get("parameterId"))
    # Ids are unique across the whole tree, except that children of one parent may share an id
    # when their parent-value conditions are disjoint (as the v1 reference allows).
    if pid in seen_ids:
        shared = siblings is not None and pid in siblings and all(
            not set(condition) & set(other) for other in siblings[pid])
        if not shared:
            raise ValidationError(f"{path}.parameterId", pid,
                                  f"is already used by {seen_ids[pid]}")
    else:
        seen_ids[pid] = path
    if siblings is not None:
        siblings.setdefault(pid, []).append(condition)

    kind = parameter_type(pspec, path)
    scale = pspec.get("scaleType")
    if scale is not None:
        scale = wire.ScaleType.parse(scale, f"{path}.scaleType")
        if kind == CATEGORICAL and scale is not wire.ScaleType.SCALE_TYPE_UNSPECIFIED:
            raise ValidationError(f"{path}.scaleType", scale.value,
                                  "must be unset for a CATEGORICAL parameter")
    log_scale = scale in (wire.ScaleType.UNIT_LOG_SCALE, wire.ScaleType.UNIT_REVERSE_LOG_SCALE)

    if kind == DOUBLE:
        vpath = f"{path}.doubleValueSpec"
        vs = _mapping(vpath, pspec["doubleValueSpec"])
        _no_unknown(vpath, vs, {"minValue", "maxValue", "defaultValue"})
        lo, hi = _number(f"{vpath}.minValue", vs.get("minValue", 0.0)), _number(
            f"{vpath}.maxValue", vs.get("maxValue", 0.0))
        _check_bounds(vpath, lo, hi, vs, lambda v, f: _number(f, v), log_scale)
    elif kind == INTEGER:
        vpath = f"{path}.integerValueSpec"
        vs = _mapping(vpath, pspec["integerValueSpec"])
        _no_unknown(vpath, vs, {"minValue", "maxValue", "defaultValue"})
        ilo = wire.parse_int64(vs.get("minValue", 0), f"{vpath}.minValue")
        ihi = wire.parse_int64(vs.get("maxValue", 0), f"{vpath}.maxValue")
        _check_bounds(vpath, ilo, ihi, vs, wire.parse_int64, log_scale)
    elif kind == DISCRETE:
        vpath = f"{path}.discreteValueSpec"
        vs = _mapping(vpath, pspec["discreteValueSpec"])
        _no_unknown(vpath, vs, {"values", "defaultValue"})
        values = [_number(f"{vpath}.values[{j}]", v)
                  for j, v in enumerate(_list(f"{vpath}.values", vs.get("values", [])))]
        if len(values) > _MAX_DISCRETE_VALUES:
            raise ValidationError(f"{vpath}.values", f"<{len(values)} values>",
                                  f"must hold at most {_MAX_DISCRETE_VALUES} values")
        for j in range(1, len(values)):
            if values[j] - values[j - 1] < _DISCRETE_EPSILON:
                raise ValidationError(f"{vpath}.values[{j}]", values[j],
                                      "values must be increasing and at least 1e-10 apart")
        if log_scale and values[0] <= 0:
            raise ValidationError(f"{vpath}.values[0]", values[0],
                                  "must be positive with a log scale")
        if "defaultValue" in vs:
            _number(f"{vpath}.defaultValue", vs["defaultValue"])
    else:
        vpath = f"{path}.categoricalValueSpec"
        vs = _mapping(vpath, pspec["categoricalValueSpec"])
        _no_unknown(vpath, vs, {"values", "defaultValue"})
        categories = _list(f"{vpath}.values", vs.get("values", []))
        if len(categories) > _MAX_DISCRETE_VALUES:
            raise ValidationError(f"{vpath}.values", f"<{len(categories)} values>",
                                  f"must hold at most {_MAX_DISCRETE_VALUES} values")
        seen: set[str] = set()
        for j, v in enumerate(categories):
            _string(f"{vpath}.values[{j}]", v)
            if v in seen:
                raise ValidationError(f"{vpath}.values[{j}]", v, "appears twice")
            seen.add(v)
        if "defaultValue" in vs and vs["defaultValue"] not in seen:
            raise ValidationError(f"{vpath}.defaultValue", vs["defaultValue"],
                                  "must be one of the values")

    children = _list(f"{path}.conditionalParameterSpecs",
                     pspec.get("conditionalParameterSpecs", []), non_empty=False)
    child_ids: dict[str, list[tuple[Any, ...]]] = {}
    for j, child in enumerate(children):
        cpath = f"{path}.conditionalParameterSpecs[{j}]"
        child = _mapping(cpath, child)
        _no_unknown(cpath, child, {"parameterSpec", *_CONDITION_KEYS.values()})
        wanted = _CONDITION_KEYS.get(kind)
        if wanted is None:
            raise ValidationError(cpath, pid, "a DOUBLE parameter cannot have conditional "
                                  "children; use an INTEGER, DISCRETE or CATEGORICAL parent")
        given = [key for key in _CONDITION_KEYS.values() if key in child]
        if given != [wanted]:
            raise ValidationError(f"{cpath}.{given[0] if given else wanted}",
                                  child.get(given[0]) if given else None,
                                  f"a child of the {kind} parameter {pid!r} needs exactly "
                                  f"{wanted}")
        cond = _mapping(f"{cpath}.{wanted}", child[wanted])
        _no_unknown(f"{cpath}.{wanted}", cond, {"values"})
        raw_values = _list(f"{cpath}.{wanted}.values", cond.get("values", []))
        typed: list[Any] = []
        for k, raw in enumerate(raw_values):
            vfield = f"{cpath}.{wanted}.values[{k}]"
            if kind == INTEGER:
                value: Any = wire.parse_int64(raw, vfield)
            elif kind == DISCRETE:
                value = _number(vfield, raw)
            else:
                value = _string(vfield, raw)
            if not _feasible(pspec, kind, value):
                raise ValidationError(vfield, raw,
                                      f"is not a value of the parent parameter {pid!r}")
            typed.append(round(value / _DISCRETE_EPSILON) if kind == DISCRETE else value)
        if "parameterSpec" not in child:
            raise ValidationError(f"{cpath}.parameterSpec", None, "is required")
        _validate_parameter(child["parameterSpec"], f"{cpath}.parameterSpec", seen_ids,
                            child_ids, tuple(typed))


def _check_bounds(vpath: str, lo: Any, hi: Any, vs: Mapping[str, Any], parse: Any,
                  log_scale: bool) -> None:
    # A bound left out (proto3 JSON omits a 0) is 0.
    given_lo, given_hi = vs.get("minValue", lo), vs.get("maxValue", hi)
    if lo > hi:
        if "maxValue" not in vs:
            raise ValidationError(f"{vpath}.maxValue", None,
                                  f"is absent, so 0 (proto3 JSON leaves a 0 out), which is "
                                  f"less than minValue ({given_lo})")
        raise ValidationError(f"{vpath}.minValue", given_lo,
                              f"must not be greater than maxValue ({given_hi})")
    if log_scale and lo <= 0:
        raise ValidationError(f"{vpath}.minValue", given_lo,
                              "must be positive with a log scale")
    if "defaultValue" in vs:
        default = parse(vs["defaultValue"], f"{vpath}.defaultValue")
        if not lo <= default <= hi:
            raise ValidationError(f"{vpath}.defaultValue", vs["defaultValue"],
                                  f"must lie in [{given_lo}, {given_hi}]")


def _validate_stopping_spec(path: str, value: Any, key: str) -> None:
    value = _mapping(path, value)
    if key == "convexAutomatedStoppingSpec":
        known = {"maxStepCount", "minStepCount", "minMeasurementCount",
                 "learningRateParameterName", "useElapsedDuration", "updateAllStoppedTrials"}
        _no_unknown(path, value, known)
        counts = {}
        for name in ("maxStepCount", "minStepCount", "minMeasurementCount"):
            if name in value:
                counts[name] = wire.parse_int64(value[name], f"{path}.{name}")
                if counts[name] < 0:
                    raise ValidationError(f"{path}.{name}", value[name], "must be non-negative")
        if counts.get("maxStepCount") and counts.get("minStepCount", 0) > counts["maxStepCount"]:
            raise ValidationError(f"{path}.minStepCount", value["minStepCount"],
                                  "must not be greater than maxStepCount")
        if "learningRateParameterName" in value:
            _string(f"{path}.learningRateParameterName", value["learningRateParameterName"])
        for name in ("useElapsedDuration", "updateAllStoppedTrials"):
            if name in value:
                _bool(f"{path}.{name}", value[name])
    else:
        _no_unknown(path, value, {"useElapsedDuration"})
        if "useElapsedDuration" in value:
            _bool(f"{path}.useElapsedDuration", value["useElapsedDuration"])


def _validate_study_stopping_config(path: str, value: Any) -> None:
    value = _mapping(path, value)
    known = {"shouldStopAsap", "minimumRuntimeConstraint", "maximumRuntimeConstraint",
             "minNumTrials", "maxNumTrials", "maxNumTrialsNoProgress", "maxDurationNoProgress"}
    _no_unknown(path, value, known)
    for name in ("minNumTrials", "maxNumTrials", "maxNumTrialsNoProgress"):
        if name in value:
            v = value[name]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValidationError(f"{path}.{name}", v, "must be a non-negative integer")
    if "shouldStopAsap" in value:
        _bool(f"{path}.shouldStopAsap", value["shouldStopAsap"])
    if "maxDurationNoProgress" in value:
        wire.parse_duration(value["maxDurationNoProgress"], f"{path}.maxDurationNoProgress")
    for name in ("minimumRuntimeConstraint", "maximumRuntimeConstraint"):
        if name in value:
            constraint = _mapping(f"{path}.{name}", value[name])
            _no_unknown(f"{path}.{name}", constraint, {"maxDuration", "endTime"})
            if "maxDuration" in constraint:
                wire.parse_duration(constraint["maxDuration"], f"{path}.{name}.maxDuration")
            if "endTime" in constraint:
                wire.parse_timestamp(constraint["endTime"], f"{path}.{name}.endTime")


def iter_metric_specs(spec: Mapping[str, Any]) -> Iterator[tuple[str, wire.Goal]]:
    """(metricId, goal) of each objective metric of a StudySpec: the metrics without a
    ``safetyConfig`` (those are constraints, :func:`safety_metrics`)."""
    for metric in spec.get("metrics", ()) or ():
        if "safetyConfig" not in metric:
            yield str(metric["metricId"]), wire.Goal(metric["goal"])


def stopping_rule(spec: Mapping[str, Any]) -> str | None:
    """The automated stopping rule a StudySpec sets (its field name), or None."""
    return next((rule for rule in STOPPING_RULES if rule in spec), None)


def first_objective(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """The MetricSpec of the first objective metric: what early stopping, measurement
    selection and study stopping read."""
    for metric in spec.get("metrics", ()) or ():
        if "safetyConfig" not in metric:
            return metric
    raise ValidationError("studySpec.metrics", None, "has no objective metric")


def safety_metrics(spec: Mapping[str, Any]) -> list[tuple[str, wire.Goal, float]]:
    """(metricId, goal, threshold) of each safety metric (``safetyConfig``) of a StudySpec.

    Vertex AI's meaning (``MetricSpec.safetyConfig``): the metric is a constraint, not an
    objective; a trial is safe when its value is at or above the threshold for a MAXIMIZE
    metric, at or below it for a MINIMIZE one (an unset threshold is 0).
    """
    out = []
    for metric in spec.get("metrics", ()) or ():
        if "safetyConfig" in metric:
            threshold = float((metric["safetyConfig"] or {}).get("safetyThreshold", 0.0))
            out.append((str(metric["metricId"]), wire.Goal(metric["goal"]), threshold))
    return out


def is_safe(spec: Mapping[str, Any], metrics: Mapping[str, float]) -> bool:
    """Whether measured ``metrics`` meet every safety threshold of ``spec``. A safety metric
    that was not measured counts as safe, as Open Source Vizier counts it."""
    for metric_id, goal, threshold in safety_metrics(spec):
        value = metrics.get(metric_id)
        if value is None:
            continue
        if value < threshold if goal is wire.Goal.MAXIMIZE else value > threshold:
            return False
    return True
