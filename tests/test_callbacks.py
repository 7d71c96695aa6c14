"""VizierReportingCallback and suggest_trial in a plain training script (no tuner).

Two tests train real models against a real server process (a script as users write it, and a
NaN from real arithmetic); the others check what the callback does with a curve and with the
service, so they replay recorded epochs (:mod:`replay`) against the service in this process."""

from __future__ import annotations

import copy
import threading
from typing import Any

import keras
import keras_tuner as kt
import pytest
import requests
from conftest import FAST_POLL, FAST_RETRY, unique
from keras_models import digits
from replay import ReplayModel

from vizier_keras import VizierClient, VizierReportingCallback, errors, suggest_trial
from vizier_keras.callbacks import VizierUnreachableError
from vizier_keras.client import NO_RETRY


def space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Int("units", 16, 48, step=16)
    hp.Float("lr", 1e-3, 3e-2, sampling="log")
    hp.Boolean("deep")
    return hp


def model_for(values: dict[str, Any]) -> keras.Model:
    layers = [keras.Input((64,)), keras.layers.Dense(values["units"], activation="relu")]
    if values["deep"]:
        layers.append(keras.layers.Dense(16, activation="relu"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.Adam(values["lr"]), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def client_for(server: Any, **kwargs: Any) -> VizierClient:
    return VizierClient(server.url, retry=FAST_RETRY, poll=FAST_POLL, **kwargs)


def new_trial(server: Any, study_id: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = dict(objective="val_accuracy", hyperparameters=space(),
                                   client=client_for(server), algorithm="RANDOM_SEARCH")
    options.update(kwargs)
    return suggest_trial(study_id, **options)


def epochs(count: int, accuracy: float = 0.1) -> list[dict[str, float]]:
    """A flat learning curve of ``count`` epochs."""
    return [{"loss": 2.3, "accuracy": accuracy, "val_loss": 2.3, "val_accuracy": accuracy}
            for _ in range(count)]


@pytest.mark.slow  # trains
def test_a_plain_training_script_reports_every_epoch_and_completes(local_server):
    trial = new_trial(local_server, unique())
    assert set(trial.parameters) == {"units", "lr", "deep"}
    assert type(trial.parameters["units"]) is int and type(trial.parameters["deep"]) is bool
    x, y = digits()
    callback = VizierReportingCallback(trial)
    with trial:
        history = model_for(trial.parameters).fit(x, y, validation_split=0.25, epochs=3,
                                                  verbose=0, callbacks=[callback])
    done = trial.client.get_trial(trial.name)
    assert done["state"] == "SUCCEEDED"
    assert [m["stepCount"] for m in done["measurements"]] == ["1", "2", "3"]
    elapsed = [float(m["elapsedDuration"][:-1]) for m in done["measurements"]]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    final = {m["metricId"]: m["value"] for m in done["finalMeasurement"]["metrics"]}
    assert final["val_accuracy"] == pytest.approx(history.history["val_accuracy"][-1])
    assert callback.stats["epochs"] == 3 and callback.stats["measurements_sent"] == 3
    # The run's background sender has ended with the run: a process that trains many models
    # keeps no thread per run.
    senders = [t for t in threading.enumerate() if t.name == "vizier-reporter"]
    for thread in senders:
        thread.join(timeout=5)
    assert not [t for t in senders if t.is_alive()]


def test_a_script_that_raises_leaves_an_infeasible_trial(in_process_server):
    trial = new_trial(in_process_server, unique())
    with pytest.raises(ZeroDivisionError), trial:
        1 / 0  # noqa: B018
    done = trial.client.get_trial(trial.name)
    assert done["state"] == "INFEASIBLE" and "ZeroDivisionError" in done["infeasibleReason"]


@pytest.mark.slow  # trains
def test_nan_objective_stops_training_and_makes_the_trial_infeasible(local_server):
    trial = new_trial(local_server, unique(), objective="val_loss")
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10),
                              keras.layers.Lambda(lambda t: t * float("inf")),
                              keras.layers.Softmax()])
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = digits()
    callback = VizierReportingCallback(trial)
    history = model.fit(x, y, validation_split=0.25, epochs=5, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 1
    done = trial.client.get_trial(trial.name)
    assert done["state"] == "INFEASIBLE" and "nan" in done["infeasibleReason"].lower()
    assert callback.nan_metric.startswith("val_loss")


def test_vizier_stops_a_hopeless_trial(in_process_server):
    study_id = unique()
    client = client_for(in_process_server)
    # Three completed trials with good learning curves.
    for i in range(3):
        good = new_trial(in_process_server, study_id, worker_id=f"done-{i}",
                         early_stopping="median")
        for step, acc in enumerate([0.6, 0.8, 0.9, 0.93, 0.95, 0.96], start=1):
            good.report({"val_accuracy": acc - 0.01 * i}, step=step)
        good.complete()
    hopeless = new_trial(in_process_server, study_id, worker_id="hopeless",
                         early_stopping="median")
    callback = VizierReportingCallback(hopeless, blocking=True)
    history = ReplayModel(epochs(6)).fit(epochs=6, callbacks=[callback])
    assert callback.stopped_early and len(history.history["loss"]) < 6
    done = client.get_trial(hopeless.name)
    assert done["state"] == "SUCCEEDED" and len(done["measurements"]) == len(
        history.history["loss"])


class _GatedSession(requests.Session):
    """Holds every request until the gate opens: a service that does not answer yet."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.gate.wait(120)
        return super().request(*args, **kwargs)


def test_training_never_waits_for_the_service(in_process_server):
    trial = new_trial(in_process_server, unique())
    gate = threading.Event()
    slow = client_for(in_process_server, session=_GatedSession(gate))
    callback = VizierReportingCallback(trial, slow, complete_on_train_end=False)

    class OpenGateAtTheEnd(keras.callbacks.Callback):
        epochs_done = 0

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epochs_done += 1
            if epoch == 3:  # every epoch ran while the service held its answers
                gate.set()

    watcher = OpenGateAtTheEnd()
    ReplayModel(epochs(4)).fit(epochs=4, callbacks=[callback, watcher])
    assert watcher.epochs_done == 4
    assert callback.stats["measurements_sent"] == 4  # flushed at the end
    assert [m["stepCount"] for m in trial.client.get_trial(trial.name)["measurements"]] == [
        "1", "2", "3", "4"]


def test_a_service_failure_reaches_the_training_thread_as_a_fatal_error(in_process_server):
    import socket

    trial = new_trial(in_process_server, unique())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = VizierClient(f"http://127.0.0.1:{port}", retry=NO_RETRY)
    callback = VizierReportingCallback(trial, dead)
    with pytest.raises(VizierUnreachableError) as info:
        ReplayModel(epochs(3)).fit(epochs=3, callbacks=[callback])
    assert isinstance(info.value, kt.errors.FatalError)
    assert isinstance(info.value.error, errors.TransportError)


def test_the_callback_survives_deepcopy_sharing_client_and_trial(in_process_server):
    trial = new_trial(in_process_server, unique())
    callback = VizierReportingCallback(trial)
    callback.stats["epochs"] = 7
    clone = copy.deepcopy([callback])[0]
    assert clone is not callback and clone.client is callback.client
    assert clone.trial is trial and clone.stats["epochs"] == 0


def test_suggest_trial_returns_none_when_the_study_is_done(in_process_server):
    study_id = unique()
    first = new_trial(in_process_server, study_id, max_trials=1)
    first.complete({"val_accuracy": 0.5})
    assert new_trial(in_process_server, study_id, max_trials=1, worker_id="other") is None


def test_callback_argument_errors():
    with pytest.raises(errors.ValidationError, match="trial"):
        VizierReportingCallback("not a trial name", client=object())
    with pytest.raises(errors.ValidationError, match="client"):
        VizierReportingCallback("projects/p/locations/l/studies/1/trials/2")
