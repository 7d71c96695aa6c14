"""The Vertex AI v1 discovery document as a test oracle.

The machine-readable contract is ``aiplatform.v1.json``, shipped inside the PyPI package
``google-api-python-client`` (a test dependency; never used at run time). This module matches a
recorded HTTP request to the one discovery method whose verb and path template it fits, checks
its query parameters, and validates a JSON body against a schema: no unknown fields, the right
JSON types (int64 as decimal strings, durations and timestamps in their proto3 forms) and enum
names.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from typing import Any

_FORMATS = {
    "int64": re.compile(r"^-?\d+$"),
    "uint64": re.compile(r"^\d+$"),
    "google-duration": re.compile(r"^-?\d+(\.\d{1,9})?s$"),
    "google-datetime": re.compile(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$"),
}


@dataclass(frozen=True)
class Method:
    id: str
    http_method: str
    flat_path: str
    pattern: re.Pattern[str]
    parameters: dict[str, Any]
    request_ref: str | None
    response_ref: str | None


class Discovery:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.schemas: dict[str, Any] = doc["schemas"]
        self.global_parameters = set(doc.get("parameters", {}))
        self.methods: dict[str, Method] = {}
        self._collect(doc, [])

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls) -> Discovery:
        import googleapiclient

        path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache",
                            "documents", "aiplatform.v1.json")
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def _collect(self, resource: dict[str, Any], path: list[str]) -> None:
        for name, sub in resource.get("resources", {}).items():
            self._collect(sub, [*path, name])
        for m in resource.get("methods", {}).values():
            method_id = m["id"]
            flat = m["flatPath"]
            regex = "^/" + re.sub(r"\\\{[A-Za-z]+\\\}", r"[^/:]+", re.escape(flat)) + "$"
            self.methods[method_id] = Method(
                method_id, m["httpMethod"], flat, re.compile(regex), m.get("parameters", {}),
                (m.get("request") or {}).get("$ref"), (m.get("response") or {}).get("$ref"))

    def vizier_methods(self) -> dict[str, Method]:
        """The methods under projects.locations.studies (studies, trials, their operations)."""
        prefix = "aiplatform.projects.locations.studies."
        return {k: v for k, v in self.methods.items() if k.startswith(prefix)}

    def match(self, http_method: str, path: str) -> Method:
        found = [m for m in self.methods.values()
                 if m.http_method == http_method and m.pattern.match(path)]
        if len(found) != 1:
            raise AssertionError(f"{http_method} {path} matches {len(found)} discovery methods: "
                                 f"{[m.id for m in found]}")
        return found[0]

    def check_query(self, method: Method, query: dict[str, Any]) -> list[str]:
        errors = []
        for key in query:
            spec = method.parameters.get(key)
            if spec is None and key not in self.global_parameters:
                errors.append(f"query parameter {key!r} is not declared by {method.id}")
            elif spec is not None and spec.get("location") != "query":
                errors.append(f"{key!r} is a {spec.get('location')} parameter of {method.id}")
        return errors

    def validate(self, ref: str, instance: Any, where: str = "body") -> list[str]:
        """Every way ``instance`` departs from the schema ``ref``; empty when it conforms."""
        errors: list[str] = []
        self._check({"$ref": ref}, instance, where, errors)
        return errors

    def _check(self, schema: dict[str, Any], value: Any, where: str, errors: list[str]) -> None:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "any" or (kind is None and "properties" not in schema):
            return
        if kind == "object":
            if not isinstance(value, dict):
                errors.append(f"{where}: expected an object, got {value!r}")
                return
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if key in props:
                    self._check(props[key], item, f"{where}.{key}", errors)
                elif extra is not None:
                    self._check(extra, item, f"{where}.{key}", errors)
                else:
                    errors.append(f"{where}.{key}: unknown field (schema {schema.get('id')})")
            return
        if kind == "array":
            if not isinstance(value, list):
                errors.append(f"{where}: expected an array, got {value!r}")
                return
            for i, item in enumerate(value):
                self._check(schema["items"], item, f"{where}[{i}]", errors)
            return
        if kind == "string":
            if not isinstance(value, str):
                errors.append(f"{where}: expected a string, got {value!r}")
                return
            fmt = _FORMATS.get(schema.get("format", ""))
            if fmt is not None and not fmt.match(value):
                errors.append(f"{where}: {value!r} is not a {schema['format']}")
            if "enum" in schema and value not in schema["enum"]:
                errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
            return
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(f"{where}: expected an integer, got {value!r}")
            return
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.append(f"{where}: expected a number, got {value!r}")
            return
        if kind == "boolean":
            if not isinstance(value, bool):
                errors.append(f"{where}: expected a boolean, got {value!r}")
            return
        errors.append(f"{where}: schema type {kind!r} is not handled by this validator")
