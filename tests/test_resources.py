"""Resource names are parsed and built in one place."""

from __future__ import annotations

import pytest

from vizier_keras.errors import ValidationError
from vizier_keras.resources import LocationName, OperationName, StudyName, TrialName, as_name


def test_names_round_trip_and_navigate():
    trial = TrialName.from_name("projects/my-proj/locations/us-central1/studies/123/trials/4")
    assert trial.name == "projects/my-proj/locations/us-central1/studies/123/trials/4"
    assert trial.study == StudyName("my-proj", "us-central1", "123")
    assert trial.study.parent == LocationName("my-proj", "us-central1")
    assert trial.study.trial(5).trial_id == "5"
    assert LocationName.from_name("projects/p/locations/l").study("9").name == (
        "projects/p/locations/l/studies/9")
    assert str(trial) == trial.name


def test_operation_names_are_kept_as_given():
    op = OperationName("projects/p/locations/l/studies/1/operations/abc-1")
    assert op.operation_id == "abc-1" and op.parent == StudyName("p", "l", "1")
    trial_op = TrialName("p", "l", "1", "2").operation("c9")
    assert trial_op.name == "projects/p/locations/l/studies/1/trials/2/operations/c9"
    assert trial_op.parent == TrialName("p", "l", "1", "2")


@pytest.mark.parametrize(("cls", "bad"), [
    (StudyName, "projects/p/locations/l/studies/"),
    (StudyName, "projects/p/locations/l/studies/1/trials/2"),
    (TrialName, "projects/p/locations/l/studies/1/trials/a b"),
    (LocationName, "projects/p"),
    (OperationName, "operations/1"),
    (StudyName, "projects/p/locations/l/studies/a?b"),
    (StudyName, 7),
])
def test_malformed_names_are_refused(cls, bad):
    with pytest.raises(ValidationError):
        cls.from_name(bad)


def test_segments_are_checked_when_built():
    with pytest.raises(ValidationError, match="study_id"):
        StudyName("p", "l", "a/b")


def test_as_name_takes_objects_dicts_and_strings():
    study = StudyName("p", "l", "1")
    assert as_name(StudyName, study) == study.name
    assert as_name(StudyName, {"name": study.name, "displayName": "x"}) == study.name
    assert as_name(StudyName, study.name) == study.name
    with pytest.raises(ValidationError):
        as_name(StudyName, TrialName("p", "l", "1", "2"))
    with pytest.raises(ValidationError):
        as_name(TrialName, {"displayName": "no name"})
