"""The Vertex AI Vizier v1 wire format: enum names, proto3 JSON scalars, and the few readers and
builders of messages that the rest of the package needs.

Field names of the messages appear here and in :mod:`vizier_keras.studyspec` (the StudySpec)
only. proto3 JSON rules that matter: fields are lowerCamelCase; int64 values travel as strings
(``"stepCount": "3"``) but readers must also take numbers; a field at its default value may be
absent (``done``, ``shouldStop``, ``trials``, ``nextPageToken``); durations are strings such as
``"1.500s"``; timestamps are RFC 3339 in UTC. Whole messages are read by
:mod:`vizier_keras.protojson` (defaults, enum numbers, unknown fields); this module reads and
builds their parts.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

from vizier_keras.errors import ProtocolError, ValidationError

# A JSON object as this package reads and writes messages (proto3 JSON).
Json = dict[str, Any]

__all__ = [
    "Json",
    "Algorithm",
    "Goal",
    "MeasurementSelectionType",
    "ObservationNoise",
    "ScaleType",
    "StudyState",
    "TrialState",
    "format_duration",
    "format_int64",
    "format_timestamp",
    "measurement",
    "measurement_metrics",
    "parse_duration",
    "parse_int64",
    "parse_timestamp",
    "trial_final_metrics",
    "trial_id",
    "trial_parameters",
    "trial_state",
]


_E = TypeVar("_E", bound="_WireEnum")


class _WireEnum(str, Enum):
    """An enum whose values are the proto enum names that travel in JSON."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls: type[_E], value: Any, field: str) -> _E:
        """The member named ``value``; a missing value is the ``*_UNSPECIFIED`` member."""
        if value is None:
            return next(iter(cls))
        try:
            return cls(value)
        except ValueError:
            raise ValidationError(
                field, value, f"must be one of {', '.join(m.value for m in cls)}") from None


class StudyState(_WireEnum):
    STATE_UNSPECIFIED = "STATE_UNSPECIFIED"
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    COMPLETED = "COMPLETED"


class TrialState(_WireEnum):
    STATE_UNSPECIFIED = "STATE_UNSPECIFIED"
    REQUESTED = "REQUESTED"
    ACTIVE = "ACTIVE"
    STOPPING = "STOPPING"
    SUCCEEDED = "SUCCEEDED"
    INFEASIBLE = "INFEASIBLE"

    @property
    def is_done(self) -> bool:
        return self in (TrialState.SUCCEEDED, TrialState.INFEASIBLE)


class Goal(_WireEnum):
    GOAL_TYPE_UNSPECIFIED = "GOAL_TYPE_UNSPECIFIED"
    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"


class ScaleType(_WireEnum):
    SCALE_TYPE_UNSPECIFIED = "SCALE_TYPE_UNSPECIFIED"
    UNIT_LINEAR_SCALE = "UNIT_LINEAR_SCALE"
    UNIT_LOG_SCALE = "UNIT_LOG_SCALE"
    UNIT_REVERSE_LOG_SCALE = "UNIT_REVERSE_LOG_SCALE"


class Algorithm(_WireEnum):
    """The search algorithms that Vertex AI Vizier v1 names."""

    ALGORITHM_UNSPECIFIED = "ALGORITHM_UNSPECIFIED"
    GRID_SEARCH = "GRID_SEARCH"
    RANDOM_SEARCH = "RANDOM_SEARCH"


class MeasurementSelectionType(_WireEnum):
    MEASUREMENT_SELECTION_TYPE_UNSPECIFIED = "MEASUREMENT_SELECTION_TYPE_UNSPECIFIED"
    LAST_MEASUREMENT = "LAST_MEASUREMENT"
    BEST_MEASUREMENT = "BEST_MEASUREMENT"


class ObservationNoise(_WireEnum):
    OBSERVATION_NOISE_UNSPECIFIED = "OBSERVATION_NOISE_UNSPECIFIED"
    LOW = "LOW"
    HIGH = "HIGH"


# --------------------------------------------------------------------------- proto3 JSON scalars

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DURATION_RE = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")
_MAX_DURATION_SECONDS = 315_576_000_000  # proto's limit, ~10,000 years


