"""The benchmarks' own arithmetic: test functions, curve summaries, target checks, replay sums.

Numbers measured by the benchmarks are never asserted here; this checks that what they compute
from their measurements is right.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
sys.path.insert(1, os.path.join(sys.path[0], "studies"))

import analyze
import early_stopping
import quality
from lib import tasks


@pytest.mark.parametrize("task", tasks.function_tasks((2, 4, 8)), ids=lambda t: t.name)
def test_test_functions_have_zero_regret_at_their_shifted_optimum_only(task):
    for seed in range(3):
        x_opt = task.optimum(seed)
        assert np.all(np.abs(x_opt) <= 4.0)
        at_optimum = {f"x{i}": v for i, v in enumerate(x_opt)}
        assert task.evaluate(at_optimum, seed) == pytest.approx(0.0, abs=1e-9)
        moved = {k: v + 0.3 for k, v in at_optimum.items()}
        assert task.evaluate(moved, seed) > 0.01
    assert not np.allclose(task.optimum(0), task.optimum(1))


def test_the_space_of_a_function_task_is_its_domain():
    space = tasks.FunctionTask("sphere", 3).space()
    assert [(hp.name, hp.min_value, hp.max_value) for hp in space.space] == [
        ("x0", -5.0, 5.0), ("x1", -5.0, 5.0), ("x2", -5.0, 5.0)]


def _run(task, peer, seed, values):
    curve = list(np.minimum.accumulate(values))
    return {"task": task, "peer": peer, "seed": seed, "values": values, "curve": curve,
            "ask_seconds": [0.0] * len(values)}


def test_median_curves_and_trials_to_reach():
    runs = [_run("t", "p", 0, [5, 4, 3, 2]), _run("t", "p", 1, [6, 1, 1, 1]),
            _run("t", "p", 2, [7, 7, 7, 0])]
    curve = quality.median_curve(runs)
    assert curve == [6, 4, 3, 1]
    assert quality.trials_to_reach(curve, 3) == 3
    assert quality.trials_to_reach(curve, 0.5) is None


def test_targets_count_tasks_where_vizier_reaches_tpe_and_is_not_worse_than_kt_bo():
    runs = []
    for seed in range(3):
        # task a: Vizier reaches TPE's 6-trial best (2) at trial 3; better than KT BO at 3.
        runs += [_run("a", "vizier", seed, [5, 4, 2]),
                 _run("a", "optuna-tpe", seed, [5, 4, 3, 3, 3, 2]),
                 _run("a", "kt-bo", seed, [5, 4, 3])]
        # task b: Vizier never reaches TPE's best within 3 trials, and is worse than KT BO.
        runs += [_run("b", "vizier", seed, [5, 5, 5]),
                 _run("b", "optuna-tpe", seed, [5, 4, 3, 3, 3, 1]),
                 _run("b", "kt-bo", seed, [5, 4, 4])]
    summary = quality.summarize(runs, trials=6, at=3)
    assert summary["tasks"]["a"]["optuna-tpe"]["vizier_trials_to_reach"] == 3
    assert summary["tasks"]["b"]["optuna-tpe"]["vizier_trials_to_reach"] is None
    assert summary["tasks"]["a"]["kt-bo"]["median_best_at_3"] == 3
    targets = summary["targets"]
    assert targets["reach_tpe_6_trial_median_within_3"] == "1 of 2"
    assert targets["reach_tpe_met"] is False
    assert targets["not_worse_than_kt_bo_at_3"] == "1 of 2"
    assert targets["not_worse_than_kt_bo_met"] is False
    assert "tasks_without_optuna-tpe" not in targets
    # Task c has Vizier's runs and no peer's: neither target can be read over all tasks, even
    # though Vizier reaches TPE on every task that has TPE (a count of 1 of 1 would say "met").
    runs = [r for r in runs if r["task"] == "a"] + [_run("c", "vizier", 0, [1, 1, 1])]
    targets = quality.summarize(runs, trials=6, at=3)["targets"]
    assert targets["reach_tpe_6_trial_median_within_3"] == "1 of 1"
    assert targets["reach_tpe_met"] is None and targets["not_worse_than_kt_bo_met"] is None
    assert targets["tasks_without_optuna-tpe"] == ["c"] == targets["tasks_without_kt-bo"]


def test_combine_lets_a_later_file_replace_a_run_and_dates_the_span(tmp_path):
    # The quality tables are built by combining parts run on different days; a rerun of the
    # same task, optimizer and seed in a later part replaces the earlier one.
    def part(name, date, runs):
        path = tmp_path / name
        path.write_text(json.dumps({"machine": {"date": date, "cpus": 2}, "wall_seconds": 10,
                                    "args": {"trials": 3, "at": 3}, "runs": runs}))
        return str(path)

    first = part("a.json", "2026-11-27", [_run("a", "vizier", 0, [5.0, 4.0, 4.0]),
                                          _run("a", "vizier", 1, [5.0, 5.0, 5.0]),
                                          _run("a", "kt-bo", 0, [6.0, 6.0, 6.0])])
    second = part("b.json", "2026-11-29", [_run("a", "vizier", 1, [3.0, 2.0, 1.0])])
    out = tmp_path / "all.json"
    analyze.combine([first, second], str(out), at=3)
    report = json.loads(out.read_text())
    assert report["machine"]["date"] == "2026-11-27 to 2026-11-29"
    assert report["wall_seconds"] == 20
    assert sorted((r["peer"], r["seed"], r["curve"][-1]) for r in report["runs"]) == [
        ("kt-bo", 0, 6), ("vizier", 0, 4), ("vizier", 1, 1)]
    assert report["summary"]["tasks"]["a"]["vizier"]["median_best_at_3"] == 2.5
    # Only seeds 1-1: seed 1's rerun, no seed-0 run of either optimizer.
    analyze.combine([first, second], str(out), at=3, seeds=(1, 1))
    report = json.loads(out.read_text())
    assert [(r["peer"], r["seed"], r["curve"][-1]) for r in report["runs"]] == [("vizier", 1, 1)]
    assert analyze.seed_range("0-4") == (0, 4)
    for bad in ("4", "4-0", "a-b", "-1-2"):
        with pytest.raises(argparse.ArgumentTypeError, match="--only-seeds"):
            analyze.seed_range(bad)


def test_compare_counts_seeds_where_the_second_file_beat_the_first(tmp_path):
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    before.write_text(json.dumps({"runs": [_run("a", "vizier", 0, [5.0, 4.0]),
                                           _run("a", "vizier", 1, [5.0, 2.0]),
                                           _run("b", "vizier", 0, [3.0, 3.0]),
                                           _run("b", "kt-bo", 0, [9.0, 9.0])]}))
    after.write_text(json.dumps({"runs": [_run("a", "vizier", 0, [3.0, 3.0]),
                                          _run("a", "vizier", 1, [5.0, 5.0]),
                                          _run("b", "vizier", 0, [3.0, 1.0]),
                                          _run("b", "kt-bo", 0, [1.0, 1.0])]}))
    # At trial 2: a seed 0 better, a seed 1 worse; b better (kt-bo is not Vizier).
    assert analyze.compare(str(before), str(after), at=2) == {
        "a": (1, 1), "b": (1, 0), "all": (2, 1)}
    # At trial 1: a seed 0 better, a seed 1 tied, b tied.
    assert analyze.compare(str(before), str(after), at=1)["all"] == (1, 0)


def test_head_to_head_counts_seeds_where_vizier_beat_a_peer_in_one_file(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"runs": [_run("a", "vizier", 0, [5.0, 4.0, 1.0]),
                                         _run("a", "kt-bo", 0, [6.0, 3.0, 3.0]),
                                         _run("a", "vizier", 1, [2.0, 2.0, 2.0]),
                                         _run("a", "kt-bo", 1, [2.0, 2.0, 2.0]),
                                         _run("a", "vizier", 2, [9.0, 9.0, 9.0]),
                                         _run("b", "vizier", 0, [1.0, 1.0, 1.0]),
                                         _run("b", "kt-bo", 0, [4.0]),
                                         _run("b", "optuna-tpe", 0, [0.0, 0.0, 0.0])]}))
    # At trial 2: a seed 0 worse (4 > 3), seed 1 tied, seed 2 has no kt-bo run; b's kt-bo run
    # ended at trial 1 and is compared at its last (1 < 4: better); optuna-tpe is not counted.
    assert analyze.head_to_head(str(path), "kt-bo", at=2) == {
        "a": (0, 1), "b": (1, 0), "all": (1, 1)}
    assert analyze.head_to_head(str(path), "kt-bo", at=3)["a"] == (1, 0)
    assert analyze.head_to_head(str(path), "optuna-tpe", at=3) == {"b": (0, 1), "all": (0, 1)}


def test_reach_chance_is_the_share_of_seed_resamples_where_vizier_reaches_the_peer(tmp_path):
    path = tmp_path / "q.json"
    runs = []
    for seed in range(6):
        # a: Vizier at trial 2 below TPE's last on every seed; b: above on every seed;
        # c: below on three seeds and above on three.
        runs += [_run("a", "vizier", seed, [9.0, 1.0, 0.0]),
                 _run("a", "optuna-tpe", seed, [2.0] * 4),
                 _run("b", "vizier", seed, [9.0, 5.0]), _run("b", "optuna-tpe", seed, [2.0] * 4),
                 _run("c", "vizier", seed, [9.0, 1.0 if seed < 3 else 3.0]),
                 _run("c", "optuna-tpe", seed, [9.0, 2.0])]
    runs.append(_run("c", "vizier", 7, [0.0, 0.0]))  # no TPE run for seed 7: left out
    path.write_text(json.dumps({"runs": runs}))
    out = analyze.reach_chance(str(path), at=2, resamples=2000)
    assert out["a"]["share"] == 1.0 and out["b"]["share"] == 0.0
    assert out["c"]["seeds"] == 6 and 0.2 < out["c"]["share"] < 0.8
    assert [out[t]["runs_reaching"] for t in "abc"] == [6, 0, 3]
    assert out["a"]["vizier_median_at_2"] == 1.0 and out["a"]["optuna-tpe_median_at_last"] == 2.0
    # At trial 3 Vizier's 0.0 on a; a run shorter than 3 is read at its last.
    assert analyze.reach_chance(str(path), at=3, resamples=100)["b"]["share"] == 0.0

    # A second draw of Vizier on c: below TPE on seeds 3-5 (where the first draw was above),
    # above on 0-1; seed 2 missing, so it leaves the pooled reading. TPE is read from the first
    # file only: the draw's TPE run is ignored.
    draw = tmp_path / "draw.json"
    draw.write_text(json.dumps({"runs": [
        *(_run("c", "vizier", s, [9.0, 3.0 if s < 2 else 1.0]) for s in (0, 1, 3, 4, 5)),
        _run("c", "optuna-tpe", 0, [0.0])]}))
    pooled = analyze.reach_chance(str(path), at=2, resamples=2000, draws=[str(draw)])
    assert "a" not in pooled and pooled["c"]["seeds"] == 5 and pooled["c"]["draws"] == 2
    assert pooled["c"]["vizier_median_at_2_per_draw"] == [3.0, 1.0]
    assert pooled["c"]["runs_reaching"] == 2 + 3  # first draw: seeds 0, 1; second: 3, 4, 5
    assert pooled["c"]["vizier_median_at_2"] == 2.0  # five 1.0s and five 3.0s
    assert pooled["c"]["share"] > out["c"]["share"]
    # The peer read at trial 1 (9.0 on c) instead of its last (2.0).
    early = analyze.reach_chance(str(path), at=2, resamples=100, peer_at=1)
    assert early["c"]["optuna-tpe_median_at_1"] == 9.0 and early["c"]["share"] == 1.0


def test_reach_chance_reads_a_task_alike_whatever_else_the_file_holds(tmp_path):
    def c_runs(seeds):
        return [run for seed in seeds
                for run in (_run("c", "vizier", seed, [1.0 if seed % 2 else 3.0]),
                            _run("c", "optuna-tpe", seed, [2.0]))]

    alone, crowded = tmp_path / "alone.json", tmp_path / "crowded.json"
    alone.write_text(json.dumps({"runs": c_runs(range(8))}))
    # Another task, read before c, with as many seeds: it takes its resamples first.
    crowded.write_text(json.dumps({"runs": [
        *(_run("a", p, seed, [float(seed)]) for seed in range(8) for p in ("vizier", "optuna-tpe")),
        *c_runs(range(8))]}))
    share = analyze.reach_chance(str(alone), at=1, resamples=500)["c"]["share"]
    assert 0.2 < share < 0.8
    assert analyze.reach_chance(str(crowded), at=1, resamples=500)["c"]["share"] == share


def test_peer_at_reads_the_options_that_name_a_peer_and_its_trial():
    from lib import _common

    assert _common.peer_at("kt-bo@30") == ("kt-bo", 30)
    assert _common.peer_at("optuna-tpe") == ("optuna-tpe", None)
    assert _common.peer_at_trial("vizier@30") == ("vizier", 30)
    for bad in ("kt-bo@", "kt-bo@0", "kt-bo@x", "kt-bo@-3", "@30", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="trial count"):
            _common.peer_at(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=r"PEER@N with .*'vizier'"):
        _common.peer_at_trial("vizier")


def test_repeats_finds_the_runs_whose_values_start_the_same(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"runs": [_run("a", "kt-bo", 0, [5.0, 4.0, 3.0]),
                                          _run("a", "kt-bo", 1, [5.0, 4.0, 3.0]),
                                          _run("b", "kt-bo", 1, [2.0, 2.0]),
                                          _run("a", "vizier", 0, [1.0, 2.0]),
                                          _run("c", "kt-bo", 0, [1.0])]}))
    second.write_text(json.dumps({"runs": [
        _run("a", "kt-bo", 0, [5.0, 4.0, 3.0, 0.5, 0.1]),  # longer, starts the same: repeated
        _run("a", "kt-bo", 1, [5.0, 4.5, 3.0, 1.0]),      # differs at trial 2
        _run("b", "kt-bo", 1, [2.0, 2.0]),
        _run("a", "vizier", 0, [2.0, 2.0]),               # differs at trial 1
        _run("d", "kt-bo", 0, [1.0])]}))                  # only here: not compared
    out = analyze.repeats(str(first), str(second))
    assert out == {"kt-bo": {"compared": 3, "repeated": 2, "differ": [("a", 1, 2)]},
                   "vizier": {"compared": 1, "repeated": 0, "differ": [("a", 0, 1)]}}


def test_a_replay_counts_epochs_target_and_false_stops():
    trials = [{"row": 0, "epochs": 30, "value": 0.5, "stopped": False},
              {"row": 1, "epochs": 3, "value": 0.9, "stopped": True},
              {"row": 2, "epochs": 5, "value": 0.8, "stopped": True},
              {"row": 3, "epochs": 30, "value": 0.2, "stopped": False}]
    summary = early_stopping.summarize_replay(trials, target=0.3, top10={2, 3})
    assert summary == {"trials": 4, "epochs": 68, "best": 0.2, "epochs_to_target": 68,
                       "stopped": 2, "false_stops": 1}
    never = early_stopping.summarize_replay(trials[:2], target=0.3, top10=set())
    assert never["epochs_to_target"] is None


def test_without_stopping_every_trial_runs_all_epochs_and_keeps_its_best_epoch():
    rows = [early_stopping.Row(0, {"val_loss": [1.0, 0.5, 0.7]}),
            early_stopping.Row(1, {"val_loss": [2.0, 1.5, 1.2]})]
    out = early_stopping.replay_none([rows[0], rows[1], rows[0]], 3)
    assert [t["epochs"] for t in out] == [3, 3, 3]
    assert [t["value"] for t in out] == [0.5, 1.2, 0.5]
    assert not any(t["stopped"] for t in out)
    assert math.isinf(early_stopping._median_or_inf([None, None, 4]))


def test_gp_variants_give_the_designer_the_space_the_service_builds():
    import gp_variants
    from vizier import pyvizier as vz

    problem = gp_variants.problem_of(tasks.KerasTask("wine"))
    params = {p.name: p for p in problem.search_space.parameters}
    assert sorted(params) == ["dropout", "l2", "layers", "learning_rate", "units"]
    assert params["units"].type == vz.ParameterType.INTEGER
    assert params["units"].bounds == (8, 256)
    assert params["units"].scale_type == vz.ScaleType.LOG
    assert params["learning_rate"].scale_type == vz.ScaleType.LOG
    assert params["dropout"].bounds == (0.0, 0.5)
    assert problem.metric_information.item().goal == vz.ObjectiveMetricGoal.MINIMIZE


@pytest.mark.slow
def test_gp_variants_gp_seed_offset_changes_only_the_designers_random_key():
    # In a TensorFlow-free child, as gp_variants' workers run the designer.
    from isolated import run_python

    out = run_python("""
        import os, sys
        os.environ["KERAS_BACKEND"] = "jax"  # as gp_variants' workers (_worker_init)
        sys.path[:0] = ["benchmarks", "benchmarks/studies"]
        import gp_variants
        from lib import tasks

        problem = gp_variants.problem_of(tasks.FunctionTask("sphere", 2))

        def seed_trials(variant, seed):
            designer = gp_variants.designer_for(problem, {"num_seed_trials": 4, **variant},
                                                seed)
            return [dict(s.parameters.as_dict()) for s in designer.suggest(4)]

        offset = seed_trials({"gp_seed_offset": 5}, 2)
        assert offset == seed_trials({}, 7), "task seed 2 + offset 5 is the key of seed 7"
        assert offset != seed_trials({}, 2)
        assert offset[0] == {"x0": 0.0, "x1": 0.0}, offset[0]  # the centre: settings apply
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_gp_variants_draws_read_a_variant_against_every_draw_of_the_baselines_settings():
    import gp_variants

    variants = {"base": {"a": 1}, "base-gp5": {"a": 1, "gp_seed_offset": 5},
                "base-gp9": {"gp_seed_offset": 9, "a": 1}, "other": {"a": 2},
                "other-gp5": {"a": 2, "gp_seed_offset": 5}}
    assert gp_variants.draws_of(variants, "base") == ["base", "base-gp5", "base-gp9"]

    def run(variant, seed, best):
        return {"task": "t", "variant": variant, "seed": seed, "curve": [best + 1, best]}

    runs = [run("base", 0, 1.0), run("base", 1, 5.0),
            run("base-gp5", 0, 3.0), run("base-gp5", 1, 4.0),
            run("base-gp9", 0, 2.0),  # a draw with one seed only
            run("other", 0, 2.5), run("other", 1, 4.5)]
    summary = gp_variants.summarize_draws(runs, variants, at=2, baseline="base")["t"]
    assert summary["pooled_median"] == 3.0  # of 1, 5, 3, 4, 2
    assert summary["draws"]["base-gp9"] == {"seeds": 1, "median": 2.0}
    other = summary["variants"]["other"]
    # seed by seed: 2.5 vs base 1 (worse), 4.5 vs 5 (better); vs gp5: 2.5 < 3, 4.5 > 4;
    # vs gp9: seed 0 only, 2.5 > 2
    assert other["against"] == ["base", "base-gp5", "base-gp9"]
    assert other["better_worse"] == [[1, 1], [1, 1], [0, 1]]
    assert (other["better"], other["worse"]) == (2, 3)
    # a draw against the first: 3 > 1, 4 < 5
    assert summary["variants"]["base-gp5"]["better_worse"] == [[1, 1]]
    assert summary["variants"]["base"]["against"] == []
    # A task where the baseline ran with one draw only is left out.
    assert gp_variants.summarize_draws([r for r in runs if r["variant"] != "base-gp5"
                                        and r["variant"] != "base-gp9"], variants, 2,
                                       "base") == {}


