"""The embedded service over HTTP on loopback, through our client and through Google's own
discovery-based client: Vertex semantics, rejected input, early stopping, conditional spaces,
algorithms, multi-objective studies and failing algorithms."""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

import pytest
import requests
from conftest import FAST_POLL, FAST_RETRY, shaped_session, unique
from discovery import Discovery
from isolated import run_python
from processes import ServerProcess

from vizier_keras import errors, studyspec
from vizier_keras.client import PollPolicy, VizierClient
from vizier_keras.wire import StudyState

PARENT = "projects/test-project/locations/us-central1"
DISCOVERY = Discovery.load()
TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."


def spec(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
        "parameters": [
            {"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4, "maxValue": 1e-1},
             "scaleType": "UNIT_LOG_SCALE"},
            {"parameterId": "units", "integerValueSpec": {"minValue": "8", "maxValue": "64"}},
            {"parameterId": "act", "categoricalValueSpec": {"values": ["relu", "tanh"]}},
        ],
        "algorithm": "RANDOM_SEARCH",
    }
    base.update(extra)
    return base


def new_study(client: VizierClient, **extra: Any) -> dict[str, Any]:
    return client.create_study(PARENT, unique(), spec(**extra))


def one_trial(client: VizierClient, study: dict[str, Any], worker: str = "w0"
              ) -> dict[str, Any]:
    result = client.suggest_trials(study, 1, client_id=worker)
    assert len(result.trials) == 1
    return result.trials[0]


# ----------------------------------------------------------------------------- contract

class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[str, str, Any, int, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().request(method, url, **kwargs)
        data = kwargs.get("data")
        self.exchanges.append((method, url, json.loads(data) if data else None,
                               response.status_code, response.json()))
        return response


def _validate_response(method_id: str, body: Any) -> list[str]:
    m = DISCOVERY.methods[method_id]
    problems = DISCOVERY.validate(m.response_ref, body)
    for key in ("metadata", "response"):
        packed = body.get(key) if isinstance(body, dict) else None
        if packed:
            ref = "GoogleCloudAiplatformV1" + packed["@type"].removeprefix(TYPE_PREFIX)
            problems += DISCOVERY.validate(ref, {k: v for k, v in packed.items()
                                                 if k != "@type"})
    return problems


def test_every_answer_of_a_full_study_fits_the_discovery_document(served):
    session = RecordingSession()
    client = VizierClient(served.url, session=session, retry=FAST_RETRY, poll=FAST_POLL)
    _exercise(client)
    session.close()
    _check_exchanges(session, served.url)


def _exercise(client: VizierClient) -> None:
    # A location of its own: the listing must hold only studies that Vertex's document can
    # describe, not those of the tests of this service's extension algorithms.
    parent = f"projects/test-project/locations/{unique('contract')}"
    study, _ = client.get_or_create_study(parent, unique(), spec(
        medianAutomatedStoppingSpec={}, measurementSelectionType="BEST_MEASUREMENT"))
    client.get_study(study)
    client.create_study(parent, unique(), spec())
    client.list_studies(parent, page_size=1)  # two pages: a nextPageToken is answered
    trial = one_trial(client, study)
    client.add_trial_measurement(trial, {"loss": 0.5}, step_count=1, elapsed_seconds=1.5)
    client.check_trial_early_stopping_state(trial)
    op = client.start_check_trial_early_stopping_state(trial)
    client.get_operation(op["name"])
    client.wait_operation(op["name"], timeout=1)
    client.complete_trial(trial)
    suggest_op = client.start_suggest_trials(study, 1, "w1")
    client.get_operation(suggest_op["name"])
    client.wait_operation(suggest_op["name"], timeout=1)
    created = client.create_trial(study, {"lr": 0.01, "units": 16, "act": "tanh"})
    client.get_trial(created)
    client.stop_trial(client.suggest_trials(study, 1, client_id="w2").trials[0])
    client.list_trials(study, page_size=1)
    client.list_optimal_trials(study)
    client.delete_trial(created)
    client.delete_study(study)


def _check_exchanges(session: RecordingSession, base: str) -> None:
    seen = set()
    for method, url, request_body, status, answer in session.exchanges:
        path = url.split("?")[0].removeprefix(base)
        m = DISCOVERY.match(method, path)
        seen.add(m.id)
        if request_body is not None and m.request_ref:
            assert not DISCOVERY.validate(m.request_ref, request_body)
        if status != 200:  # get_or_create's first lookup
            assert (m.id.endswith("studies.lookup"), status) == (True, 404)
            assert set(answer["error"]) == {"code", "message", "status"}
            continue
        assert not _validate_response(m.id, answer), (m.id, answer)
    wanted = {k for k in DISCOVERY.vizier_methods()
              if not re.search(r"operations\.(cancel|delete|list)$", k)}
    assert seen == wanted, wanted ^ seen


def test_google_discovery_client_works_unchanged(served):
    import googleapiclient
    import httplib2
    from google.api_core.client_options import ClientOptions
    from googleapiclient.discovery import build_from_document
    from googleapiclient.errors import HttpError

    path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache",
                        "documents", "aiplatform.v1.json")
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    transport = httplib2.Http()
    api = build_from_document(doc, http=transport,
                              client_options=ClientOptions(api_endpoint=served.url + "/"))
    studies = api.projects().locations().studies()
    name = unique()
    study = studies.create(parent=PARENT, body={"displayName": name,
                                                "studySpec": spec()}).execute()
    op = studies.trials().suggest(parent=study["name"],
                                  body={"suggestionCount": 2, "clientId": "g"}).execute()
    assert op["done"] and len(op["response"]["trials"]) == 2
    trial = op["response"]["trials"][0]
    studies.trials().addTrialMeasurement(trialName=trial["name"], body={"measurement": {
        "stepCount": "1", "metrics": [{"metricId": "loss", "value": 0.5}]}}).execute()
    done = studies.trials().complete(name=trial["name"], body={}).execute()
    assert done["state"] == "SUCCEEDED" and done["finalMeasurement"]["stepCount"] == "1"
    assert studies.operations().get(name=op["name"]).execute()["done"]
    assert studies.lookup(parent=PARENT, body={"displayName": name}).execute()["name"] == (
        study["name"])
    with pytest.raises(HttpError) as info:
        studies.create(parent=PARENT, body={"displayName": name, "studySpec": spec()}).execute()
    assert info.value.resp.status == 409
    transport.close()


