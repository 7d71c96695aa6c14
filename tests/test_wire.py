"""proto3 JSON scalars and the small message helpers."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from vizier_keras import wire
from vizier_keras.errors import ProtocolError, ValidationError


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (1.5, "1.500s"), (12.25, "12.250s"), (3600, "3600s"), (0.000001, "0.000001s"),
    (1e-9, "0.000000001s"), (-2.5, "-2.500s"), (86400.123456789, "86400.123456789s"),
])
def test_durations_round_trip(seconds, text):
    assert wire.format_duration(seconds) == text
    assert wire.parse_duration(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize("bad", ["1.5", "s", "1.5m", "1.1234567890s", 5, None, "--1s"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValidationError):
        wire.parse_duration(bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, True, "1s"])
def test_unformattable_durations_are_refused(bad):
    with pytest.raises(ValidationError):
        wire.format_duration(bad)


def test_int64_travels_as_a_string_and_reads_both_forms():
    assert wire.format_int64(3) == "3" and wire.format_int64(-2**63) == str(-2**63)
    assert wire.parse_int64("42") == 42 and wire.parse_int64(42) == 42
    assert wire.parse_int64(3.0) == 3
    for bad in ("4.5", 4.5, True, "x", 2**63, None):
        with pytest.raises(ValidationError):
            wire.parse_int64(bad)
    with pytest.raises(ValidationError):
        wire.format_int64(2**63)


def test_timestamps():
    moment = dt.datetime(2026, 11, 27, 10, 5, 1, 120000, tzinfo=dt.timezone.utc)
    assert wire.format_timestamp(moment) == "2026-11-27T10:05:01.12Z"
    assert wire.parse_timestamp("2026-11-27T10:05:01.120000123Z") == moment
    assert wire.parse_timestamp("2026-11-27T11:05:01.12+01:00") == moment
    assert wire.format_timestamp(moment.replace(microsecond=0)) == "2026-11-27T10:05:01Z"
    with pytest.raises(ValidationError):
        wire.format_timestamp(dt.datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        wire.parse_timestamp("yesterday")


def test_measurement_is_checked_and_built_in_proto3_json():
    m = wire.measurement({"loss": 0.5, "acc": 1}, step_count=3, elapsed_seconds=2)
    assert m == {"metrics": [{"metricId": "loss", "value": 0.5},
                             {"metricId": "acc", "value": 1.0}],
                 "stepCount": "3", "elapsedDuration": "2s"}
    assert wire.measurement_metrics(m) == {"loss": 0.5, "acc": 1.0}
    assert wire.measurement_step(m) == 3 and wire.measurement_elapsed(m) == 2
    assert wire.same_measurement(m, {**m, "elapsedDuration": "2.000s"})
    assert not wire.same_measurement(m, {**m, "stepCount": "4"})
    for metrics, field in [({"loss": math.nan}, "loss"), ({"loss": "high"}, "loss"),
                           ({"a b": 1.0}, "metricId"), ({"x": True}, "x")]:
        with pytest.raises(ValidationError, match=field):
            wire.measurement(metrics)
    with pytest.raises(ValidationError, match="elapsedDuration"):
        wire.measurement({"x": 1.0}, elapsed_seconds=-1)


def test_trial_readers():
    trial = {"name": "projects/p/locations/l/studies/1/trials/5", "state": "SUCCEEDED",
             "parameters": [{"parameterId": "a", "value": 1.0}, {"parameterId": "b",
                                                                 "value": "x"}],
             "finalMeasurement": {"metrics": [{"metricId": "m", "value": 2.0}]}}
    assert wire.trial_id(trial) == "5" and wire.trial_id({"id": "6"}) == "6"
    assert wire.trial_state(trial) is wire.TrialState.SUCCEEDED
    assert wire.trial_state(trial).is_done and not wire.TrialState.ACTIVE.is_done
    assert wire.trial_state({}) is wire.TrialState.STATE_UNSPECIFIED
    assert wire.trial_parameters(trial) == {"a": 1.0, "b": "x"}
    assert wire.trial_final_metrics(trial) == {"m": 2.0} and wire.trial_final_metrics({}) == {}
    with pytest.raises(ProtocolError):
        wire.trial_state({"state": "EXPLODED"})
    with pytest.raises(ProtocolError):
        wire.trial_id({})


def test_enum_parse_names_the_field():
    assert wire.Goal.parse("MAXIMIZE", "goal") is wire.Goal.MAXIMIZE
    assert wire.Goal.parse(None, "goal") is wire.Goal.GOAL_TYPE_UNSPECIFIED
    with pytest.raises(ValidationError, match=r"metrics\.goal"):
        wire.Goal.parse("BIGGER", "metrics.goal")
    assert str(wire.Algorithm.RANDOM_SEARCH) == "RANDOM_SEARCH"


def test_parameter_list():
    assert wire.parameter_list({"a": 1, "b": "x"}) == [
        {"parameterId": "a", "value": 1}, {"parameterId": "b", "value": "x"}]
    assert wire.parameter_list([{"parameterId": "a", "value": 2.5}]) == [
        {"parameterId": "a", "value": 2.5}]
    for bad in ({"a": True}, {"a": None}, {"a": math.inf}, {"": 1}):
        with pytest.raises(ValidationError):
            wire.parameter_list(bad)
