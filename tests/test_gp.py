"""The server's GP-UCB-PE configuration: the same ARD fit as OSS's optimizer, and no tracing or
compiling again when a fresh designer suggests at a trial count already seen (the speed-up;
its size is measured in benchmarks/server_speed.py, never asserted here).

Both run in a TensorFlow-free child process, as the server does."""

from __future__ import annotations

import pytest
from isolated import run_python

pytestmark = pytest.mark.slow

_SETUP = """
    import random
    import jax
    jax.config.update("jax_enable_x64", True)
    from vizier import pyvizier as vz
    from vizier._src.algorithms.core import abstractions
    from vizier_keras.server import gp

    problem = vz.ProblemStatement()
    root = problem.search_space.root
    root.add_float_param("a", 0, 1)
    root.add_float_param("b", 1e-3, 1, scale_type=vz.ScaleType.LOG)
    root.add_int_param("c", 1, 10)
    root.add_categorical_param("d", ["x", "y", "z"])
    problem.metric_information.append(
        vz.MetricInformation("obj", goal=vz.ObjectiveMetricGoal.MINIMIZE))
    rng = random.Random(0)

    def completed(objective, count=30):
        # Trials at random points of the space, completed with objective(params).
        made = []
        for i in range(count):
            params = {"a": rng.random(), "b": 10 ** rng.uniform(-3, 0),
                      "c": rng.randint(1, 10), "d": rng.choice("xyz")}
            trial = vz.Trial(parameters=params, id=i + 1)
            trial.complete(vz.Measurement(metrics={"obj": float(objective(params))}))
            made.append(trial)
        return made

    trials = completed(lambda params: (params["a"] - 0.3) ** 2 + (params["c"] - 4) ** 2 / 20
                       + (params["d"] != "y"), count=12)

    def fitted_model(settings, completed_trials):
        # The designer's ARD fit on completed_trials: the model and the data it was fitted to.
        designer = gp.gp_ucb_pe_designer_with(problem, settings)
        designer.update(abstractions.CompletedTrials(completed_trials),
                        abstractions.ActiveTrials())
        data = designer._trials_to_data(designer._all_completed_trials)
        return designer._build_gp_model_and_optimize_parameters(data, jax.random.PRNGKey(3)), data

    def traces_of_two_fresh_designers(settings):
        # How many programs JAX traces in the suggestion of a fresh designer, twice.
        traces = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda name, duration, **kw: traces.append(name)
            if name.endswith("jaxpr_trace_duration") else None)
        counts = []
        for _ in range(2):
            # The server builds a new designer for every suggestion, as OSS's policies do.
            designer = gp.gp_ucb_pe_designer_with(problem, settings,
                                                      rng=jax.random.PRNGKey(0))
            designer.update(abstractions.CompletedTrials(trials), abstractions.ActiveTrials())
            traces.clear()
            assert len(designer.suggest(1)) == 1
            counts.append(len(traces))
        return counts

    def assert_rejected(setting, values):
        # Each value of the setting gets a ValueError naming the setting and the value.
        for bad in values:
            try:
                gp.gp_ucb_pe_designer_with(problem, {setting: bad})
            except ValueError as e:
                assert setting in str(e) and repr(bad) in str(e), e
            else:
                raise AssertionError(bad)
"""


def test_flat_lbfgsb_fits_the_same_gp_as_oss():
    assert "ok" in run_python(_SETUP + """
    import numpy as np
    from vizier._src.algorithms.designers import gp_ucb_pe

    def fitted(**kwargs):
        designer = gp_ucb_pe.VizierGPUCBPEBandit(problem, padding_schedule=gp.TRIAL_PADDING,
                                                 **kwargs)
        designer.update(abstractions.CompletedTrials(trials), abstractions.ActiveTrials())
        data = designer._trials_to_data(designer._all_completed_trials)
        return dict(designer._build_gp_model_and_optimize_parameters(
            data, jax.random.PRNGKey(7)).params)

    oss = fitted()
    ours = fitted(ard_optimizer=gp.FlatScipyLbfgsB(gp.default_ard_options()))
    assert oss.keys() == ours.keys()
    for key in oss:
        np.testing.assert_allclose(np.asarray(ours[key]), np.asarray(oss[key]), rtol=2e-3,
                                   atol=1e-8, err_msg=key)
    print("ok")
    """)


