"""Resource names of the Vertex AI Vizier v1 API: every path string is parsed and built here.

The names are frozen value objects with ``.name`` (the string form) and ``from_name()``::

    study = StudyName.from_name("projects/p/locations/us-central1/studies/123")
    study.trial("4").name   # 'projects/p/locations/us-central1/studies/123/trials/4'
    study.parent.name       # 'projects/p/locations/us-central1'

Operation names are kept as the service returned them: an :class:`OperationName` only checks
that the string is a relative resource path under a study, and is never rebuilt from parts
except by the service that issues it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from vizier_keras.errors import ValidationError

__all__ = ["LocationName", "OperationName", "StudyName", "TrialName", "as_name"]

# One path segment: no slash, no whitespace, nothing that would change the URL's meaning.
_SEGMENT = r"[^/\s?#%]+"
_LOCATION_RE = re.compile(rf"^projects/(?P<project>{_SEGMENT})/locations/(?P<location>{_SEGMENT})$")
_STUDY_RE = re.compile(
    rf"^projects/(?P<project>{_SEGMENT})/locations/(?P<location>{_SEGMENT})"
    rf"/studies/(?P<study>{_SEGMENT})$")
_TRIAL_RE = re.compile(
    rf"^projects/(?P<project>{_SEGMENT})/locations/(?P<location>{_SEGMENT})"
    rf"/studies/(?P<study>{_SEGMENT})/trials/(?P<trial>{_SEGMENT})$")
_OPERATION_RE = re.compile(
    rf"^(?P<parent>projects/{_SEGMENT}/locations/{_SEGMENT}/studies/{_SEGMENT}"
    rf"(?:/trials/{_SEGMENT})?)/operations/(?P<operation>{_SEGMENT})$")
_SEGMENT_RE = re.compile(rf"^{_SEGMENT}$")


def _check_segment(field: str, value: str) -> str:
    if not isinstance(value, str) or not _SEGMENT_RE.match(value):
        raise ValidationError(field, value, "must be a non-empty path segment without '/', "
                              "whitespace, '?', '#' or '%'")
    return value


def _parse(pattern: re.Pattern[str], kind: str, name: object) -> re.Match[str]:
    match = pattern.match(name) if isinstance(name, str) else None
    if match is None:
        raise ValidationError(kind, name, f"is not a {kind} resource name")
    return match


@dataclass(frozen=True)
class LocationName:
    """``projects/{project}/locations/{location}``: the parent of studies."""

    project: str
    location: str

    def __post_init__(self) -> None:
        _check_segment("project", self.project)
        _check_segment("location", self.location)

    @classmethod
    def from_name(cls, name: str) -> LocationName:
        m = _parse(_LOCATION_RE, "location", name)
        return cls(m["project"], m["location"])

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def study(self, study_id: str) -> StudyName:
        return StudyName(self.project, self.location, study_id)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class StudyName:
    """``projects/{project}/locations/{location}/studies/{study_id}`` (the id is the service's)."""

    project: str
    location: str
    study_id: str

    def __post_init__(self) -> None:
        _check_segment("project", self.project)
        _check_segment("location", self.location)
        _check_segment("study_id", self.study_id)

    @classmethod
    def from_name(cls, name: str) -> StudyName:
        m = _parse(_STUDY_RE, "study", name)
        return cls(m["project"], m["location"], m["study"])

    @property
    def name(self) -> str:
        return f"{self.parent.name}/studies/{self.study_id}"

    @property
    def parent(self) -> LocationName:
        return LocationName(self.project, self.location)

    def trial(self, trial_id: str | int) -> TrialName:
        return TrialName(self.project, self.location, self.study_id, str(trial_id))

    def operation(self, operation_id: str) -> OperationName:
        """The name of an operation of this study (for the service that issues it)."""
        _check_segment("operation_id", operation_id)
        return OperationName(f"{self.name}/operations/{operation_id}")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class TrialName:
    """``projects/{p}/locations/{l}/studies/{study_id}/trials/{trial_id}``."""

    project: str
    location: str
    study_id: str
    trial_id: str

    def __post_init__(self) -> None:
        _check_segment("project", self.project)
        _check_segment("location", self.location)
        _check_segment("study_id", self.study_id)
        _check_segment("trial_id", self.trial_id)

    @classmethod
    def from_name(cls, name: str) -> TrialName:
        m = _parse(_TRIAL_RE, "trial", name)
        return cls(m["project"], m["location"], m["study"], m["trial"])

    @property
    def name(self) -> str:
        return f"{self.study.name}/trials/{self.trial_id}"

    @property
    def study(self) -> StudyName:
        return StudyName(self.project, self.location, self.study_id)

    def operation(self, operation_id: str) -> OperationName:
        """The name of an operation of this trial (for the service that issues it)."""
        _check_segment("operation_id", operation_id)
        return OperationName(f"{self.name}/operations/{operation_id}")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class OperationName:
    """A long-running operation's name, exactly as the service returned it.

    Vertex AI names an operation under the study (suggest) or the trial (early-stopping check):
    ``projects/.../studies/{s}/operations/{o}`` or ``.../studies/{s}/trials/{t}/operations/{o}``.
    """

    name: str

    def __post_init__(self) -> None:
        _parse(_OPERATION_RE, "operation", self.name)

    @classmethod
    def from_name(cls, name: str) -> OperationName:
        return cls(name)

    @property
    def operation_id(self) -> str:
        return _parse(_OPERATION_RE, "operation", self.name)["operation"]

    @property
    def parent(self) -> StudyName | TrialName:
        parent = _parse(_OPERATION_RE, "operation", self.name)["parent"]
        return TrialName.from_name(parent) if "/trials/" in parent else StudyName.from_name(parent)

    def __str__(self) -> str:
        return self.name


Name = Union[LocationName, StudyName, TrialName, OperationName]  # noqa: UP007 (runtime alias)


def as_name(kind: type[Name], value: object) -> str:
    """The string form of ``value`` (a name object, a resource dict or a string) as a ``kind``.

    A resource dict (a Study or a Trial as the service returned it) is taken by its ``name``.

    Raises:
        ValidationError: ``value`` is not a well-formed name of that kind.
    """
    if isinstance(value, kind):
        return value.name
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        value = value["name"]
    if isinstance(value, str):
        return kind.from_name(value).name
    raise ValidationError(kind.__name__, value, f"expected a {kind.__name__}, a resource "
                          "dict with a 'name', or a name string")