def format_int64(value: float, field: str = "int64") -> str:
    """An int64 as proto3 JSON writes it: a decimal string."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "must be an integer")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValidationError(field, value, "is outside the int64 range")
    return str(value)


def parse_int64(value: Any, field: str = "int64") -> int:
    """An int64 read from proto3 JSON: a decimal string, or a number without a fraction."""
    if isinstance(value, bool):
        raise ValidationError(field, value, "must be an integer, not a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        result = int(value)
    else:
        raise ValidationError(field, value, "must be an integer (a decimal string in JSON)")
    if not _INT64_MIN <= result <= _INT64_MAX:
        raise ValidationError(field, value, "is outside the int64 range")
    return result


def format_duration(seconds: float, field: str = "duration") -> str:
    """A ``google.protobuf.Duration`` as proto3 JSON writes it, e.g. ``"1.500s"``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(
            seconds):
        raise ValidationError(field, seconds, "must be a finite number of seconds")
    if abs(seconds) > _MAX_DURATION_SECONDS:
        raise ValidationError(field, seconds, "is longer than a protobuf Duration can be")
    nanos = round(abs(seconds) * 1e9)
    whole, frac = divmod(nanos, 1_000_000_000)
    sign = "-" if seconds < 0 and nanos else ""
    if frac == 0:
        return f"{sign}{whole}s"
    digits = f"{frac:09d}"
    # proto3 JSON uses 0, 3, 6 or 9 fractional digits.
    for width in (3, 6, 9):
        if digits[width:].strip("0") == "":
            return f"{sign}{whole}.{digits[:width]}s"
    return f"{sign}{whole}.{digits}s"  # unreachable; keeps mypy happy


def parse_duration(value: Any, field: str = "duration") -> float:
    """Seconds from a proto3 JSON duration string (``"12.5s"``)."""
    m = _DURATION_RE.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValidationError(field, value, "must be a duration such as '1.5s'")
    seconds = int(m[2]) + int((m[3] or "0").ljust(9, "0")) / 1e9
    if seconds > _MAX_DURATION_SECONDS:
        raise ValidationError(field, value, "is longer than a protobuf Duration can be")
    return -seconds if m[1] else seconds


def format_timestamp(moment: _dt.datetime) -> str:
    """A ``google.protobuf.Timestamp`` in proto3 JSON: RFC 3339 in UTC with a ``Z``."""
    if moment.tzinfo is None:
        raise ValidationError("timestamp", moment, "must be timezone-aware")
    moment = moment.astimezone(_dt.timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_timestamp(value: Any, field: str = "timestamp") -> _dt.datetime:
    """A timezone-aware datetime from an RFC 3339 string (nanoseconds are cut to micro)."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be an RFC 3339 timestamp string")
    m = re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", value)
    if m is None:
        raise ValidationError(field, value, "must be an RFC 3339 timestamp string")
    micro = (m[2] or "").ljust(6, "0")[:6]
    zone = "+00:00" if m[3] == "Z" else m[3]
    try:
        return _dt.datetime.fromisoformat(f"{m[1]}.{micro}{zone}")
    except ValueError as e:
        raise ValidationError(field, value, str(e)) from None


# --------------------------------------------------------------------------- messages

_ID_RE = re.compile(r"^\S+$")
MAX_ID_LENGTH = 256


def check_id(field: str, value: Any) -> str:
    """A parameter or metric id: a non-empty string without whitespace, at most
    :data:`MAX_ID_LENGTH` characters."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValidationError(field, value, "must be a non-empty string without whitespace")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(field, value[:40] + "...",
                              f"must be at most {MAX_ID_LENGTH} characters")
    return value