def test_gp_variants_summary_is_the_median_best_at_the_trial_count_per_variant():
    import gp_variants

    def run(variant, seed, values):
        return {"task": "t", "variant": variant, "seed": seed, "values": values,
                "curve": list(np.minimum.accumulate(values))}

    runs = [run("default", 0, [5, 4, 3]), run("default", 1, [9, 8, 7]),
            run("default", 2, [6, 1, 1]), run("v", 0, [2, 2, 2]), run("v", 1, [3, 0, 0])]
    summary = gp_variants.summarize(runs[::-1], at=2)  # runs finish in any order
    assert summary["t"]["default"] == {"seeds": 3, "median_best_at_2": 4, "bests": [4, 8, 1]}
    # v against default, seed by seed at trial 2: 2 < 4, 0 < 8 (seed 2 not run by v)
    assert summary["t"]["v"] == {"seeds": 2, "median_best_at_2": 1.0, "bests": [2, 0],
                                 "better_than_default": 2, "worse_than_default": 0}
    # Against another baseline: default against v on seeds 0 and 1 (4 > 2, 8 > 0).
    against_v = gp_variants.summarize(runs, at=2, baseline="v")
    assert against_v["t"]["default"]["better_than_v"] == 0
    assert against_v["t"]["default"]["worse_than_v"] == 2
    assert "better_than_v" not in against_v["t"]["v"]


