"""Hostile requests generated from the Vertex AI v1 discovery document (hypothesis), sent to a
real server process: every
Vizier method, its path filled with real and made-up ids, its body drawn from the method's
request schema with hostile values mixed in (wrong types, numbers beyond a double, lone
surrogates, deep nesting, unknown fields, enum garbage). No answer is a 5xx, none hangs, and a
baseline study the fuzzer never addresses is left exactly as it was. ``FUZZ_REQUESTS`` sets how
many (default 1,000; the soak benchmark sends more)."""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import SQL, unique
from discovery import Discovery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vizier_keras.client import VizierClient

pytestmark = pytest.mark.slow  # a real server process

DISCOVERY = Discovery.load()
METHODS = sorted(DISCOVERY.vizier_methods().values(), key=lambda m: m.id)
FUZZ = "projects/fuzz/locations/l"
BASELINE = "projects/baseline/locations/l"
SPEC = {"metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameterId": "x", "doubleValueSpec": {"minValue": 0, "maxValue": 1}},
                       {"parameterId": "c", "categoricalValueSpec": {"values": ["a", "b"]}}],
        "algorithm": "RANDOM_SEARCH"}

def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


_HOSTILE = st.sampled_from([
    None, [], {}, "", "\ud800", "x" * 5000, 10**400, -(10**30), -1, 0, True, 1.5,
    "9" * 4400, "NaN", "-Infinity", "..", "a/b", "\x00", {"unknownField": 1}, _deep(40),
])
_TEXT = st.text(string.printable + "é\u0661\ufeff", max_size=20)


def _from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        schema = DISCOVERY.schemas[schema["$ref"]]
    kind = schema.get("type")
    if depth > 5:
        return _HOSTILE
    if kind == "object":
        props = {name: _from_schema(sub, depth + 1)
                 for name, sub in schema.get("properties", {}).items()}
        value: st.SearchStrategy[Any] = st.fixed_dictionaries({}, optional=props) if props \
            else st.dictionaries(_TEXT, _HOSTILE, max_size=2)
    elif kind == "array":
        value = st.lists(_from_schema(schema.get("items", {}), depth + 1), max_size=3)
    elif kind == "string" and "enum" in schema:
        value = st.sampled_from([*schema["enum"], "BOGUS_VALUE"])
    elif kind == "string" and schema.get("format") in ("int64", "uint64"):
        value = st.integers(-(2**70), 2**70).map(str)
    elif kind == "string" and schema.get("format") == "google-duration":
        value = st.sampled_from(["1.5s", "0s", "-1s", "1e9s", "forever"])
    elif kind == "string":
        value = _TEXT
    elif kind == "integer":
        value = st.integers(-(2**40), 2**40)
    elif kind == "number":
        value = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**70), 2**70)
    elif kind == "boolean":
        value = st.booleans()
    else:
        value = st.none() | _TEXT | st.floats(allow_nan=False, allow_infinity=False)
    return st.one_of(value, value, value, _HOSTILE)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """A real ``vizier-keras serve`` process (the fuzzer may create studies with the default
    algorithm, which the server runs apart from TensorFlow)."""
    from processes import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("fuzz") / "v.db")
    try:
        url = server.wait_ready()
        with VizierClient(url) as client:
            study = client.create_study(BASELINE, "baseline", SPEC)["name"]
            for i in range(3):
                trial = client.suggest_trials(study, 1, client_id=f"w{i}").trials[0]
                client.add_trial_measurement(trial, {"loss": i / 3}, step_count=1)
                if i < 2:
                    client.complete_trial(trial)
            fuzz = client.create_study(FUZZ, unique(), SPEC)
            client.suggest_trials(fuzz, 2, client_id="f")
        yield url, {"baseline": study, "fuzz_study": fuzz["name"].rsplit("/", 1)[1]}
    finally:
        server.stop()


def _snapshot(url: str, study: str) -> str:
    got = [requests.get(f"{url}/v1/{study}", timeout=30).text,
           requests.get(f"{url}/v1/{study}/trials", timeout=30).text,
           requests.get(f"{url}/v1/{BASELINE}/studies", timeout=30).text]
    return "\n".join(got)


@st.composite
def _requests(draw: Any, fuzz_study: str) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(st.sampled_from(METHODS))
    ids = {"projectsId": "fuzz", "locationsId": "l"}
    path = method.flat_path
    for name in ("studiesId", "trialsId", "operationsId"):
        if "{" + name + "}" in path:
            real = {"studiesId": fuzz_study, "trialsId": "1", "operationsId": "suggest-1-Zg"}
            ids[name] = draw(st.sampled_from([real[name], "01", "1_0", "+1", "..", "%00", "0",
                                              "99999999999999999999999"])
                             | st.text(string.ascii_letters + string.digits + "-_~.%",
                                       min_size=1, max_size=30))
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    query: dict[str, str] = {}
    for name, spec in method.parameters.items():
        if spec.get("location") == "query" and draw(st.booleans()):
            query[name] = draw(_TEXT | st.integers(-5, 10**6).map(str))
    if draw(st.integers(0, 9)) == 0:
        query["$alt"] = draw(st.sampled_from(["json;enum-encoding=int", "proto", "json;x=y"]))
    body = b""
    if method.request_ref:
        if draw(st.integers(0, 19)) == 0:
            body = draw(st.sampled_from([b"[" * 3000 + b"]" * 3000, b"{", b"\xff\xfe",
                                         b'{"a": NaN}', b"null", b"1e999"]))
        else:
            body = json.dumps(draw(_from_schema({"$ref": method.request_ref}))).encode()
    return method.http_method, "/" + path, query, body


FUZZ_REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "1000"))


def test_no_hostile_request_gets_a_5xx_or_hangs_or_touches_another_study(served):
    url, names = served
    before = _snapshot(url, names["baseline"])
    session = requests.Session()
    seen: dict[int, int] = {}

    @settings(max_examples=FUZZ_REQUESTS, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=_requests(names["fuzz_study"]))
    def send(request: tuple[str, str, dict[str, str], bytes]) -> None:
        method, path, query, body = request
        answer = session.request(method, url + path, params=query, data=body or None,
                                 headers={"Content-Type": "application/json"}, timeout=30)
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        assert answer.status_code < 500, (method, path, query, body[:300], answer.text[:500])
        if answer.status_code >= 400:
            assert not SQL.search(answer.text)

    send()
    assert sum(seen.values()) >= FUZZ_REQUESTS * 0.9, seen
    assert _snapshot(url, names["baseline"]) == before
    assert requests.get(f"{url}/healthz", timeout=30).json()["status"] == "SERVING"
