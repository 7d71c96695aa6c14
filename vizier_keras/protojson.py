"""proto3 JSON as Google writes and reads it, for the Vertex AI Vizier v1 messages.

Vertex AI writes its answers with protobuf's JSON encoder and Google's generated clients write
their requests the same way. That encoder leaves out every field at its default value (0, 0.0,
``""``, false, the ``*_UNSPECIFIED`` enum, empty lists), so ``"minValue": 0.0`` never travels;
enums may travel as names or as numbers (the generated REST clients send numbers); int64 values
are strings but numbers are read too; a double may be ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``. Fields that have presence (messages, ``optional`` scalars, wrapper types such as
``maxNumTrials``) are kept even at their default.

:func:`canonical` turns any JSON a proto3 parser would accept into one form: the encoder's, with
enum names. Two messages mean the same exactly when their canonical forms are equal, so every
comparison in this package is by meaning; readers take an absent field as its default
(:func:`get`). The client reads answers with ``unknown="ignore"`` (a field Vertex adds tomorrow
must not break a user); the server reads requests with ``unknown="reject"`` (a 400 naming the
field, as Google's front end answers).

The table of messages below is this package's copy of the v1 protos' JSON names and types;
``tests/test_protojson.py`` checks it against the messages of google-cloud-aiplatform.
Extensions of the embedded service beyond v1 (algorithm names v1 does not have) travel as names;
the fields it adds to answers are in :data:`EXTENSIONS`, read from answers only.

Example::

    canonical("StudySpec.ParameterSpec", {"parameterId": "dropout", "scaleType": 1,
              "doubleValueSpec": {"minValue": 0, "maxValue": 0.5}})
    # {'parameterId': 'dropout', 'scaleType': 'UNIT_LINEAR_SCALE',
    #  'doubleValueSpec': {'maxValue': 0.5}}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from vizier_keras.errors import ValidationError

__all__ = ["ENUMS", "EXTENSIONS", "MESSAGES", "TYPE_URL_PREFIX", "canonical", "default", "get"]

TYPE_URL_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."

# Field types: a message name; an enum name (in ENUMS); a scalar ("double", "int32", "int64",
# "bool", "string"); a well-known type ("Duration", "Timestamp", "Value", "Any", "Status").
# "?" marks a scalar with presence (proto3 optional, a oneof member, a wrapper type); "[]" a
# repeated field; "map" a map<string, string>.
MESSAGES: dict[str, dict[str, str]] = {
    "Study": {"name": "string", "displayName": "string", "studySpec": "StudySpec",
              "state": "Study.State", "createTime": "Timestamp", "inactiveReason": "string"},
    "StudySpec": {
        "decayCurveStoppingSpec": "StudySpec.DecayCurveAutomatedStoppingSpec",
        "medianAutomatedStoppingSpec": "StudySpec.MedianAutomatedStoppingSpec",
        "convexAutomatedStoppingSpec": "StudySpec.ConvexAutomatedStoppingSpec",
        "metrics": "[]StudySpec.MetricSpec", "parameters": "[]StudySpec.ParameterSpec",
        "algorithm": "StudySpec.Algorithm", "observationNoise": "StudySpec.ObservationNoise",
        "measurementSelectionType": "StudySpec.MeasurementSelectionType",
        "studyStoppingConfig": "StudySpec.StudyStoppingConfig"},
    "StudySpec.DecayCurveAutomatedStoppingSpec": {"useElapsedDuration": "bool"},
    "StudySpec.MedianAutomatedStoppingSpec": {"useElapsedDuration": "bool"},
    "StudySpec.ConvexAutomatedStoppingSpec": {
        "maxStepCount": "int64", "minStepCount": "int64", "minMeasurementCount": "int64",
        "learningRateParameterName": "string", "useElapsedDuration": "bool",
        "updateAllStoppedTrials": "bool?"},
    "StudySpec.MetricSpec": {"metricId": "string", "goal": "StudySpec.MetricSpec.GoalType",
                             "safetyConfig": "StudySpec.MetricSpec.SafetyMetricConfig"},
    "StudySpec.MetricSpec.SafetyMetricConfig": {"safetyThreshold": "double",
                                                "desiredMinSafeTrialsFraction": "double?"},
    "StudySpec.ParameterSpec": {
        "doubleValueSpec": "StudySpec.ParameterSpec.DoubleValueSpec",
        "integerValueSpec": "StudySpec.ParameterSpec.IntegerValueSpec",
        "categoricalValueSpec": "StudySpec.ParameterSpec.CategoricalValueSpec",
        "discreteValueSpec": "StudySpec.ParameterSpec.DiscreteValueSpec",
        "parameterId": "string", "scaleType": "StudySpec.ParameterSpec.ScaleType",
        "conditionalParameterSpecs": "[]StudySpec.ParameterSpec.ConditionalParameterSpec"},
    "StudySpec.ParameterSpec.DoubleValueSpec": {"minValue": "double", "maxValue": "double",
                                                "defaultValue": "double?"},
    "StudySpec.ParameterSpec.IntegerValueSpec": {"minValue": "int64", "maxValue": "int64",
                                                 "defaultValue": "int64?"},
    "StudySpec.ParameterSpec.CategoricalValueSpec": {"values": "[]string",
                                                     "defaultValue": "string?"},
    "StudySpec.ParameterSpec.DiscreteValueSpec": {"values": "[]double",
                                                  "defaultValue": "double?"},
    "StudySpec.ParameterSpec.ConditionalParameterSpec": {
        "parentDiscreteValues": "StudySpec.ParameterSpec.ConditionalParameterSpec."
                                "DiscreteValueCondition",
        "parentIntValues": "StudySpec.ParameterSpec.ConditionalParameterSpec.IntValueCondition",
        "parentCategoricalValues": "StudySpec.ParameterSpec.ConditionalParameterSpec."
                                   "CategoricalValueCondition",
        "parameterSpec": "StudySpec.ParameterSpec"},
    "StudySpec.ParameterSpec.ConditionalParameterSpec.DiscreteValueCondition": {
        "values": "[]double"},
    "StudySpec.ParameterSpec.ConditionalParameterSpec.IntValueCondition": {"values": "[]int64"},
    "StudySpec.ParameterSpec.ConditionalParameterSpec.CategoricalValueCondition": {
        "values": "[]string"},
    "StudySpec.StudyStoppingConfig": {
        "shouldStopAsap": "bool?", "minimumRuntimeConstraint": "StudyTimeConstraint",
        "maximumRuntimeConstraint": "StudyTimeConstraint", "minNumTrials": "int32?",
        "maxNumTrials": "int32?", "maxNumTrialsNoProgress": "int32?",
        "maxDurationNoProgress": "Duration"},
    "StudyTimeConstraint": {"maxDuration": "Duration", "endTime": "Timestamp"},
    "Trial": {"name": "string", "id": "string", "state": "Trial.State",
              "parameters": "[]Trial.Parameter", "finalMeasurement": "Measurement",
              "measurements": "[]Measurement", "startTime": "Timestamp",
              "endTime": "Timestamp", "clientId": "string", "infeasibleReason": "string",
              "customJob": "string", "webAccessUris": "map"},
    "Trial.Parameter": {"parameterId": "string", "value": "Value"},
    "Measurement": {"elapsedDuration": "Duration", "stepCount": "int64",
                    "metrics": "[]Measurement.Metric"},
    "Measurement.Metric": {"metricId": "string", "value": "double"},
    "TrialContext": {"description": "string", "parameters": "[]Trial.Parameter"},
    "GenericOperationMetadata": {"partialFailures": "[]Status", "createTime": "Timestamp",
                                 "updateTime": "Timestamp"},
    # Requests, and the answers that are not resources.
    "LookupStudyRequest": {"parent": "string", "displayName": "string"},
    "ListStudiesResponse": {"studies": "[]Study", "nextPageToken": "string"},
    "ListTrialsResponse": {"trials": "[]Trial", "nextPageToken": "string"},
    "SuggestTrialsRequest": {"parent": "string", "suggestionCount": "int32",
                             "clientId": "string", "contexts": "[]TrialContext"},
    "SuggestTrialsResponse": {"trials": "[]Trial", "studyState": "Study.State",
                              "startTime": "Timestamp", "endTime": "Timestamp"},
    "SuggestTrialsMetadata": {"genericMetadata": "GenericOperationMetadata",
                              "clientId": "string"},
    "AddTrialMeasurementRequest": {"trialName": "string", "measurement": "Measurement"},
    "CompleteTrialRequest": {"name": "string", "finalMeasurement": "Measurement",
                             "trialInfeasible": "bool", "infeasibleReason": "string"},
    "CheckTrialEarlyStoppingStateRequest": {"trialName": "string"},
    "CheckTrialEarlyStoppingStateResponse": {"shouldStop": "bool"},
    "CheckTrialEarlyStoppingStateMetatdata": {"genericMetadata": "GenericOperationMetadata",
                                              "study": "string", "trial": "string"},
    "StopTrialRequest": {"name": "string"},
    "ListOptimalTrialsRequest": {"parent": "string"},
    "ListOptimalTrialsResponse": {"optimalTrials": "[]Trial"},
    "Empty": {},
    "google.longrunning.Operation": {"name": "string", "metadata": "Any", "done": "bool",
                                     "error": "Status", "response": "Any"},
}

# Enum numbers as the protos define them (not list positions: GRID_SEARCH is 2).
ENUMS: dict[str, dict[str, int]] = {
    "Study.State": {"STATE_UNSPECIFIED": 0, "ACTIVE": 1, "INACTIVE": 2, "COMPLETED": 3},
    "Trial.State": {"STATE_UNSPECIFIED": 0, "REQUESTED": 1, "ACTIVE": 2, "STOPPING": 3,
                    "SUCCEEDED": 4, "INFEASIBLE": 5},
    "StudySpec.MetricSpec.GoalType": {"GOAL_TYPE_UNSPECIFIED": 0, "MAXIMIZE": 1, "MINIMIZE": 2},
    "StudySpec.ParameterSpec.ScaleType": {"SCALE_TYPE_UNSPECIFIED": 0, "UNIT_LINEAR_SCALE": 1,
                                          "UNIT_LOG_SCALE": 2, "UNIT_REVERSE_LOG_SCALE": 3},
    "StudySpec.Algorithm": {"ALGORITHM_UNSPECIFIED": 0, "GRID_SEARCH": 2, "RANDOM_SEARCH": 3},
    "StudySpec.ObservationNoise": {"OBSERVATION_NOISE_UNSPECIFIED": 0, "LOW": 1, "HIGH": 2},
    "StudySpec.MeasurementSelectionType": {"MEASUREMENT_SELECTION_TYPE_UNSPECIFIED": 0,
                                           "LAST_MEASUREMENT": 1, "BEST_MEASUREMENT": 2},
}
# Fields the embedded service adds to v1 messages in its answers: message -> field -> type, and
# the extension messages. Vertex never sends them and Google's parsers skip them; this package
# reads them from answers (unknown="ignore") and refuses them in requests like any unknown field.
EXTENSIONS: dict[str, dict[str, str]] = {"Trial": {"vizierKeras": "vizierKeras.Trial"}}
_EXTENSION_MESSAGES: dict[str, dict[str, str]] = {
    # Vizier's early-stopping check told this trial to stop, and why.
    "vizierKeras.Trial": {"stoppedEarly": "bool", "stopReason": "string"},
}

# Enums whose names this package may extend (the embedded service runs more algorithms).
_EXTENSIBLE = {"StudySpec.Algorithm"}
_STATUS = {"code": "int32", "message": "string", "details": "[]Any"}
_SCALAR_DEFAULTS: dict[str, Any] = {"double": 0.0, "int32": 0, "int64": "0", "bool": False,
                                    "string": ""}
_INT_RE = re.compile(r"^-?\d+$")
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_MAX_DEPTH = 64

Unknown = Literal["ignore", "reject"]
Enums = Literal["names", "numbers"]


def _fields(message: str) -> dict[str, str]:
    if message == "Status":
        return _STATUS
    return MESSAGES[message] if message in MESSAGES else _EXTENSION_MESSAGES[message]


def _field_type(message: str, field: str) -> str:
    return _fields(message)[field]


def default(message: str, field: str) -> Any:
    """The value an absent field of ``message`` means (None for a field with presence)."""
    kind = _field_type(message, field)
    if kind.startswith("[]"):
        return []
    if kind == "map":
        return {}
    if kind in ENUMS:
        return next(iter(ENUMS[kind]))
    return _SCALAR_DEFAULTS.get(kind)


def get(obj: Mapping[str, Any], message: str, field: str) -> Any:
    """``obj[field]``, or the field's default when it is absent (proto3: absent = default)."""
    value = obj.get(field)
    return default(message, field) if value is None else value


