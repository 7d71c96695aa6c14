"""KerasTuner <-> StudySpec conversion: every type, sampling, step, bound, default and condition;
values typed by the spec; clear errors; and a property-based test over random search spaces."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Any

import keras_tuner as kt
import pytest
from discovery import Discovery
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vizier_keras import convert, studyspec
from vizier_keras.errors import ValidationError


def only_param(build) -> dict[str, Any]:
    hp = kt.HyperParameters()
    build(hp)
    specs = convert.parameter_specs(hp)
    assert len(specs) == 1
    return specs[0]


# ----------------------------------------------------------------------------- the mapping table

@pytest.mark.parametrize(("build", "expected"), [
    (lambda hp: hp.Int("n", 6, 12),
     {"integerValueSpec": {"minValue": "6", "maxValue": "12"}, "scaleType": "UNIT_LINEAR_SCALE"}),
    (lambda hp: hp.Int("n", 6, 13, step=3),
     {"discreteValueSpec": {"values": [6.0, 9.0, 12.0]}, "scaleType": "UNIT_LINEAR_SCALE"}),
    (lambda hp: hp.Int("n", 2, 32, step=2, sampling="log"),
     {"discreteValueSpec": {"values": [2.0, 4.0, 8.0, 16.0, 32.0]},
      "scaleType": "UNIT_LOG_SCALE"}),
    (lambda hp: hp.Int("n", 1, 100, step=10, sampling="reverse_log"),
     {"discreteValueSpec": {"values": [1.0, 91.0, 100.0]}, "scaleType": "UNIT_REVERSE_LOG_SCALE"}),
    (lambda hp: hp.Int("n", 8, 1024, sampling="log", default=64),
     {"integerValueSpec": {"minValue": "8", "maxValue": "1024", "defaultValue": "64"},
      "scaleType": "UNIT_LOG_SCALE"}),
    (lambda hp: hp.Float("f", 1e-4, 1e-1, sampling="log"),
     {"doubleValueSpec": {"minValue": 1e-4, "maxValue": 1e-1}, "scaleType": "UNIT_LOG_SCALE"}),
    (lambda hp: hp.Float("f", 0.5, 0.99, sampling="reverse_log", default=0.9),
     {"doubleValueSpec": {"minValue": 0.5, "maxValue": 0.99, "defaultValue": 0.9},
      "scaleType": "UNIT_REVERSE_LOG_SCALE"}),
    (lambda hp: hp.Float("f", 0, 1, step=0.1),
     {"discreteValueSpec": {"values": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]},
      "scaleType": "UNIT_LINEAR_SCALE"}),
    (lambda hp: hp.Float("f", 0.001, 10, step=10, sampling="log"),
     {"discreteValueSpec": {"values": [0.001, 0.01, 0.1, 1.0, 10.0]},
      "scaleType": "UNIT_LOG_SCALE"}),
    (lambda hp: hp.Choice("c", ["relu", "tanh", "elu"], default="tanh"),
     {"categoricalValueSpec": {"values": ["relu", "tanh", "elu"], "defaultValue": "tanh"}}),
    (lambda hp: hp.Choice("c", [64, 16, 32]),
     {"discreteValueSpec": {"values": [16.0, 32.0, 64.0]}}),
    (lambda hp: hp.Choice("c", [0.5, 0.1], default=0.1),
     {"discreteValueSpec": {"values": [0.1, 0.5], "defaultValue": 0.1}}),
    (lambda hp: hp.Choice("c", [3, 1, 2], ordered=False),
     {"categoricalValueSpec": {"values": ["3", "1", "2"]}}),
    (lambda hp: hp.Choice("c", [True, False]),  # KerasTuner stores these as ints 1, 0
     {"discreteValueSpec": {"values": [0.0, 1.0]}}),
    (lambda hp: hp.Boolean("b"), {"categoricalValueSpec": {"values": ["False", "True"]}}),
    (lambda hp: hp.Boolean("b", default=True),
     {"categoricalValueSpec": {"values": ["False", "True"], "defaultValue": "True"}}),
    (lambda hp: hp.Fixed("x", "adam"), {"categoricalValueSpec": {"values": ["adam"]}}),
    (lambda hp: hp.Fixed("x", True), {"categoricalValueSpec": {"values": ["True"]}}),
    (lambda hp: hp.Fixed("x", 7), {"discreteValueSpec": {"values": [7.0]}}),
    (lambda hp: hp.Fixed("x", 0.25), {"discreteValueSpec": {"values": [0.25]}}),
])
def test_each_kind_maps_as_documented(build, expected):
    spec = only_param(build)
    spec.pop("parameterId")
    assert spec == expected


def test_stepped_float_grid_has_no_float_drift_and_includes_max():
    spec = only_param(lambda hp: hp.Float("f", 0.1, 0.7, step=0.2))
    assert spec["discreteValueSpec"]["values"] == [0.1, 0.3, 0.5, 0.7]


def test_implicit_defaults_are_not_sent_explicit_ones_are():
    for build in (lambda hp: hp.Int("n", 1, 5), lambda hp: hp.Float("f", 0, 1),
                  lambda hp: hp.Choice("c", ["a", "b"]), lambda hp: hp.Boolean("b")):
        vs = next(v for k, v in only_param(build).items() if k.endswith("ValueSpec"))
        assert "defaultValue" not in vs
    assert only_param(lambda hp: hp.Int("n", 1, 5, default=3))["integerValueSpec"][
        "defaultValue"] == "3"


# ----------------------------------------------------------------------------- conditions

def conditional_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Choice("model", ["mlp", "cnn"])
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("layers", 1, 3)
        with hp.conditional_scope("layers", [2, 3]):
            hp.Choice("width", [32, 64, 128])
            with hp.conditional_scope("width", [128]):
                hp.Boolean("bn")
                with hp.conditional_scope("bn", [True]):
                    hp.Float("momentum", 0.9, 0.999)
    with hp.conditional_scope("model", ["cnn"]):
        hp.Int("layers", 1, 8)  # the same name under another value of the same parent
    hp.Float("lr", 1e-4, 1e-2, sampling="log")
    return hp


def test_conditions_nest_with_the_condition_field_of_each_parent_type():
    specs = convert.parameter_specs(conditional_space())
    assert [s["parameterId"] for s in specs] == ["model", "lr"]
    mlp, cnn = specs[0]["conditionalParameterSpecs"]
    assert mlp["parentCategoricalValues"] == {"values": ["mlp"]}
    assert cnn["parentCategoricalValues"] == {"values": ["cnn"]}
    assert cnn["parameterSpec"]["integerValueSpec"]["maxValue"] == "8"
    layers = mlp["parameterSpec"]
    (width_child,) = layers["conditionalParameterSpecs"]
    assert width_child["parentIntValues"] == {"values": ["2", "3"]}
    (bn_child,) = width_child["parameterSpec"]["conditionalParameterSpecs"]
    assert bn_child["parentDiscreteValues"] == {"values": [128.0]}
    (mom_child,) = bn_child["parameterSpec"]["conditionalParameterSpecs"]
    assert mom_child["parentCategoricalValues"] == {"values": ["True"]}
    assert mom_child["parameterSpec"]["parameterId"] == "momentum"
    studyspec.validate_study_spec({"metrics": [{"metricId": "m", "goal": "MAXIMIZE"}],
                                   "parameters": specs})


def test_values_of_inactive_children_are_absent_and_types_follow_keras_tuner():
    hp = conditional_space()
    trial = {"parameters": [
        {"parameterId": "model", "value": "mlp"}, {"parameterId": "layers", "value": 2.0},
        {"parameterId": "width", "value": 128.0}, {"parameterId": "bn", "value": "False"},
        {"parameterId": "lr", "value": 0.001},
        {"parameterId": "momentum", "value": 0.95},  # inactive: bn is False
    ]}
    values = convert.values_from_trial(trial, hp)
    assert values == {"model": "mlp", "layers": 2, "width": 128, "bn": False, "lr": 0.001}
    assert type(values["layers"]) is int and type(values["width"]) is int
    assert values["bn"] is False
    params = convert.trial_parameters_from_values({**values, "momentum": 0.95}, hp)
    assert {p["parameterId"] for p in params} == {"model", "layers", "width", "bn", "lr"}
    assert {"parameterId": "bn", "value": "False"} in params


def test_same_name_under_another_branch_is_typed_by_the_active_one():
    hp = conditional_space()
    values = convert.values_from_trial({"parameters": [
        {"parameterId": "model", "value": "cnn"}, {"parameterId": "layers", "value": 7.0},
        {"parameterId": "lr", "value": 0.002}]}, hp)
    assert values == {"model": "cnn", "layers": 7, "lr": 0.002}


def test_values_come_back_typed_and_snapped():
    hp = kt.HyperParameters()
    hp.Float("drop", 0, 0.5, step=0.1)
    hp.Choice("act", [3, 1, 2], ordered=False)
    hp.Fixed("opt", "adam")
    hp.Int("bs", 16, 64, step=2, sampling="log")
    values = convert.values_from_trial({"parameters": [
        {"parameterId": "drop", "value": 0.30000000000000004},
        {"parameterId": "act", "value": "3"}, {"parameterId": "opt", "value": "adam"},
        {"parameterId": "bs", "value": 32.0}, {"parameterId": "unknown", "value": 1}]}, hp)
    assert values == {"drop": 0.3, "act": 3, "opt": "adam", "bs": 32}
    assert type(values["bs"]) is int


@pytest.mark.parametrize(("param", "value"), [
    ("act", "4"), ("act", 3), ("bs", 33.0), ("bn", "yes"), ("n", 2.5), ("n", "2")])
def test_values_that_do_not_fit_are_rejected_naming_the_parameter(param, value):
    hp = kt.HyperParameters()
    hp.Choice("act", [3, 1, 2], ordered=False)
    hp.Int("bs", 16, 64, step=2, sampling="log")
    hp.Boolean("bn")
    hp.Int("n", 1, 5)
    with pytest.raises(ValidationError, match=param):
        convert.values_from_trial({"parameters": [{"parameterId": param, "value": value}]}, hp)


# ----------------------------------------------------------------------------- what cannot travel

def test_condition_on_a_continuous_float_is_refused():
    hp = kt.HyperParameters()
    hp.Float("lr", 0, 1)
    with hp.conditional_scope("lr", [0.5]):
        hp.Int("n", 1, 2)
    with pytest.raises(ValidationError, match="continuous Float") as info:
        convert.parameter_specs(hp)
    assert "'n'" in info.value.field


def test_conditions_that_are_not_a_chain_are_refused():
    # conditional_scope cannot build this; a space restored from a config can.
    from keras_tuner.src.engine.conditions import Parent

    hp = kt.HyperParameters()
    hp.Choice("a", ["x", "y"])
    hp.Choice("b", ["u", "v"])
    hp._register(kt.engine.hyperparameters.Int(
        "c", 1, 2, conditions=[Parent("a", ["x"]), Parent("b", ["u"])]))
    with pytest.raises(ValidationError, match="chain"):
        convert.parameter_specs(hp)


def test_one_name_under_two_parents_or_overlapping_values_is_refused():
    hp = kt.HyperParameters()
    hp.Choice("a", ["x", "y"])
    hp.Int("u", 1, 2)
    with hp.conditional_scope("a", ["x"]):
        hp.Int("u", 1, 3)
    with pytest.raises(ValidationError, match="declared twice"):
        convert.parameter_specs(hp)
    hp = kt.HyperParameters()
    hp.Choice("a", ["x", "y"])
    with hp.conditional_scope("a", ["x", "y"]):
        hp.Int("u", 1, 2)
    with hp.conditional_scope("a", ["y"]):
        hp.Int("u", 1, 3)
    with pytest.raises(ValidationError, match="overlapping"):
        convert.parameter_specs(hp)


def test_condition_value_outside_the_parent_domain_is_refused():
    hp = kt.HyperParameters()
    hp.Choice("a", ["x", "y"])
    with hp.conditional_scope("a", ["z"]):
        hp.Int("u", 1, 2)
    with pytest.raises(ValidationError, match="not a value of the parent"):
        convert.parameter_specs(hp)


@pytest.mark.parametrize(("build", "match"), [
    (lambda hp: hp.Int("n", 0, 100_000, step=2), "1000"),
    (lambda hp: hp.Float("f", 0, 1, step=1e-4), "1000"),
    (lambda hp: hp.Int("my param", 1, 2), "whitespace"),
    (lambda hp: hp.Choice("c", [0.1, 0.1 + 1e-12]), "1e-10"),
    (lambda hp: hp.Int("n", 1, 5, default=9), r"\[1, 5\]"),
])
def test_what_vertex_cannot_hold_is_refused_naming_the_parameter(build, match):
    hp = kt.HyperParameters()
    build(hp)
    with pytest.raises(ValidationError, match=match) as info:
        convert.parameter_specs(hp)
    assert hp.space[0].name in info.value.field


# ----------------------------------------------------------------------------- objectives

def test_objectives():
    assert convert.metric_specs("val_accuracy") == [{"metricId": "val_accuracy",
                                                     "goal": "MAXIMIZE"}]
    assert convert.metric_specs("val_loss")[0]["goal"] == "MINIMIZE"
    assert convert.metric_specs(kt.Objective("f1", "max"))[0] == {"metricId": "f1",
                                                                  "goal": "MAXIMIZE"}
    multi = convert.metric_specs(["val_loss", kt.Objective("latency", "min")])
    assert [m["metricId"] for m in multi] == ["val_loss", "latency"]
    spec = {"metrics": multi}
    back = convert.objective_from_spec(spec)
    assert [(o.name, o.direction) for o in back] == [("val_loss", "min"), ("latency", "min")]
    single = convert.objective_from_spec({"metrics": multi[:1]})
    assert (single.name, single.direction) == ("val_loss", "min")


@pytest.mark.parametrize(("objective", "match"), [
    (None, "required"), ("my_custom_score", "direction"), (["val_loss", "val_loss"], "twice"),
    (kt.Objective("x", "up"), "min"), ([], "empty"), (42, "metric name"),
])
def test_bad_objectives_are_refused(objective, match):
    with pytest.raises(ValidationError, match=match):
        convert.metric_specs(objective)


def test_a_keras_tuner_multi_objective_is_a_multi_metric_study():
    from keras_tuner.src.engine.objective import create_objective

    multi = create_objective(["val_loss", "val_accuracy"])
    assert [m["goal"] for m in convert.metric_specs(multi)] == ["MINIMIZE", "MAXIMIZE"]


# ----------------------------------------------------------------------------- round trips

def test_round_trip_of_a_space_with_every_kind():
    hp = conditional_space()
    hp.Int("bs", 16, 256, step=2, sampling="log", default=32)
    hp.Int("w", 8, 1024, sampling="log")
    hp.Float("drop", 0, 0.5, step=0.1, default=0.2)
    hp.Float("mom", 0.5, 0.99, sampling="reverse_log")
    hp.Int("r", 1, 1000, step=10, sampling="reverse_log")
    hp.Fixed("seed", 3)
    hp.Fixed("name", "x")
    hp.Choice("act", [3, 1, 2], ordered=False)
    spec = convert.study_spec(hp, "val_loss")
    back = convert.hyperparameters_from_spec(spec)
    assert convert.study_spec(back, "val_loss") == spec
    by_name = {(h.name, tuple(c.name for c in h.conditions)): h for h in back.space}
    assert by_name[("bs", ())].step == 2 and by_name[("bs", ())].sampling == "log"
    assert by_name[("bs", ())].default == 32
    assert by_name[("drop", ())].step == pytest.approx(0.1)
    assert by_name[("w", ())].sampling == "log" and by_name[("w", ())].step is None
    assert type(by_name[("seed", ())].value) is int
    assert by_name[("momentum", ("model", "layers", "width", "bn"))].conditions[-1].values == [
        True]


def test_study_spec_takes_other_fields_and_validates_them():
    hp = kt.HyperParameters()
    hp.Int("n", 1, 3)
    spec = convert.study_spec(hp, "val_loss", algorithm="RANDOM_SEARCH",
                              measurementSelectionType="BEST_MEASUREMENT")
    assert spec["algorithm"] == "RANDOM_SEARCH"
    with pytest.raises(ValidationError, match="algorithm"):
        convert.study_spec(hp, "val_loss", algorithm="SIMULATED_ANNEALING")


def test_hyperparameters_must_be_a_keras_tuner_space():
    with pytest.raises(ValidationError, match="HyperParameters"):
        convert.parameter_specs({"n": 1})


# ----------------------------------------------------------------------------- property-based

DISCOVERY = Discovery.load()


class _Parent:
    def __init__(self, name: str, domain: list[Any], chain: list[tuple[str, list[Any]]]):
        self.name, self.domain, self.chain = name, domain, chain


def _float_values(draw: Any, n_max: int) -> list[float]:
    values = draw(st.lists(st.integers(-4000, 4000), min_size=1, max_size=n_max, unique=True))
    scale = draw(st.sampled_from([1.0, 0.5, 0.01, 0.125]))
    return [v * scale for v in values]


@st.composite
def spaces(draw: Any) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    parents: list[_Parent] = []
    for i in range(draw(st.integers(1, 7))):
        name = f"p{i}"
        chain: list[tuple[str, list[Any]]] = []
        if parents and draw(st.booleans()):
            parent = draw(st.sampled_from(parents))
            if len(parent.chain) < 3:
                values = draw(st.lists(st.sampled_from(parent.domain), min_size=1,
                                       max_size=3, unique=True))
                chain = [*parent.chain, (parent.name, values)]
        with contextlib.ExitStack() as stack:
            for pname, pvalues in chain:
                stack.enter_context(hp.conditional_scope(pname, pvalues))
            kind = draw(st.sampled_from(["int", "int_step", "int_log", "float", "float_step",
                                         "float_log", "choice_str", "choice_num", "boolean",
                                         "fixed"]))
            domain: list[Any] | None = None
            if kind == "int":
                lo = draw(st.integers(-50, 50))
                hi = lo + draw(st.integers(0, 40))
                default = draw(st.none() | st.integers(lo, hi))
                hp.Int(name, lo, hi, default=default)
                domain = list(range(lo, hi + 1))
            elif kind == "int_step":
                lo = draw(st.integers(-50, 50))
                step = draw(st.integers(2, 7))
                hi = lo + draw(st.integers(0, 60))
                hp.Int(name, lo, hi, step=step)
                domain = list(range(lo, hi + 1, step))
            elif kind == "int_log":
                lo = draw(st.integers(1, 20))
                hi = lo * draw(st.integers(1, 300))
                step = draw(st.none() | st.integers(2, 5))
                sampling = draw(st.sampled_from(["log", "reverse_log"]))
                hp.Int(name, lo, hi, step=step, sampling=sampling)
            elif kind == "float":
                lo = draw(st.floats(-100, 100, allow_nan=False))
                hi = lo + draw(st.floats(0.001, 100))
                hp.Float(name, lo, hi, default=draw(st.none() | st.floats(lo, hi)))
            elif kind == "float_step":
                lo = draw(st.integers(-100, 100)) / 4
                step = draw(st.sampled_from([0.1, 0.25, 0.5, 1.0, 0.05]))
                hi = lo + step * draw(st.integers(0, 40))
                hp.Float(name, lo, hi, step=step)
                domain = convert._grid(lo, hi, step, "linear", "t", as_int=False)
            elif kind == "float_log":
                lo = draw(st.sampled_from([1e-5, 1e-3, 0.02, 0.5, 1.0]))
                hi = lo * draw(st.floats(1.5, 1e4))
                step = draw(st.none() | st.sampled_from([2.0, 10.0, 3.0]))
                sampling = draw(st.sampled_from(["log", "reverse_log"]))
                hp.Float(name, lo, hi, step=step, sampling=sampling)
            elif kind == "choice_str":
                values = draw(st.lists(st.text("abcxyz_", min_size=1, max_size=4), min_size=1,
                                       max_size=5, unique=True))
                default = draw(st.none() | st.sampled_from(values))
                hp.Choice(name, values, default=default)
                domain = values
            elif kind == "choice_num":
                values = (draw(st.lists(st.integers(-1000, 1000), min_size=1, max_size=6,
                                        unique=True)) if draw(st.booleans())
                          else _float_values(draw, 6))
                hp.Choice(name, values, ordered=draw(st.booleans()))
                domain = values
            elif kind == "boolean":
                hp.Boolean(name, default=draw(st.booleans()))
                domain = [True, False]
            else:
                value = draw(st.integers(-5, 5) | st.text("ab", min_size=1, max_size=3)
                             | st.booleans() | st.sampled_from([0.5, -2.25]))
                hp.Fixed(name, value)
                domain = [value]
            if domain is not None:
                parents.append(_Parent(name, domain, chain))
    return hp


def _sample_trial(spec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A trial as Vertex would send one: a value for each active parameter, numbers as doubles."""
    values: dict[str, Any] = {}
    for node in studyspec.parameter_nodes(spec):
        if node.parent is not None and (node.parent.id not in values or not any(
                studyspec.same_value(node.parent.type, values[node.parent.id], v)
                for v in node.parent_values)):
            continue
        if node.id in values:
            continue
        s = node.spec
        if node.type == studyspec.DOUBLE:
            lo, hi = s["doubleValueSpec"]["minValue"], s["doubleValueSpec"]["maxValue"]
            values[node.id] = rng.uniform(lo, hi)
        elif node.type == studyspec.INTEGER:
            vs = s["integerValueSpec"]
            values[node.id] = float(rng.randint(int(vs["minValue"]), int(vs["maxValue"])))
        elif node.type == studyspec.DISCRETE:
            values[node.id] = rng.choice(s["discreteValueSpec"]["values"])
        else:
            values[node.id] = rng.choice(s["categoricalValueSpec"]["values"])
    return {"parameters": [{"parameterId": k, "value": v} for k, v in values.items()]}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hp=spaces(), seed=st.integers(0, 2**32 - 1))