def test_a_fresh_designer_reuses_compiled_programs():
    out = run_python(_SETUP + """
    print("counts", *traces_of_two_fresh_designers({}))
    """)
    first, second = (int(x) for x in out.split("counts")[1].split())
    assert first > 10  # the first suggestion traces (the listener works)
    assert second == 0  # the second traces nothing: every program is reused


def test_host_side_padding_changes_no_suggestion():
    # Trial arrays (features of pending trials, warped labels) are joined, unpadded and padded
    # with NumPy instead of OSS's jnp (which compiled small programs for every new trial and
    # pending count). The same arrays, so with the same key the same suggestions: one, a batch,
    # and a batch with pending trials.
    assert "ok" in run_python(_SETUP + """
    import numpy as np
    from vizier._src.algorithms.designers import gp_ucb_pe
    from vizier._src.jax import types as jax_types

    for shape, target, fill in (((3, 2), (30, 2), np.nan), ((0, 4), (30, 4), np.nan),
                                ((30, 1), (30, 1), -1), ((31, 3), (40, 3), np.nan)):
        array = np.arange(np.prod(shape), dtype=float if fill != -1 else int).reshape(shape)
        ours = gp.host_padded(array, target, fill)
        theirs = jax_types.PaddedArray.from_array(array, target, fill_value=fill)
        np.testing.assert_array_equal(np.asarray(ours.padded_array),
                                      np.asarray(theirs.padded_array))
        np.testing.assert_array_equal(np.asarray(ours._mask), np.asarray(theirs._mask))
        assert list(np.asarray(ours._original_shape)) == list(np.asarray(theirs._original_shape))
        assert ours._nopadding_done == theirs._nopadding_done
        np.testing.assert_array_equal(gp.host_unpad(ours), np.asarray(theirs.unpad()))

    def suggestions():
        out = []
        for count, pending in ((1, 0), (5, 0), (3, 4)):
            designer = gp.service_designer(problem, rng=jax.random.PRNGKey(7))
            active = [vz.Trial(parameters=t.parameters, id=100 + i)
                      for i, t in enumerate(trials[:pending])]
            designer.update(abstractions.CompletedTrials(trials), abstractions.ActiveTrials(active))
            out.append([dict((k, v.value) for k, v in s.parameters.items())
                        for s in designer.suggest(count)])
        return out

    ours = suggestions()
    gp.LocallyRefiningBandit._get_predictive_all_features = (
        gp_ucb_pe.VizierGPUCBPEBandit._get_predictive_all_features)
    gp.LocallyRefiningBandit._trials_to_data = gp_ucb_pe.VizierGPUCBPEBandit._trials_to_data
    gp.TrialPadding._pad_trailing_dims = lambda self, array, types: (
        jax_types.PaddedArray.from_array(
            np.asarray(array), (gp.padded_trials(np.shape(array)[0]),
                                *np.shape(array)[1:]),
            fill_value=-1 if np.issubdtype(np.asarray(array).dtype, np.integer) else np.nan))
    assert suggestions() == ours
    print("ok")
    """)


def test_a_suggestion_with_no_completed_trial_and_one_pending():
    # What a tuner that fetches ahead asks while its first trial trains.
    assert "ok" in run_python(_SETUP + """
    designer = gp.gp_ucb_pe_designer(problem, rng=jax.random.PRNGKey(1))
    pending = trials[0]
    active = vz.Trial(parameters=pending.parameters, id=1)
    designer.update(abstractions.CompletedTrials([]), abstractions.ActiveTrials([active]))
    suggestion = designer.suggest(1)[0]
    assert set(suggestion.parameters) == {"a", "b", "c", "d"}
    print("ok")
    """)