def test_gp_variants_sign_test_is_the_two_sided_binomial_tail():
    import gp_variants

    assert gp_variants.sign_test(0, 0) == 1.0
    assert gp_variants.sign_test(5, 5) == 1.0
    assert gp_variants.sign_test(10, 0) == pytest.approx(2 / 1024)
    assert gp_variants.sign_test(8, 2) == pytest.approx(2 * 56 / 1024)  # 1 + 10 + 45 of 1024
    assert gp_variants.sign_test(2, 8) == gp_variants.sign_test(8, 2)


@pytest.mark.slow  # a TensorFlow-free child process
def test_a_gp_variant_sets_config_fields_and_designer_arguments():
    # OSS's GP designers refuse to load next to TensorFlow: in a TensorFlow-free child, as the
    # benchmark's workers and the server run them.
    from isolated import ROOT, run_python

    assert "ok" in run_python(f"""
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"  # as in the benchmark's workers
    sys.path[:0] = [{str(ROOT / "benchmarks")!r}, {str(ROOT / "benchmarks" / "studies")!r}]
    import gp_variants
    from lib import tasks
    problem = gp_variants.problem_of(tasks.FunctionTask("sphere", 2))
    designer = gp_variants.designer_for(
        problem, {{"ucb_coefficient": 1.0, "num_seed_trials": 3}}, seed=0)
    assert abs(float(designer._config.ucb_coefficient) - 1.0) < 1e-6
    assert designer._num_seed_trials == 3
    default = gp_variants.designer_for(problem, {{}}, seed=0)
    assert abs(float(default._config.ucb_coefficient) - 1.8) < 1e-6  # OSS's own setting
    print("ok")
    """)


