"""proto3 JSON against Google's own code: our table of the v1 messages against the messages of
google-cloud-aiplatform, and :func:`protojson.canonical` against protobuf's JSON parser and
encoder on random StudySpecs and Trials."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.cloud.aiplatform_v1 import types as v1
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given
from hypothesis import strategies as st

from vizier_keras import protojson
from vizier_keras.errors import ValidationError

_PKG = "google.cloud.aiplatform.v1."
_WELL_KNOWN = {
    "google.protobuf.Duration": "Duration", "google.protobuf.Timestamp": "Timestamp",
    "google.protobuf.Value": "Value", "google.protobuf.Any": "Any", "google.rpc.Status": "Status",
    "google.protobuf.BoolValue": "bool?", "google.protobuf.Int32Value": "int32?",
}
_SCALARS = {FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_INT64: "int64",
            FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_BOOL: "bool",
            FieldDescriptor.TYPE_STRING: "string"}


def _proto(message: str) -> Any:
    """The protobuf message class of a name in protojson.MESSAGES."""
    if message == "google.longrunning.Operation":
        return operations_pb2.Operation
    if message == "Empty":
        from google.protobuf import empty_pb2
        return empty_pb2.Empty
    outer, *inner = message.split(".")
    cls = getattr(v1, outer)
    for part in inner:
        cls = getattr(cls, part)
    return cls.pb()


def _kind(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return "map"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        full = field.message_type.full_name
        kind = _WELL_KNOWN.get(full) or full.removeprefix(_PKG)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        kind = field.enum_type.full_name.removeprefix(_PKG)
    else:
        kind = _SCALARS[field.type] + ("?" if field.has_presence else "")
    return "[]" + kind if field.is_repeated else kind


@pytest.mark.parametrize("message", sorted(protojson.MESSAGES))
def test_the_table_matches_the_v1_protos(message):
    descriptor = _proto(message).DESCRIPTOR
    theirs = {f.json_name: _kind(f) for f in descriptor.fields}
    assert protojson.MESSAGES[message] == theirs
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_ENUM:
            name = field.enum_type.full_name.removeprefix(_PKG)
            assert protojson.ENUMS[name] == {v.name: v.number for v in field.enum_type.values}


def test_every_enum_and_message_the_table_names_is_in_it():
    for fields in protojson.MESSAGES.values():
        for kind in fields.values():
            kind = kind.removeprefix("[]").rstrip("?")
            assert (kind in protojson.MESSAGES or kind in protojson.ENUMS or kind in (
                "double", "int32", "int64", "bool", "string", "map", "Duration", "Timestamp",
                "Value", "Any", "Status")), kind


# ----------------------------------------------------------------------------- random messages
# Every form a proto3 JSON parser accepts: enums by name or number, int64 as strings or
# numbers, defaults written out or left out.

def _enum(name: str) -> st.SearchStrategy[Any]:
    members = protojson.ENUMS[name]
    return st.sampled_from(list(members)) | st.sampled_from(list(members.values()))


def _int64(low: int, high: int) -> st.SearchStrategy[Any]:
    return st.integers(low, high).flatmap(lambda v: st.sampled_from([v, str(v)]))


def _maybe(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


_doubles = st.sampled_from([0.0, 0, -0.5, 1e-4, 0.5, 3, 1e9, 2.5e-300])
_ids = st.text("abcxyz_0123", min_size=1, max_size=6)


def _parameter(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    value_spec = st.one_of(
        st.fixed_dictionaries({"doubleValueSpec": _maybe(
            {"minValue": _doubles, "maxValue": _doubles, "defaultValue": _doubles})}),
        st.fixed_dictionaries({"integerValueSpec": _maybe(
            {"minValue": _int64(-5, 5), "maxValue": _int64(0, 2**40),
             "defaultValue": _int64(0, 3)})}),
        st.fixed_dictionaries({"discreteValueSpec": _maybe(
            {"values": st.lists(_doubles, max_size=3), "defaultValue": _doubles})}),
        st.fixed_dictionaries({"categoricalValueSpec": _maybe(
            {"values": st.lists(_ids, max_size=3), "defaultValue": st.sampled_from(["", "a"])})}),
    )
    extra: dict[str, st.SearchStrategy[Any]] = {
        "parameterId": _ids | st.just(""), "scaleType": _enum("StudySpec.ParameterSpec.ScaleType")}
    if depth < 2:
        condition = st.one_of(
            st.fixed_dictionaries({"parentIntValues": _maybe({"values": st.lists(
                _int64(0, 4), max_size=2)})}),
            st.fixed_dictionaries({"parentDiscreteValues": _maybe({"values": st.lists(
                _doubles, max_size=2)})}),
            st.fixed_dictionaries({"parentCategoricalValues": _maybe({"values": st.lists(
                _ids, max_size=2)})}))
        child = st.tuples(condition, _maybe({"parameterSpec": _parameter(depth + 1)})).map(
            lambda pair: {**pair[0], **pair[1]})
        extra["conditionalParameterSpecs"] = st.lists(child, max_size=2)
    return st.tuples(value_spec, _maybe(extra)).map(lambda pair: {**pair[0], **pair[1]})


_study_specs = _maybe({
    "metrics": st.lists(_maybe({
        "metricId": _ids, "goal": _enum("StudySpec.MetricSpec.GoalType"),
        "safetyConfig": _maybe({"safetyThreshold": _doubles,
                                "desiredMinSafeTrialsFraction": _doubles})}), max_size=2),
    "parameters": st.lists(_parameter(0), max_size=3),
    "algorithm": _enum("StudySpec.Algorithm"),
    "observationNoise": _enum("StudySpec.ObservationNoise"),
    "measurementSelectionType": _enum("StudySpec.MeasurementSelectionType"),
    "convexAutomatedStoppingSpec": _maybe({
        "minStepCount": _int64(0, 9), "learningRateParameterName": st.sampled_from(["", "lr"]),
        "useElapsedDuration": st.booleans(), "updateAllStoppedTrials": st.booleans()}),
    "studyStoppingConfig": _maybe({
        "shouldStopAsap": st.booleans(), "maxNumTrials": st.integers(0, 50),
        "maxDurationNoProgress": st.sampled_from(["0s", "1.500s", "60s"]),
        "maximumRuntimeConstraint": _maybe({"maxDuration": st.just("3600s")})}),
})

_measurements = _maybe({
    "stepCount": _int64(0, 2**40),
    "elapsedDuration": st.sampled_from(["0s", "2.500s"]),
    "metrics": st.lists(_maybe({"metricId": _ids, "value": _doubles | st.sampled_from(
        ["NaN", "Infinity", "-Infinity"])}), max_size=3),
})
_trials = _maybe({
    "name": st.just("projects/p/locations/l/studies/1/trials/2"), "id": st.sampled_from(["", "2"]),
    "state": _enum("Trial.State"),
    "parameters": st.lists(_maybe({"parameterId": _ids, "value": st.one_of(
        st.floats(-10, 10), st.integers(-3, 3), _ids)}), max_size=3),
    "finalMeasurement": _measurements, "measurements": st.lists(_measurements, max_size=2),
    "clientId": st.sampled_from(["", "worker-1"]), "infeasibleReason": st.sampled_from(["", "x"]),
    "startTime": st.just("2026-12-02T10:00:00Z"),
    "webAccessUris": st.dictionaries(_ids, _ids, max_size=1),
})


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (proto3 JSON writes it "NaN")."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@pytest.mark.parametrize(("message", "strategy"), [
    ("StudySpec", _study_specs), ("Trial", _trials), ("Measurement", _measurements)])
@given(data=st.data())
def test_canonical_is_what_protobufs_encoder_writes(message, strategy, data):
    """Whatever form a message comes in, our canonical form is protobuf's own encoding of it
    (enum names, or numbers when asked), and protobuf reads our form back to the same message."""
    obj = data.draw(strategy)
    cls = _proto(message)
    parsed = json_format.ParseDict(obj, cls())
    assert _same(protojson.canonical(message, obj), json_format.MessageToDict(parsed))
    assert _same(protojson.canonical(message, obj, enums="numbers"),
                 json_format.MessageToDict(parsed, use_integers_for_enums=True))
    assert json_format.ParseDict(protojson.canonical(message, obj), cls()) == parsed


def test_absent_fields_read_as_their_defaults():
    spec = protojson.canonical("StudySpec.ParameterSpec.DoubleValueSpec",
                               {"minValue": 0.0, "maxValue": 0.5})
    assert spec == {"maxValue": 0.5}
    assert protojson.get(spec, "StudySpec.ParameterSpec.DoubleValueSpec", "minValue") == 0.0
    assert protojson.get({}, "Measurement", "stepCount") == "0"
    assert protojson.get({}, "Trial", "state") == "STATE_UNSPECIFIED"
    assert protojson.default("StudySpec.ParameterSpec.DoubleValueSpec", "defaultValue") is None


def test_unknown_fields_are_dropped_for_a_reader_and_refused_for_a_server():
    obj = {"metricId": "loss", "goal": 2, "fieldAddedNextYear": {"x": 1}}
    assert protojson.canonical("StudySpec.MetricSpec", obj, unknown="ignore") == {
        "metricId": "loss", "goal": "MINIMIZE"}
    with pytest.raises(ValidationError, match=r"studySpec\.metrics\[0\]\.fieldAddedNextYear"):
        protojson.canonical("StudySpec", {"metrics": [obj]}, path="studySpec")


@pytest.mark.parametrize(("message", "obj", "field", "protobuf_refuses"), [
    # proto3 enums are open, and protobuf's Python parser keeps an unknown number; a request
    # naming an algorithm v1 does not have is refused all the same.
    ("StudySpec", {"algorithm": 7}, "StudySpec.algorithm", False),
    ("StudySpec", {"metrics": [{"goal": "MAXIMISE"}]}, "StudySpec.metrics[0].goal", True),
    ("Measurement", {"stepCount": "1" * 400}, "Measurement.stepCount", True),
    ("Measurement", {"stepCount": 2**63}, "Measurement.stepCount", True),
    ("Measurement", {"stepCount": "1.5"}, "Measurement.stepCount", True),
    # protobuf's Python parser raises OverflowError here, reads "1e999" as infinity and true
    # as 1.0; a double out of range or a boolean is refused here.
    ("Measurement", {"metrics": [{"value": 10**400}]}, "Measurement.metrics[0].value", False),
    ("Measurement", {"metrics": [{"value": "1e999"}]}, "Measurement.metrics[0].value", False),
    ("Measurement", {"metrics": [{"value": True}]}, "Measurement.metrics[0].value", False),
    ("Measurement", {"metrics": {"value": 1}}, "Measurement.metrics", True),
    ("SuggestTrialsRequest", {"suggestionCount": 2**31}, "SuggestTrialsRequest.suggestionCount",
     True),
    ("CompleteTrialRequest", {"trialInfeasible": "yes"}, "CompleteTrialRequest.trialInfeasible",
     True),
    ("Trial", {"webAccessUris": {"a": 1}}, "Trial.webAccessUris", True),
])
def test_values_a_message_cannot_hold_are_refused_naming_the_field(message, obj, field,
                                                                   protobuf_refuses):
    with pytest.raises(ValidationError) as info:
        protojson.canonical(message, obj)
    assert info.value.field == field
    if protobuf_refuses:
        with pytest.raises(json_format.ParseError):
            json_format.ParseDict(obj, _proto(message)())


def test_extension_algorithm_names_travel_as_names():
    assert protojson.canonical("StudySpec", {"algorithm": "NSGA2"}, enums="numbers") == {
        "algorithm": "NSGA2"}
    assert protojson.canonical("StudySpec", {"algorithm": 3}) == {"algorithm": "RANDOM_SEARCH"}


def test_deep_nesting_is_refused_not_a_crash():
    spec: dict[str, Any] = {"parameterId": "p", "integerValueSpec": {"maxValue": "1"}}
    for _ in range(100):
        spec = {"parameterId": "p", "integerValueSpec": {"maxValue": "1"},
                "conditionalParameterSpecs": [{"parentIntValues": {"values": ["1"]},
                                               "parameterSpec": spec}]}
    with pytest.raises(ValidationError, match="deeper"):
        protojson.canonical("StudySpec.ParameterSpec", spec)