def test_fast_scores_equal_oss_scores():
    # The acquisition optimizer evaluates GP-UCB-PE's scores through the gp package's equivalents;
    # they must give OSS's values, for UCB and PE, with pending trials, with padded rows, for
    # an ensemble of GP hyperparameters, and for a GP with warped inputs.
    assert "ok" in run_python(_SETUP + """
    import numpy as np
    import equinox as eqx
    from vizier._src.algorithms.designers import gp_ucb_pe
    from vizier._src.algorithms.optimizers import vectorized_base as vb

    # The suggestion stops once its score function is made: the fitted model is what the
    # comparison needs, not the acquisition optimizer's run.
    class Made(Exception):
        pass

    made, capturing = [], False
    for cls in (gp_ucb_pe.UCBScoreFunction, gp_ucb_pe.PEScoreFunction):
        def init(self, *args, _original=cls.__init__, **kwargs):
            _original(self, *args, **kwargs)
            if capturing:
                made.append(self)
                raise Made
        cls.__init__ = init

    pending = [vz.Trial(parameters={"a": 0.5 + 0.1 * i, "b": 0.01, "c": 3, "d": "y"}, id=20 + i)
               for i in range(2)]
    candidates = [vz.Trial(parameters={"a": rng.random(), "b": 10 ** rng.uniform(-3, 0),
                                       "c": rng.randint(1, 10), "d": rng.choice("xyz")})
                  for _ in range(40)] + trials[:3]
    for settings in ({"ensemble_size": 1}, {"ensemble_size": 3},
                     {"ensemble_size": 1, "input_warping": True},
                     {"ensemble_size": 3, "input_warping": True}):
        designer = gp.gp_ucb_pe_designer_with(problem, settings, rng=jax.random.PRNGKey(3))
        designer.update(abstractions.CompletedTrials(trials), abstractions.ActiveTrials(pending))
        made.clear()
        capturing = True
        try:
            designer.suggest(1)
        except Made:
            pass
        capturing = False
        [original] = made
        optimizer = designer._acquisition_optimizer_factory(designer._converter)
        assert isinstance(optimizer, vb.VectorizedOptimizer)
        assert type(optimizer).__name__ == "_FastScoreOptimizer"
        config = designer._config
        both = [
            gp_ucb_pe.UCBScoreFunction(
                original.predictive, original.predictive_all_features,
                ucb_coefficient=config.ucb_coefficient, trust_region=original.trust_region,
                scalarization_weights_rng=jax.random.PRNGKey(0),
                labels=designer._trials_to_data(trials).labels),
            gp_ucb_pe.PEScoreFunction(
                original.predictive, original.predictive_all_features,
                ucb_coefficient=config.ucb_coefficient,
                explore_ucb_coefficient=config.explore_region_ucb_coefficient,
                penalty_coefficient=config.cb_violation_penalty_coefficient,
                trust_region=original.trust_region,
                multimetric_promising_region_penalty_type=(
                    config.multimetric_promising_region_penalty_type)),
        ]
        xs = designer._converter.to_features(candidates)  # padded rows included
        rows = len(candidates)
        for score_function in both:
            fast = gp.fast_score_function(score_function.score)
            assert fast is not None, type(score_function)
            want = np.asarray(eqx.filter_jit(lambda f, x: f.score(x))(score_function, xs))
            got = np.asarray(eqx.filter_jit(lambda f, x: f(x))(fast, xs))
            assert want.shape == got.shape
            # Values far from and near the trust region, some penalized.
            assert np.ptp(want[:rows]) > 1e-3
            np.testing.assert_allclose(got[:rows], want[:rows], rtol=1e-8, atol=1e-10,
                                       err_msg=f"{type(score_function).__name__} {settings}")
    print("ok")
    """)


