"""Multi-objective studies and constraints (safety metrics) on the real server: the Pareto
front from listOptimalTrials, thresholds honoured, and what the service refuses."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from conftest import FAST_POLL, FAST_RETRY, unique

from vizier_keras import wire
from vizier_keras.client import VizierClient
from vizier_keras.errors import InvalidArgumentError, ValidationError
from vizier_keras.results import load_study
from vizier_keras.studies import make_study_spec

PARENT = "projects/local/locations/local"
PARAMETERS = [{"parameterId": "x", "doubleValueSpec": {"minValue": 0.0, "maxValue": 1.0}}]
TWO = [{"metricId": "accuracy", "goal": "MAXIMIZE"}, {"metricId": "latency", "goal": "MINIMIZE"}]
SIZE_LIMIT = {"metricId": "size_mb", "goal": "MINIMIZE", "safetyConfig": {"safetyThreshold": 50}}


def dominated(a: dict[str, float], others: list[dict[str, float]]) -> bool:
    """Brute force: another trial at least as good in both objectives and better in one."""
    return any(o["accuracy"] >= a["accuracy"] and o["latency"] <= a["latency"]
               and (o["accuracy"], o["latency"]) != (a["accuracy"], a["latency"])
               for o in others)


def run_study(client: VizierClient, metrics: list[dict[str, Any]], results: list[dict[str, float]],
              algorithm: str = "RANDOM_SEARCH") -> dict[str, Any]:
    study = client.create_study(PARENT, unique("multi"), {
        "metrics": metrics, "parameters": PARAMETERS, "algorithm": algorithm})
    for values in results:
        trial = client.suggest_trials(study["name"], client_id="w").trials[0]
        client.complete_trial(trial, values)
    return study


@pytest.fixture
def client(vizier: VizierClient) -> VizierClient:
    return vizier  # both wire shapes: as written, and as Vertex AI writes it


def test_the_front_is_the_brute_force_front(client):
    rng = random.Random(7)
    results = [{"accuracy": round(rng.uniform(0.5, 1.0), 2), "latency": rng.choice([5, 10, 20])}
               for _ in range(14)]
    results += [dict(results[0])]  # a tie with a trial on or off the front
    study = run_study(client, TWO, results)
    listed = client.list_trials(study["name"])
    finals = {t["id"]: wire.trial_final_metrics(t) for t in listed}
    expected = sorted((i for i, m in finals.items() if not dominated(m, list(finals.values()))),
                      key=int)
    optimal = client.list_optimal_trials(study["name"])
    assert [t["id"] for t in optimal] == expected
    # The results layer ranks the same front first, then the next fronts.
    ranked = load_study(study["name"], endpoint=client.endpoint).best_trials(len(results))
    assert sorted(str(r["trial"]) for r in ranked if r["front"] == 0) == expected
    fronts = [r["front"] for r in ranked]
    assert fronts == sorted(fronts) and len(ranked) == len(results)
    first = [r for r in ranked if r["front"] == 0]
    assert [r["accuracy"] for r in first] == sorted((r["accuracy"] for r in first),
                                                    reverse=True)


def test_constraints_keep_unsafe_trials_off_the_front(client):
    results = [
        {"accuracy": 0.99, "latency": 1, "size_mb": 80},   # best, but breaks the size limit
        {"accuracy": 0.97, "latency": 5, "size_mb": 40},
        {"accuracy": 0.80, "latency": 2, "size_mb": 50},   # at the threshold: safe
        {"accuracy": 0.70, "latency": 9, "size_mb": 10},   # dominated
        {"accuracy": 0.95, "latency": 3},                  # size not measured: safe, as in OSS
    ]
    study = run_study(client, [*TWO, SIZE_LIMIT], results)
    optimal = [t["id"] for t in client.list_optimal_trials(study["name"])]
    assert optimal == ["2", "3", "5"]
    results_ = load_study(study["name"], endpoint=client.endpoint)
    assert [r["safe"] for r in results_.records()] == [False, True, True, True, True]
    assert [m for m, _ in results_.metrics] == ["accuracy", "latency"]  # the limit is no goal
    best = results_.best_trials(10)
    assert "1" not in {str(r["trial"]) for r in best} and len(best) == 4


def test_a_single_objective_with_a_constraint(client):
    metrics = [{"metricId": "accuracy", "goal": "MAXIMIZE"}, SIZE_LIMIT]
    study = run_study(client, metrics, [{"accuracy": 0.9, "size_mb": 60},
                                        {"accuracy": 0.8, "size_mb": 20},
                                        {"accuracy": 0.8, "size_mb": 30}])
    assert [t["id"] for t in client.list_optimal_trials(study["name"])] == ["2", "3"]


@pytest.mark.slow  # a GP suggestion in the server process
def test_the_default_algorithm_learns_with_a_constraint(local_server):
    # Past its seed trials the GP designer runs; unsafe trials reach it as infeasible.
    with VizierClient(local_server.url, retry=FAST_RETRY, timeout=300) as c:  # GP compiles
        results = [{"accuracy": 0.5 + 0.05 * i, "size_mb": 100 if i % 2 else 10}
                   for i in range(7)]
        study = run_study(c, [{"metricId": "accuracy", "goal": "MAXIMIZE"}, SIZE_LIMIT],
                          results, algorithm="ALGORITHM_UNSPECIFIED")
        more = c.suggest_trials(study["name"], client_id="late", timeout=300)
        assert len(more.trials) == 1
        assert 0.0 <= more.trials[0]["parameters"][0]["value"] <= 1.0


@pytest.mark.parametrize("spec, field", [
    ({"metrics": [SIZE_LIMIT]}, r"studySpec\.metrics.*only safety metrics"),
    ({"metrics": TWO, "medianAutomatedStoppingSpec": {}},
     r"medianAutomatedStoppingSpec.*one objective value"),
    ({"metrics": [TWO[0], SIZE_LIMIT], "algorithm": "NSGA2"},
     r"algorithm.*does not honour safety"),
    ({"metrics": [TWO[0], {**SIZE_LIMIT, "safetyConfig": {
        "safetyThreshold": 1, "desiredMinSafeTrialsFraction": 1.5}}]},
     r"desiredMinSafeTrialsFraction.*between 0\.0 and 1\.0"),
])
def test_what_the_service_refuses_names_the_field(served, spec, field):
    with VizierClient(served.url, retry=FAST_RETRY, poll=FAST_POLL) as c:
        with pytest.raises((InvalidArgumentError, ValidationError), match=field):
            # The client's own check comes first where it knows the rule; the server's
            # answer otherwise (sent raw, past the client's check).
            c._http.call("POST", f"{PARENT}/studies", idempotent=False, body={
                "displayName": unique("refused"), "studySpec": {**spec,
                                                                "parameters": PARAMETERS}})


def test_constraints_become_safety_metrics():
    spec = make_study_spec(study_config={"metrics": [TWO[0]], "parameters": PARAMETERS},
                           constraints={"size_mb": ("<=", 50), "fps": (">=", 30)})
    assert spec["metrics"][1:] == [
        {"metricId": "size_mb", "goal": "MINIMIZE", "safetyConfig": {"safetyThreshold": 50.0}},
        {"metricId": "fps", "goal": "MAXIMIZE", "safetyConfig": {"safetyThreshold": 30.0}}]
    for bad, why in [({"size_mb": ("<", 50)}, "must be"), ({"size_mb": ("<=", float("nan"))},
                     "finite"), ({"accuracy": ("<=", 1)}, "already an objective"),
                     ({"bad id": ("<=", 1)}, "bad id"), (["size_mb"], "dict")]:
        with pytest.raises(ValidationError, match=why):
            make_study_spec(study_config={"metrics": [TWO[0]], "parameters": PARAMETERS},
                            constraints=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"early_stopping.*2 objectives"):
        make_study_spec(study_config={"metrics": TWO, "parameters": PARAMETERS},
                        early_stopping="median")


def test_pareto_plot(tmp_path, served):
    import matplotlib.image

    from vizier_keras.results.plots import figure, save_plot

    with VizierClient(served.url, retry=FAST_RETRY, poll=FAST_POLL) as c:
        points = list(itertools.product([0.6, 0.8, 0.9], [3, 7]))
        study = run_study(c, TWO, [{"accuracy": a, "latency": b} for a, b in points])
    results = load_study(study["name"], database=str(served.database))
    fig = figure(results, "pareto")
    front_line = [line for line in fig.axes[0].get_lines() if line.get_label() == "Pareto front"]
    assert len(front_line) == 1 and list(front_line[0].get_xdata()) == [0.9]
    save_plot(results, "pareto", tmp_path / "p.png")
    assert matplotlib.image.imread(tmp_path / "p.png")[..., :3].std() > 0.05
    with pytest.raises(ValidationError, match="one objective"):
        figure(load_study(study["name"], database=str(served.database)).__class__(
            {**results.study, "studySpec": {**results.spec, "metrics": [TWO[0]]}},
            results.trials), "pareto")
