"""A ``requests.Session`` through which every answer of the embedded server reaches our code as
Vertex AI would write it: parsed strictly into the v1 protobuf message (a field Vertex never
sends fails the test) and written again by protobuf's own JSON encoder, which leaves out every
field at its default (a 0 bound, a 0.0 metric, ``done: false``, ``stepCount: 0``).

With ``inject=True`` each JSON object of each answer also gets a field no one has heard of,
as Vertex may add fields at any time.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from google.cloud.aiplatform_v1 import types as v1
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, json_format

from vizier_keras import protojson

_SEG = r"[^/:]+"
_STUDY = rf"/(?:v1|ui)/projects/{_SEG}/locations/{_SEG}/studies/{_SEG}"
# (method, path pattern, answer message class), first match wins.
_ANSWERS: list[tuple[str, str, Any]] = [
    ("*", r".*/operations/[^/]+(:wait)?", operations_pb2.Operation),
    ("POST", r".*/trials:suggest", operations_pb2.Operation),
    ("POST", r".*:checkTrialEarlyStoppingState", operations_pb2.Operation),
    ("POST", r".*/trials:listOptimalTrials", v1.ListOptimalTrialsResponse.pb()),
    ("GET", r".*/studies", v1.ListStudiesResponse.pb()),
    ("POST", r".*/studies(:lookup)?", v1.Study.pb()),
    ("GET", _STUDY, v1.Study.pb()),
    ("GET", rf"{_STUDY}/trials", v1.ListTrialsResponse.pb()),
    ("POST", rf"{_STUDY}/trials", v1.Trial.pb()),
    ("DELETE", r".*", empty_pb2.Empty),
    ("*", rf"{_STUDY}/trials/{_SEG}(:\w+)?", v1.Trial.pb()),
]
UNKNOWN_FIELD = "fieldVertexAddsTomorrow"
_V1_ALGORITHMS = set(v1.StudySpec.Algorithm.__members__)


def answer_type(method: str, path: str) -> Any:
    for want, pattern, message in _ANSWERS:
        if want in ("*", method) and re.fullmatch(pattern, path):
            return message
    raise AssertionError(f"no v1 answer type for {method} {path}")


def _inject(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: v if k == "@type" else _inject(v) for k, v in value.items()}
        if "@type" not in value or value["@type"].startswith("type.googleapis.com/google.cloud"):
            out[UNKNOWN_FIELD] = {"added": True}
        return out
    if isinstance(value, list):
        return [_inject(v) for v in value]
    return value


def _extensions(value: Any, where: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Where ``value`` holds algorithm names that v1 does not have (the embedded service's
    extensions), and those names."""
    found: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "algorithm" and item not in _V1_ALGORITHMS:
                found.append(((*where, key), item))
            else:
                found += _extensions(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _extensions(item, (*where, i))
    return found


def _without_extension_fields(value: Any) -> Any:
    """``value`` without the fields the embedded service adds to its answers
    (:data:`vizier_keras.protojson.EXTENSIONS`): Vertex never sends them."""
    added = {field for fields in protojson.EXTENSIONS.values() for field in fields}
    if isinstance(value, dict):
        return {k: _without_extension_fields(v) for k, v in value.items() if k not in added}
    if isinstance(value, list):
        return [_without_extension_fields(v) for v in value]
    return value


def _put(value: Any, where: tuple[Any, ...], item: Any) -> None:
    for key in where[:-1]:
        value = value[key]
    value[where[-1]] = item


def vertex_shaped(answer: Any, method: str, path: str, inject: bool = False) -> Any:
    """``answer`` as Vertex would write it (see the module docstring). An extension algorithm
    name has no v1 number: it goes through protobuf as a stand-in and comes back as sent; the
    fields the embedded service adds are left out, as Vertex has none of them."""
    answer = _without_extension_fields(answer)
    extensions = _extensions(answer)
    for where, _ in extensions:
        _put(answer, where, "GRID_SEARCH")
    message = json_format.ParseDict(answer, answer_type(method, path)(),
                                    ignore_unknown_fields=False)
    body = json_format.MessageToDict(message)
    for where, name in extensions:
        _put(body, where, name)
    return _inject(body) if inject else body


class VertexShapedSession(requests.Session):
    """Answers re-encoded as :func:`vertex_shaped` does; error answers pass unchanged."""

    def __init__(self, inject: bool = False) -> None:
        super().__init__()
        self.inject = inject
        self.answers = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        path = urlsplit(str(url)).path
        if response.status_code < 300 and response.content and not path.endswith("/healthz"):
            body = vertex_shaped(response.json(), str(method).upper(), path, self.inject)
            response._content = json.dumps(body).encode()
            self.answers += 1
        return response
