"""Open Source Vizier's GP-UCB-PE designer, configured so that a suggestion costs what it
computes (the embedded service's default algorithm).

Plain OSS Vizier spends most of a GP suggestion tracing and compiling JAX programs again:

* the acquisition optimizer is jitted with a random sampler and a projection that compare by
  identity, so every designer (one per suggestion) misses JAX's cache and retraces the whole
  Eagle-strategy loop;
* with no padding, every new trial count is a new array shape, hence a new compilation;
* each ARD (GP hyperparameter) evaluation goes through jaxopt's SciPy bridge, which converts the
  parameters leaf by leaf and repartitions the loss function in Python on every call.

Here the same designer (``VizierGPUCBPEBandit``) runs with the same model, acquisition function,
optimizers and budgets, with four changes that leave its arithmetic alone (up to rounding):

1. the sampler and projection compare by value, so the jitted acquisition optimizer is reused;
2. trial counts are padded, to at least 30 and then to multiples of 10 (:class:`TrialPadding`;
   padded rows are masked out by the model), so that shapes repeat (single-metric studies; OSS
   does not pad multi-metric ones);
3. the ARD optimizer is SciPy's L-BFGS-B with the same options, fed from one jitted function of a
   flat parameter vector (:class:`.ard.FlatScipyLbfgsB`); it takes the same steps as OSS's
   ``JaxoptScipyLbfgsB`` (tested to agree);
4. the acquisition optimizer evaluates the UCB and PE scores (single metric) with the posterior
   computed once per point batch from an inverse Cholesky factor computed once per optimization
   (:mod:`.scores`), where OSS's TFP path computes the cross-kernel twice and runs eight
   triangular solves per batch. Same formulas, same values (tested to agree to 1e-8); the 75,000
   score evaluations of a suggestion are most of its time, and this cuts them about 3x.

JAX's persistent compilation cache (``process.enable_compilation_cache``) keeps the compiled
programs across server restarts.

:func:`gp_ucb_pe_designer` keeps OSS's settings (what the agreement tests and the speed
benchmark compare). The service's default algorithm is :func:`service_designer`, which also
changes two settings and refines around the best trial on every second suggestion
(:class:`.refine.LocallyRefiningBandit`), chosen on benchmarks (:data:`SERVICE_SETTINGS`).

Modules: :mod:`.statics` (1), :mod:`.padding` (2), :mod:`.ard` (3), :mod:`.scores` (4),
:mod:`.refine` (local refinement), :mod:`.distinct` (no repeated configurations, a setting),
:mod:`.designer` (the designers and settings) and
:mod:`.variants` (experimental model variants for benchmarks, not in the default).
"""

from vizier_keras.server.gp.ard import FlatScipyLbfgsB, default_ard_options
from vizier_keras.server.gp.designer import (
    DESIGNER_ARGUMENTS,
    SERVICE_SETTINGS,
    check_settings,
    gp_ucb_pe_designer,
    gp_ucb_pe_designer_with,
    service_designer,
)
from vizier_keras.server.gp.padding import (
    TRIAL_PADDING,
    TrialPadding,
    host_padded,
    host_unpad,
    padded_trials,
)
from vizier_keras.server.gp.refine import LocallyRefiningBandit
from vizier_keras.server.gp.scores import (
    ACQUISITION_EVALUATIONS,
    ACQUISITION_OPTIMIZER_FACTORY,
    acquisition_optimizer_factory,
    fast_score_function,
)
from vizier_keras.server.gp.variants import (
    FlooredLengthScaleGP,
    InputWarpedGP,
    KumaraswamyWarped,
    kumaraswamy_warp,
)

__all__ = [
    "ACQUISITION_EVALUATIONS",
    "ACQUISITION_OPTIMIZER_FACTORY",
    "DESIGNER_ARGUMENTS",
    "SERVICE_SETTINGS",
    "TRIAL_PADDING",
    "FlatScipyLbfgsB",
    "FlooredLengthScaleGP",
    "InputWarpedGP",
    "KumaraswamyWarped",
    "LocallyRefiningBandit",
    "TrialPadding",
    "acquisition_optimizer_factory",
    "check_settings",
    "default_ard_options",
    "fast_score_function",
    "gp_ucb_pe_designer",
    "gp_ucb_pe_designer_with",
    "host_padded",
    "host_unpad",
    "kumaraswamy_warp",
    "padded_trials",
    "service_designer",
]