def test_the_service_default_changes_its_settings_for_one_metric_only():
    # The service's default (benchmarks/notes/, "seed5-ucb1.0", "local2-r0.1"): five seed
    # trials (the centre, then quasi-random), UCB coefficient 1.0, and every second suggestion
    # after the seeds near the best trial; several metrics keep OSS's settings.
    assert "ok" in run_python(_SETUP + """
    import copy
    from vizier_keras.server import policies

    designer = gp.service_designer(problem, rng=jax.random.PRNGKey(2))
    assert designer._num_seed_trials == 5
    assert abs(float(designer._config.ucb_coefficient) - 1.0) < 1e-9
    assert [n for n in range(10) if designer.is_local(n)] == [6, 8]
    assert designer._local_radius == 0.1
    assert designer._distinct and designer._acquisition_optimizer_factory.distinct
    oss = gp.gp_ucb_pe_designer(problem)
    assert oss._num_seed_trials == 1 and abs(float(oss._config.ucb_coefficient) - 1.8) < 1e-9
    assert not any(oss.is_local(n) for n in range(50))

    # The first five suggestions are the seed trials: the centre, then four distinct others.
    seen = []
    for _ in range(5):
        (suggestion,) = designer.suggest(1)
        seen.append(tuple(sorted((k, str(v.value)) for k, v in suggestion.parameters.items())))
        done = suggestion.to_trial(len(seen))
        done.complete(vz.Measurement(metrics={"obj": float(len(seen))}))
        designer.update(abstractions.CompletedTrials([done]), abstractions.ActiveTrials())
    assert dict(seen[0])["a"] == "0.5", seen[0]
    assert len(set(seen)) == 5

    multi = copy.deepcopy(problem)
    multi.metric_information.append(
        vz.MetricInformation("other", goal=vz.ObjectiveMetricGoal.MAXIMIZE))
    two = gp.service_designer(multi)
    assert two._num_seed_trials == 1 and abs(float(two._config.ucb_coefficient) - 1.8) < 1e-9
    assert two._local_every == 0

    # The service builds its default policy from it.
    policy = policies._policy(problem, "ALGORITHM_UNSPECIFIED", None)
    assert policy._designer_factory is gp.service_designer
    print("ok")
    """)


def test_gp_settings_replace_the_service_default_and_are_checked():
    # The server's --gp-settings (for experiments, e.g. the service with OSS's own settings
    # against plain OSS in benchmarks/quality.py): every study's default algorithm takes them.
    assert "ok" in run_python(_SETUP + """
    from vizier_keras.server import policies

    for settings, seeds, ucb in (({}, 1, 1.8), ({"ucb_coefficient": 0.5, "num_seed_trials": 2},
                                               2, 0.5)):
        assert gp.check_settings(settings) == settings
        policy = policies._policy(problem, "ALGORITHM_UNSPECIFIED", None, settings)
        designer = policy._designer_factory(problem)
        assert designer._num_seed_trials == seeds, settings
        assert abs(float(designer._config.ucb_coefficient) - ucb) < 1e-9, settings
        assert designer._local_every == 0
    for bad, words in (({"ucb_coefficent": 1.0}, ["'ucb_coefficent'", "ucb_coefficient"]),
                       ({"local_radius": 3}, ["local_radius", "3"]),
                       ({"local_every": 2, "use_trust_region": False}, ["use_trust_region"]),
                       ([1], ["JSON object", "[1]"])):
        try:
            gp.check_settings(bad)
        except ValueError as e:
            assert all(w in str(e) for w in words), e
        else:
            raise AssertionError(bad)
    print("ok")
    """)