def measurement(
    metrics: Mapping[str, float],
    *,
    step_count: int | None = None,
    elapsed_seconds: float | None = None,
) -> dict[str, Any]:
    """A ``Measurement`` message, checked before it is sent.

    Args:
        metrics: Metric id -> value. Every value must be a finite number.
        step_count: Training steps (for Keras: epochs) so far; non-negative.
        elapsed_seconds: Time the trial has been running, in seconds; non-negative.

    Raises:
        ValidationError: A metric is NaN, infinite or not a number; an id has whitespace; a
            count or duration is negative.
    """
    if not isinstance(metrics, Mapping):
        raise ValidationError("measurement.metrics", metrics, "must be a mapping of id -> value")
    items = []
    for metric_id, value in metrics.items():
        check_id("measurement.metrics.metricId", metric_id)
        field = f"measurement.metrics[{metric_id!r}]"
        if isinstance(value, bool):
            raise ValidationError(field, value, "must be a number, not a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(field, value, "must be a number") from None
        if not math.isfinite(number):
            raise ValidationError(field, value, "must be finite (NaN and infinity are not "
                                  "measurements; complete the trial as infeasible instead)")
        items.append({"metricId": metric_id, "value": number})
    body: dict[str, Any] = {"metrics": items}
    if step_count is not None:
        if format_int64(step_count, "measurement.stepCount").startswith("-"):
            raise ValidationError("measurement.stepCount", step_count, "must be non-negative")
        body["stepCount"] = str(int(step_count))
    if elapsed_seconds is not None:
        if isinstance(elapsed_seconds, (int, float)) and elapsed_seconds < 0:
            raise ValidationError("measurement.elapsedDuration", elapsed_seconds,
                                  "must be non-negative")
        body["elapsedDuration"] = format_duration(elapsed_seconds, "measurement.elapsedDuration")
    return body


def measurement_metrics(message: Mapping[str, Any]) -> dict[str, float]:
    """Metric id -> value of a ``Measurement`` message."""
    out: dict[str, float] = {}
    for metric in message.get("metrics", ()) or ():
        value = metric.get("value", 0.0)
        out[str(metric.get("metricId", ""))] = float(value)
    return out


def measurement_step(message: Mapping[str, Any]) -> int:
    return parse_int64(message.get("stepCount", 0), "measurement.stepCount")


def measurement_elapsed(message: Mapping[str, Any]) -> float:
    raw = message.get("elapsedDuration")
    return 0.0 if raw is None else parse_duration(raw, "measurement.elapsedDuration")


def same_measurement(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two Measurement messages carry the same step, duration and metrics."""
    return (
        measurement_step(a) == measurement_step(b)
        and abs(measurement_elapsed(a) - measurement_elapsed(b)) < 1e-6
        and measurement_metrics(a) == measurement_metrics(b)
    )


def trial_id(trial: Mapping[str, Any]) -> str:
    """A Trial's id: its ``id`` field, or the last segment of its ``name``."""
    if trial.get("id"):
        return str(trial["id"])
    name = trial.get("name")
    if not isinstance(name, str) or "/trials/" not in name:
        raise ProtocolError(f"trial without an id or a name: {dict(trial)!r}")
    return name.rsplit("/", 1)[1]


def trial_state(trial: Mapping[str, Any]) -> TrialState:
    try:
        return TrialState(trial.get("state", TrialState.STATE_UNSPECIFIED.value))
    except ValueError:
        raise ProtocolError(f"trial {trial.get('name')} has an unknown state "
                            f"{trial.get('state')!r}") from None


def trial_parameters(trial: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter id -> raw JSON value (a number or a string) of a Trial."""
    return {str(p.get("parameterId")): p.get("value") for p in trial.get("parameters", ()) or ()}


def trial_final_metrics(trial: Mapping[str, Any]) -> dict[str, float]:
    """Metric id -> value of a Trial's final measurement (empty when it has none)."""
    final = trial.get("finalMeasurement")
    return measurement_metrics(final) if final else {}


def parameter_list(values: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{"parameterId", "value"}, ...]`` from a mapping (or such a list, checked)."""
    items = values.items() if isinstance(values, Mapping) else (
        (p.get("parameterId"), p.get("value")) for p in values)
    out = []
    for parameter_id, value in items:
        check_id("trial.parameters.parameterId", parameter_id)
        field = f"trial.parameters[{parameter_id!r}]"
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError(field, value, "must be a number or a string")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(field, value, "must be finite")
        out.append({"parameterId": parameter_id, "value": value})
    return out