# ----------------------------------------------------------------------------- studies

def test_create_assigns_an_id_and_a_taken_display_name_answers_409(vizier):
    name = unique()
    study = vizier.create_study(PARENT, name, spec())
    assert study["name"].startswith(f"{PARENT}/studies/")
    assert study["name"].rsplit("/", 1)[1].isdigit()
    assert study["state"] == "ACTIVE" and study["displayName"] == name
    assert study["studySpec"] == spec() and study["createTime"].endswith("Z")
    with pytest.raises(errors.AlreadyExistsError):
        vizier.create_study(PARENT, name, spec())
    assert vizier.lookup_study(PARENT, name)["name"] == study["name"]
    with pytest.raises(errors.NotFoundError):
        vizier.lookup_study(PARENT, unique())
    with pytest.raises(errors.NotFoundError):
        vizier.get_study(f"{PARENT}/studies/999")


def test_get_or_create_races_end_with_one_study(vizier, served):
    name = unique()
    results: list[tuple[dict[str, Any], bool]] = []

    def race() -> None:
        with VizierClient(served.url, retry=FAST_RETRY) as c:
            results.append(c.get_or_create_study(PARENT, name, spec()))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r[0]["name"] for r in results}) == 1
    assert sum(created for _, created in results) == 1


def test_studies_are_listed_in_pages_per_location(vizier):
    location = f"projects/p-{unique()}/locations/europe-west4"
    names = {vizier.create_study(location, unique(), spec())["name"] for _ in range(5)}
    assert {s["name"] for s in vizier.list_studies(location, page_size=2)} == names
    assert vizier.list_studies(f"projects/p-{unique()}/locations/x") == []
    study = vizier.list_studies(location)[0]
    vizier.delete_study(study)
    with pytest.raises(errors.NotFoundError):
        vizier.get_study(study)
    assert len(vizier.list_studies(location)) == 4