def test_an_adaptive_box_grows_on_local_improvements_and_shrinks_on_misses():
    # local_adaptive: the half-width is replayed from the trials: x2 after a local trial that
    # improved on all before it, /2 after two local misses in a row, within [r/2, min(4r, 0.5)].
    assert "ok" in run_python(_SETUP + """
    def designer_after(values, settings=None, active=()):
        settings = settings or {"num_seed_trials": 2, "local_every": 1, "local_radius": 0.1,
                                "local_adaptive": True}
        designer = gp.gp_ucb_pe_designer_with(problem, settings)
        done = []
        for i, value in enumerate(values):
            trial = vz.Trial(parameters=trials[i % len(trials)].parameters, id=i + 1)
            if value == "crash":
                trial.complete(vz.Measurement(), infeasibility_reason="crashed")
            else:
                trial.complete(vz.Measurement(metrics={"obj": value}))
            done.append(trial)
        pending = [vz.Trial(parameters=trials[0].parameters, id=i) for i in active]
        designer.update(abstractions.CompletedTrials(done), abstractions.ActiveTrials(pending))
        return designer

    # Seeds (ids 1-2) never count; from id 3 on every trial is local here (local_every 1).
    assert designer_after([5.0, 4.0]).radius() == 0.1
    assert designer_after([5.0, 4.0, 3.0]).radius() == 0.2            # an improvement
    assert designer_after([5.0, 4.0, 3.0, 2.0, 1.0]).radius() == 0.4  # capped at 4 r
    assert designer_after([5.0, 4.0, 3.0, 2.0, 1.0, 0.5]).radius() == 0.4
    assert designer_after([5.0, 4.0, 6.0]).radius() == 0.1            # one miss: no change
    assert designer_after([5.0, 4.0, 6.0, 7.0]).radius() == 0.05      # two misses: halved
    # A tie (within 1e-3 of the best's magnitude), a crash and a NaN are misses.
    assert designer_after([5.0, 4.0, 3.999, "crash"]).radius() == 0.05
    assert designer_after([5.0, 4.0, float("nan"), 9.0]).radius() == 0.05
    assert designer_after([5.0, 4.0] + [9.0] * 20).radius() == 0.05  # floor at r / 2
    # A miss streak is broken by an improvement.
    assert designer_after([5.0, 4.0, 6.0, 3.0, 7.0]).radius() == 0.2
    # A non-local trial's improvement does not grow the box (local_every 2: ids 4, 6 local),
    # but it raises the bar for the local ones after it.
    every2 = {"num_seed_trials": 2, "local_every": 2, "local_radius": 0.1,
              "local_adaptive": True}
    assert designer_after([5.0, 4.0, 1.0], every2).radius() == 0.1
    assert designer_after([5.0, 4.0, 1.0, 2.0, 9.0, 3.0], every2).radius() == 0.05
    # Positions count active trials too; their outcomes are unknown and change nothing.
    assert designer_after([5.0, 4.0, 4.5], every2, active=[4]).radius() == 0.1
    # Without local_adaptive the radius is fixed.
    fixed = {"num_seed_trials": 2, "local_every": 1, "local_radius": 0.1}
    assert designer_after([5.0, 4.0, 3.0, 2.0], fixed).radius() == 0.1
    print("ok")
    """)