@pytest.mark.slow  # trains Keras
def test_a_keras_tasks_loss_is_its_validation_crossentropy_plus_its_weight_penalty():
    task = tasks.KerasTask("wine", epochs=1)
    values = {"units": 16, "layers": 2, "learning_rate": 0.01, "dropout": 0.1, "l2": 1e-3}
    parts = task.loss_parts(values, 0)
    assert parts["penalty"] > 0.0 and parts["crossentropy"] > 0.0
    assert parts["loss"] == pytest.approx(parts["crossentropy"] + parts["penalty"], rel=1e-3)
    assert task.evaluate(values, 0) == pytest.approx(parts["loss"], rel=1e-4)  # same training
    no_penalty = task.loss_parts({**values, "l2": 0.0}, 0)
    assert no_penalty["penalty"] == 0.0
    assert no_penalty["loss"] == pytest.approx(no_penalty["crossentropy"], rel=1e-3)


def test_keras_objective_reads_the_best_quarter_and_the_best_trials():
    import keras_objective

    rows = [{"loss": loss, "crossentropy": ce, "penalty": loss - ce}
            for loss, ce in [(0.4, 0.1), (0.2, 0.15), (1.0, 0.9), (0.8, 0.8), (0.5, 0.45),
                             (0.9, 0.05), (0.7, 0.6), (0.6, 0.55), (float("nan"), 0.2)]]
    s = keras_objective.summarize(rows)
    assert (s["configs"], s["finite"], s["best_quarter"]) == (9, 8, 2)  # 0.2 and 0.4
    assert s["best_quarter_median_loss"] == pytest.approx(0.3)
    assert s["best_quarter_median_crossentropy"] == pytest.approx(0.125)
    assert s["best_quarter_median_penalty_share"] == pytest.approx((0.25 + 0.75) / 2)
    assert s["best_penalty_share"] == pytest.approx(0.25)
    assert s["lowest_crossentropy"] == pytest.approx(0.05)

    best = [{"task": "t", "peer": p, "loss": loss, "crossentropy": ce, "penalty": loss - ce,
             "recorded": recorded}
            for p, loss, ce, recorded in [("a", 0.2, 0.1, 0.2), ("a", 0.4, 0.4, 0.5),
                                          ("a", 0.3, 0.0, 0.3), ("b", 1.0, 0.5, 1.0)]]
    a, b = keras_objective.best_of_rows(best)
    assert a[:3] == ["t", "a", 3] and b[:3] == ["t", "b", 1]
    assert a[3] == pytest.approx(0.3) and a[4] == pytest.approx(0.1)
    assert a[5] == pytest.approx(0.5)  # shares 0.5, 0.0, 1.0
    assert a[6] == pytest.approx(0.2)  # 0.4 trained again against 0.5 recorded
    assert b[5] == pytest.approx(0.5) and b[6] == 0.0


def test_keras_objective_counts_runs_that_found_a_model_perfect_on_validation():
    import keras_objective

    bound = keras_objective.perfect_bound(45)
    assert bound == pytest.approx(math.log(2) / 45)
    # One sample with p(true class) <= 0.5 (possibly misclassified) puts the mean at or over it.
    probs = np.full(45, 1.0)
    probs[0] = 0.5
    assert np.mean(-np.log(probs)) >= bound * (1 - 1e-12)
    probs[0] = 0.55
    assert np.mean(-np.log(probs)) < bound
    runs = [_run("w", "a", 0, [0.5, 0.01, 0.001, 0.3]), _run("w", "a", 1, [0.5, 0.4, 0.02, 0.2]),
            _run("w", "b", 0, [0.001, 0.002, 0.003, 0.004]), _run("other", "a", 0, [0.0])]
    rows = keras_objective.saturation_rows(runs, {"w": 0.015}, at=3)
    assert rows == [["w", "a", 2, 1, 1.0], ["w", "b", 1, 1, 3]]  # "other" has no bound


def test_keras_objective_roughness_moves_within_the_radius_and_reads_the_changes():
    import random

    import keras_objective

    space = tasks.by_name("mlp-wine").space()
    centre = {"units": 8, "layers": 3, "learning_rate": 0.1, "dropout": 0.25, "l2": 1e-4}
    rng = random.Random(0)
    for radius in (0.0, 0.01, 0.3):
        for _ in range(50):
            moved = keras_objective.neighbour(space, centre, radius, rng)
            assert isinstance(moved["units"], int) and isinstance(moved["layers"], int)
            assert 8 <= moved["units"] <= 256 and 1 <= moved["layers"] <= 3
            assert 1e-4 <= moved["learning_rate"] <= 1e-1  # kept in bounds at the corner
            # log-scaled: the ratio moves within radius of log(1e5) (decades of the range)
            assert abs(math.log(moved["l2"] / 1e-4)) <= radius * math.log(1e5) + 1e-12
            assert abs(moved["dropout"] - 0.25) <= radius * 0.5 + 1e-12
            if radius == 0.0:
                assert moved == pytest.approx(centre, rel=1e-12)
            if radius == 0.01:
                assert moved["layers"] == 3  # 0.01 of a 2-wide range rounds back

    runs = [{**_run("mlp-wine", "a", 0, [0.5, 0.2, float("nan")]),
             "params": [{"i": 0}, {"i": 1}, {"i": 2}]},
            {**_run("mlp-wine", "b", 0, [0.3, 0.25]), "params": [{"i": 3}, {"i": 4}]},
            {**_run("mlp-wine", "b", 1, [0.9]), "params": [{"i": 5}]},
            _run("mlp-wine", "c", 0, [0.01]),  # no parameters recorded: not a candidate
            {**_run("rastrigin-4d", "a", 0, [0.0]), "params": [{"i": 6}]}]
    best = keras_objective.best_configurations(runs)
    assert best == {("mlp-wine", 0): {"recorded": 0.2, "values": {"i": 1}, "peer": "a"},
                    ("mlp-wine", 1): {"recorded": 0.9, "values": {"i": 5}, "peer": "b"}}

    def row(seed, loss, recorded, changes):
        return {"task": "t", "seed": seed, "loss": loss, "recorded": recorded,
                "neighbours": {"0.01": [{"loss": loss * (1 + c)} for c in changes]}}

    (out,) = keras_objective.roughness_rows({"rows": [
        # median 0.03, best -0.02, worse 2/4, middle half [0.0, 0.06]
        row(0, 0.2, 0.2, [0.1, -0.02, 0.06, 0.0]),
        # median 0.02, best 0.01, worse 0, middle half (none cut) [0.01, 0.03]; 25% off
        row(1, 0.5, 0.4, [0.01, 0.02, 0.03]),
        # median 0.2, best -0.15, worse 2/3, middle half [-0.15, 0.5]
        row(2, 1.0, 1.0, [-0.15, 0.2, 0.5])]})
    assert out[:3] == ["t", 0.01, 3]
    assert out[3] == pytest.approx(0.03) and out[4] == pytest.approx(-0.02)
    assert out[5] == pytest.approx(0.5) and out[6] == pytest.approx(0.06)
    assert out[7:9] == [2, 1]  # seeds with a lower neighbour; lower by more than 10%
    assert out[9] == pytest.approx(0.25)
    assert len(out) == len(keras_objective.ROUGHNESS_COLUMNS)
    assert keras_objective.middle_half_span([5.0, 1.0, 2.0, 3.0, 4.0, 0.0, 7.0, 6.0]) == 3.0