def test_random_spaces_convert_validate_round_trip_and_type_values(hp, seed):
    try:
        spec = convert.study_spec(hp, "val_loss")
    except ValidationError as e:
        # Only the documented refusals are allowed: condition on a continuous float, a grid over
        # Vertex's limit, or choices closer than 1e-10.
        assert any(s in str(e) for s in ("continuous Float", "1000", "1e-10")), str(e)
        assume(False)
        return
    # Valid by our rules and by the discovery document's schema.
    assert not DISCOVERY.validate("GoogleCloudAiplatformV1StudySpec", spec)
    # spec -> KerasTuner -> spec is the identity.
    back = convert.hyperparameters_from_spec(spec)
    assert convert.study_spec(back, "val_loss") == spec
    assert {h.name for h in back.space} == {h.name for h in hp.space}
    # Values Vertex would send come back typed as KerasTuner types them, inside their domain,
    # and exactly the active parameters are present.
    trial = _sample_trial(spec, random.Random(seed))
    values = convert.values_from_trial(trial, hp)
    assert set(values) == {p["parameterId"] for p in trial["parameters"]}
    check = kt.HyperParameters()
    for h in hp.space:
        check._hps[h.name].append(h)
    check.values = dict(values)
    for h in hp.space:
        if h.name not in values or not check.is_active(h):
            continue
        v = values[h.name]
        if isinstance(h, kt.engine.hyperparameters.Boolean):
            assert type(v) is bool
        elif isinstance(h, kt.engine.hyperparameters.Fixed):
            assert v == h.value and type(v) is type(h.value)
        elif isinstance(h, kt.engine.hyperparameters.Choice):
            assert v in h.values and type(v) is type(h.values[0])
        elif isinstance(h, kt.engine.hyperparameters.Int):
            assert type(v) is int and h.min_value <= v <= h.max_value
        else:
            assert type(v) is float
            assert h.min_value - 1e-9 <= v <= h.max_value + 1e-9
            if h.step is not None:
                grid = convert._grid(h.min_value, h.max_value, h.step, h.sampling, "t",
                                     as_int=False)
                assert v in grid
    # And they travel back unchanged.
    again = convert.trial_parameters_from_values(values, hp)
    sent = {p["parameterId"]: p["value"] for p in trial["parameters"]}
    for p in again:
        raw = sent[p["parameterId"]]
        if isinstance(raw, str):
            assert p["value"] == raw
        else:
            assert math.isclose(p["value"], raw, rel_tol=1e-12, abs_tol=1e-12)
