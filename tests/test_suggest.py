"""The suggest path under concurrency, in process: suggest answers with its operation at once and
computes in the background; concurrent requests of a study are one batch; asking again never
computes twice; unfinished operations survive a restart; and the createTrial / suggest /
complete race loses no acknowledged write."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import FAST_POLL, FAST_RETRY, unique
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1 import VizierServiceClient
from google.cloud.aiplatform_v1 import types as v1
from google.cloud.aiplatform_v1.services.vizier_service.transports.rest import (
    VizierServiceRestTransport,
)

from vizier_keras import errors
from vizier_keras.client import VizierClient

PARENT = "projects/suggest/locations/local"
SPEC = {
    "metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
    "parameters": [{"parameterId": "x", "doubleValueSpec": {"minValue": 0, "maxValue": 1}}],
    "algorithm": "RANDOM_SEARCH",
}


class SlowAlgorithm:
    """The service's own random search, taking ``delay`` seconds per computation and counting
    what it was asked: a stand-in for the GP's second, so that requests pile up."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.counts: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, problem: Any, algorithm: str, supporter: Any, **_: Any) -> Any:
        from vizier_keras.server import policies

        policy = policies.make_policy(problem, algorithm, supporter)
        outer = self

        class Slow:
            def suggest(self, request: Any) -> Any:
                outer.counts.append(request.count)
                outer.release.wait(30)
                time.sleep(outer.delay)
                return policy.suggest(request)

            def early_stop(self, request: Any) -> Any:
                return policy.early_stop(request)

        return Slow()


def serve(database: Any, algorithm: Any) -> tuple[Any, Any]:
    from vizier_keras.server.app import VizierHTTPServer
    from vizier_keras.server.service import VizierService

    service = VizierService(database, policy_factory=algorithm)
    return service, VizierHTTPServer(service).start()


@pytest.fixture
def slow(tmp_path: Any) -> Iterator[tuple[Any, SlowAlgorithm]]:
    algorithm = SlowAlgorithm(0.5)
    service, http = serve(tmp_path / "v.db", algorithm)
    try:
        yield http, algorithm
    finally:
        http.shutdown()
        service.close()


def client(url: str) -> VizierClient:
    return VizierClient(url, retry=FAST_RETRY, poll=FAST_POLL, timeout=30)


def test_suggest_answers_at_once_and_the_client_polls_its_operation(slow):
    http, algorithm = slow
    with client(http.url) as c:
        study = c.create_study(PARENT, unique(), SPEC)
        answer = requests.post(f"{http.url}/v1/{study['name']}/trials:suggest", timeout=10,
                               json={"suggestionCount": 1, "clientId": "w0"}).json()
        assert "done" not in answer  # computing: done is false, which proto3 JSON leaves out
        assert answer["metadata"]["clientId"] == "w0"
        # Asking again with the same client id gives the same operation, not a second
        # computation.
        again = requests.post(f"{http.url}/v1/{study['name']}/trials:suggest", timeout=10,
                              json={"suggestionCount": 1, "clientId": "w0"}).json()
        assert again["name"] == answer["name"]
        done = c.poll_operation(answer["name"], timeout=30)
        assert len(done["response"]["trials"]) == 1
        assert algorithm.counts == [1]