def test_local_refinement_suggests_inside_a_box_around_the_best_trial():
    # LocallyRefiningBandit: every local_every-th suggestion after the seed trials is searched
    # for only within local_radius (L-inf, scaled space) of the best completed trial.
    assert "ok" in run_python(_SETUP + """
    import numpy as np

    designer = gp.gp_ucb_pe_designer_with(
        problem, {"local_every": 1, "local_radius": 0.05}, rng=jax.random.PRNGKey(4))
    # An infeasible trial and a NaN are never the incumbent, whatever their values.
    broken = vz.Trial(parameters={"a": 0.9, "b": 0.5, "c": 9, "d": "x"}, id=13)
    broken.complete(vz.Measurement(), infeasibility_reason="crashed")
    nan = vz.Trial(parameters={"a": 0.1, "b": 0.01, "c": 1, "d": "z"}, id=14)
    nan.complete(vz.Measurement(metrics={"obj": float("nan")}))
    designer.update(abstractions.CompletedTrials(trials + [broken, nan]),
                    abstractions.ActiveTrials())
    best = min(trials, key=lambda t: t.final_measurement.metrics["obj"].value)
    assert designer.incumbent().id == best.id
    centre = designer._converter.to_features([best]).continuous.unpad()[0]
    for _ in range(3):
        (suggestion,) = designer.suggest(1)
        got = designer._converter.to_features([suggestion.to_trial(99)]).continuous.unpad()[0]
        assert np.max(np.abs(got - centre)) <= 0.05 + 1e-9, (got, centre)
        done = suggestion.to_trial(len(designer._all_completed_trials) + 1)
        done.complete(vz.Measurement(metrics={"obj": 5.0}))
        designer.update(abstractions.CompletedTrials([done]), abstractions.ActiveTrials())

    # Which suggestions are local depends only on the trial count.
    every3 = gp.gp_ucb_pe_designer_with(problem, {"num_seed_trials": 5, "local_every": 3})
    assert [n for n in range(15) if every3.is_local(n)] == [7, 10, 13]
    off = gp.gp_ucb_pe_designer(problem)
    assert not any(off.is_local(n) for n in range(50))

    # For a metric to maximize, the incumbent is the largest value.
    import copy
    up = copy.deepcopy(problem)
    up.metric_information.item().goal = vz.ObjectiveMetricGoal.MAXIMIZE
    high = gp.gp_ucb_pe_designer_with(up, {"local_every": 2})
    high.update(abstractions.CompletedTrials(trials), abstractions.ActiveTrials())
    assert high.incumbent().id == max(
        trials, key=lambda t: t.final_measurement.metrics["obj"].value).id

    for bad, word in (({"local_every": -1}, "local_every"), ({"local_radius": 0.0}, "local_radius"),
                      ({"local_radius": 0.7}, "local_radius"),
                      ({"local_every": 2, "use_trust_region": False}, "use_trust_region")):
        try:
            gp.gp_ucb_pe_designer_with(problem, bad)
        except ValueError as e:
            assert word in str(e), e
        else:
            raise AssertionError(bad)
    print("ok")
    """)


def test_a_length_scale_floor_bounds_the_fitted_continuous_length_scales():
    # min_length_scale (FlooredLengthScaleGP): OSS's GP with its continuous length scales kept
    # at or above the floor; the other parameters, their names and the categorical ones as OSS's.
    assert "ok" in run_python(_SETUP + """
    import math
    import numpy as np

    # A rugged objective in "a": OSS's fit takes a short length scale there.
    rugged = completed(lambda params: math.sin(20 * params["a"]))

    def fitted(settings):
        model, _ = fitted_model(settings, rugged)
        return {k: np.sqrt(np.asarray(v)) if "length" in k else np.asarray(v)
                for k, v in model.params.items()}

    oss, floored = fitted({}), fitted({"min_length_scale": 0.3})
    assert oss.keys() == floored.keys()
    assert oss["continuous_length_scale_squared"].min() < 0.25, oss
    assert floored["continuous_length_scale_squared"].min() >= 0.3 - 1e-3, floored
    # Only a floor swaps OSS's model class for the floored one.
    for settings in ({}, {"min_length_scale": 0.3}):
        designer = gp.gp_ucb_pe_designer_with(problem, settings)
        assert (isinstance(designer._gp_model_class, gp.FlooredLengthScaleGP)
                == bool(settings))

    # A floored designer suggests, and a fresh one reuses the compiled programs (the model is
    # a value, equal for equal floors).
    counts = traces_of_two_fresh_designers({"min_length_scale": 0.3})
    assert counts[0] > 10 and counts[1] == 0, counts

    assert_rejected("min_length_scale", (0.0, -0.1, 1.5))  # floats: repr is str
    print("ok")
    """)


