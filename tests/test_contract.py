"""Every request the client can send fits the Vertex AI v1 discovery document: the HTTP verb and
path template of exactly one method, only declared query parameters, and a body that validates
against the method's request schema (no unknown fields, right types, enum names). The canned
answers are validated against the response schemas too, so the client is tested on the shapes
Vertex really sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import keras_tuner as kt
import pytest
from conftest import FAST_POLL, FAST_RETRY, PARENT, STUDY, TRIAL
from discovery import Discovery
from scripted_server import Recorded, Reply, ScriptedServer

from vizier_keras import convert
from vizier_keras.client import VizierClient

DISCOVERY = Discovery.load()
OP = f"{STUDY}/operations/s1"
CHECK_OP = f"{TRIAL}/operations/c1"
TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."


def rich_spec() -> dict[str, Any]:
    """A StudySpec using every parameter kind, scale, default and condition type."""
    hp = kt.HyperParameters()
    hp.Int("layers", 1, 4, default=2)
    hp.Int("batch", 16, 256, step=2, sampling="log")
    hp.Int("width", 8, 1024, sampling="log")
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Float("momentum", 0.5, 0.999, sampling="reverse_log")
    hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
    hp.Boolean("batchnorm", default=True)
    hp.Fixed("seed", 7)
    hp.Choice("optimizer", ["adam", "sgd"])
    with hp.conditional_scope("optimizer", ["sgd"]):
        hp.Boolean("nesterov")
    with hp.conditional_scope("layers", [3, 4]):
        hp.Choice("units", [32, 64, 128])
        with hp.conditional_scope("units", [128]):
            hp.Choice("activation", ["relu", "gelu"])
    spec = convert.study_spec(
        hp, [kt.Objective("val_loss", "min"), "val_accuracy"],
        algorithm="RANDOM_SEARCH", measurementSelectionType="BEST_MEASUREMENT",
        observationNoise="HIGH", medianAutomatedStoppingSpec={"useElapsedDuration": False},
        studyStoppingConfig={"maxNumTrials": 50, "maxDurationNoProgress": "3600s"})
    return spec


SPEC = rich_spec()
TRIAL_JSON = {
    "name": TRIAL, "id": "1", "state": "ACTIVE", "clientId": "w0",
    "startTime": "2026-11-27T10:00:00.123Z",
    "parameters": [{"parameterId": "layers", "value": 3.0}, {"parameterId": "lr", "value": 0.01},
                   {"parameterId": "optimizer", "value": "adam"}],
    "measurements": [{"stepCount": "1", "elapsedDuration": "2.500s",
                      "metrics": [{"metricId": "val_loss", "value": 0.5}]}],
}
DONE_TRIAL = {**TRIAL_JSON, "state": "SUCCEEDED", "endTime": "2026-11-27T10:05:00Z",
              "finalMeasurement": TRIAL_JSON["measurements"][0]}
STUDY_JSON = {"name": STUDY, "displayName": "s", "studySpec": SPEC, "state": "ACTIVE",
              "createTime": "2026-11-27T09:00:00Z"}
SUGGEST_OP = {
    "name": OP, "done": True,
    "metadata": {"@type": TYPE_PREFIX + "SuggestTrialsMetadata", "clientId": "w0"},
    "response": {"@type": TYPE_PREFIX + "SuggestTrialsResponse", "trials": [TRIAL_JSON],
                 "studyState": "ACTIVE", "startTime": "2026-11-27T10:00:00Z"},
}
CHECK_DONE = {
    "name": CHECK_OP, "done": True,
    "metadata": {"@type": TYPE_PREFIX + "CheckTrialEarlyStoppingStateMetatdata",
                 "study": STUDY, "trial": TRIAL},
    "response": {"@type": TYPE_PREFIX + "CheckTrialEarlyStoppingStateResponse",
                 "shouldStop": True},
}

# (method id suffix, path regex, canned answer). Answers are validated below.
CANNED: list[tuple[str, str, str, Any]] = [
    ("POST", r"/v1/projects/[^/]+/locations/[^/]+/studies:lookup", "studies.lookup", STUDY_JSON),
    ("POST", r"/v1/projects/[^/]+/locations/[^/]+/studies", "studies.create", STUDY_JSON),
    ("GET", r"/v1/projects/[^/]+/locations/[^/]+/studies", "studies.list",
     {"studies": [STUDY_JSON]}),
    ("GET", r"/v1/projects/[^/]+/locations/[^/]+/studies/[^/:]+", "studies.get", STUDY_JSON),
    ("DELETE", r"/v1/projects/[^/]+/locations/[^/]+/studies/[^/:]+", "studies.delete", {}),
    ("POST", r"/v1/.*/trials:suggest", "studies.trials.suggest", {"name": OP}),
    ("GET", rf"/v1/{OP}", "studies.operations.get", SUGGEST_OP),
    ("POST", rf"/v1/{OP}:wait", "studies.operations.wait", SUGGEST_OP),
    ("POST", r"/v1/.*/studies/[^/:]+/trials", "studies.trials.create", TRIAL_JSON),
    ("GET", r"/v1/.*/studies/[^/:]+/trials", "studies.trials.list", {"trials": [TRIAL_JSON]}),
    ("GET", r"/v1/.*/trials/[^/:]+", "studies.trials.get", TRIAL_JSON),
    ("DELETE", r"/v1/.*/trials/[^/:]+", "studies.trials.delete", {}),
    ("POST", r"/v1/.*/trials/[^/:]+:addTrialMeasurement", "studies.trials.addTrialMeasurement",
     TRIAL_JSON),
    ("POST", r"/v1/.*/trials/[^/:]+:complete", "studies.trials.complete", DONE_TRIAL),
    ("POST", r"/v1/.*/trials/[^/:]+:stop", "studies.trials.stop", {**TRIAL_JSON,
                                                                  "state": "STOPPING"}),
    ("POST", r"/v1/.*/trials/[^/:]+:checkTrialEarlyStoppingState",
     "studies.trials.checkTrialEarlyStoppingState", {"name": CHECK_OP}),
    ("GET", rf"/v1/{CHECK_OP}", "studies.trials.operations.get", CHECK_DONE),
    ("POST", rf"/v1/{CHECK_OP}:wait", "studies.trials.operations.wait", CHECK_DONE),
    ("POST", r"/v1/.*/trials:listOptimalTrials", "studies.trials.listOptimalTrials",
     {"optimalTrials": [DONE_TRIAL]}),
]

CALLS: dict[str, Callable[[VizierClient], Any]] = {
    "create_study": lambda c: c.create_study(PARENT, "s", SPEC),
    "get_study": lambda c: c.get_study(STUDY),
    "list_studies": lambda c: c.list_studies(PARENT, page_size=10),
    "delete_study": lambda c: c.delete_study(STUDY),
    "lookup_study": lambda c: c.lookup_study(PARENT, "s"),
    "suggest_trials": lambda c: c.suggest_trials(STUDY, 2, client_id="w0"),
    "create_trial": lambda c: c.create_trial(STUDY, {"layers": 2, "lr": 0.01,
                                                     "optimizer": "sgd"}),
    "get_trial": lambda c: c.get_trial(TRIAL),
    "list_trials": lambda c: c.list_trials(STUDY, page_size=5),
    "delete_trial": lambda c: c.delete_trial(TRIAL),
    "add_trial_measurement": lambda c: c.add_trial_measurement(
        TRIAL, {"val_loss": 0.5, "val_accuracy": 0.9}, step_count=3, elapsed_seconds=12.25),
    "complete_trial": lambda c: c.complete_trial(TRIAL, {"val_loss": 0.4}, step_count=5,
                                                 elapsed_seconds=60),
    "complete_trial_auto": lambda c: c.complete_trial(TRIAL),
    "complete_trial_infeasible": lambda c: c.complete_trial(TRIAL, infeasible_reason="NaN loss"),
    "check_trial_early_stopping_state": lambda c: c.check_trial_early_stopping_state(TRIAL),
    "stop_trial": lambda c: c.stop_trial(TRIAL),
    "list_optimal_trials": lambda c: c.list_optimal_trials(STUDY),
    "get_operation": lambda c: c.get_operation(OP),
    "wait_operation": lambda c: c.wait_operation(OP, timeout=30),
    "get_trial_operation": lambda c: c.get_operation(CHECK_OP),
    "wait_trial_operation": lambda c: c.wait_operation(CHECK_OP),
}


def serve_canned(server: ScriptedServer) -> None:
    for method, regex, _, answer in reversed(CANNED):  # first listed wins
        server.route(method, regex, Reply(200, answer))


def check_request(rec: Recorded) -> str:
    method = DISCOVERY.match(rec.method, rec.path)
    problems = DISCOVERY.check_query(method, rec.query)
    if method.request_ref is not None:
        assert rec.body is not None, f"{method.id} needs a body"
        problems += DISCOVERY.validate(method.request_ref, rec.body)
    else:
        assert rec.body is None, f"{method.id} takes no body, got {rec.body!r}"
    assert not problems, problems
    assert rec.headers.get("content-type", "application/json").startswith("application/json")
    return method.id


@pytest.mark.parametrize("name", sorted(CALLS))
def test_each_call_fits_the_discovery_document(name):
    with ScriptedServer() as server:
        serve_canned(server)
        with VizierClient(server.url, retry=FAST_RETRY, poll=FAST_POLL) as client:
            CALLS[name](client)
        assert server.requests
        for rec in server.requests:
            check_request(rec)


def test_every_vizier_method_is_covered():
    with ScriptedServer() as server:
        serve_canned(server)
        with VizierClient(server.url, retry=FAST_RETRY, poll=FAST_POLL) as client:
            for call in CALLS.values():
                call(client)
        covered = {check_request(rec) for rec in server.requests}
    wanted = {m for m in DISCOVERY.vizier_methods()
              if not re.search(r"operations\.(cancel|delete|list)$", m)}
    assert len(wanted) == 19  # 5 study, 10 trial and 4 operation methods
    assert covered == wanted


@pytest.mark.parametrize(("method", "regex", "method_id", "answer"), CANNED,
                         ids=[c[2] for c in CANNED])
def test_canned_answers_are_what_vertex_sends(method, regex, method_id, answer):
    m = DISCOVERY.methods[f"aiplatform.projects.locations.{method_id}"]
    assert m.http_method == method
    assert not DISCOVERY.validate(m.response_ref, answer)
    for key in ("metadata", "response"):
        packed = answer.get(key) if isinstance(answer, dict) else None
        if packed:
            ref = "GoogleCloudAiplatformV1" + packed["@type"].removeprefix(TYPE_PREFIX)
            assert not DISCOVERY.validate(ref, {k: v for k, v in packed.items() if k != "@type"})


def test_converted_specs_validate_against_the_studyspec_schema():
    assert not DISCOVERY.validate("GoogleCloudAiplatformV1StudySpec", SPEC)


def test_the_validator_catches_what_it_should():
    bad = {"metrics": [{"metricId": "a", "goal": "BIGGER"}],
           "parameters": [{"parameterId": "x", "integerValueSpec": {"minValue": 1,
                                                                    "maxValue": "3"}}],
           "algorith": "RANDOM_SEARCH"}
    problems = DISCOVERY.validate("GoogleCloudAiplatformV1StudySpec", bad)
    assert any("BIGGER" in p for p in problems)
    assert any("minValue" in p for p in problems)  # int64 must travel as a string
    assert any("algorith" in p for p in problems)