def test_concurrent_requests_are_one_batch_and_each_client_gets_its_own_trials(slow):
    http, algorithm = slow
    with client(http.url) as c:
        study = c.create_study(PARENT, unique(), SPEC)
        algorithm.release.clear()  # hold the first computation until all have asked
        results: dict[str, Any] = {}

        def ask(worker: str) -> None:
            with client(http.url) as mine:
                results[worker] = mine.suggest_trials(study, 1, client_id=worker)

        threads = [threading.Thread(target=ask, args=(f"w{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while not algorithm.counts and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the other seven arrive while the first computes
        algorithm.release.set()
        for t in threads:
            t.join(60)
        names = [r.trials[0]["name"] for r in results.values()]
        assert len(results) == 8 and len(set(names)) == 8
        assert all(r.trials[0]["clientId"] == w for w, r in results.items())
        # Eight requests, at most two computations: those that came while the first one
        # computed were one batch.
        assert sum(algorithm.counts) == 8 and len(algorithm.counts) <= 2, algorithm.counts
        assert len(c.list_trials(study)) == 8


def test_too_many_waiting_operations_are_refused_with_resource_exhausted(slow, monkeypatch):
    from vizier_keras.server import suggest

    monkeypatch.setattr(suggest, "MAX_PENDING", 2)
    http, algorithm = slow
    algorithm.release.clear()
    try:
        with VizierClient(http.url, retry=FAST_RETRY.__class__(max_attempts=1)) as c:
            study = c.create_study(PARENT, unique(), SPEC)
            c.start_suggest_trials(study, 1, "a")
            c.start_suggest_trials(study, 1, "b")
            with pytest.raises(errors.ResourceExhaustedError, match="waiting already"):
                c.start_suggest_trials(study, 1, "c")
            c.start_suggest_trials(study, 1, "a")  # its own operation, not a new one
    finally:
        algorithm.release.set()


def test_an_unfinished_operation_survives_a_restart(tmp_path):
    algorithm = SlowAlgorithm(0.0)
    algorithm.release.clear()
    service, http = serve(tmp_path / "v.db", algorithm)
    with client(http.url) as c:
        study = c.create_study(PARENT, unique(), SPEC)
        operation = c.start_suggest_trials(study, 2, "w0")
        assert not operation.get("done")
    http.shutdown()
    # The server stops while the algorithm computes: what it computes is not written.
    closing = threading.Thread(target=service.close)
    closing.start()
    algorithm.release.set()
    closing.join(30)
    assert algorithm.counts == [2]

    again = SlowAlgorithm(0.0)
    service, http = serve(tmp_path / "v.db", again)
    try:
        with client(http.url) as c:
            done = c.poll_operation(operation["name"], timeout=30)
            trials = done["response"]["trials"]
            assert len(trials) == 2 and {t["clientId"] for t in trials} == {"w0"}
            assert again.counts == [2]
            assert len(c.list_trials(study)) == 2  # written once, by the server that resumed
    finally:
        http.shutdown()
        service.close()


def test_googles_client_polls_an_unfinished_suggest_operation(slow):
    http, _ = slow
    google = VizierServiceClient(transport=VizierServiceRestTransport(
        host=f"{http.host}:{http.port}", credentials=AnonymousCredentials(), url_scheme="http"))
    spec = v1.StudySpec(
        metrics=[v1.StudySpec.MetricSpec(metric_id="loss", goal="MINIMIZE")],
        parameters=[v1.StudySpec.ParameterSpec(
            parameter_id="x", double_value_spec=v1.StudySpec.ParameterSpec.DoubleValueSpec(
                min_value=0, max_value=1))],
        algorithm="RANDOM_SEARCH")
    study = google.create_study(parent=PARENT,
                                study=v1.Study(display_name=unique(), study_spec=spec))
    operation = google.suggest_trials(request=v1.SuggestTrialsRequest(
        parent=study.name, suggestion_count=2, client_id="google"))
    assert not operation.done()
    response = operation.result(timeout=60)
    assert len(response.trials) == 2 and response.trials[0].client_id == "google"


def test_the_create_suggest_complete_race_loses_no_acknowledged_write(tmp_path):
    """Two clients add trials and complete them; two ask for suggestions and complete them.
    A completed trial is never handed out again, and every acknowledged completion stays."""
    from vizier_keras.server import policies

    service, http = serve(tmp_path / "v.db", policies.make_policy)
    acknowledged: dict[str, tuple[float, float]] = {}  # trial name -> (value, when)
    # (trial name, when the suggest that handed it out was sent): a trial whose completion was
    # acknowledged before that moment must not be in its answer.
    handed: list[tuple[str, float]] = []
    failures: list[BaseException] = []
    stop = time.monotonic() + 4.0
    lock = threading.Lock()

    def creator(worker: int) -> None:
        with client(http.url) as c:
            n = 0
            while time.monotonic() < stop:
                n += 1
                trial = c.create_trial(study, {"x": (worker * 1000 + n) % 997 / 997})
                value = worker * 1e6 + n
                try:
                    c.complete_trial(trial, {"loss": value})
                except errors.FailedPreconditionError:
                    continue  # a suggester was handed it and completed it first: refused

                with lock:
                    acknowledged[trial["name"]] = (value, time.monotonic())

    def suggester(worker: int) -> None:
        with client(http.url) as c:
            n = 0
            while time.monotonic() < stop:
                n += 1
                asked = time.monotonic()
                for trial in c.suggest_trials(study, 1, client_id=f"s{worker}").trials:
                    with lock:
                        handed.append((trial["name"], asked))
                    value = -(worker * 1e6 + n)
                    try:
                        c.complete_trial(trial, {"loss": value})
                    except errors.FailedPreconditionError:
                        continue  # handed out after it was complete: counted below
                    with lock:
                        acknowledged[trial["name"]] = (value, time.monotonic())

    def guarded(target: Any, worker: int) -> None:
        try:
            target(worker)
        except BaseException as e:  # reported below
            failures.append(e)

    try:
        with client(http.url) as c:
            study = c.create_study(PARENT, unique(), SPEC)
            threads = [threading.Thread(target=guarded, args=(f, i))
                       for i, f in enumerate([creator, creator, suggester, suggester])]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not failures, failures
            stored = {t["name"]: t for t in c.list_trials(study)}
        assert len(acknowledged) > 50
        undone = [name for name, (value, _) in acknowledged.items()
                  if stored[name]["state"] != "SUCCEEDED"
                  or stored[name]["finalMeasurement"]["metrics"][0].get("value", 0.0) != value]
        assert undone == []
        handed_after = [name for name, asked in handed
                        if name in acknowledged and acknowledged[name][1] < asked]
        assert handed_after == []
    finally:
        http.shutdown()
        service.close()


def test_a_completion_during_a_hand_out_is_not_undone(tmp_path, monkeypatch):
    """The race at its narrowest: a REQUESTED trial is being handed to a suggesting worker while
    its creator completes it. The hand-out's write is slowed down (the window is microseconds
    otherwise); the completion must either wait for it or fail, never be overwritten."""
    from vizier._src.service import sql_datastore, study_pb2

    from vizier_keras.server import policies

    write = sql_datastore.SQLDataStore.update_trial
    handing_out = threading.Event()

    def slow_hand_out(self: Any, trial: Any) -> Any:
        if trial.state == study_pb2.Trial.State.ACTIVE and not trial.measurements and (
                trial.client_id == "suggester"):
            handing_out.set()
            time.sleep(0.5)  # the completion below runs in this window
        return write(self, trial)

    monkeypatch.setattr(sql_datastore.SQLDataStore, "update_trial", slow_hand_out)
    service, http = serve(tmp_path / "v.db", policies.make_policy)
    try:
        with client(http.url) as c:
            study = c.create_study(PARENT, unique(), SPEC)
            trial = c.create_trial(study, {"x": 0.5})
            handed: list[Any] = []
            asker = threading.Thread(target=lambda: handed.extend(
                c.suggest_trials(study, 1, client_id="suggester").trials))
            asker.start()
            assert handing_out.wait(30)
            try:
                c.complete_trial(trial, {"loss": 0.25})
                acknowledged = True
            except errors.FailedPreconditionError:
                acknowledged = False
            asker.join(30)
            stored = c.get_trial(trial)
        assert handed and handed[0]["name"] == trial["name"]
        if acknowledged:
            assert stored["state"] == "SUCCEEDED"
            assert stored["finalMeasurement"]["metrics"][0]["value"] == 0.25
    finally:
        http.shutdown()
        service.close()