@pytest.mark.slow  # trains Keras
def test_keras_objective_retrains_each_runs_best_configuration_once_per_seed():
    import keras_objective

    c0, c1, c2 = ({"units": u, "layers": 1, "learning_rate": 0.01, "dropout": 0.0, "l2": 1e-4}
                  for u in (8, 16, 32))
    runs = [{**_run("mlp-wine", "a", 0, [0.5, 0.2, 0.3]), "params": [c0, c1, c2]},
            {**_run("mlp-wine", "b", 0, [0.9, 0.1]), "params": [c2, c1]},
            _run("mlp-wine", "c", 0, [0.01, 0.02])]  # no parameters: left out
    report = keras_objective.retrain(runs, at=[2, 3], seeds=[5, 6])
    rows = [(r["peer"], r["at"], r["trial"], r["observed"], r["values"]["units"])
            for r in report["rows"]]
    assert rows == [("a", 2, 2, 0.2, 16), ("a", 3, 2, 0.2, 16), ("b", 2, 2, 0.1, 16)]
    task = tasks.by_name("mlp-wine")
    expected = [task.evaluate(c1, 5), task.evaluate(c1, 6)]  # trained again: deterministic
    assert all(r["retrained"] == expected for r in report["rows"])
    assert expected[0] != expected[1]  # another initialization, another loss


def test_keras_objective_reads_retrained_losses_and_pairs_them_seed_by_seed():
    import keras_objective

    def row(peer, at, seed, observed, retrained):
        return {"task": "t", "peer": peer, "at": at, "seed": seed, "observed": observed,
                "retrained": retrained}

    rows = [row("v", 30, 0, 0.10, [0.12, 0.14]), row("v", 30, 1, 0.20, [0.2, 0.2]),
            row("v", 30, 2, 0.30, [0.6, 0.6]),
            row("p", 50, 0, 0.05, [0.2, 0.2]), row("p", 50, 1, 0.10, [0.1, 0.1]),
            row("p", 50, 3, 0.10, [0.1, 0.1])]  # seed 3: no pair
    v, p = sorted(keras_objective.retrain_rows(rows), key=lambda r: r[1], reverse=True)
    assert v[:3] == ["t", "v @30", 3] and p[:3] == ["t", "p @50", 3]
    assert v[3] == pytest.approx(0.2) and v[4] == pytest.approx(0.2)  # means 0.13, 0.2, 0.6
    assert v[5] == pytest.approx(0.3)  # 0.13/0.1 - 1, 0, 1
    assert p[3] == pytest.approx(0.1) and p[4] == pytest.approx(0.1) and p[5] == 0.0
    assert keras_objective.retrain_pairs(rows, ("v", 30), ("p", 50)) == [["t", 2, 1, 1]]
    assert keras_objective.retrain_pairs(rows, ("v", 30), ("p", 30)) == [["t", 0, 0, 0]]


def test_keras_tuner_peers_repeat_their_runs_for_task_seed_zero_too():
    # KerasTuner reads a seed of 0 as "no seed"; the adapter must not.
    from lib import peers

    space = tasks.FunctionTask("sphere", 2).space()

    def asks(seed):
        oracle = peers.make("kt-random", space, seed, max_trials=5)
        out = []
        for _ in range(4):
            values = oracle.ask()
            oracle.tell(values, float(sum(v * v for v in values.values())))
            out.append(values)
        return out

    assert asks(0) == asks(0)
    assert asks(1) == asks(1) and asks(0) != asks(1)


def test_the_independent_tpe_peer_is_the_classic_sampler_with_the_same_seeding():
    from lib import peers

    space = tasks.FunctionTask("sphere", 2).space()

    def asks(peer, seed):
        optimizer = peers.make(peer, space, seed, max_trials=20)
        study = optimizer._study
        # Optuna's default TPE (the optuna-tpe peer) is the multivariate one since Optuna 5.
        assert study.sampler._is_multivariate(study) == (peer == "optuna-tpe")
        out = []
        for _ in range(15):  # past TPE's 10 random start-up trials
            values = optimizer.ask()
            optimizer.tell(values, float(sum(v * v for v in values.values())))
            out.append(values)
        return out

    assert asks("optuna-tpe-independent", 3) == asks("optuna-tpe-independent", 3)
    # The start-up trials are the same draws; the model-based ones differ.
    joint, independent = asks("optuna-tpe", 3), asks("optuna-tpe-independent", 3)
    assert joint[:10] == independent[:10] and joint[10:] != independent[10:]


def test_oss_lockstep_sorts_each_step_by_point_and_acquisition():
    import oss_lockstep

    def step(diff, oss, ours, ucb=("True", "True")):
        return {"scaled_diff": diff, "oss_acquisition": oss, "ours_acquisition": ours,
                "oss_use_ucb": ucb[0], "ours_use_ucb": ucb[1], "value": 1.0,
                "oss_seconds": 20.0, "ours_seconds": 2.0}

    steps = [step(0.0, None, None),                 # seed trial, same point
             step(0.3, None, None),                 # (a seed trial cannot differ; kept apart)
             step(1e-4, 0.5, 0.7),                  # same point whatever the values say
             step(0.6, 1.0, 1.00005),               # tie: within 1e-4 relative
             step(0.6, -3.0, -3.0001),              # tie: relative to the larger magnitude
             step(0.6, 1.0, 0.99),                  # ours lower
             step(0.6, 0.01, 0.0102, ("False", "True")),  # ours higher (beyond 1e-4 of 1)
             step(0.2, 2.0, 2.5)]                   # ours higher
    kinds = [oss_lockstep.compare_acquisition(s) for s in steps]
    assert kinds == ["same point", "seed trial", "same point", "tie", "tie", "ours lower",
                     "ours higher", "ours higher"]
    (row,) = oss_lockstep.summarize([{"task": "t", "seed": 0, "steps": steps}])
    assert (row["same point"], row["tie"], row["ours lower"], row["ours higher"],
            row["seed trial"], row["ucb_choice_differs"]) == (2, 2, 1, 2, 1, 1)
    assert row["max_scaled_diff"] == 0.6 and row["steps"] == 8
    total = oss_lockstep.totals([row, row])
    assert total["steps"] == 16 and total["ours lower"] == 2 and total["ours higher"] == 4
    assert total["sign_test_p"] == pytest.approx(2 * 22 / 64)  # P(<= 2 of 6), both tails


