"""Vertex resource names <-> Open Source Vizier's, and the ids this service makes up.

A Vertex study ``projects/{p}/locations/{l}/studies/{id}`` is OSS's
``owners/{p}~{l}/studies/{id}``; its trials and suggestion operations follow. A suggestion
operation's id carries OSS's operation number and the client id (``suggest-{n}-{base64 id}``);
an early-stopping operation's id is ``stop-{n}``; page tokens are base64 offsets.
"""

from __future__ import annotations

import base64
import binascii
import re

from vizier._src.service import resources as oss_resources

from vizier_keras.errors import NotFoundError, ValidationError
from vizier_keras.resources import LocationName, StudyName, TrialName

__all__ = [
    "OWNER_SEP",
    "STOP_PREFIX",
    "SUGGEST_PREFIX",
    "b64",
    "oss_owner",
    "oss_study",
    "oss_suggest_operation",
    "oss_trial",
    "suggest_operation_id",
    "unb64",
    "vertex_study",
    "vertex_trial",
]

OWNER_SEP = "~"
_CANONICAL_NUMBER = re.compile(r"[1-9][0-9]{0,18}")
_LOCATION_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
STOP_PREFIX = "stop-"
SUGGEST_PREFIX = "suggest-"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def unb64(text: str) -> str:
    """The text of :func:`b64`; ValueError (or binascii.Error) when it is not one."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def oss_owner(parent: LocationName) -> str:
    for field, value in (("project", parent.project), ("location", parent.location)):
        if not _LOCATION_PART.fullmatch(value) or ".." in value:
            raise ValidationError(field, value[:70], "must be letters, digits, '-', '_' or '.' "
                                  "(at most 63, starting with a letter or digit, no '..')")
    return f"{parent.project}{OWNER_SEP}{parent.location}"


def oss_study(name: StudyName) -> str:
    return oss_resources.StudyResource(oss_owner(name.parent), name.study_id).name


def _number(text: str) -> int | None:
    """The positive number ``text`` writes in canonical form (ASCII digits, no sign, no
    leading zero, no underscore), else None: ``1_0``, ``+1``, ``01`` and other scripts'
    digits name nothing."""
    return int(text) if _CANONICAL_NUMBER.fullmatch(text) else None


def oss_trial(name: TrialName) -> str:
    trial_id = _number(name.trial_id)
    if trial_id is None:
        raise NotFoundError(f"trial {name.name} does not exist")
    return oss_resources.TrialResource(oss_owner(name.study.parent), name.study_id,
                                       trial_id).name


def vertex_study(oss_name: str) -> StudyName:
    res = oss_resources.StudyResource.from_name(oss_name)
    project, location = res.owner_id.split(OWNER_SEP, 1)
    return StudyName(project, location, res.study_id)


def vertex_trial(oss_name: str) -> TrialName:
    res = oss_resources.TrialResource.from_name(oss_name)
    project, location = res.owner_id.split(OWNER_SEP, 1)
    return TrialName(project, location, res.study_id, str(res.trial_id))


def suggest_operation_id(oss_operation_name: str) -> tuple[str, str]:
    """(the Vertex operation id, the client id) of an OSS suggestion operation."""
    res = oss_resources.SuggestionOperationResource.from_name(oss_operation_name)
    return f"{SUGGEST_PREFIX}{res.operation_number}-{b64(res.client_id)}", res.client_id


def oss_suggest_operation(study: StudyName, op_id: str) -> str:
    """OSS's name of the suggestion operation ``op_id`` of ``study``.

    Raises:
        NotFoundError: ``op_id`` is not an id :func:`suggest_operation_id` gives.
    """
    if not op_id.startswith(SUGGEST_PREFIX):
        raise NotFoundError(f"operation {study.operation(op_id).name} does not exist")
    try:
        number_text, client = op_id[len(SUGGEST_PREFIX):].split("-", 1)
        number, client_id = _number(number_text), unb64(client)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        number = None
    if number is None or b64(client_id) != client:
        raise NotFoundError(f"operation {study.operation(op_id).name} does not exist")
    res = oss_resources.StudyResource.from_name(oss_study(study))
    return oss_resources.SuggestionOperationResource(
        res.owner_id, res.study_id, client_id, number).name