def canonical(message: str, obj: Any, *, path: str | None = None, unknown: Unknown = "reject",
              enums: Enums = "names") -> dict[str, Any]:
    """``obj`` as protobuf's JSON encoder writes the message: defaults left out, int64 as
    strings, non-finite doubles as "NaN"/"Infinity", enums as names (or numbers).

    Args:
        message: A name in :data:`MESSAGES`.
        obj: The message as parsed JSON, in any form a proto3 JSON parser accepts.
        path: The field path to name in errors (default: the message name).
        unknown: ``"reject"`` raises on a field the message does not have; ``"ignore"`` drops
            it (as a client must, since the service may add fields).
        enums: Write enums as ``"names"`` or as ``"numbers"`` (what ``enum-encoding=int``
            asks for). Extension names beyond v1 stay names either way.

    Raises:
        ValidationError: naming the first field whose value the message cannot hold.
    """
    return _message(message, obj, message if path is None else path, unknown, enums, 0)


def _message(message: str, obj: Any, path: str, unknown: Unknown, enums: Enums,
             depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise ValidationError(path, "<...>", f"nests deeper than {_MAX_DEPTH} messages")
    if not isinstance(obj, Mapping):
        raise ValidationError(path, obj, "must be a JSON object")
    fields = _fields(message)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        kind = fields.get(key)
        if kind is None and unknown == "ignore":
            kind = EXTENSIONS.get(message, {}).get(key)
        if kind is None:
            if unknown == "reject":
                raise ValidationError(_join(path, key), value, "is not a field of this message "
                                      f"(known: {', '.join(sorted(fields))})")
            continue
        if value is None:  # JSON null: the field's default
            continue
        where = _join(path, key)
        if kind.startswith("[]"):
            if not isinstance(value, list):
                raise ValidationError(where, value, "must be a list")
            items = [_value(kind[2:], v, f"{where}[{i}]", unknown, enums, depth)
                     for i, v in enumerate(value)]
            if items:
                out[key] = items
            continue
        if kind == "map":
            if not isinstance(value, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise ValidationError(where, value, "must be a map of strings to strings")
            if value:
                out[key] = dict(value)
            continue
        presence = kind.endswith("?")
        converted = _value(kind.rstrip("?"), value, where, unknown, enums, depth)
        if presence or not _is_default(kind, converted):
            out[key] = converted
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_default(kind: str, value: Any) -> bool:
    if kind in ENUMS:
        return value in (0, next(iter(ENUMS[kind])))
    if kind in _SCALAR_DEFAULTS:
        if kind == "double":
            return isinstance(value, float) and value == 0.0 and math.copysign(1, value) > 0
        return bool(value == _SCALAR_DEFAULTS[kind])
    return False  # messages and well-known types have presence


def _value(kind: str, value: Any, path: str, unknown: Unknown, enums: Enums,
           depth: int) -> Any:
    if kind in ENUMS:
        return _enum(kind, value, path, unknown, enums)
    if kind == "double":
        if isinstance(value, str) and value in _FLOAT_WORDS:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError(path, value, "must be a number")
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise ValidationError(path, str(value)[:40], "must be a number") from None
        if not math.isfinite(number):
            raise ValidationError(path, str(value)[:40], "is out of the range of a double")
        return number
    if kind in ("int32", "int64"):
        return _integer(kind, value, path)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError(path, value, "must be true or false")
        return value
    if kind in ("string", "Duration", "Timestamp"):
        if not isinstance(value, str):
            raise ValidationError(path, value, "must be a string")
        return value
    if kind == "Value":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:  # a Value's number is a double
                if math.isfinite(float(value)):
                    return value
            except OverflowError:
                pass
            raise ValidationError(path, str(value)[:40], "is out of the range of a double")
        return value
    if kind == "Any":
        return _any(value, path, unknown, enums, depth)
    return _message(kind, value, path, unknown, enums, depth + 1)


def _integer(kind: str, value: Any, path: str) -> int | str:
    if isinstance(value, bool):
        raise ValidationError(path, value, "must be an integer, not a boolean")
    if isinstance(value, str):
        if len(value) > 24 or not _INT_RE.match(value.strip()):
            raise ValidationError(path, value[:40], "must be an integer")
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        raise ValidationError(path, value, "must be an integer")
    low, high = _INT_BOUNDS[kind]
    if not low <= number <= high:
        raise ValidationError(path, value, f"is outside the {kind} range")
    return str(number) if kind == "int64" else number


def _enum(kind: str, value: Any, path: str, unknown: Unknown, enums: Enums) -> Any:
    members = ENUMS[kind]
    if isinstance(value, bool):
        raise ValidationError(path, value, "must be an enum name or number")
    if isinstance(value, int):
        names = [name for name, number in members.items() if number == value]
        if not names:
            if unknown == "ignore":
                return value  # a value this copy of the protos does not know yet
            raise ValidationError(path, value, f"must be one of {_choices(members)}")
        return value if enums == "numbers" else names[0]
    if not isinstance(value, str):
        raise ValidationError(path, value, "must be an enum name or number")
    if value in members:
        return members[value] if enums == "numbers" else value
    if unknown == "ignore" or kind in _EXTENSIBLE:
        return value  # an extension name, or a value newer than this table: kept as sent
    raise ValidationError(path, value, f"must be one of {_choices(members)}")


def _choices(members: Mapping[str, int]) -> str:
    return ", ".join(f"{name} ({number})" for name, number in members.items())


def _any(value: Any, path: str, unknown: Unknown, enums: Enums, depth: int) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(path, value, "must be a JSON object")
    type_url = value.get("@type")
    if not isinstance(type_url, str):
        if unknown == "ignore":
            return dict(value)  # untyped: kept as it came, for the reader to make sense of
        raise ValidationError(_join(path, "@type"), type_url, "is required in an Any")
    message = type_url[len(TYPE_URL_PREFIX):] if type_url.startswith(TYPE_URL_PREFIX) else None
    if message not in MESSAGES:
        return dict(value)  # a type this package does not read: kept as it came
    body = {k: v for k, v in value.items() if k != "@type"}
    return {"@type": type_url, **_message(message, body, path, unknown, enums, depth + 1)}
