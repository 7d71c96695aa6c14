"""Vertex v1 JSON messages <-> Open Source Vizier's protos, for the service's verbs.

Requests are checked here (an unknown field, a wrong type or value is a ValidationError naming
the field); answers are built here from OSS's stored protos. This service's own records (the
Vertex StudySpec, the study state, early-stopping results) travel in OSS metadata under the
namespace :data:`METADATA_NS`. Light on purpose (protobuf and OSS's generated protos, no JAX):
reading a database file without a server (:mod:`vizier_keras.server.sqlfile`) uses it too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import json_format
from vizier._src.service import key_value_pb2, study_pb2, vizier_service_pb2

from vizier_keras import studyspec, wire
from vizier_keras.errors import ValidationError
from vizier_keras.resources import StudyName, TrialName
from vizier_keras.server import names
from vizier_keras.server.conditional import FlatSpace
from vizier_keras.wire import Json

__all__ = [
    "METADATA_NS",
    "REASON_KEY",
    "SPEC_KEY",
    "STATE_KEY",
    "STOPPED_KEY",
    "TYPE_PREFIX",
    "fields",
    "flat_oss_spec",
    "measurement",
    "meta",
    "select_measurement",
    "set_meta",
    "stop_operation_json",
    "study_json",
    "study_state",
    "suggest_operation_json",
    "trial_json",
]


MAX_METRICS = 1000  # in one measurement

TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."
# This service's records in OSS metadata: the namespace, the Vertex StudySpec, the study state
# and why it is inactive, and why Vizier stopped a trial early.
METADATA_NS = "vizier_keras"
SPEC_KEY = "study_spec"
STATE_KEY = "state"
REASON_KEY = "inactive_reason"
STOPPED_KEY = "stopped_early"


def fields(path: str, body: Any, allowed: set[str]) -> Mapping[str, Any]:
    """``body`` as a JSON object whose fields are all in ``allowed`` (None is ``{}``)."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ValidationError(path, body, "must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"{path}.{unknown[0]}", body[unknown[0]],
                              "is not a field of this message")
    return body


def meta(messages: Any) -> dict[str, str]:
    """This service's metadata entries (key -> value) among OSS KeyValue messages."""
    return {kv.key: kv.value for kv in messages if kv.ns == METADATA_NS}


def set_meta(messages: Any, key: str, value: str) -> None:
    for kv in messages:
        if kv.ns == METADATA_NS and kv.key == key:
            kv.value = value
            return
    messages.append(key_value_pb2.KeyValue(ns=METADATA_NS, key=key, value=value))


def flat_oss_spec(spec: Mapping[str, Any]) -> study_pb2.StudySpec:
    """The OSS StudySpec the designers see for a Vertex ``spec``: flat parameters, the metrics,
    the algorithm and the Vertex spec as metadata."""
    space = FlatSpace(spec)
    flat: Json = {"metrics": [dict(m) for m in spec["metrics"]],
                  "parameters": space.parameter_specs(),
                  "algorithm": spec.get("algorithm", "ALGORITHM_UNSPECIFIED")}
    if "observationNoise" in spec:
        flat["observationNoise"] = spec["observationNoise"]
    proto = json_format.ParseDict(flat, study_pb2.StudySpec())
    proto.metadata.append(key_value_pb2.KeyValue(
        ns=METADATA_NS, key=SPEC_KEY, value=json.dumps(spec, sort_keys=True)))
    return proto


def measurement(path: str, body: Any) -> study_pb2.Measurement:
    """A checked Measurement message as OSS's proto."""
    body = fields(path, body, {"stepCount", "elapsedDuration", "metrics"})
    m = study_pb2.Measurement()
    if "stepCount" in body:
        step = wire.parse_int64(body["stepCount"], f"{path}.stepCount")
        if step < 0:
            raise ValidationError(f"{path}.stepCount", body["stepCount"],
                                  "must be non-negative")
        m.step_count = step
    if "elapsedDuration" in body:
        seconds = wire.parse_duration(body["elapsedDuration"], f"{path}.elapsedDuration")
        if seconds < 0:
            raise ValidationError(f"{path}.elapsedDuration", body["elapsedDuration"],
                                  "must be non-negative")
        m.elapsed_duration.FromTimedelta(dt.timedelta(seconds=seconds))
    metrics = body.get("metrics", [])
    if not isinstance(metrics, list):
        raise ValidationError(f"{path}.metrics", metrics, "must be a list")
    if len(metrics) > MAX_METRICS:
        raise ValidationError(f"{path}.metrics", f"<{len(metrics)} metrics>",
                              f"must hold at most {MAX_METRICS} metrics")
    seen: set[str] = set()
    for i, metric in enumerate(metrics):
        metric = fields(f"{path}.metrics[{i}]", metric, {"metricId", "value"})
        mid = wire.check_id(f"{path}.metrics[{i}].metricId", metric.get("metricId"))
        if mid in seen:
            raise ValidationError(f"{path}.metrics[{i}].metricId", mid, "appears twice")
        seen.add(mid)
        value = metric.get("value", 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value)):
            raise ValidationError(f"{path}.metrics[{i}].value", value,
                                  "must be a finite number")
        m.metrics.add(metric_id=mid, value=float(value))
    return m


