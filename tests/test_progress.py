"""The search's progress lines, read off a real study on the real server.

The oracle here is a stand-in with the few attributes the printer reads (the real CloudOracle is
exercised by test_tuner's searches, which check these lines too); the trials it lists are a real
study's, with two trials Vizier stopped early.
"""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import FAST_POLL, FAST_RETRY, unique
from results_study import GOOD, make_study

from vizier_keras.client import VizierClient
from vizier_keras.progress import SearchProgress


class Objective:
    """KerasTuner's Objective interface for one maximized metric."""

    name = "val_accuracy"

    def has_value(self, metrics: dict[str, float]) -> bool:
        return self.name in metrics

    def get_value(self, metrics: dict[str, float]) -> float:
        return metrics[self.name]

    def better_than(self, a: float, b: float) -> bool:
        return a > b


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def study(in_process_server: Any) -> Any:
    client = VizierClient(in_process_server.url, retry=FAST_RETRY, poll=FAST_POLL)
    made = make_study(client, "projects/local/locations/local", unique("progress"))
    yield SimpleNamespace(client=client, made=made)
    client.close()


def oracle(study: Any) -> Any:
    return SimpleNamespace(client=study.client, existing_study=lambda: study.made["study"],
                           objective=Objective(), max_trials=20, worker_tag="w0",
                           stopped_early=set())


def trial(trial_id: str, status: str = "COMPLETED", score: float | None = 0.9) -> Any:
    return SimpleNamespace(trial_id=trial_id, status=status, score=score, message=None,
                           hyperparameters=SimpleNamespace(values={"lr": 0.001, "units": 32}))


def test_a_trials_line_carries_the_studys_state(study):
    out = io.StringIO()
    progress = SearchProgress(oracle(study), stream=out)
    progress.on_trial_begin(trial("9"))
    progress.on_trial_end(trial("9"))
    begin, end = out.getvalue().splitlines()
    assert begin == "Trial 9 of 20 (worker w0): lr=0.001, units=32"
    done = GOOD + 3  # succeeded (stopped ones too) and the infeasible one
    best = study.made["best"]
    assert end.startswith(f"[{done}/20] trial 9 COMPLETED in ")
    assert f"| best 0.86 (trial {best})" in end
    assert "1 running, 2 stopped early" in end  # the active trial, and the service's record
    assert re.search(r"\| ETA ~\d+(\.\d)? (s|min|h)$", end)


def test_the_live_line_is_for_a_quiet_terminal_only(study):
    progress = SearchProgress(oracle(study), stream=(terminal := Terminal()))
    progress.verbose = 0  # search(verbose=0): Keras prints nothing
    progress.on_trial_begin(trial("9"))
    progress.on_epoch_end(trial("9"), 2, {"val_accuracy": 0.5, "loss": 1.25})
    assert terminal.getvalue().endswith("\r\x1b[K  trial 9 epoch 3 (0 s): val_accuracy=0.5 "
                                        "loss=1.25")
    progress.on_trial_end(trial("9"))
    assert "\r\x1b[K[" in terminal.getvalue()  # the live line is cleared for the trial's line
    for stream, verbose in ((io.StringIO(), 0), (Terminal(), 1)):
        other = SearchProgress(oracle(study), stream=stream)
        other.verbose = verbose
        other.on_trial_begin(trial("9"))
        other.on_epoch_end(trial("9"), 0, {"val_accuracy": 0.5})
        assert "epoch" not in stream.getvalue()


def test_progress_false_prints_nothing(study):
    out = io.StringIO()
    progress = SearchProgress(oracle(study), enabled=False, stream=out)
    progress.on_trial_begin(trial("9"))
    progress.on_trial_end(trial("9", "FAILED", None))
    assert out.getvalue() == ""
