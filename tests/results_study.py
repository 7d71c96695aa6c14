"""A small finished study on a real server, for the results tests: trials that succeeded, two
that Vizier stopped early, one infeasible, one still running, and a conditional parameter."""

from __future__ import annotations

from typing import Any

from vizier_keras.client import VizierClient
from vizier_keras.server.stopping import MIN_COMPLETED_TRIALS

SPEC: dict[str, Any] = {
    "metrics": [{"metricId": "val_accuracy", "goal": "MAXIMIZE"}],
    "parameters": [
        {"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4, "maxValue": 0.1},
         "scaleType": "UNIT_LOG_SCALE"},
        {"parameterId": "units", "integerValueSpec": {"minValue": "8", "maxValue": "64"}},
        {"parameterId": "optimizer",
         "categoricalValueSpec": {"values": ["adam", "sgd"]},
         "conditionalParameterSpecs": [{
             "parentCategoricalValues": {"values": ["sgd"]},
             "parameterSpec": {"parameterId": "momentum",
                               "doubleValueSpec": {"minValue": 0.0, "maxValue": 0.9}}}]},
    ],
    "algorithm": "RANDOM_SEARCH",
    "medianAutomatedStoppingSpec": {},
}
EPOCHS = 5
GOOD = MIN_COMPLETED_TRIALS + 1


def curve(i: int, epochs: int = EPOCHS) -> list[float]:
    """Trial ``i``'s accuracy per epoch: good trials rise to 0.80 + 0.02 i, bad ones stay low."""
    top = 0.80 + 0.02 * i if i < GOOD else 0.10
    return [top * (e + 1) / epochs for e in range(epochs)]


def make_study(client: VizierClient, parent: str, display_name: str) -> dict[str, Any]:
    """The study, with :data:`GOOD` trials completed, 2 stopped early, 1 infeasible, 1 active.
    Returns ``{"study", "stopped", "infeasible", "active", "best"}`` (trial ids)."""
    study = client.create_study(parent, display_name, SPEC)
    ids: dict[str, Any] = {"study": study, "stopped": [], "good": []}
    for i in range(GOOD + 2):
        trial = client.suggest_trials(study["name"], client_id=f"worker-{i % 2}").trials[0]
        for step, value in enumerate(curve(i), start=1):
            client.add_trial_measurement(trial, {"val_accuracy": value, "loss": 1 - value},
                                         step_count=step, elapsed_seconds=0.5 * step)
            if i >= GOOD and client.check_trial_early_stopping_state(trial):
                ids["stopped"].append(trial["id"])
                break
        client.complete_trial(trial)
        if i < GOOD:
            ids["good"].append(trial["id"])
    trial = client.suggest_trials(study["name"], client_id="worker-0").trials[0]
    client.complete_trial(trial, infeasible_reason="out of memory")
    ids["infeasible"] = trial["id"]
    trial = client.suggest_trials(study["name"], client_id="worker-9").trials[0]
    client.add_trial_measurement(trial, {"val_accuracy": 0.5}, step_count=1)
    ids["active"] = trial["id"]
    ids["best"] = ids["good"][-1]
    return ids