def test_oss_lockstep_compares_bests_across_the_three_scripts_results(tmp_path):
    import oss_lockstep

    def write(name, runs):
        path = tmp_path / name
        path.write_text(json.dumps({"runs": runs}))
        return str(path)

    lockstep = write("lock.json", [
        {"task": "f", "seed": s, "steps": [{"value": v} for v in values]}
        for s, values in ((0, [9.0, 4.0, 1.0]), (1, [8.0, 5.0, 0.5]), (2, [7.0, 6.0]))])
    quality = write("quality.json", [
        {"task": "f", "peer": "oss", "seed": 0, "values": [3.0, 2.0, 0.1]},  # 0.1 after --at
        {"task": "f", "peer": "oss", "seed": 1, "values": [1.0, 3.0]},
        {"task": "f", "peer": "optuna-tpe", "seed": 2, "values": [0.0]},      # another peer
        {"task": "g", "peer": "oss", "seed": 2, "values": [0.0]}])            # another task
    more = write("more.json", [{"task": "f", "peer": "oss", "seed": 2, "values": [2.5]}])
    variants = write("variants.json", [
        {"task": "f", "variant": "default", "seed": s, "values": [v]}
        for s, v in ((0, 20.0), (1, 30.0), (2, 40.0))])

    groups = oss_lockstep.load_bests(
        [f"plain={quality}:oss", f"plain={more}:oss", f"lock={lockstep}:oss",
         f"ours={variants}:default"], task="f", at=2)
    assert groups == {"plain": {0: 2.0, 1: 1.0, 2: 2.5}, "lock": {0: 4.0, 1: 5.0, 2: 6.0},
                      "ours": {0: 20.0, 1: 30.0, 2: 40.0}}
    compared = oss_lockstep.compare_bests(groups, under=4.5)
    assert compared["plain"] == {"runs": 3, "median": 2.0, "under": 3}
    assert compared["lock"]["under"] == 1 and compared["lock"]["median"] == 5.0
    assert (compared["lock"]["first_lower"], compared["lock"]["first_higher"]) == (3, 0)
    # Three against three, fully apart: 2 of the 20 orderings are as extreme, both tails.
    assert compared["lock"]["mann_whitney_p"] == pytest.approx(0.1)
    assert compared["ours"]["mann_whitney_p"] == pytest.approx(0.1)

    with pytest.raises(ValueError, match="seed 2 of f twice"):
        oss_lockstep.load_bests([f"plain={more}:oss", f"plain={more}:oss"], task="f", at=2)
    with pytest.raises(ValueError, match="LABEL=JSON:NAME"):
        oss_lockstep.load_bests([quality], task="f", at=2)


def test_the_benchmarks_readme_is_the_report_of_the_result_files():
    # benchmarks/README.md is generated: a number typed into it by hand, or a result file
    # changed without running report.py, fails here. Targets come first; it stays short.
    import report

    assert report.main(["--check"]) == 0, "run: python benchmarks/report.py"
    text = report.render()
    assert len(text.splitlines()) <= 200
    assert text.index("## Open targets") < text.index("## How good a model")
    for name in os.listdir(os.path.join(os.path.dirname(report.__file__), "results")):
        if name.endswith(".json") and name[:-5] not in {"gp_variants", "oss_lockstep",
                                                         "keras_objective"}:
            assert f"results/{name}" in text, f"{name} is in no table"


def test_analyze_reads_a_result_file_by_subcommand(tmp_path, capsys):
    runs = [{"task": "sphere-2d", "peer": peer, "seed": seed, "values": [v, v],
             "curve": [v, v], "ask_seconds": [0.1, 0.1], "evaluate_seconds": [0, 0]}
            for seed in range(3) for peer, v in (("vizier", 1.0 + seed), ("optuna-tpe", 2.0))]
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"machine": {"date": "2026-12-02"}, "runs": runs,
                                "args": {"trials": 2}}))
    analyze.main(["head-to-head", str(path), "optuna-tpe", "--at", "2"])
    out = capsys.readouterr().out
    # Seeds 0 (1 < 2) better, 1 (2 = 2) tied, 2 (3 > 2) worse.
    [all_row] = [line for line in out.splitlines() if line.startswith("| all")]
    assert [c.strip() for c in all_row.split("|")][2:4] == ["1", "1"]
    analyze.main(["summary", str(path), "--at", "2"])
    assert "sphere-2d" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        analyze.main(["combine", str(path)])  # -o is required


# ------------------------------------------------------- the pre-registered comparison (#36)

def test_the_twenty_registered_problems_build_and_score():
    from lib import problems

    names = problems.registered()
    assert len(names) == 20 and len(set(names)) == 20
    families = [problems.by_name(n).family for n in names]
    assert (families.count("tables"), families.count("functions"),
            families.count("keras")) == (13, 5, 2)
    for name in [*names, "step_ellipsoid-8d", "attractive_sector-4d"]:
        problem = problems.by_name(name)
        assert problem.space().space, name
        if problem.family != "keras":
            assert problem.regret_floor(0) > 0, name


@pytest.mark.parametrize("name", ["hpobench-australian", "hpolib-protein_structure",
                                  "nasbench201-cifar10"])
def test_a_table_shows_one_recorded_run_and_scores_the_mean(name):
    from lib import problems

    problem = problems.by_name(name)
    hp = problem.space()
    # The table's best configuration: its mean is the optimum, its z the floor.
    best_key = max(problem._b._dataset,
                   key=lambda k: (1 if problem.maximize else -1)
                   * float(np.mean(problem._b._dataset[k][problem.metric])))
    values = {}
    for (param, choices), digit in zip(problem._b.search_space.items(), best_key, strict=True):
        values[param] = (str(choices[int(digit)]) if problem._b.param_types[param] is str
                         else int(digit))
    hp_names = {h.name for h in hp.space}
    assert set(values) == hp_names
    runs = problem._runs(values)
    assert len(runs) >= 3
    assert problem.score(values, 0) == pytest.approx(np.mean(runs))
    assert problem.score(values, 0) == pytest.approx(problem.optimum(0))
    assert problems.z_score(problem, values, 0) == pytest.approx(
        math.log10(problem.regret_floor(0)))
    sign = -1 if problem.maximize else 1
    seen = {problem.observe(values, 0, draw) for draw in range(12)}
    assert seen == {sign * r for r in runs}  # every draw is one recorded run, to minimize


