"""StudySpec validation names the offending field; the parameter tree and typed values."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vizier_keras import studyspec
from vizier_keras.errors import ValidationError

GOOD: dict[str, Any] = {
    "metrics": [{"metricId": "acc", "goal": "MAXIMIZE"}],
    "parameters": [
        {"parameterId": "model", "categoricalValueSpec": {"values": ["mlp", "cnn"]},
         "conditionalParameterSpecs": [
             {"parentCategoricalValues": {"values": ["mlp"]},
              "parameterSpec": {"parameterId": "layers",
                                "integerValueSpec": {"minValue": "1", "maxValue": "3"},
                                "conditionalParameterSpecs": [
                                    {"parentIntValues": {"values": ["2", "3"]},
                                     "parameterSpec": {"parameterId": "units",
                                                       "discreteValueSpec": {
                                                           "values": [32, 64]}}}]}},
             {"parentCategoricalValues": {"values": ["cnn"]},
              "parameterSpec": {"parameterId": "layers",
                                "integerValueSpec": {"minValue": "1", "maxValue": "8"}}}]},
        {"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4, "maxValue": 0.1},
         "scaleType": "UNIT_LOG_SCALE"},
    ],
    "algorithm": "RANDOM_SEARCH",
    "measurementSelectionType": "BEST_MEASUREMENT",
    "convexAutomatedStoppingSpec": {"minStepCount": "2", "maxStepCount": "10",
                                    "useElapsedDuration": False},
    "studyStoppingConfig": {"maxNumTrials": 20, "maxDurationNoProgress": "600s",
                            "maximumRuntimeConstraint": {"maxDuration": "3600s"}},
}


def test_a_good_spec_passes():
    studyspec.validate_study_spec(GOOD)
    studyspec.validate_study({"displayName": "s", "studySpec": GOOD})


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD)
    target = spec
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    elif isinstance(target, list) and path[-1] == len(target):
        target.append(value)
    else:
        target[path[-1]] = value
    return spec


LAYERS = ["parameters", 0, "conditionalParameterSpecs", 0, "parameterSpec"]


@pytest.mark.parametrize(("path", "value", "field"), [
    (["metrics"], [], "studySpec.metrics"),
    (["metrics"], KeyError, "studySpec.metrics"),
    (["metrics", 0, "goal"], "BIGGER", "studySpec.metrics[0].goal"),
    (["metrics", 0, "goal"], KeyError, "studySpec.metrics[0].goal"),
    (["metrics", 0, "metricId"], "my acc", "studySpec.metrics[0].metricId"),
    (["metrics", 1], {"metricId": "acc", "goal": "MINIMIZE"}, "studySpec.metrics[1].metricId"),
    (["parameters"], [], "studySpec.parameters"),
    (["parameters", 1, "doubleValueSpec", "minValue"], 1.0,
     "studySpec.parameters[1].doubleValueSpec.minValue"),
    (["parameters", 1, "doubleValueSpec", "minValue"], -1.0,
     "studySpec.parameters[1].doubleValueSpec.minValue"),  # log scale needs > 0
    (["parameters", 1, "doubleValueSpec", "maxValue"], KeyError,
     "studySpec.parameters[1].doubleValueSpec.maxValue"),
    (["parameters", 1, "doubleValueSpec", "defaultValue"], 5.0,
     "studySpec.parameters[1].doubleValueSpec.defaultValue"),
    (["parameters", 1, "integerValueSpec"], {"minValue": "1", "maxValue": "2"},
     "studySpec.parameters[1]"),
    (["parameters", 1, "scaleType"], "CUBIC", "studySpec.parameters[1].scaleType"),
    (["parameters", 1, "parameterId"], "model", "studySpec.parameters[1].parameterId"),
    (["parameters", 1, "parameterId"], "units", "studySpec.parameters[1].parameterId"),
    (["parameters", 1, "bounds"], 1, "studySpec.parameters[1].bounds"),
    (["parameters", 0, "scaleType"], "UNIT_LOG_SCALE", "studySpec.parameters[0].scaleType"),
    (["parameters", 0, "categoricalValueSpec", "values"], ["a", "a"],
     "studySpec.parameters[0].categoricalValueSpec.values[1]"),
    (["parameters", 0, "categoricalValueSpec", "defaultValue"], "rnn",
     "studySpec.parameters[0].categoricalValueSpec.defaultValue"),
    (["parameters", 0, "conditionalParameterSpecs", 0, "parentCategoricalValues", "values"],
     ["rnn"], "studySpec.parameters[0].conditionalParameterSpecs[0].parentCategoricalValues"),
    (["parameters", 0, "conditionalParameterSpecs", 1, "parentCategoricalValues", "values"],
     ["mlp"], "parameterId"),  # same id under the same parent needs disjoint conditions
    ([*LAYERS, "conditionalParameterSpecs", 0, "parentIntValues", "values"], ["9"],
     "parentIntValues.values[0]"),
    ([*LAYERS, "conditionalParameterSpecs", 0, "parentDiscreteValues"], {"values": [2.0]},
     "conditionalParameterSpecs[0]"),
    ([*LAYERS, "conditionalParameterSpecs", 0, "parameterSpec", "discreteValueSpec", "values"],
     [64, 32], "discreteValueSpec.values[1]"),
    ([*LAYERS, "conditionalParameterSpecs", 0, "parameterSpec", "discreteValueSpec", "values"],
     list(range(1001)), "discreteValueSpec.values"),
    ([*LAYERS, "integerValueSpec", "minValue"], "1.5", "integerValueSpec.minValue"),
    (["algorithm"], "SIMULATED_ANNEALING", "studySpec.algorithm"),
    (["measurementSelectionType"], "LAST", "studySpec.measurementSelectionType"),
    (["medianAutomatedStoppingSpec"], {}, "AutomatedStoppingSpec"),  # two stopping specs
    (["convexAutomatedStoppingSpec", "minStepCount"], "20",
     "studySpec.convexAutomatedStoppingSpec.minStepCount"),
    (["convexAutomatedStoppingSpec", "minMeasurementCount"], "-1",
     "studySpec.convexAutomatedStoppingSpec.minMeasurementCount"),
    (["studyStoppingConfig", "maxNumTrials"], -3, "studySpec.studyStoppingConfig.maxNumTrials"),
    (["studyStoppingConfig", "maxDurationNoProgress"], "10 minutes",
     "studySpec.studyStoppingConfig.maxDurationNoProgress"),
    (["metric"], [], "studySpec.metric"),
])
def test_bad_specs_are_refused_naming_the_field(path, value, field):
    with pytest.raises(ValidationError) as info:
        studyspec.validate_study_spec(mutate(path, value))
    assert field in info.value.field, (info.value.field, str(info.value))


def test_a_spec_must_be_an_object():
    with pytest.raises(ValidationError, match="studySpec"):
        studyspec.validate_study_spec([1, 2])
    with pytest.raises(ValidationError, match="displayName"):
        studyspec.validate_study({"displayName": " ", "studySpec": GOOD})
    with pytest.raises(ValidationError, match="studySpec"):
        studyspec.validate_study({"displayName": "s"})


def test_parameter_nodes_walk_parents_first_with_typed_conditions():
    nodes = studyspec.parameter_nodes(GOOD)
    assert [n.id for n in nodes] == ["model", "layers", "units", "layers", "lr"]
    units = nodes[2]
    assert units.parent is nodes[1] and units.parent_values == (2, 3)
    assert nodes[1].parent_values == ("mlp",) and nodes[1].parent is nodes[0]
    assert units.type == studyspec.DISCRETE and nodes[4].scale == "UNIT_LOG_SCALE"
    assert units.path.endswith("conditionalParameterSpecs[0].parameterSpec")


def test_active_parameters_follow_the_parent_values():
    def active(values):
        return [(n.id, n.parent.id if n.parent else None)
                for n in studyspec.active_parameters(GOOD, values)]

    assert active({"model": "mlp", "layers": 2}) == [
        ("model", None), ("layers", "model"), ("units", "layers"), ("lr", None)]
    assert active({"model": "mlp", "layers": 1}) == [
        ("model", None), ("layers", "model"), ("lr", None)]
    assert active({"model": "cnn", "layers": 2}) == [
        ("model", None), ("layers", "model"), ("lr", None)]


def test_values_are_typed_by_the_spec_and_checked_against_the_domain():
    nodes = {n.path: n for n in studyspec.parameter_nodes(GOOD)}
    layers = next(n for n in nodes.values() if n.id == "layers")
    assert studyspec.decode_value(layers.spec, 2.0) == 2
    assert type(studyspec.decode_value(layers.spec, 2.0)) is int
    assert layers.feasible(3) and not layers.feasible(4) and not layers.feasible(2.5)
    units = next(n for n in nodes.values() if n.id == "units")
    assert units.feasible(64.0) and not units.feasible(48.0)
    model = next(n for n in nodes.values() if n.id == "model")
    assert studyspec.decode_value(model.spec, "mlp") == "mlp" and model.feasible("cnn")
    for spec, raw in [(layers.spec, 2.5), (layers.spec, "2"), (model.spec, 1.0),
                      (units.spec, True), (units.spec, float("nan"))]:
        with pytest.raises(ValidationError):
            studyspec.decode_value(spec, raw)
    assert studyspec.encode_value(layers.spec, 3) == 3
    assert studyspec.encode_value(units.spec, 64) == 64.0
    with pytest.raises(ValidationError):
        studyspec.encode_value(model.spec, 1)