def test_input_warping_fits_a_warp_per_continuous_parameter():
    # input_warping (InputWarpedGP): OSS's GP on continuous inputs passed each through its own
    # fitted Kumaraswamy CDF; OSS's parameters keep their names, two are added per continuous
    # feature, and the warp at a = b = 1 leaves OSS's kernel as it is.
    assert "ok" in run_python(_SETUP + """
    import numpy as np
    from vizier._src.jax import stochastic_process_model as sp

    x = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(gp.kumaraswamy_warp(x, 1.0, 1.0), x, atol=1e-6)
    warped = np.asarray(gp.kumaraswamy_warp(x, 2.0, 0.5))
    assert warped[0] < 1e-6 and warped[-1] > 1 - 1e-3 and np.all(np.diff(warped) > 0)
    np.testing.assert_allclose(gp.kumaraswamy_warp(np.array([-0.5, 1.5]), 2.0, 3.0),
                               gp.kumaraswamy_warp(np.array([0.0, 1.0]), 2.0, 3.0))

    # Steep near a = 0 and flat beyond: the warp the fit finds stretches the low end of "a"
    # (maps [0, 0.1] onto much more than a tenth of [0, 1]).
    steep = completed(lambda params: np.exp(-30 * params["a"]))
    oss_model, data = fitted_model({}, steep)
    model, _ = fitted_model({"input_warping": True}, steep)
    oss, warp = ({k: np.asarray(v) for k, v in m.params.items()} for m in (oss_model, model))
    added = {"continuous_warp_concentration1", "continuous_warp_concentration0"}
    assert warp.keys() == oss.keys() | added, warp.keys()
    continuous = data.features.continuous.padded_array.shape[-1]
    for name in added:
        assert warp[name].shape == (1, continuous), (name, warp[name].shape)
        assert np.all((warp[name] >= 0.2 - 1e-6) & (warp[name] <= 5.0 + 1e-6)), warp[name]
    # The converter puts "a" first among the continuous features.
    low_end = float(gp.kumaraswamy_warp(0.1, warp["continuous_warp_concentration1"][0, 0],
                                            warp["continuous_warp_concentration0"][0, 0]))
    assert low_end > 0.25, (low_end, warp)
    # The warp's likelihood is at least that of no warp (which its fit started from).
    no_warp = dict(model.params)
    no_warp.update({name: np.ones_like(warp[name]) for name in added})
    loss = lambda params: sp.CoroutineWithData(model.coroutine, data).loss_with_aux(params)[0]
    squeezed = lambda params: {k: np.asarray(v)[0] for k, v in params.items()}
    assert float(loss(squeezed(model.params))) <= float(loss(squeezed(no_warp))) + 1e-9

    # At a = b = 1 the warped kernel is OSS's.
    z = sp.tfpke.ContinuousAndCategoricalValues(
        continuous=data.features.continuous.padded_array,
        categorical=data.features.categorical.padded_array)
    kernel = oss_model.precompute_predictive(data).prior(data.features).kernel
    identity = gp.KumaraswamyWarped(kernel, np.ones((1, continuous)),
                                        np.ones((1, continuous)))
    np.testing.assert_allclose(identity.matrix(z, z), kernel.matrix(z, z), atol=1e-5)

    # Only input_warping swaps in the warped model class, over a floor where one is set.
    for settings, kind in (({}, None), ({"input_warping": False}, None),
                           ({"input_warping": True}, gp.InputWarpedGP)):
        designer = gp.gp_ucb_pe_designer_with(problem, settings)
        assert (type(designer._gp_model_class) is kind) or (
            kind is None and not isinstance(designer._gp_model_class, gp.InputWarpedGP))
    both = gp.gp_ucb_pe_designer_with(problem, {"input_warping": True,
                                                    "min_length_scale": 0.3})
    assert both._gp_model_class.base == gp.FlooredLengthScaleGP(0.3)

    # A warped designer suggests, and a fresh one reuses the compiled programs.
    counts = traces_of_two_fresh_designers({"input_warping": True})
    assert counts[0] > 10 and counts[1] == 0, counts

    # A suggestion with only a pending trial (no completed one) works with the warp too.
    designer = gp.gp_ucb_pe_designer_with(problem, {"input_warping": True})
    designer.update(abstractions.CompletedTrials([]), abstractions.ActiveTrials(
        [vz.Trial(parameters=trials[0].parameters, id=1)]))
    assert len(designer.suggest(1)) == 1

    assert_rejected("input_warping", ("yes", 1, None))
    print("ok")
    """)
