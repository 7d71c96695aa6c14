"""The designers: OSS's GP-UCB-PE with this package's faster parts (:func:`gp_ucb_pe_designer`),
with other settings (:func:`gp_ucb_pe_designer_with`), and the embedded service's default
(:func:`service_designer`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from vizier import pyvizier as vz
from vizier._src.algorithms.designers import gp_ucb_pe
from vizier._src.jax.models import tuned_gp_models

from vizier_keras.server.gp.ard import FlatScipyLbfgsB, default_ard_options
from vizier_keras.server.gp.padding import TRIAL_PADDING
from vizier_keras.server.gp.refine import LocallyRefiningBandit
from vizier_keras.server.gp.scores import ACQUISITION_OPTIMIZER_FACTORY
from vizier_keras.server.gp.variants import FlooredLengthScaleGP, InputWarpedGP


def gp_ucb_pe_designer(problem: vz.ProblemStatement, **kwargs: Any
                       ) -> LocallyRefiningBandit:
    """OSS's GP-UCB-PE designer with the three changes described in this module (and local
    refinement off unless ``local_every`` is given)."""
    options: dict[str, Any] = {
        "acquisition_optimizer_factory": ACQUISITION_OPTIMIZER_FACTORY,
        "ard_optimizer": FlatScipyLbfgsB(default_ard_options()),
    }
    if len(problem.metric_information) == 1:
        options["padding_schedule"] = TRIAL_PADDING
    options.update(kwargs)
    return LocallyRefiningBandit(problem, **options)  # type: ignore[call-arg]  # OSS's attrs fields


# Designer arguments among the settings of :func:`gp_ucb_pe_designer_with`; the other names are
# ``UCBPEConfig`` fields. Both as in OSS's ``gp_ucb_pe`` module, without the leading underscore
# (``local_every``, ``local_radius``, ``local_adaptive``: :class:`LocallyRefiningBandit`;
# ``min_length_scale``, ``input_warping``: the GP model, :class:`FlooredLengthScaleGP`,
# :class:`InputWarpedGP`).
DESIGNER_ARGUMENTS = ("num_seed_trials", "use_trust_region", "ensemble_size",
                      "ard_random_restarts", "local_every", "local_radius", "local_adaptive",
                      "distinct", "min_length_scale", "input_warping")


def gp_ucb_pe_designer_with(problem: vz.ProblemStatement, settings: dict[str, Any],
                            **kwargs: Any) -> LocallyRefiningBandit:
    """:func:`gp_ucb_pe_designer` with ``settings`` (e.g. ``{"ucb_coefficient": 1.0,
    "num_seed_trials": 5}``) in place of OSS's: designer arguments and ``UCBPEConfig`` fields,
    the rest left at OSS's values."""
    config = {k: v for k, v in settings.items() if k not in DESIGNER_ARGUMENTS}
    arguments = {k: v for k, v in settings.items() if k in DESIGNER_ARGUMENTS}
    model: Any = None
    if "min_length_scale" in arguments:
        model = FlooredLengthScaleGP(arguments.pop("min_length_scale"))
    warping = arguments.pop("input_warping", False)
    if not isinstance(warping, bool):
        raise ValueError(f"input_warping must be true or false, got {warping!r}")
    if warping:
        model = InputWarpedGP(model or tuned_gp_models.VizierGaussianProcess)
    if model is not None:
        arguments["gp_model_class"] = model
    return gp_ucb_pe_designer(problem, config=gp_ucb_pe.UCBPEConfig(**config), **arguments,
                              **kwargs)


def check_settings(settings: Any) -> dict[str, Any]:
    """``settings`` for :func:`gp_ucb_pe_designer_with`, checked by building a designer with
    them (on a one-parameter problem): ValueError naming the bad setting and its value, else
    ``settings`` as a dict."""
    if not isinstance(settings, dict):
        raise ValueError(f"GP settings must be a JSON object of setting -> value, got "
                         f"{settings!r}")
    config_fields = {f.name for f in dataclasses.fields(gp_ucb_pe.UCBPEConfig)}
    unknown = sorted(set(settings) - set(DESIGNER_ARGUMENTS) - config_fields)
    if unknown:
        raise ValueError(f"unknown GP setting(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(sorted((*DESIGNER_ARGUMENTS, *config_fields)))}")
    problem = vz.ProblemStatement(
        metric_information=[vz.MetricInformation("m", goal=vz.ObjectiveMetricGoal.MAXIMIZE)])
    problem.search_space.root.add_float_param("x", 0.0, 1.0)
    try:
        gp_ucb_pe_designer_with(problem, settings)
    except (TypeError, ValueError) as e:
        raise ValueError(f"GP settings {json.dumps(settings, sort_keys=True)} are not usable: "
                         f"{e}") from None
    return settings


# Where the embedded service's default departs from OSS's settings (single-metric studies):
# five seed trials (the centre, then four quasi-random) instead of one, a UCB coefficient of
# 1.0 instead of 1.8, every second suggestion after the seeds confined to a box of half-width
# 0.1 around the best trial, and no suggestion repeating a trial on discrete parameters
# (:mod:`.distinct`). Each was adopted on benchmarks by a rule written before its runs
# ("seed5-ucb1.0", "local2-r0.1" and "distinct" in benchmarks/notes/, where the readings are).
SERVICE_SETTINGS: dict[str, Any] = {"num_seed_trials": 5, "ucb_coefficient": 1.0,
                                    "local_every": 2, "local_radius": 0.1, "distinct": True}


def service_designer(problem: vz.ProblemStatement, **kwargs: Any
                     ) -> LocallyRefiningBandit:
    """The embedded service's default algorithm: :data:`SERVICE_SETTINGS` for a single metric
    (several metrics keep OSS's settings, which the benchmarks did not test)."""
    if len(problem.metric_information) == 1:
        return gp_ucb_pe_designer_with(problem, SERVICE_SETTINGS, **kwargs)
    return gp_ucb_pe_designer(problem, **kwargs)
