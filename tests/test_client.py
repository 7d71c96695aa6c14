"""The REST client against a real HTTP server on loopback: errors, retries, paging, polling,
auth. The server's answers are scripted because these cases (a 503, a dropped connection, an
operation that takes three polls) cannot be made to happen on demand by a real Vizier."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from typing import Any

import pytest
from conftest import FAST_RETRY, PARENT, STUDY, TRIAL
from scripted_server import Drop, Recorded, Reply, ScriptedServer

from vizier_keras import errors, protojson
from vizier_keras.client import (
    NO_RETRY,
    PollPolicy,
    RetryPolicy,
    VizierClient,
    endpoint_from_environment,
    vertex_endpoint,
)
from vizier_keras.wire import StudyState

SPEC = {"metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameterId": "x", "doubleValueSpec": {"minValue": 0, "maxValue": 1}}]}


def err(http: int, status: str, message: str = "boom") -> Reply:
    return Reply(http, {"error": {"code": http, "message": message, "status": status}})


def trial_json(trial_id: str = "1", state: str = "ACTIVE", **extra: Any) -> dict[str, Any]:
    return {"name": f"{STUDY}/trials/{trial_id}", "id": trial_id, "state": state,
            "parameters": [{"parameterId": "x", "value": 0.5}], **extra}


# ----------------------------------------------------------------------------- errors

def test_error_body_maps_to_the_status_leaf_with_everything_a_user_needs(server, client):
    server.route("GET", f"/v1/{STUDY}", err(404, "NOT_FOUND", "Study 7 not found"))
    with pytest.raises(errors.NotFoundError) as info:
        client.get_study(STUDY)
    e = info.value
    assert isinstance(e, LookupError) and isinstance(e, errors.ApiError)
    assert (e.status, e.http_status, e.message, e.method) == (
        "NOT_FOUND", 404, "Study 7 not found", "GET")
    assert e.url == f"{server.url}/v1/{STUDY}"
    assert str(e) == f"NOT_FOUND (404) on GET {server.url}/v1/{STUDY}: Study 7 not found"
    assert len(server.requests) == 1  # a 404 is final


@pytest.mark.parametrize(("http", "status", "cls", "builtin"), [
    (400, "INVALID_ARGUMENT", errors.InvalidArgumentError, ValueError),
    (400, "FAILED_PRECONDITION", errors.FailedPreconditionError, RuntimeError),
    (403, "PERMISSION_DENIED", errors.PermissionDeniedError, PermissionError),
    (409, "ALREADY_EXISTS", errors.AlreadyExistsError, errors.ApiError),
    (401, "UNAUTHENTICATED", errors.UnauthenticatedError, errors.ApiError),
    (501, "UNIMPLEMENTED", errors.UnimplementedError, NotImplementedError),
])
def test_each_status_has_its_leaf(server, client, http, status, cls, builtin):
    server.route("GET", f"/v1/{STUDY}", err(http, status))
    with pytest.raises(cls) as info:
        client.get_study(STUDY)
    assert isinstance(info.value, builtin)
    assert info.value.status == status and info.value.http_status == http


def test_a_proxy_html_page_maps_by_http_code_and_is_retried_when_safe(server, client):
    server.route("GET", f"/v1/{STUDY}", [Reply(502, "<html>bad gateway</html>"),
                                         Reply(200, {"name": STUDY})])
    assert client.get_study(STUDY) == {"name": STUDY}
    assert len(server.requests) == 2


def test_a_success_that_is_not_json_is_a_protocol_error(server, client):
    server.route("GET", f"/v1/{STUDY}", Reply(200, "<html>captive portal</html>"))
    with pytest.raises(errors.ProtocolError):
        client.get_study(STUDY)


def test_errors_survive_pickling_for_multiprocessing():
    import pickle

    e = errors.NotFoundError("gone", method="GET", url="http://x/v1/a", operation="op")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is errors.NotFoundError and str(e2) == str(e)


# ----------------------------------------------------------------------------- retries

def test_503_twice_then_200_is_retried_for_a_read(server, client):
    server.route("GET", f"/v1/{STUDY}", [err(503, "UNAVAILABLE"), err(503, "UNAVAILABLE"),
                                         Reply(200, {"name": STUDY})])
    assert client.get_study(STUDY)["name"] == STUDY
    assert len(server.requests) == 3


def test_retries_are_bounded(server, client):
    server.route("GET", f"/v1/{STUDY}", err(503, "UNAVAILABLE"))
    with pytest.raises(errors.UnavailableError):
        client.get_study(STUDY)
    assert len(server.requests) == FAST_RETRY.max_attempts


def test_no_retry_policy_sends_once(server):
    server.route("GET", f"/v1/{STUDY}", err(503, "UNAVAILABLE"))
    with VizierClient(server.url, retry=NO_RETRY) as c, pytest.raises(errors.UnavailableError):
        c.get_study(STUDY)
    assert len(server.requests) == 1


def test_a_dropped_connection_on_a_read_is_retried(server, client):
    server.route("GET", f"/v1/{TRIAL}", [Drop(), Reply(200, trial_json())])
    assert client.get_trial(TRIAL)["id"] == "1"
    assert len(server.requests) == 2


def test_a_dropped_connection_surfaces_as_transport_error_when_it_persists(server, client):
    server.route("GET", f"/v1/{TRIAL}", Drop())
    with pytest.raises(errors.TransportError) as info:
        client.get_trial(TRIAL)
    assert isinstance(info.value, ConnectionError) and info.value.request_sent


def test_create_trial_is_not_retried_after_503(server, client):
    server.route("POST", f"/v1/{STUDY}/trials", err(503, "UNAVAILABLE"))
    with pytest.raises(errors.UnavailableError):
        client.create_trial(STUDY, {"x": 0.5})
    assert len(server.requests) == 1


def test_a_request_that_never_left_is_retried_even_when_not_idempotent():
    # Nothing listens on the port at first: connection refused, so the request surely never
    # reached a service, and even trials.create may be sent again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    late = ScriptedServer(port)
    late.route("POST", f"/v1/{STUDY}/trials", Reply(200, trial_json("9")))
    started = threading.Event()

    def start_later() -> None:
        time.sleep(0.3)
        late.__enter__()
        started.set()

    threading.Thread(target=start_later, daemon=True).start()
    retry = RetryPolicy(max_attempts=30, initial_backoff=0.05, max_backoff=0.1, deadline=20)
    try:
        with VizierClient(f"http://127.0.0.1:{port}", retry=retry) as c:
            assert c.create_trial(STUDY, {"x": 0.5})["id"] == "9"
        assert len(late.requests) == 1
    finally:
        started.wait(5)
        late.__exit__(None, None, None)


def test_read_timeout_is_its_own_error_and_reads_retry(server):
    server.route("GET", f"/v1/{STUDY}", [Reply(200, {"name": STUDY}, delay=1.0),
                                         Reply(200, {"name": STUDY})])
    with VizierClient(server.url, retry=FAST_RETRY, timeout=0.3) as c:
        assert c.get_study(STUDY)["name"] == STUDY
    assert len(server.requests) == 2
    server.route("GET", f"/v1/{STUDY}", Reply(200, {"name": STUDY}, delay=1.0))
    with VizierClient(server.url, retry=NO_RETRY, timeout=0.3) as c:
        with pytest.raises(errors.RequestTimeoutError) as info:
            c.get_study(STUDY)
    assert isinstance(info.value, TimeoutError)


def test_resource_exhausted_waits_longer_and_honours_retry_after(server, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("vizier_keras.client._client.time.sleep", slept.append)
    server.route("GET", f"/v1/{STUDY}", [
        Reply(429, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
              headers={"Retry-After": "2"}),
        Reply(200, {"name": STUDY})])
    policy = RetryPolicy(initial_backoff=0.01, exhausted_initial_backoff=0.5, max_backoff=10)
    with VizierClient(server.url, retry=policy) as c:
        c.get_study(STUDY)
    assert slept and slept[0] >= 2.0


def test_resource_exhausted_is_tried_fewer_times(server, monkeypatch):
    monkeypatch.setattr("vizier_keras.client._client.time.sleep", lambda s: None)
    server.route("GET", f"/v1/{STUDY}", err(429, "RESOURCE_EXHAUSTED"))
    policy = RetryPolicy(max_attempts=6, exhausted_max_attempts=2)
    with VizierClient(server.url, retry=policy) as c, pytest.raises(
            errors.ResourceExhaustedError):
        c.get_study(STUDY)
    assert len(server.requests) == 2


def test_backoff_grows_with_jitter_and_is_capped():
    import random

    policy = RetryPolicy(initial_backoff=1, multiplier=2, max_backoff=5)
    rng = random.Random(0)
    bounds = {1: (0.5, 1), 2: (1, 2), 3: (2, 4), 6: (2.5, 5)}  # capped at max_backoff
    for n, (lo, hi) in bounds.items():
        d = [policy.backoff(n, rng=rng) for _ in range(200)]
        assert lo <= min(d) and max(d) <= hi and len(set(d)) > 100


def test_add_measurement_after_a_dropped_connection_is_sent_again_only_if_missing(server,
                                                                                  client):
    # First case: the measurement did not arrive -> the client reads the trial and resends.
    server.route("POST", f"/v1/{TRIAL}:addTrialMeasurement", [Drop(), Reply(200, trial_json())])
    server.route("GET", f"/v1/{TRIAL}", Reply(200, trial_json()))
    client.add_trial_measurement(TRIAL, {"loss": 0.5}, step_count=1)
    add = ("POST", f"/v1/{TRIAL}:addTrialMeasurement")
    assert [(r.method, r.path) for r in server.requests] == [add, ("GET", f"/v1/{TRIAL}"), add]


def test_add_measurement_that_did_arrive_is_not_sent_twice(server, client):
    recorded = {"stepCount": "1", "elapsedDuration": "2.500s",
                "metrics": [{"metricId": "loss", "value": 0.5}]}
    server.route("POST", f"/v1/{TRIAL}:addTrialMeasurement", Drop())
    server.route("GET", f"/v1/{TRIAL}", Reply(200, trial_json(measurements=[recorded])))
    trial = client.add_trial_measurement(TRIAL, {"loss": 0.5}, step_count=1,
                                         elapsed_seconds=2.5)
    assert trial["measurements"] == [recorded]
    assert [r.method for r in server.requests] == ["POST", "GET"]


def test_complete_after_an_ambiguous_failure_reads_the_trial_instead_of_repeating(server,
                                                                                 client):
    done = trial_json(state="SUCCEEDED", finalMeasurement={
        "metrics": [{"metricId": "loss", "value": 0.1}]})
    server.route("POST", f"/v1/{TRIAL}:complete", err(503, "UNAVAILABLE"))
    server.route("GET", f"/v1/{TRIAL}", Reply(200, done))
    assert client.complete_trial(TRIAL, {"loss": 0.1})["state"] == "SUCCEEDED"
    assert [r.method for r in server.requests] == ["POST", "GET"]


def test_complete_on_a_completed_trial_is_a_failed_precondition_not_retried(server, client):
    server.route("POST", f"/v1/{TRIAL}:complete", err(400, "FAILED_PRECONDITION", "done"))
    with pytest.raises(errors.FailedPreconditionError):
        client.complete_trial(TRIAL)
    assert len(server.requests) == 1


def test_delete_repeated_after_a_drop_counts_a_later_404_as_done(server, client):
    server.route("DELETE", f"/v1/{STUDY}", [Drop(), err(404, "NOT_FOUND")])
    client.delete_study(STUDY)
    assert len(server.requests) == 2
    server.route("DELETE", f"/v1/{STUDY}", err(404, "NOT_FOUND"))
    with pytest.raises(errors.NotFoundError):
        client.delete_study(STUDY)


# ----------------------------------------------------------------------------- paging

def test_list_trials_follows_page_tokens(server, client):
    pages = {None: ([trial_json("1"), trial_json("2")], "t2"),
             "t2": ([trial_json("3")], "t3"), "t3": ([], None)}

    def page(rec: Recorded) -> Reply:
        token = rec.query.get("pageToken", [None])[0]
        trials, nxt = pages[token]
        body: dict[str, Any] = {"trials": trials} if trials else {}
        if nxt:
            body["nextPageToken"] = nxt
        return Reply(200, body)

    server.route("GET", f"/v1/{STUDY}/trials", page)
    trials = client.list_trials(STUDY, page_size=2)
    assert [t["id"] for t in trials] == ["1", "2", "3"]
    assert [r.query.get("pageToken") for r in server.requests] == [None, ["t2"], ["t3"]]
    assert all(r.query["pageSize"] == ["2"] for r in server.requests)


def test_a_page_token_that_repeats_is_a_protocol_error_not_a_loop(server, client):
    server.route("GET", f"/v1/{PARENT}/studies", Reply(200, {"studies": [], "nextPageToken": "a"}))
    with pytest.raises(errors.ProtocolError, match="twice"):
        client.list_studies(PARENT)
    assert len(server.requests) == 2


def test_an_empty_list_may_omit_every_field(server, client):
    server.route("GET", f"/v1/{PARENT}/studies", Reply(200, {}))
    assert client.list_studies(PARENT) == []


# ----------------------------------------------------------------------------- operations

OP = f"{STUDY}/operations/op1"


def test_suggest_polls_an_operation_that_finishes_after_three_polls(server, client):
    server.route("POST", f"/v1/{STUDY}/trials:suggest", Reply(200, {"name": OP}))
    done = {"name": OP, "done": True, "response": {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.SuggestTrialsResponse",
        "trials": [trial_json("4")], "studyState": "ACTIVE"}}
    server.route("GET", f"/v1/{OP}", [Reply(200, {"name": OP}), Reply(200, {"name": OP,
                                      "done": False}), Reply(200, done)])
    result = client.suggest_trials(STUDY, 1, client_id="w0")
    assert [t["id"] for t in result.trials] == ["4"]
    assert result.study_state is StudyState.ACTIVE and result.operation == OP
    assert [r.method for r in server.requests] == ["POST", "GET", "GET", "GET"]
    assert server.requests[0].body == {"suggestionCount": 1, "clientId": "w0"}


def test_an_operation_already_done_is_not_polled(server, client):
    server.route("POST", f"/v1/{TRIAL}:checkTrialEarlyStoppingState", Reply(200, {
        "name": f"{TRIAL}/operations/c1", "done": True, "response": {"shouldStop": True}}))
    assert client.check_trial_early_stopping_state(TRIAL) is True
    assert len(server.requests) == 1


def test_should_stop_absent_means_false(server, client):
    server.route("POST", f"/v1/{TRIAL}:checkTrialEarlyStoppingState", Reply(200, {
        "name": f"{TRIAL}/operations/c1", "done": True, "response": {}}))
    assert client.check_trial_early_stopping_state(TRIAL) is False


def test_suggest_with_no_trials_is_a_defined_outcome(server, client):
    server.route("POST", f"/v1/{STUDY}/trials:suggest", Reply(200, {
        "name": OP, "done": True, "response": {"studyState": "COMPLETED"}}))
    result = client.suggest_trials(STUDY, 2, client_id="w0")
    assert result.trials == [] and result.exhausted
    assert result.study_state is StudyState.COMPLETED


def test_an_operation_error_raises_the_mapped_error_with_the_operation_name(server, client):
    server.route("POST", f"/v1/{STUDY}/trials:suggest", Reply(200, {"name": OP}))
    server.route("GET", f"/v1/{OP}", Reply(200, {"name": OP, "done": True, "error": {
        "code": 13, "message": "designer crashed"}}))
    with pytest.raises(errors.InternalError) as info:
        client.suggest_trials(STUDY, 1, client_id="w0")
    assert info.value.operation == OP and "designer crashed" in str(info.value)
    assert OP in str(info.value)


def test_a_suggest_operation_that_ends_unavailable_is_asked_for_again(server, client):
    server.route("POST", f"/v1/{STUDY}/trials:suggest", [
        Reply(200, {"name": OP, "done": True, "error": {"code": 14, "message": "restarted"}}),
        Reply(200, {"name": OP + "b", "done": True, "response": {"trials": [trial_json()]}})])
    assert len(client.suggest_trials(STUDY, 1, client_id="w0").trials) == 1
    assert len(server.requests) == 2


def test_an_operation_not_done_by_its_deadline_times_out(server):
    server.route("POST", f"/v1/{STUDY}/trials:suggest", Reply(200, {"name": OP}))
    server.route("GET", f"/v1/{OP}", Reply(200, {"name": OP}))
    poll = PollPolicy(initial_delay=0.01, max_delay=0.02, timeout=0.2)
    with VizierClient(server.url, poll=poll) as c, pytest.raises(
            errors.OperationTimeoutError) as info:
        c.suggest_trials(STUDY, 1, client_id="w0")
    assert info.value.operation == OP and isinstance(info.value, TimeoutError)


def test_poll_retries_a_flaky_operation_read(server, client):
    server.route("POST", f"/v1/{STUDY}/trials:suggest", Reply(200, {"name": OP}))
    server.route("GET", f"/v1/{OP}", [err(503, "UNAVAILABLE"), Drop(), Reply(200, {
        "name": OP, "done": True, "response": {"trials": [trial_json()]}})])
    assert len(client.suggest_trials(STUDY, 1, client_id="w0").trials) == 1


def test_wait_operation_sends_the_timeout_as_a_duration(server, client):
    server.route("POST", f"/v1/{OP}:wait", Reply(200, {"name": OP, "done": True}))
    assert client.wait_operation(OP, timeout=2.5)["done"] is True
    assert server.requests[0].query == {"timeout": ["2.500s"]}


# ----------------------------------------------------------------------------- get or create

def test_get_or_create_falls_back_to_lookup_when_another_worker_won_the_race(server, client):
    study = {"name": STUDY, "displayName": "s", "studySpec": SPEC}
    server.route("POST", f"/v1/{PARENT}/studies:lookup", [err(404, "NOT_FOUND"),
                                                          Reply(200, study)])
    server.route("POST", f"/v1/{PARENT}/studies", err(409, "ALREADY_EXISTS"))
    # The answer as proto3 JSON means it: the 0 bound of SPEC is left out.
    assert client.get_or_create_study(PARENT, "s", SPEC) == (
        protojson.canonical("Study", study), False)
    assert [r.path.rsplit("/", 1)[-1] for r in server.requests] == [
        "studies:lookup", "studies", "studies:lookup"]


def test_get_or_create_creates_when_nobody_has(server, client):
    study = {"name": STUDY, "displayName": "s", "studySpec": SPEC}
    server.route("POST", f"/v1/{PARENT}/studies:lookup", err(404, "NOT_FOUND"))
    server.route("POST", f"/v1/{PARENT}/studies", Reply(200, study))
    assert client.get_or_create_study(PARENT, "s", SPEC) == (
        protojson.canonical("Study", study), True)
    assert server.requests[1].body == {"displayName": "s", "studySpec": SPEC}


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize(("call", "field"), [
    (lambda c: c.add_trial_measurement(TRIAL, {"loss": math.nan}), "measurement.metrics"),
    (lambda c: c.add_trial_measurement(TRIAL, {"loss": math.inf}), "measurement.metrics"),
    (lambda c: c.add_trial_measurement(TRIAL, {"my loss": 1.0}), "metricId"),
    (lambda c: c.add_trial_measurement(TRIAL, {"loss": 1.0}, step_count=-1), "stepCount"),
    (lambda c: c.complete_trial(TRIAL, {"loss": 1.0}, infeasible_reason="x"),
     "finalMeasurement"),
    (lambda c: c.create_study(PARENT, "s", {"metrics": [], "parameters": []}),
     "study.studySpec.metrics"),
    (lambda c: c.create_study(PARENT, "", SPEC), "study.displayName"),
    (lambda c: c.get_study("studies/7"), "study"),
    (lambda c: c.get_trial("projects/p/locations/l/studies/7/trials/a b"), "trial"),
    (lambda c: c.suggest_trials(STUDY, 0, client_id="w"), "suggestionCount"),
    (lambda c: c.suggest_trials(STUDY, 1, client_id=""), "clientId"),
    (lambda c: c.create_trial(STUDY, {"x": float("nan")}), "trial.parameters"),
    (lambda c: c.list_trials(STUDY, page_size=0), "page_size"),
])
def test_bad_input_is_rejected_naming_the_field_before_anything_is_sent(server, client, call,
                                                                         field):
    with pytest.raises(errors.ValidationError) as info:
        call(client)
    assert info.value.field.startswith(field) or field in info.value.field
    assert isinstance(info.value, ValueError)
    assert server.requests == []


def test_constructor_rejects_bad_arguments_and_connects_to_nothing():
    with pytest.raises(errors.ValidationError, match="endpoint"):
        VizierClient("ftp://example.com")
    with pytest.raises(errors.ValidationError, match="endpoint"):
        VizierClient()
    with pytest.raises(errors.ValidationError, match="region"):
        VizierClient(region="us central1")
    with pytest.raises(errors.ValidationError, match="timeout"):
        VizierClient("http://127.0.0.1:1", timeout=0)
    with pytest.raises(errors.ValidationError, match="session"):
        VizierClient("http://127.0.0.1:1", token="t", credentials=object())
    # Nothing listens on port 1: a constructor that connected would fail here.
    assert VizierClient("http://127.0.0.1:1/").endpoint == "http://127.0.0.1:1"


# ----------------------------------------------------------------------------- endpoint and auth

def test_endpoints():
    assert vertex_endpoint("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert VizierClient(region="us-central1").endpoint == (
        "https://us-central1-aiplatform.googleapis.com")
    assert endpoint_from_environment({"VIZIER_ENDPOINT": " http://h:1 "}) == "http://h:1"
    assert endpoint_from_environment({}) is None


def test_from_environment_prefers_vizier_endpoint(monkeypatch):
    monkeypatch.setenv("VIZIER_ENDPOINT", "http://127.0.0.1:9")
    assert VizierClient.from_environment("us-central1").endpoint == "http://127.0.0.1:9"
    monkeypatch.delenv("VIZIER_ENDPOINT")
    assert "us-central1-aiplatform" in VizierClient.from_environment("us-central1").endpoint


def test_bearer_token_is_sent_and_never_logged_or_shown(server, caplog):
    server.route("GET", f"/v1/{STUDY}", [err(503, "UNAVAILABLE"), Reply(200, {"name": STUDY})])
    caplog.set_level(logging.DEBUG, logger="vizier_keras")
    with VizierClient(server.url, token="s3cr3t-token", retry=FAST_RETRY) as c:
        c.get_study(STUDY)
        assert "s3cr3t" not in repr(c)
    assert all(r.headers["authorization"] == "Bearer s3cr3t-token" for r in server.requests)
    assert "s3cr3t" not in caplog.text
    assert "GET" in caplog.text  # the HTTP calls are logged, at DEBUG


def test_user_agent_names_the_package(server, client):
    server.route("GET", f"/v1/{STUDY}", Reply(200, {"name": STUDY}))
    client.get_study(STUDY)
    assert "vizier-keras/" in server.requests[0].headers["user-agent"]


def test_google_credentials_sign_requests_and_the_quota_project_is_sent(server):
    from google.oauth2.credentials import Credentials

    server.route("GET", f"/v1/{STUDY}", Reply(200, {"name": STUDY}))
    creds = Credentials(token="ya29.fake", expiry=None)
    with VizierClient(server.url, credentials=creds, quota_project_id="billing-proj") as c:
        c.get_study(STUDY)
    headers = server.requests[0].headers
    assert headers["authorization"] == "Bearer ya29.fake"
    assert headers["x-goog-user-project"] == "billing-proj"


def test_google_endpoint_uses_application_default_credentials_lazily(tmp_path, monkeypatch):
    from google.auth.transport.requests import AuthorizedSession

    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "id",
                               "client_secret": "secret", "refresh_token": "rt"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    client = VizierClient(region="us-central1", quota_project_id="qp")
    assert client._http._session is None  # nothing found or opened in the constructor
    session = client.session
    assert isinstance(session, AuthorizedSession)
    assert session.credentials.quota_project_id == "qp"
    client.close()


def test_a_closed_client_refuses_calls(server):
    c = VizierClient(server.url)
    c.close()
    c.close()
    with pytest.raises(errors.VizierError, match="closed"):
        c.get_study(STUDY)


def test_a_session_given_by_the_caller_is_used_and_left_open(server):
    import requests

    server.route("GET", f"/v1/{STUDY}", Reply(200, {"name": STUDY}))
    session = requests.Session()
    session.headers["x-custom"] = "1"
    with VizierClient(server.url, session=session) as c:
        c.get_study(STUDY)
    assert server.requests[0].headers["x-custom"] == "1"
    assert session.adapters  # not closed by the client
    session.close()


def test_policies_reject_nonsense():
    with pytest.raises(errors.ValidationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(errors.ValidationError):
        PollPolicy(timeout=0)


def test_client_is_safe_to_share_between_threads(server, client):
    server.route("GET", f"/v1/{TRIAL}", Reply(200, trial_json()))
    results: list[str] = []

    def work() -> None:
        for _ in range(20):
            results.append(client.get_trial(TRIAL)["id"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["1"] * 80