def select_measurement(spec: Mapping[str, Any], trial: study_pb2.Trial
                       ) -> study_pb2.Measurement | None:
    """The measurement that completes ``trial`` when none is sent: the LAST, or the BEST by
    the first metric, as the spec's measurementSelectionType says."""
    candidates = [m for m in trial.measurements if m.metrics]
    if not candidates:
        return None
    if spec.get("measurementSelectionType") != "BEST_MEASUREMENT":
        return candidates[-1]
    metric = studyspec.first_objective(spec)
    sign = 1.0 if metric["goal"] == "MAXIMIZE" else -1.0

    def score(m: study_pb2.Measurement) -> float:
        values = {x.metric_id: x.value for x in m.metrics}
        value = values.get(metric["metricId"])
        return -math.inf if value is None else sign * value

    return max(reversed(candidates), key=score)


def study_json(study: study_pb2.Study, spec: Mapping[str, Any]) -> Json:
    """The Vertex Study message of an OSS study whose Vertex spec is ``spec``."""
    records = meta(study.study_spec.metadata)
    out: Json = {
        "name": names.vertex_study(study.name).name,
        "displayName": study.display_name,
        "studySpec": spec,
        "state": records.get(STATE_KEY, wire.StudyState.ACTIVE.value),
    }
    if study.HasField("create_time"):
        out["createTime"] = json_format.MessageToDict(study)["createTime"]
    if records.get(REASON_KEY):
        out["inactiveReason"] = records[REASON_KEY]
    return out


def study_state(study: study_pb2.Study) -> str:
    """The Vertex state this service recorded for ``study``."""
    return meta(study.study_spec.metadata).get(STATE_KEY, wire.StudyState.ACTIVE.value)


def trial_json(trial: study_pb2.Trial) -> Json:
    """The Vertex Trial message of an OSS trial.

    A trial that an early-stopping check told to stop carries this service's extension
    ``"vizierKeras": {"stoppedEarly": true, "stopReason": ...}`` (v1 has no such field; Google's
    parsers skip it as an unknown field, :data:`vizier_keras.protojson.EXTENSIONS` reads it).
    """
    out = json_format.MessageToDict(trial)
    out.pop("metadata", None)
    stopped = meta(trial.metadata).get(STOPPED_KEY)
    if stopped is not None:
        out["vizierKeras"] = {"stoppedEarly": True, "stopReason": stopped}
    name = names.vertex_trial(trial.name)
    out["name"] = name.name
    out["id"] = name.trial_id
    for m in [out.get("finalMeasurement"), *out.get("measurements", [])]:
        if m is not None and m.get("stepCount") in (None, "0"):
            m.pop("stepCount", None)
    return out


def stop_operation_json(trial_name: TrialName, op_id: str, record: Mapping[str, Any]) -> Json:
    """The done operation of an early-stopping check."""
    response: Json = {"@type": TYPE_PREFIX + "CheckTrialEarlyStoppingStateResponse"}
    if record["shouldStop"]:
        response["shouldStop"] = True
    return {
        "name": trial_name.operation(op_id).name,
        "done": True,
        "metadata": {"@type": TYPE_PREFIX + "CheckTrialEarlyStoppingStateMetatdata",
                     "study": trial_name.study.name, "trial": trial_name.name},
        "response": response,
    }


def suggest_operation_json(study_name: StudyName, op: operations_pb2.Operation,
                           study_state: str) -> Json:
    """The Vertex operation of an OSS suggestion operation."""
    op_id, client_id = names.suggest_operation_id(op.name)
    out: Json = {
        "name": study_name.operation(op_id).name,
        "metadata": {"@type": TYPE_PREFIX + "SuggestTrialsMetadata", "clientId": client_id},
    }
    if not op.done:
        return out
    out["done"] = True
    if op.HasField("error"):
        out["error"] = {"code": op.error.code, "message": op.error.message}
        return out
    response = vizier_service_pb2.SuggestTrialsResponse.FromString(op.response.value)
    body: Json = {"@type": TYPE_PREFIX + "SuggestTrialsResponse", "studyState": study_state}
    if response.trials:
        body["trials"] = [trial_json(t) for t in response.trials]
    if response.HasField("start_time"):
        body["startTime"] = json_format.MessageToDict(response)["startTime"]
    out["response"] = body
    return out