def test_gallagher_is_zero_at_its_optimum_only():
    from lib import problems

    problem = problems.by_name("gallagher101-4d")
    for seed in (0, 5):
        x_opt = problem._instance(seed)["x_opt"]
        assert problem.value(x_opt, seed) == pytest.approx(0.0, abs=1e-12)
        rng = np.random.default_rng(seed)
        assert min(problem.value(rng.uniform(-5, 5, 4), seed) for _ in range(200)) > 0
    assert problem._instance(0)["x_opt"].tolist() != problem._instance(1)["x_opt"].tolist()


def _synthetic(z_by_optimizer: dict[str, float], problems: int = 20, seeds: int = 3,
               spread: float = 0.0) -> list[dict]:
    import comparison

    rng = np.random.default_rng(0)
    runs = []
    for p in range(problems):
        for seed in range(seeds):
            noise = float(rng.normal(0, spread)) if spread else 0.0
            for optimizer, z in z_by_optimizer.items():
                runs.append({"problem": f"p{p}", "family": "tables" if p < 13 else "functions",
                             "optimizer": optimizer, "seed": seed, "optimum": 0.0, "eps": 1e-3,
                             "at": {str(a): {"z": z + noise - (0.1 if a == 50 else 0),
                                             "score": 10 ** (z + noise)}
                                    for a in comparison.READ_AT}})
    return runs


def test_the_verdict_reads_the_protocols_targets():
    import comparison

    better = comparison.verdict(_synthetic({"vizier": -1.0, "optuna-tpe": -0.5, "kt-bo": -0.4,
                                            "kt-random": 0.0}, spread=0.3))
    assert better["at"]["30"]["mean_ranks"]["vizier"] == 1.0
    assert better["at"]["30"]["peers"]["optuna-tpe"]["median_d"] == pytest.approx(-0.5)
    assert better["at"]["30"]["peers"]["optuna-tpe"]["wilcoxon_p"] < 0.05
    assert better["at"]["30"]["target_1_met"] and better["met"]
    # Ours at 30 (-1.0) against TPE at 50 (-0.6): D = -0.4 on every problem.
    assert better["cross"]["optuna-tpe"]["median_d"] == pytest.approx(-0.4)
    level = comparison.verdict(_synthetic({"vizier": -0.5, "optuna-tpe": -0.5, "kt-bo": -0.4,
                                           "kt-random": 0.0}))
    assert level["at"]["30"]["peers"]["optuna-tpe"]["wilcoxon_p"] == 1.0
    assert not level["met"]
    worse = comparison.verdict(_synthetic({"vizier": 0.0, "optuna-tpe": -0.5, "kt-bo": -0.4,
                                           "kt-random": 0.0}))
    assert worse["families"]["tables"]["mean_d_vs_best_peer"] == pytest.approx(0.5)
    assert not worse["families"]["tables"]["met"]
    assert comparison.critical_difference(4, 20) == pytest.approx(2.569 * math.sqrt(20 / 120))


def test_a_comparison_run_repeats_and_reads_its_incumbent():
    import comparison

    assert comparison.incumbent([3.0, 1.0, 1.0, 0.5], 3) == 1  # first of ties, within count
    first = comparison.one_run("hpobench-kc1", "optuna-tpe", 4, 6, None)
    again = comparison.one_run("hpobench-kc1", "optuna-tpe", 4, 6, None)
    assert first["params"] == again["params"] and first["observed"] == again["observed"]
    assert first["at"] == {}  # 6 trials: read at neither 30 nor 50
    assert first["eps"] > 0 and first["family"] == "tables"
    with pytest.raises(argparse.ArgumentTypeError, match="'3-1'"):
        comparison.seed_range("3-1")
    assert comparison.seed_range("10-18") == list(range(10, 19))


@pytest.mark.slow  # plain OSS in a spawned process on JAX
def test_a_comparison_runs_plain_oss_in_a_process_without_tensorflow_and_only_on_functions(
        tmp_path):
    import comparison

    with pytest.raises(SystemExit, match=r"runs the functions only.*not mlp-digits"):
        comparison.main(["run", "--optimizers", "oss", "--problems", "rastrigin-4d,mlp-digits",
                         "--out", str(tmp_path / "refused.json")])
    assert not (tmp_path / "refused.json").exists()
    out = tmp_path / "oss.json"
    comparison.main(["run", "--seeds", "10-10", "--optimizers", "oss", "--trials", "2",
                     "--workers", "1", "--problems", "rastrigin-4d", "--out", str(out)])
    (run,) = json.loads(out.read_text())["runs"]
    assert (run["problem"], run["optimizer"], run["seed"]) == ("rastrigin-4d", "oss", 10)
    assert len(run["observed"]) == 2 and all(math.isfinite(v) for v in run["observed"])


def _runs_from(z_by_problem: list[dict[str, float]], seeds: int = 3) -> list[dict]:
    """Runs whose z is the same on every seed: problem i is a table for i < 13, else a function;
    every optimizer's z drops by 0.1 from 30 to 50 trials."""
    import comparison

    return [{"problem": f"p{i}", "family": "tables" if i < 13 else "functions",
             "optimizer": optimizer, "seed": seed, "optimum": 0.0, "eps": 1e-3,
             "at": {str(a): {"z": z - (0.1 if a == 50 else 0), "score": 10 ** z}
                    for a in comparison.READ_AT}}
            for i, zs in enumerate(z_by_problem) for optimizer, z in zs.items()
            for seed in range(seeds)]


def test_the_best_case_fills_missing_problems_in_ours_favour_and_tries_every_order():
    import comparison

    wins = {"vizier": -1.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}
    # Ours last by a hair: ranks 4, and TPE 1, yet every D is tiny.
    hair = {"vizier": -0.5, "optuna-tpe": -0.51, "kt-bo": -0.505, "kt-random": -0.502}
    third = {**hair, "vizier": -0.503}  # ours 3rd, TPE 1st
    # Twelve wins, five hairs and a third place: ours' rank sum is TPE's + 5 (35 against 30), so
    # only filling the missing problems with TPE last or nearly (ours 1 + 1, TPE 4 + 4 or 4 + 3)
    # leaves ours the best mean rank; the peers' first order (TPE 2 + 2) does not.
    close = comparison.best_case(_runs_from([wins] * 12 + [hair] * 5 + [third]), ["k1", "k2"],
                                 "keras")
    assert close["possible"] and close["targets"]["target 1 @30"]
    assert close["targets"]["target 3 keras"]
    # Eleven wins and seven hairs: the rank gap (10) is more than any filling closes (6).
    far = comparison.best_case(_runs_from([wins] * 11 + [hair] * 7), ["k1", "k2"], "keras")
    assert not far["possible"]
    assert not far["targets"]["target 1 @30"] and not far["targets"]["target 1 @50"]
    assert far["targets"]["target 2 vs optuna-tpe"] and far["targets"]["target 3 functions"]
    # Ours behind TPE by half a decade on every table: no filling of the Keras family helps.
    behind = {"vizier": 0.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}
    lost = comparison.best_case(_runs_from([behind] * 18), ["k1", "k2"], "keras")
    assert not lost["possible"] and not lost["targets"]["target 3 tables"]
    assert not lost["targets"]["target 2 vs optuna-tpe"]


