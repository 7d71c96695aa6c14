"""Many worker processes on one study, a worker killed mid-trial and restarted, and the service
dying under a training worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import unique
from isolated import ROOT
from processes import ServerProcess

from vizier_keras import VizierClient

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent("""
    import json, os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, {tests!r})
    import keras
    from keras_models import digits, mlp
    from vizier_keras import CloudTuner

    endpoint, study_id, directory, max_trials, epochs = sys.argv[1:6]
    marker = sys.argv[6] if len(sys.argv) > 6 else None

    class Marker(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if marker:
                with open(marker, "a") as f:
                    f.write(str(epoch) + "\\n")
                time.sleep(0.5)

    session = None
    if os.environ.get("WIRE_SHAPE") == "vertex-shaped":
        from vertex_shaped import VertexShapedSession
        session = VertexShapedSession(inject=True)

    connection = {{"endpoint": endpoint, "session": session}}
    if os.environ.get("WORKER_RETRY") == "fast":
        # A dead server is found after a second of retries, not the default policy's ~6 s a
        # call: the test is about what the search does then, not how long it waits.
        from vizier_keras import VizierClient
        from vizier_keras.client import RetryPolicy
        connection = {{"client": VizierClient(endpoint, session=session, retry=RetryPolicy(
            max_attempts=3, initial_backoff=0.1, max_backoff=0.5))}}
    tuner = CloudTuner(mlp, None, None, objective="val_accuracy", max_trials=int(max_trials),
                       study_id=study_id, directory=directory, algorithm="RANDOM_SEARCH",
                       **connection)
    x, y = digits()
    tuner.search(x, y, validation_split=0.25, epochs=int(epochs), verbose=0,
                 callbacks=[Marker()])
    print(json.dumps({{"tuner_id": tuner.tuner_id, "trials": int(tuner.search_stats["trials"]),
                      "remaining": tuner.remaining_trials}}))
""").format(tests=str(ROOT / "tests"))


def run_worker(*args: str, env: dict[str, str] | None = None, **kwargs: Any
               ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, **kwargs)


def test_worker_processes_share_a_study_without_duplicates_or_losses(tmp_path, local_server,
                                                                   wire_shape):
    study_id = unique("team")
    workers = [run_worker(local_server.url, study_id, str(tmp_path / f"w{i}"), "7", "1",
                          env={"WIRE_SHAPE": wire_shape}) for i in range(3)]
    reports = []
    for w in workers:
        out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["tuner_id"] for r in reports}) == 3  # unique ids by default
    assert sum(r["trials"] for r in reports) == 7 and all(r["remaining"] == 0 for r in reports)
    with VizierClient(local_server.url) as c:
        study = c.lookup_study("projects/local/locations/local", study_id)
        trials = c.list_trials(study)
    assert len(trials) == 7 and all(t["state"] == "SUCCEEDED" for t in trials)
    workers_seen = {t["clientId"].split("#")[0] for t in trials}
    assert workers_seen <= {r["tuner_id"] for r in reports}


def test_a_killed_worker_restarted_with_its_id_finishes_its_trial(tmp_path, local_server):
    study_id = unique("restart")
    marker = tmp_path / "epochs.txt"
    env = {"KERASTUNER_TUNER_ID": "worker-7"}
    worker = run_worker(local_server.url, study_id, str(tmp_path / "w"), "2", "6", str(marker),
                        env=env)
    deadline = time.monotonic() + 300
    while not marker.exists() or len(marker.read_text().split()) < 2:
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=60)
    with VizierClient(local_server.url) as c:
        study = c.lookup_study("projects/local/locations/local", study_id)
        before = {t["id"]: t for t in c.list_trials(study)}
    running = [t for t in before.values() if t["state"] == "ACTIVE" and t["clientId"] ==
               "worker-7"]
    assert len(running) == 1 and len(running[0].get("measurements", [])) >= 1
    restarted = run_worker(local_server.url, study_id, str(tmp_path / "w"), "2", "2",
                           env=env)
    _, err = restarted.communicate(timeout=600)
    assert restarted.returncode == 0, err[-3000:]
    with VizierClient(local_server.url) as c:
        after = {t["id"]: t for t in c.list_trials(study)}
    assert len(after) == 2  # max_trials counted over the study: nothing extra
    assert after[running[0]["id"]]["state"] == "SUCCEEDED"  # the same trial, finished
    assert all(t["state"] == "SUCCEEDED" for t in after.values())


def test_a_server_that_dies_under_training_ends_the_search_with_a_clear_error(tmp_path):
    server = ServerProcess(tmp_path / "v.db")
    marker = tmp_path / "epochs.txt"
    try:
        url = server.wait_ready()
        worker = run_worker(url, unique("dies"), str(tmp_path / "w"), "5", "8", str(marker),
                            env={"WORKER_RETRY": "fast"})
        deadline = time.monotonic() + 300
        while not marker.exists() or len(marker.read_text().split()) < 2:
            assert worker.poll() is None, worker.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        server.process.kill()
        _, err = worker.communicate(timeout=600)
    finally:
        server.stop()
    assert worker.returncode != 0
    assert "VizierUnreachableError" in err or "TransportError" in err, err[-3000:]
    # One trial was running; the search did not burn through the others.
    epochs_run = [int(e) for e in Path(marker).read_text().split()]
    assert epochs_run.count(0) == 1
