"""Google's own generated client (google-cloud-aiplatform, REST transport) drives every
VizierService method against the embedded server: it sends enums as numbers
(``$alt=json;enum-encoding=int``), leaves defaults out, and reads answers with protobuf."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1 import VizierServiceClient
from google.cloud.aiplatform_v1 import types as v1
from google.cloud.aiplatform_v1.services.vizier_service.transports.rest import (
    VizierServiceRestTransport,
)
from google.longrunning import operations_pb2

PARENT = "projects/google-client/locations/us-central1"
Spec = v1.StudySpec
Param = v1.StudySpec.ParameterSpec


@pytest.fixture(scope="module", params=[
    "in-process", pytest.param("vizier-keras serve", marks=pytest.mark.slow)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """The embedded service's URL: in this process, or the session's ``vizier-keras serve``."""
    if request.param == "vizier-keras serve":
        yield request.getfixturevalue("local_server").url
        return
    from vizier_keras.server.app import VizierHTTPServer
    from vizier_keras.server.service import VizierService

    service = VizierService(tmp_path_factory.mktemp("google") / "vizier.db")
    try:
        with VizierHTTPServer(service) as http:
            yield http.url
    finally:
        service.close()


@pytest.fixture(scope="module")
def google(server: str) -> VizierServiceClient:
    transport = VizierServiceRestTransport(host=server.removeprefix("http://"),
                                           credentials=AnonymousCredentials(), url_scheme="http")
    return VizierServiceClient(transport=transport)


def unique_name(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def every_kind_of_parameter(**extra: Any) -> v1.StudySpec:
    """Every parameter type, 0 bounds (which protobuf leaves out), and a conditional child."""
    return Spec(
        metrics=[Spec.MetricSpec(metric_id="accuracy", goal=Spec.MetricSpec.GoalType.MAXIMIZE)],
        parameters=[
            Param(parameter_id="dropout", double_value_spec=Param.DoubleValueSpec(
                min_value=0.0, max_value=0.5)),
            Param(parameter_id="layers", integer_value_spec=Param.IntegerValueSpec(
                min_value=0, max_value=2)),
            Param(parameter_id="batch", discrete_value_spec=Param.DiscreteValueSpec(
                values=[16, 32, 64]), scale_type=Param.ScaleType.UNIT_LOG_SCALE),
            Param(parameter_id="optimizer", categorical_value_spec=Param.CategoricalValueSpec(
                values=["adam", "sgd"]), conditional_parameter_specs=[
                Param.ConditionalParameterSpec(
                    parent_categorical_values=Param.ConditionalParameterSpec
                    .CategoricalValueCondition(values=["sgd"]),
                    parameter_spec=Param(parameter_id="momentum",
                                         double_value_spec=Param.DoubleValueSpec(
                                             min_value=0.0, max_value=0.9)))]),
        ],
        algorithm=Spec.Algorithm.RANDOM_SEARCH,
        median_automated_stopping_spec=Spec.MedianAutomatedStoppingSpec(),
        **extra)


def status_of(error: exceptions.GoogleAPICallError) -> str:
    """The google.rpc status name of an HTTP error. Over REST, api_core picks the exception
    class by HTTP status alone, so INVALID_ARGUMENT and FAILED_PRECONDITION (both 400) both
    arrive as BadRequest, from Vertex as from this server; the body names the status."""
    return str(error.response.json()["error"]["status"])


def new_study(google: VizierServiceClient, name: str, **extra: Any) -> v1.Study:
    return google.create_study(parent=PARENT, study=v1.Study(
        display_name=name, study_spec=every_kind_of_parameter(**extra)))


@pytest.fixture
def names() -> dict[str, str]:
    """Display names unique to one test, since the served database outlives it."""
    return {key: unique_name(key) for key in ("lifecycle", "operations", "taken", "enums")}


def suggest(google: VizierServiceClient, study: v1.Study, count: int,
            client_id: str) -> v1.SuggestTrialsResponse:
    operation = google.suggest_trials(request=v1.SuggestTrialsRequest(
        parent=study.name, suggestion_count=count, client_id=client_id))
    return operation.result(timeout=60)


def test_a_whole_study_lifecycle(google, names):
    study = new_study(google, names["lifecycle"])
    assert study.state == v1.Study.State.ACTIVE
    assert study.study_spec == every_kind_of_parameter()  # the 0 bounds came back as 0
    assert google.get_study(name=study.name) == study
    assert google.lookup_study(request=v1.LookupStudyRequest(
        parent=PARENT, display_name=names["lifecycle"])) == study
    assert study.name in [s.name for s in google.list_studies(parent=PARENT)]

    response = suggest(google, study, 2, "worker-0")
    assert response.study_state == v1.Study.State.ACTIVE
    first, second = response.trials
    assert first.state == v1.Trial.State.ACTIVE and first.client_id == "worker-0"
    ids = {p.parameter_id for p in first.parameters}
    assert {"dropout", "layers", "batch", "optimizer"} <= ids

    # A 0.0 metric at step 0 is all defaults: protobuf sends {} for it.
    trial = google.add_trial_measurement(request=v1.AddTrialMeasurementRequest(
        trial_name=first.name, measurement=v1.Measurement(
            step_count=0, metrics=[v1.Measurement.Metric(metric_id="accuracy", value=0.0)])))
    assert trial.measurements[0].metrics[0].value == 0.0
    trial = google.add_trial_measurement(request=v1.AddTrialMeasurementRequest(
        trial_name=first.name, measurement=v1.Measurement(
            step_count=1, metrics=[v1.Measurement.Metric(metric_id="accuracy", value=0.7)])))
    assert [m.step_count for m in trial.measurements] == [0, 1]

    check = google.check_trial_early_stopping_state(
        request=v1.CheckTrialEarlyStoppingStateRequest(trial_name=first.name))
    assert check.result(timeout=60).should_stop is False

    done = google.complete_trial(request=v1.CompleteTrialRequest(
        name=first.name, final_measurement=v1.Measurement(
            step_count=1, metrics=[v1.Measurement.Metric(metric_id="accuracy", value=0.7)])))
    assert done.state == v1.Trial.State.SUCCEEDED and done.final_measurement.metrics[0].value
    with pytest.raises(exceptions.BadRequest) as info:
        google.complete_trial(request=v1.CompleteTrialRequest(name=first.name))
    assert status_of(info.value) == "FAILED_PRECONDITION"

    infeasible = google.complete_trial(request=v1.CompleteTrialRequest(
        name=second.name, trial_infeasible=True, infeasible_reason="out of memory"))
    assert infeasible.state == v1.Trial.State.INFEASIBLE
    assert infeasible.infeasible_reason == "out of memory"

    [third] = suggest(google, study, 1, "worker-1").trials
    stopped = google.stop_trial(request=v1.StopTrialRequest(name=third.name))
    assert stopped.state == v1.Trial.State.STOPPING
    check = google.check_trial_early_stopping_state(
        request=v1.CheckTrialEarlyStoppingStateRequest(trial_name=third.name))
    assert check.result(timeout=60).should_stop is True

    created = google.create_trial(parent=study.name, trial=v1.Trial(parameters=[
        v1.Trial.Parameter(parameter_id="dropout", value=0.0),
        v1.Trial.Parameter(parameter_id="layers", value=0),
        v1.Trial.Parameter(parameter_id="batch", value=32),
        v1.Trial.Parameter(parameter_id="optimizer", value="sgd"),
        v1.Trial.Parameter(parameter_id="momentum", value=0.0)]))
    assert created.state == v1.Trial.State.REQUESTED
    assert google.get_trial(name=created.name) == created
    listed = google.list_trials(parent=study.name)
    assert [t.name for t in listed] == [first.name, second.name, third.name, created.name]

    optimal = google.list_optimal_trials(request=v1.ListOptimalTrialsRequest(parent=study.name))
    assert [t.name for t in optimal.optimal_trials] == [first.name]

    google.delete_trial(name=created.name)
    with pytest.raises(exceptions.NotFound):
        google.get_trial(name=created.name)
    google.delete_study(name=study.name)
    with pytest.raises(exceptions.NotFound):
        google.get_study(name=study.name)


def test_operations_are_read_and_waited_for_through_the_operations_mixin(google, names):
    study = new_study(google, names["operations"])
    operation = google.suggest_trials(request=v1.SuggestTrialsRequest(
        parent=study.name, suggestion_count=1, client_id="w"))
    name = operation.operation.name
    again = google.get_operation(operations_pb2.GetOperationRequest(name=name))
    assert again.done and again.name == name
    waited = google.wait_operation(operations_pb2.WaitOperationRequest(name=name))
    assert waited.done
    response = v1.SuggestTrialsResponse.pb()()
    waited.response.Unpack(response)
    assert len(response.trials) == 1


def test_errors_arrive_as_googles_exception_classes(google, names):
    new_study(google, names["taken"])
    with pytest.raises(exceptions.Conflict) as conflict:  # 409, as api_core names it
        new_study(google, names["taken"])
    assert status_of(conflict.value) == "ALREADY_EXISTS"
    with pytest.raises(exceptions.NotFound):
        google.get_study(name=f"{PARENT}/studies/404")
    with pytest.raises(exceptions.NotFound):
        google.lookup_study(request=v1.LookupStudyRequest(parent=PARENT, display_name="none"))
    bad = every_kind_of_parameter()
    bad.parameters[0].double_value_spec.min_value = 0.9  # above maxValue
    with pytest.raises(exceptions.BadRequest, match=r"parameters\[0\].doubleValueSpec") as info:
        google.create_study(parent=PARENT, study=v1.Study(display_name="bad", study_spec=bad))
    assert status_of(info.value) == "INVALID_ARGUMENT"
    with pytest.raises(exceptions.BadRequest, match="suggestionCount") as info:
        google.suggest_trials(request=v1.SuggestTrialsRequest(
            parent=google.lookup_study(request=v1.LookupStudyRequest(
                parent=PARENT, display_name=names["taken"])).name, client_id="w"))
    assert status_of(info.value) == "INVALID_ARGUMENT"


def test_enums_are_answered_as_numbers_when_asked_and_as_names_otherwise(google, server, names):
    study = new_study(google, names["enums"])
    url = f"{server}/v1/{study.name}"
    as_numbers = requests.get(url, params={"$alt": "json;enum-encoding=int"}, timeout=10).json()
    assert as_numbers["state"] == 1
    assert as_numbers["studySpec"]["algorithm"] == 3  # RANDOM_SEARCH is 3, not a position
    assert as_numbers["studySpec"]["metrics"][0]["goal"] == 1
    as_names = requests.get(url, timeout=10).json()
    assert as_names["state"] == "ACTIVE" and as_names["studySpec"]["algorithm"] == "RANDOM_SEARCH"
    # proto3 JSON leaves the 0 bounds out, as Vertex does.
    assert as_names["studySpec"]["parameters"][0]["doubleValueSpec"] == {"maxValue": 0.5}
    refused = requests.get(url, params={"alt": "proto"}, timeout=10)
    assert refused.status_code == 400 and "JSON only" in refused.json()["error"]["message"]
