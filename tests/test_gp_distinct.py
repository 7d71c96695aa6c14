"""The default algorithm's distinct suggestions (``vizier_keras.server.gp.distinct``): on a space of
discrete parameters no suggestion repeats a completed or pending trial until every configuration
has been tried, the snapping agrees with how OSS's converter rounds a point (midpoints
included), and a continuous space keeps OSS's acquisition optimizer.

They run in a TensorFlow-free child process, as the server does."""

from __future__ import annotations

import pytest
from isolated import run_python

pytestmark = pytest.mark.slow

_SETUP = """
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from vizier import pyvizier as vz
    from vizier._src.algorithms.core import abstractions
    from vizier.pyvizier import converters
    from vizier_keras.server import gp
    from vizier_keras.server.gp import distinct

    def problem_with(add):
        problem = vz.ProblemStatement()
        add(problem.search_space.root)
        problem.metric_information.append(
            vz.MetricInformation("obj", goal=vz.ObjectiveMetricGoal.MINIMIZE))
        return problem

    def key(parameters):
        return tuple(sorted((k, str(getattr(v, "value", v))) for k, v in parameters.items()))
"""


def test_snapping_agrees_with_the_converters_rounding():
    assert "ok" in run_python(_SETUP + """
    def add(root):
        root.add_int_param("i", 0, 3)
        root.add_int_param("g", 1, 100, scale_type=vz.ScaleType.LOG)
        root.add_discrete_param("r", [0.1, 0.5, 2.0, 10.0], scale_type=vz.ScaleType.LOG)
        root.add_discrete_param("s", [1.0, 2.0, 5.0])
        root.add_float_param("x", 0.0, 1.0)
        root.add_categorical_param("c", ["a", "b"])

    converter = converters.TrialToModelInputConverter.from_problem(problem_with(add))
    grids = distinct.feature_grids(converter)
    assert [g is None for g in grids] == [False, False, False, False, True]
    assert len(grids[1][0]) == 100 and len(grids[0][1]) == 3
    values, bounds, gridded = map(jax.numpy.asarray, distinct.grid_arrays(grids))

    rng = np.random.default_rng(0)
    points = [rng.uniform(0, 1, size=(500, 5))]
    # Each boundary, a hair either side, and the exact midpoints between grid values.
    for column, grid in enumerate(grids):
        if grid is None:
            continue
        marks = np.concatenate([np.asarray(grid[1]), np.nextafter(grid[1], 2.0),
                                np.nextafter(grid[1], -1.0),
                                (np.asarray(grid[0][:-1]) + np.asarray(grid[0][1:])) / 2])
        block = rng.uniform(0, 1, size=(len(marks), 5))
        block[:, column] = marks
        points.append(block)
    x = np.concatenate(points)
    snapped = np.asarray(distinct.snap(jax.numpy.asarray(x), values, bounds, gridded))
    categorical = np.zeros((len(x), 1), dtype=np.int32)

    from vizier._src.jax import types as jax_types

    def parameters(features):
        return converter.to_parameters(jax_types.ModelInput(
            continuous=jax_types.PaddedArray.as_padded(features),
            categorical=jax_types.PaddedArray.as_padded(categorical)))

    raw, moved = parameters(x), parameters(snapped)
    assert [key(p) for p in raw] == [key(p) for p in moved]
    # Snapped gridded features are exactly the converter's features of those parameters.
    again = np.asarray(converter.to_features([vz.TrialSuggestion(parameters=p) for p in raw])
                       .continuous.padded_array)
    np.testing.assert_array_equal(snapped[:, :4], again[:, :4])
    np.testing.assert_array_equal(snapped[:, 4], x[:, 4])  # DOUBLE: untouched
    print("ok")
    """)


def test_no_suggestion_repeats_a_trial_until_every_configuration_is_tried():
    assert "ok" in run_python(_SETUP + """
    problem = problem_with(lambda root: (root.add_int_param("i", 0, 3),
                                         root.add_categorical_param("c", ["a", "b"])))
    settings = dict(gp.SERVICE_SETTINGS, num_seed_trials=1, distinct=True)
    rng = np.random.default_rng(0)

    def complete(trials, suggestions):
        for s in suggestions:
            t = s.to_trial(len(trials) + 1)
            p = {k: v.value for k, v in t.parameters.items()}
            # The best is (2, "b"); noisy, so a GP alone likes to sample its best again.
            value = (p["i"] - 2) ** 2 + (p["c"] != "b") + rng.normal(0, 0.3)
            t.complete(vz.Measurement(metrics={"obj": float(value)}))
            trials.append(t)

    def designer(trials, active=()):
        d = gp.gp_ucb_pe_designer_with(problem, settings, rng=jax.random.PRNGKey(len(trials)))
        d.update(abstractions.CompletedTrials(trials), abstractions.ActiveTrials(list(active)))
        return d

    # One at a time: the eight configurations in eight trials, then repeats (nothing is left).
    trials = []
    for _ in range(8):
        complete(trials, designer(trials).suggest(1))
    assert len({key(t.parameters) for t in trials}) == 8, [key(t.parameters) for t in trials]
    (again,) = designer(trials).suggest(1)
    assert key(again.parameters) in {key(t.parameters) for t in trials}

    # A batch, with a pending trial: five new configurations, none tried or pending.
    done = trials[:2]
    pending = [vz.Trial(parameters=trials[2].parameters, id=50)]
    batch = designer(done, pending).suggest(5)
    keys = [key(s.parameters) for s in batch]
    assert len(set(keys)) == 5, keys
    assert not set(keys) & {key(t.parameters) for t in done + pending}, keys
    print("ok")
    """)


def test_continuous_spaces_keep_osss_optimizer_and_boxes_reach_grid_neighbours():
    assert "ok" in run_python(_SETUP + """
    continuous = problem_with(lambda root: (root.add_float_param("x", 0, 1),
                                            root.add_float_param("y", 1e-3, 1,
                                                scale_type=vz.ScaleType.LOG)))
    mixed = problem_with(lambda root: (root.add_float_param("x", 0, 1),
                                       root.add_int_param("n", 0, 4)))
    on = gp.gp_ucb_pe_designer_with(continuous, dict(gp.SERVICE_SETTINGS, distinct=True))
    assert on._acquisition_optimizer_factory.distinct
    assert on._acquisition_optimizer_factory(on._converter).grids is None
    off = gp.gp_ucb_pe_designer(mixed)  # OSS's settings: no distinct
    assert off._acquisition_optimizer_factory(off._converter).grids is None
    on_mixed = gp.gp_ucb_pe_designer_with(mixed, dict(gp.SERVICE_SETTINGS, distinct=True))
    grids = on_mixed._acquisition_optimizer_factory(on_mixed._converter).grids
    assert grids[0] is None and grids[1][0] == (0.0, 0.25, 0.5, 0.75, 1.0)

    # A box of half-width 0.1 around n = 2 (scaled 0.5) reaches n = 1 and 3 (0.25, 0.75); the
    # continuous feature keeps 0.1.
    widths = distinct.half_widths(grids, np.array([0.3, 0.5]), 0.1)
    assert widths[0] == 0.1 and 0.25 <= widths[1] < 0.2501
    widths = distinct.half_widths(grids, np.array([0.3, 0.0]), 0.4)
    assert widths[1] == 0.4  # already wider than a step

    try:
        gp.gp_ucb_pe_designer_with(continuous, {"distinct": True},
                                   acquisition_optimizer_factory=object())
    except ValueError as e:
        assert "distinct" in str(e), e
    else:
        raise AssertionError("distinct with another acquisition optimizer was accepted")
    print("ok")
    """)