def test_algorithm_names_are_checked_at_creation(vizier):
    with pytest.raises(errors.InvalidArgumentError, match="SIMULATED_ANNEALING"):
        new_study(vizier, algorithm="SIMULATED_ANNEALING")
    two = spec(algorithm="EAGLE_STRATEGY", metrics=[
        {"metricId": "a", "goal": "MAXIMIZE"}, {"metricId": "b", "goal": "MINIMIZE"}])
    with pytest.raises(errors.InvalidArgumentError, match="EAGLE_STRATEGY"):
        vizier.create_study(PARENT, unique(), two)


@pytest.mark.parametrize(("body", "field"), [
    ({"displayName": "x"}, "studySpec"),
    ({"displayName": "x", "studySpec": {**spec(), "metrics": []}}, "metrics"),
    ({"displayName": "x", "studySpec": spec(), "colour": "blue"}, "colour"),
    ({"displayName": "", "studySpec": spec()}, "displayName"),
])
def test_bad_study_bodies_answer_invalid_argument_naming_the_field(served, body, field):
    response = requests.post(f"{served.url}/v1/{PARENT}/studies", json=body, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400
    assert field in error["message"]


def test_unknown_paths_methods_and_query_parameters(served):
    url = served.url
    r = requests.get(f"{url}/v1/{PARENT}/bogus", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    r = requests.put(f"{url}/v1/{PARENT}/studies", json={}, timeout=30)
    assert r.status_code == 404
    r = requests.get(f"{url}/v1/{PARENT}/studies?colour=red", timeout=30)
    assert r.status_code == 400 and "colour" in r.json()["error"]["message"]
    r = requests.get(f"{url}/v1/{PARENT}/studies?alt=json&prettyPrint=false", timeout=30)
    assert r.status_code == 200
    r = requests.post(f"{url}/v1/{PARENT}/studies", data=b"{not json", timeout=30)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = requests.get(f"{url}/v1/{PARENT}/studies?pageToken=garbage!", timeout=30)
    assert r.status_code == 400 and "pageToken" in r.json()["error"]["message"]


# ----------------------------------------------------------------------------- trials

def test_a_trial_lifecycle_has_vertex_fields(vizier):
    study = new_study(vizier)
    trial = one_trial(vizier, study)
    assert trial["state"] == "ACTIVE" and trial["clientId"] == "w0"
    assert trial["startTime"].endswith("Z") and "endTime" not in trial
    params = {p["parameterId"]: p["value"] for p in trial["parameters"]}
    assert set(params) == {"lr", "units", "act"}
    assert 1e-4 <= params["lr"] <= 0.1 and float(params["units"]).is_integer()
    # Same client, trial pending: the same trial comes back.
    assert one_trial(vizier, study)["name"] == trial["name"]
    assert one_trial(vizier, study, "w1")["name"] != trial["name"]
    vizier.add_trial_measurement(trial, {"loss": 0.9}, step_count=2, elapsed_seconds=2)
    vizier.add_trial_measurement(trial, {"loss": 0.7}, step_count=1, elapsed_seconds=1)
    got = vizier.get_trial(trial)
    assert [m["stepCount"] for m in got["measurements"]] == ["1", "2"]  # ordered by step
    done = vizier.complete_trial(trial)
    assert done["state"] == "SUCCEEDED" and done["endTime"] >= done["startTime"]
    assert done["finalMeasurement"]["stepCount"] == "2"  # LAST by default
    with pytest.raises(errors.FailedPreconditionError):
        vizier.complete_trial(trial)
    with pytest.raises(errors.FailedPreconditionError):
        vizier.add_trial_measurement(trial, {"loss": 0.1})


def test_best_measurement_selection_and_explicit_final(vizier):
    study = new_study(vizier, measurementSelectionType="BEST_MEASUREMENT")
    trial = one_trial(vizier, study)
    for step, loss in [(1, 0.9), (2, 0.4), (3, 0.6)]:
        vizier.add_trial_measurement(trial, {"loss": loss}, step_count=step)
    done = vizier.complete_trial(trial)
    assert done["finalMeasurement"]["metrics"] == [{"metricId": "loss", "value": 0.4}]
    other = one_trial(vizier, study)
    final = vizier.complete_trial(other, {"loss": 0.123}, step_count=7)
    assert final["finalMeasurement"] == {"stepCount": "7", "metrics": [
        {"metricId": "loss", "value": 0.123}]}


def test_complete_without_any_measurement_is_refused_and_nothing_changes(vizier):
    study = new_study(vizier)
    trial = one_trial(vizier, study)
    with pytest.raises(errors.FailedPreconditionError, match="no measurement"):
        vizier.complete_trial(trial)
    assert vizier.get_trial(trial)["state"] == "ACTIVE"


def test_infeasible_trials(vizier):
    study = new_study(vizier)
    trial = one_trial(vizier, study)
    done = vizier.complete_trial(trial, infeasible_reason="loss was NaN at epoch 3")
    assert done["state"] == "INFEASIBLE"
    assert done["infeasibleReason"] == "loss was NaN at epoch 3" and "endTime" in done
    assert vizier.list_optimal_trials(study) == []


def test_rejected_measurements_change_nothing(vizier, served):
    study = new_study(vizier)
    trial = one_trial(vizier, study)
    url = f"{served.url}/v1/{trial['name']}:addTrialMeasurement"
    for bad, field in [
        ({"measurement": {"metrics": [{"metricId": "loss", "value": "NaN"}]}}, "value"),
        ({"measurement": {"metrics": [{"metricId": "loss", "value": 1}], "stepCount": "-1"}},
         "stepCount"),
        ({"measurement": {"metrics": [{"metricId": "a b", "value": 1}]}}, "metricId"),
        ({"measurement": {"metrics": [], "colour": 1}}, "colour"),
        ({"measurements": {}}, "measurements"),
    ]:
        r = requests.post(url, json=bad, timeout=30)
        assert r.status_code == 400, bad
        assert field in r.json()["error"]["message"]
    assert "measurements" not in vizier.get_trial(trial)


def test_create_trial_checks_parameters_against_the_spec(vizier):
    study = new_study(vizier)
    good = vizier.create_trial(study, {"lr": 0.01, "units": 16, "act": "tanh"})
    assert good["state"] == "REQUESTED"
    for params, field in [
        ({"lr": 0.01, "units": 16}, "act"),
        ({"lr": 0.01, "units": 16, "act": "elu"}, "act"),
        ({"lr": 5.0, "units": 16, "act": "relu"}, "lr"),
        ({"lr": 0.01, "units": 16.5, "act": "relu"}, "units"),
        ({"lr": 0.01, "units": 16, "act": "relu", "extra": 1}, "extra"),
    ]:
        with pytest.raises(errors.InvalidArgumentError, match=field):
            vizier.create_trial(study, params)
    assert len(vizier.list_trials(study)) == 1
    # A created trial is handed out by the next suggestion.
    assert one_trial(vizier, study)["name"] == good["name"]


def test_stop_trial_and_the_early_stopping_check_agree(vizier):
    study = new_study(vizier)
    trial = one_trial(vizier, study)
    assert vizier.check_trial_early_stopping_state(trial) is False
    assert vizier.stop_trial(trial)["state"] == "STOPPING"
    assert vizier.check_trial_early_stopping_state(trial) is True
    vizier.add_trial_measurement(trial, {"loss": 0.3}, step_count=1)  # STOPPING still reports
    assert vizier.complete_trial(trial)["state"] == "SUCCEEDED"
    with pytest.raises(errors.FailedPreconditionError):
        vizier.check_trial_early_stopping_state(trial)
    requested = vizier.create_trial(study, {"lr": 0.01, "units": 16, "act": "tanh"})
    with pytest.raises(errors.FailedPreconditionError):
        vizier.stop_trial(requested)


def test_trials_are_paged(vizier):
    study = new_study(vizier)
    vizier.suggest_trials(study, 7, client_id="w0")
    assert [int(t["id"]) for t in vizier.list_trials(study, page_size=3)] == list(range(1, 8))


# ----------------------------------------------------------------------------- early stopping

@pytest.mark.parametrize("rule", ["medianAutomatedStoppingSpec", "decayCurveStoppingSpec"])
def test_automated_stopping_reads_the_measurements(vizier, rule):
    study = new_study(vizier, **{rule: {}})
    for w in range(4):
        trial = one_trial(vizier, study, f"done{w}")
        for step, loss in enumerate([1.0, 0.6, 0.45, 0.4], start=1):
            vizier.add_trial_measurement(trial, {"loss": loss + 0.01 * w}, step_count=step)
        vizier.complete_trial(trial)
    bad = one_trial(vizier, study, "bad")
    good = one_trial(vizier, study, "good")
    for step, (bad_loss, good_loss) in enumerate([(2.0, 0.9), (1.9, 0.5)], start=1):
        vizier.add_trial_measurement(bad, {"loss": bad_loss}, step_count=step)
        vizier.add_trial_measurement(good, {"loss": good_loss}, step_count=step)
    assert vizier.check_trial_early_stopping_state(bad) is True
    assert vizier.check_trial_early_stopping_state(good) is False
    op = vizier.start_check_trial_early_stopping_state(bad)
    assert vizier.get_operation(op["name"])["response"]["shouldStop"] is True


def test_stopping_checks_follow_deleted_completed_trials(vizier):
    # The service keeps completed trials' curves between checks; a deleted trial must leave
    # the decision, and checks must keep agreeing with the trials as they are.
    study = new_study(vizier, medianAutomatedStoppingSpec={})
    done = []
    for w in range(3):
        trial = one_trial(vizier, study, f"done{w}")
        for step, loss in enumerate([1.0, 0.5, 0.4], start=1):
            vizier.add_trial_measurement(trial, {"loss": loss}, step_count=step)
        done.append(vizier.complete_trial(trial))
    bad = one_trial(vizier, study, "bad")
    vizier.add_trial_measurement(bad, {"loss": 2.0}, step_count=1)
    vizier.add_trial_measurement(bad, {"loss": 1.9}, step_count=2)
    assert vizier.check_trial_early_stopping_state(bad) is True
    bad2 = one_trial(vizier, study, "bad2")
    vizier.add_trial_measurement(bad2, {"loss": 2.0}, step_count=1)
    vizier.add_trial_measurement(bad2, {"loss": 1.9}, step_count=2)
    for trial in done:
        vizier.delete_trial(trial)
    # No completed trial is left to compare with: the median rule keeps the trial.
    assert vizier.check_trial_early_stopping_state(bad2) is False


@pytest.mark.slow  # a fresh interpreter
def test_a_stopping_check_racing_a_deletion_keeps_no_stale_curve():
    # A check runs under OSS's study lock and a deletion under ours, so a check can cache a
    # completed trial just as it is deleted; trial ids are the highest + 1, so the next trial
    # takes the deleted one's id. In process, to leave the file and the cache as the race
    # does: the trial gone from the database, its curve still cached.
    assert "ok" in run_python("""
        import tempfile, os
        from vizier_keras.client import VizierClient
        from vizier_keras.server.app import VizierHTTPServer
        from vizier_keras.server.service import VizierService
        from test_server import PARENT, spec

        service = VizierService(os.path.join(tempfile.mkdtemp(), "v.db"))
        with VizierHTTPServer(service) as http, VizierClient(http.url) as c:
            study = c.create_study(PARENT, "s", spec(medianAutomatedStoppingSpec={}))

            def run(worker, loss, complete=True):
                trial = c.suggest_trials(study, 1, client_id=worker).trials[0]
                for step in (1, 2):
                    c.add_trial_measurement(trial, {"loss": loss}, step_count=step)
                return c.complete_trial(trial) if complete else trial

            checked = run("checked", 2.0, complete=False)
            run("good", 1.0)
            run("bad", 3.0)
            worse = run("worse", 3.0)
            # Median of the completed running averages (1.0, 3.0, 3.0) is 3.0: kept.
            assert c.check_trial_early_stopping_state(checked) is False
            [key] = [k for k in next(iter(service._completed_json.values()))
                     if k.endswith("/" + worse["id"])]
            service._ds.delete_trial(key)
            better = run("better", 1.0)
            assert better["id"] == worse["id"], (better["id"], worse["id"])
            # Now (1.0, 3.0, 1.0): worse than the median, the checked trial stops. A stale
            # cached curve (3.0) under the reused id would keep it.
            assert c.check_trial_early_stopping_state(checked) is True, "kept"
        service.close()
        print("ok")
    """)


# ----------------------------------------------------------------------------- study stopping

def test_max_num_trials_is_counted_study_wide(vizier):
    study = new_study(vizier, studyStoppingConfig={"maxNumTrials": 3})
    got = vizier.suggest_trials(study, 2, client_id="a").trials
    got += vizier.suggest_trials(study, 5, client_id="b").trials
    assert len(got) == 3
    # A client still gets back its own pending trial; nobody gets a new one.
    again = vizier.suggest_trials(study, 1, client_id="a")
    assert again.trials and again.trials[0]["name"] in {t["name"] for t in got}
    for trial in got:
        vizier.complete_trial(trial, {"loss": 1.0})
    result = vizier.suggest_trials(study, 1, client_id="c")
    assert result.exhausted and result.study_state is StudyState.COMPLETED
    assert vizier.get_study(study)["state"] == "COMPLETED"
    assert "maxNumTrials" in vizier.get_study(study)["inactiveReason"]


# ----------------------------------------------------------------------------- conditional spaces

CONDITIONAL = {
    "metrics": [{"metricId": "acc", "goal": "MAXIMIZE"}],
    "parameters": [
        {"parameterId": "model", "categoricalValueSpec": {"values": ["mlp", "cnn"]},
         "conditionalParameterSpecs": [
             {"parentCategoricalValues": {"values": ["mlp"]},
              "parameterSpec": {"parameterId": "layers",
                                "integerValueSpec": {"minValue": "1", "maxValue": "3"},
                                "conditionalParameterSpecs": [
                                    {"parentIntValues": {"values": ["3"]},
                                     "parameterSpec": {"parameterId": "dropout",
                                                       "doubleValueSpec": {"minValue": 0,
                                                                           "maxValue": 0.5}}}]}},
             {"parentCategoricalValues": {"values": ["cnn"]},
              "parameterSpec": {"parameterId": "layers",
                                "discreteValueSpec": {"values": [2, 4, 8]}}}]},
        {"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4, "maxValue": 1e-1},
         "scaleType": "UNIT_LOG_SCALE"},
    ],
}


@pytest.mark.parametrize("algorithm", ["RANDOM_SEARCH", "QUASI_RANDOM_SEARCH", "GRID_SEARCH"])
def test_conditional_spaces_get_only_active_parameters(vizier, algorithm):
    study = vizier.create_study(PARENT, unique(), {**CONDITIONAL, "algorithm": algorithm})
    seen_models = set()
    for i in range(12):
        trial = one_trial(vizier, study, f"w{i}")
        values = {p["parameterId"]: p["value"] for p in trial["parameters"]}
        active = {n.id for n in studyspec.active_parameters(CONDITIONAL, {
            k: (int(v) if k == "layers" and values.get("model") == "mlp" else v)
            for k, v in values.items()})}
        assert set(values) == active, values
        if values["model"] == "cnn":
            assert values["layers"] in (2, 4, 8) and "dropout" not in values
        else:
            assert values["layers"] in (1, 2, 3)
            assert ("dropout" in values) == (values["layers"] == 3)
        seen_models.add(values["model"])
        vizier.complete_trial(trial, {"acc": 0.5 + 0.01 * i})
    if algorithm != "GRID_SEARCH":
        assert seen_models == {"mlp", "cnn"}


# ----------------------------------------------------------------------------- algorithms

@pytest.mark.parametrize("algorithm", ["RANDOM_SEARCH", "QUASI_RANDOM_SEARCH", "GRID_SEARCH",
                                       "EAGLE_STRATEGY"])
def test_each_cheap_algorithm_suggests_and_learns(vizier, algorithm):
    study = new_study(vizier, algorithm=algorithm)
    names = set()
    for i in range(6):
        trial = one_trial(vizier, study, f"w{i}")
        names.add(trial["name"])
        vizier.complete_trial(trial, {"loss": float(i)})
    assert len(names) == 6


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ALGORITHM_UNSPECIFIED", "GAUSSIAN_PROCESS_BANDIT"])
def test_gaussian_process_algorithms_suggest(local_server, wire_shape, algorithm):
    # The GP algorithms run in the server's own TensorFlow-free process only; their first
    # suggestion compiles for seconds to minutes on a busy machine.
    with VizierClient(local_server.url, session=shaped_session(wire_shape), retry=FAST_RETRY,
                      poll=PollPolicy(initial_delay=0.05, max_delay=0.5, timeout=300),
                      timeout=120) as vizier:
        study = new_study(vizier, algorithm=algorithm)
        for i in range(3):
            trial = one_trial(vizier, study, f"w{i}")
            assert {p["parameterId"] for p in trial["parameters"]} == {"lr", "units", "act"}
            vizier.complete_trial(trial, {"loss": 1.0 / (i + 1)})


@pytest.mark.slow
def test_the_default_algorithm_sees_what_open_source_vizier_would_give_it():
    # The service's default designer is OSS's GP-UCB-PE; README and benchmarks compare it with
    # plain OSS on that premise. Here the designer's inputs through the REST path are recorded
    # (a spy on its update) and compared with what OSS's own client would build for the same
    # study: the problem statement from an OSS StudyConfig, and the completed trials with the
    # values and results the worker saw and sent. Five seed trials: no GP fit is needed.
    assert "ok" in run_python("""
        import tempfile, os
        from vizier._src.algorithms.designers import gp_ucb_pe
        from vizier.service import pyvizier as ovz
        from vizier_keras.client import VizierClient
        from vizier_keras.server.app import VizierHTTPServer
        from vizier_keras.server.service import VizierService
        from test_server import PARENT

        seen = []
        update = gp_ucb_pe.VizierGPUCBPEBandit.update

        def spy(self, completed, active):
            seen.append((self._problem, list(completed.trials), list(active.trials)))
            return update(self, completed, active)

        gp_ucb_pe.VizierGPUCBPEBandit.update = spy
        vertex = {
            "metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
            "parameters": [
                {"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4, "maxValue": 0.1},
                 "scaleType": "UNIT_LOG_SCALE"},
                {"parameterId": "dropout", "doubleValueSpec": {"minValue": 0, "maxValue": 0.5},
                 "scaleType": "UNIT_LINEAR_SCALE"},
                {"parameterId": "units", "integerValueSpec": {"minValue": "8", "maxValue": "256"},
                 "scaleType": "UNIT_LOG_SCALE"},
                {"parameterId": "layers", "integerValueSpec": {"minValue": "1", "maxValue": "3"}},
                {"parameterId": "batch", "discreteValueSpec": {"values": [16, 32, 64]},
                 "scaleType": "UNIT_LINEAR_SCALE"},
                {"parameterId": "act", "categoricalValueSpec": {"values": ["relu", "tanh"]}},
            ],
        }
        oss = ovz.StudyConfig(algorithm="DEFAULT")
        root = oss.search_space.root
        root.add_float_param("lr", 1e-4, 0.1, scale_type=ovz.ScaleType.LOG)
        root.add_float_param("dropout", 0.0, 0.5, scale_type=ovz.ScaleType.LINEAR)
        root.add_int_param("units", 8, 256, scale_type=ovz.ScaleType.LOG)
        root.add_int_param("layers", 1, 3)
        root.add_discrete_param("batch", [16.0, 32.0, 64.0])  # Vertex's discrete values are doubles
        root.add_categorical_param("act", ["relu", "tanh"])
        oss.metric_information.append(
            ovz.MetricInformation("loss", goal=ovz.ObjectiveMetricGoal.MINIMIZE))
        # What OSS's service builds from the StudyConfig its client sends.
        expected = ovz.StudyConfig.from_proto(oss.to_proto()).to_problem()

        def model_view(problem):
            # What the designer's models read of each parameter. (Not the external type: OSS
            # marks an all-integer discrete parameter INTEGER, to hand its values back as ints;
            # Vertex's discrete values are doubles on the wire, so ours stay doubles.)
            view = []
            for p in problem.search_space.parameters:
                kind = p.type.name
                view.append((p.name, kind, p.scale_type,
                             None if kind == "CATEGORICAL" else p.bounds,
                             p.feasible_values if kind in ("DISCRETE", "CATEGORICAL") else None))
            return view

        service = VizierService(os.path.join(tempfile.mkdtemp(), "v.db"))
        sent = []
        with VizierHTTPServer(service) as http, VizierClient(http.url) as c:
            study = c.create_study(PARENT, "s", vertex)
            for i in range(4):
                trial = c.suggest_trials(study, 1, client_id="w0").trials[0]
                values = {p["parameterId"]: p["value"] for p in trial["parameters"]}
                loss = 1.0 / (i + 2)
                sent.append((values, loss))
                c.complete_trial(trial, {"loss": loss})
        service.close()

        # The first suggestion, with no trials, has nothing to update the designer with.
        assert [len(completed) for _, completed, _ in seen] == [1, 2, 3]
        for step, (problem, completed, active) in enumerate(seen):
            assert model_view(problem) == model_view(expected), step
            assert problem.metric_information == expected.metric_information, step
            assert active == [], step
            for trial, (values, loss) in zip(completed, sent):
                assert trial.parameters.as_dict() == values, (step, trial.parameters, values)
                assert trial.final_measurement.metrics["loss"].value == loss, step
        print("ok")
    """)


def test_multi_objective_study_and_its_pareto_front(vizier):
    two = spec(algorithm="NSGA2", metrics=[{"metricId": "acc", "goal": "MAXIMIZE"},
                                           {"metricId": "latency", "goal": "MINIMIZE"}])
    study = vizier.create_study(PARENT, unique(), two)
    outcomes = [(0.9, 10.0), (0.8, 5.0), (0.7, 20.0), (0.95, 30.0), (0.6, 4.0)]
    names = []
    for i, (acc, latency) in enumerate(outcomes):
        trial = one_trial(vizier, study, f"w{i}")
        vizier.complete_trial(trial, {"acc": acc, "latency": latency})
        names.append(trial["name"])
    infeasible = one_trial(vizier, study, "x")
    vizier.complete_trial(infeasible, infeasible_reason="crashed")
    front = {t["name"] for t in vizier.list_optimal_trials(study)}
    # (0.7, 20) is dominated by (0.9, 10); all others are on the front.
    assert front == {names[0], names[1], names[3], names[4]}


# ----------------------------------------------------------------------------- failing algorithms

@pytest.mark.slow  # a fresh interpreter
def test_a_failing_algorithm_ends_its_operation_and_the_next_suggest_works():
    # In process, to give the service an algorithm that fails once.
    assert "ok" in run_python("""
        import tempfile, os, pytest
        from vizier_keras import errors
        from vizier_keras.client import VizierClient
        from vizier_keras.server import policies
        from vizier_keras.server.app import VizierHTTPServer
        from vizier_keras.server.service import VizierService
        from test_server import PARENT, spec

        calls = {"n": 0}

        def flaky(problem, algorithm, supporter, **_):
            calls["n"] += 1
            if calls["n"] == 1:
                raise ZeroDivisionError("designer blew up")
            return policies.make_policy(problem, algorithm, supporter)

        service = VizierService(os.path.join(tempfile.mkdtemp(), "v.db"), policy_factory=flaky)
        with VizierHTTPServer(service) as http, VizierClient(http.url) as c:
            study = c.create_study(PARENT, "s", spec())
            with pytest.raises(errors.InternalError, match="designer blew up") as info:
                c.suggest_trials(study, 1, client_id="w0")
            assert info.value.operation and "/operations/" in info.value.operation
            assert c.get_operation(info.value.operation)["error"]["code"] == 13
            assert len(c.suggest_trials(study, 1, client_id="w0").trials) == 1
        service.close()
        print("ok")
    """)


@pytest.mark.slow  # a server process
def test_token_is_required_when_set(tmp_path):
    server = ServerProcess(tmp_path / "v.db", "--token", "s3cret")
    try:
        url = server.wait_ready()
        r = requests.get(f"{url}/v1/{PARENT}/studies", timeout=30)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["error"]["status"] == "UNAUTHENTICATED"
        with VizierClient(url, token="wrong") as c, pytest.raises(errors.UnauthenticatedError):
            c.list_studies(PARENT)
        with VizierClient(url, token="s3cret") as c:
            assert c.list_studies(PARENT) == []
    finally:
        server.stop()