def test_the_best_case_tries_mixed_orders_of_the_peers_on_several_missing_problems():
    import comparison

    wins = {"vizier": -1.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}
    # KerasTuner BO first by a hair, ours last: ranks ours 4, BO 1, TPE 2, random 3.
    bo_first = {"vizier": -0.5, "kt-bo": -0.51, "optuna-tpe": -0.505, "kt-random": -0.502}
    # Rank sums over the 19: ours 46, TPE 38, BO 39, random 67. With ours first on 3 missing
    # problems (49), TPE needs 11 of them and BO 10: only two orders with TPE last and BO third
    # and one the other way round do it; no single order repeated three times does.
    mixed = comparison.best_case(_runs_from([wins] * 10 + [bo_first] * 9),
                                 ["k1", "k2", "k3"], "keras")
    assert mixed["possible"]
    # One win fewer (ours 49 against TPE 38 and BO 37 before the missing ones): out of reach.
    short = comparison.best_case(_runs_from([wins] * 9 + [bo_first] * 10),
                                 ["k1", "k2", "k3"], "keras")
    assert not short["possible"] and not short["targets"]["target 1 @30"]


def test_the_best_case_takes_registered_families_and_refuses_incomplete_problems():
    import comparison

    behind = {"vizier": 0.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}
    tables = _runs_from([behind] * 13)
    # Peers' runs on a function already made: set aside, the problem counts as missing.
    early = [r for r in _runs_from([{"optuna-tpe": -9.0, "kt-random": -9.0}] * 14)
             if r["problem"] == "p13"]
    for r in early:
        r["problem"] = "rastrigin-4d"
    bound = comparison.best_case(tables + early, ["rastrigin-4d", "mlp-digits"])
    assert not bound["possible"] and not bound["targets"]["target 3 tables"]
    assert bound["targets"]["target 3 functions"] and bound["targets"]["target 3 keras"]
    with pytest.raises(ValueError, match="problems p3 lack some runs"):
        comparison.best_case([r for r in tables if (r["problem"], r["optimizer"], r["seed"])
                              != ("p3", "kt-bo", 2)], ["mlp-digits"])


def test_the_early_reading_writes_a_verdict_only_when_the_missing_problems_cannot_change_it(
        tmp_path, capsys):
    import comparison
    import report

    wins = {"vizier": -1.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps({"runs": _runs_from([wins] * 18)}))
    with pytest.raises(SystemExit, match="could still hold"):
        comparison.main(["verdict", str(path), "--missing", "mlp-digits,mlp-breast_cancer",
                         "--write"])
    assert "verdict" not in json.loads(path.read_text())

    behind = {"vizier": 0.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}
    path.write_text(json.dumps({"runs": _runs_from([wins] * 5 + [behind] * 13)}))
    comparison.main(["verdict", str(path), "--missing", "mlp-digits,mlp-breast_cancer",
                     "--write"])
    assert "All targets: NOT met" in capsys.readouterr().out
    stored = json.loads(path.read_text())
    assert stored["met"] is False and stored["best_case"]["possible"] is False
    # Thirteen problems where ours is behind: tables (5 wins, 8 behind) and functions fail.
    assert stored["reading"].startswith("not met: target 1 @30, target 1 @50")
    assert "target 3 functions" in stored["reading"]
    assert "whatever mlp-digits, mlp-breast_cancer give (not run)" in stored["reading"]
    assert stored["verdict"]["apart"] == {}
    section = report.comparison_section(stored)
    assert "The verdict, read once" in section and "functions +0.50 (5)" in section
    assert "still fail: target 1 @30" in section and "All targets: NOT met." in section


def test_a_verdict_read_without_missing_problems_sets_their_peers_runs_aside(tmp_path):
    import comparison
    import report

    behind = {"vizier": 0.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}
    runs = _runs_from([behind] * 13)
    early = [r for r in _runs_from([{"optuna-tpe": -9.0, "kt-random": -9.0}] * 14)
             if r["problem"] == "p13"]
    for r in early:
        r["problem"], r["family"] = "rastrigin-4d", "functions"
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps({"runs": runs + early}))
    comparison.main(["verdict", str(path), "--missing", "rastrigin-4d,mlp-digits", "--write"])
    stored = json.loads(path.read_text())
    assert len(stored["runs"]) == len(runs) + len(early)  # kept in the file, not read
    assert set(stored["verdict"]["families"]) == {"tables"}
    assert stored["verdict"]["at"]["30"]["problems"] == 13
    section = report.comparison_section(stored)
    assert section.startswith(f"{len(runs)} runs: 13 problems")
    assert f"Set aside, with their problems not read: {len(early)} peers' runs on rastrigin-4d." \
        in section


def test_nemenyi_groups_join_the_optimizers_within_the_critical_difference(tmp_path,
                                                                         monkeypatch):
    import comparison
    import matplotlib
    import plots

    ranks = {"vizier": 1.44, "kt-bo": 2.44, "optuna-tpe": 2.67, "kt-random": 3.44}
    assert comparison.nemenyi_groups(ranks, 1.11) == [["vizier", "kt-bo"],
                                                      ["kt-bo", "optuna-tpe", "kt-random"]]
    assert comparison.nemenyi_groups(ranks, 0.2) == []  # every pair told apart
    assert comparison.nemenyi_groups(ranks, 3.0) == [["vizier", "kt-bo", "optuna-tpe",
                                                      "kt-random"]]
    result = comparison.verdict(_runs_from([{"vizier": -1.0, "optuna-tpe": -0.5, "kt-bo": -0.4,
                                             "kt-random": 0.0}] * 18))
    summary = " ".join(comparison.verdict_summary(result))
    cd = result["at"]["30"]["critical_difference"]
    # Ranks 1, 2, 3, 4 on every problem: neighbours lie 1 apart, within 1.11; others do not.
    assert (f"not told apart by Nemenyi (critical difference {cd:.2f}): (vizier, optuna-tpe), "
            "(optuna-tpe, kt-bo), (kt-bo, kt-random)") in summary
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plots._common, "RESULTS", str(tmp_path))
    path = plots.quality_verdict(plt, {"verdict": result, "machine": {"date": "today"}})
    assert path == str(tmp_path / "quality_verdict_cd.png") and os.path.getsize(path) > 0
    assert plots.quality_verdict(plt, {"runs": []}).startswith("no verdict yet")


def test_plain_oss_is_read_apart_on_the_seeds_it_shares_and_never_ranked():
    import comparison

    runs = _runs_from([{"vizier": -1.0, "optuna-tpe": -0.5, "kt-bo": -0.4, "kt-random": 0.0}]
                      * 18, seeds=9)
    for r in _runs_from([{"oss": -0.75}] * 18, seeds=2):
        if r["problem"] in ("p16", "p17"):
            runs.append(r)
    result = comparison.verdict(runs)
    assert set(result["at"]["30"]["mean_ranks"]) == {"vizier", "optuna-tpe", "kt-bo", "kt-random"}
    assert result["apart"]["oss"]["30"] == pytest.approx({"p16": -0.25, "p17": -0.25})
    assert "D(ours - oss) at 30 / 50 trials: p16 -0.25 / -0.25" in " ".join(
        comparison.verdict_summary(result))
