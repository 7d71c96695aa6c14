"""Local refinement: every ``local_every``-th suggestion after the seed trials is confined to a box
around the best trial, where GP-UCB's exploration would wander.
"""

from __future__ import annotations

from typing import Any

import attrs
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from vizier import pyvizier as vz
from vizier._src.algorithms.designers import gp_ucb_pe
from vizier._src.jax import stochastic_process_model as sp

from vizier_keras.server.gp.distinct import feature_grids, half_widths
from vizier_keras.server.gp.padding import TrialPadding, host_padded, host_unpad
from vizier_keras.server.gp.scores import FastScoreOptimizerFactory
from vizier_keras.server.gp.variants import InputWarpedGP, neutral_start


class _IncumbentBox(eqx.Module):
    """An L-inf box of half-width ``radius`` around one point of the scaled space, in the form
    of OSS's ``acquisitions.TrustRegion`` (``min_linf_distance``, ``trust_radius``), so that
    the score functions' trust-region step confines the acquisition to it. Only continuous
    features are boxed (discrete parameters are continuified by the designer's converter);
    categorical ones stay free."""

    center: jax.Array  # [features], the incumbent's continuous features (padding zeroed)
    radius: jax.Array
    # [features] per-feature half-widths (:func:`.distinct.half_widths`), or None: ``radius``
    # for every feature.
    widths: jax.Array | None = None

    @property
    def trust_radius(self) -> jax.Array:
        return self.radius

    def min_linf_distance(self, xs: Any) -> jax.Array:
        x = xs.continuous.replace_fill_value(0.0).padded_array
        if x.shape[-1] == 0:
            return jnp.zeros(x.shape[:-1], x.dtype)
        if self.widths is None:
            return jnp.max(jnp.abs(x - self.center), axis=-1)
        return jnp.max(jnp.abs(x - self.center) / self.widths, axis=-1) * self.radius


@attrs.define(auto_attribs=False)
class LocallyRefiningBandit(gp_ucb_pe.VizierGPUCBPEBandit):
    """OSS's GP-UCB-PE, where every ``local_every``-th suggestion after the seed trials is
    searched for only inside a box of half-width ``local_radius`` (in the scaled [0, 1] space)
    around the best completed trial so far; ``local_every = 0`` (the default) is OSS's designer.

    Why: on a rugged objective the GP's fitted length scales fall to their lower bound (seen on
    benchmarks/lib/tasks.py's rastrigin-4d: 0.01, squared, by trial 15; not checked on the Keras
    tasks), its mean is flat away from the data, and UCB keeps choosing far, uncertain points:
    the best value stalls. A suggestion confined near the
    incumbent still uses the GP (UCB, or PE, inside the box) but searches where the good values
    are. Which suggestions are local depends only on the trial count, so any number of workers
    and a designer rebuilt per suggestion (as the service does) agree.

    With ``local_adaptive`` the half-width follows the local suggestions' outcomes, as a trust
    region does (TuRBO, Eriksson et al. 2019, with tolerances for budgets of tens of trials):
    it starts at ``local_radius``, doubles after a local trial that improved on every trial
    before it (by more than 1e-3 of the best's magnitude), halves after two local trials in a
    row that did not, and stays within [``local_radius`` / 2, min(4 ``local_radius``, 0.5)]
    (smaller boxes made the GP suggest the same corner twice: rastrigin-4d through the service,
    radius 0.025). It is replayed from the trials themselves (see :meth:`radius`), so it needs
    no state.

    With ``distinct``, a suggestion never repeats a completed or pending trial while the space
    has a configuration not yet tried (:mod:`.distinct`; this needs the acquisition optimizer
    of :func:`.scores.acquisition_optimizer_factory`), and a local box reaches at least the
    grid neighbours of the incumbent on each INTEGER or DISCRETE parameter."""

    _local_every: int = attrs.field(default=0, kw_only=True)
    _local_radius: float = attrs.field(default=0.1, kw_only=True)
    _local_adaptive: bool = attrs.field(default=False, kw_only=True)
    _distinct: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self._local_every < 0:
            raise ValueError(f"local_every must be >= 0, got {self._local_every}")
        if not 0.0 < self._local_radius <= 0.5:
            raise ValueError(f"local_radius must be in (0, 0.5], got {self._local_radius}")
        if self._local_every and not self._use_trust_region:
            raise ValueError("local_every needs use_trust_region (the box is applied where "
                             "the trust region is)")
        if self._distinct:
            factory = self._acquisition_optimizer_factory  # type: ignore[has-type]  # OSS's
            if not isinstance(factory, FastScoreOptimizerFactory):
                raise ValueError(f"distinct needs this package's acquisition optimizer "
                                 f"(scores.acquisition_optimizer_factory), got {factory!r}")
            # OSS's slot, set once here, before any suggestion.
            self._acquisition_optimizer_factory = attrs.evolve(  # type: ignore[misc]
                factory, distinct=True)

    def is_local(self, trials_so_far: int) -> bool:
        """Whether the suggestion made when ``trials_so_far`` trials (completed and active)
        exist is confined to the box."""
        after_seed = trials_so_far - self._num_seed_trials
        return (self._local_every > 0 and after_seed >= 0
                and after_seed % self._local_every == self._local_every - 1)

    def radius(self) -> float:
        """The half-width of the next local suggestion's box (see the class docstring)."""
        if not self._local_adaptive:
            return self._local_radius
        low, high = self._local_radius / 2, min(4 * self._local_radius, 0.5)
        radius, misses, best = self._local_radius, 0, None
        everything = sorted([(t.id, True, t) for t in self._all_completed_trials]
                            + [(t.id, False, t) for t in self._all_active_trials],
                            key=lambda item: item[0])
        for position, (_, completed, trial) in enumerate(everything):
            if not completed:
                continue  # an active trial's outcome is not known yet
            value = self._objective(trial)
            if self.is_local(position):
                if value is not None and (best is None
                                          or value > best + 1e-3 * abs(best)):
                    radius, misses = min(2 * radius, high), 0
                else:
                    misses += 1
                    if misses == 2:
                        radius, misses = max(radius / 2, low), 0
            if value is not None and (best is None or value > best):
                best = value
        return radius

    def _objective(self, trial: vz.Trial) -> float | None:
        """The trial's objective, negated for a metric to minimize (larger is better), or None
        where it has none that counts (infeasible, missing, not finite, several metrics)."""
        if len(self._problem.metric_information) != 1:
            return None
        if trial.infeasible or trial.final_measurement is None:
            return None
        metric = self._problem.metric_information.item()
        value = trial.final_measurement.metrics.get_value(metric.name, float("nan"))
        if not np.isfinite(value):
            return None
        return -value if metric.goal.is_minimize else value

    def incumbent(self) -> vz.Trial | None:
        """The best feasible completed trial (single metric), or None."""
        best, best_value = None, None
        for trial in self._all_completed_trials:
            value = self._objective(trial)
            if value is None:
                continue
            if best_value is None or value > best_value:
                best, best_value = trial, value
        return best

    def _build_gp_model_and_optimize_parameters(self, data: Any, rng: jax.Array
                                                ) -> sp.StochasticProcessWithCoroutine:
        """OSS's ARD fit, or for an :class:`InputWarpedGP` the same fit with the warp's
        parameters added to OSS's fixed start (OSS's method names only its own GP's four
        parameters there): one start at the neutral values (OSS's, and no warp), the others
        random, the best ``ensemble_size`` (1 unless set) kept."""
        if not isinstance(self._gp_model_class, InputWarpedGP):
            return super()._build_gp_model_and_optimize_parameters(data, rng)
        coroutine = self._gp_model_class.build_model(
            data, multitask_type=self._config.multitask_type).coroutine
        model = sp.CoroutineWithData(coroutine, data)
        if data.features.continuous.padded_array.shape[0] == 0 and (
                data.features.categorical.padded_array.shape[0] == 0):
            # No completed trial yet (a pending one): the fit returns its starting values.
            def loss_with_aux(params: Any) -> tuple[jax.Array, dict[str, Any]]:
                return jnp.asarray(gp_ucb_pe._DUMMY_LOSS), {}
        else:
            loss_with_aux = model.loss_with_aux
        rng, init_rng = jax.random.split(rng)
        random_starts = eqx.filter_jit(eqx.filter_vmap(model.setup))(
            jax.random.split(init_rng, self._ard_random_restarts))
        starts = {name: jnp.concatenate([neutral_start(name, value), value])
                  for name, value in random_starts.items()}
        params, _ = self._ard_optimizer(init_params=starts, loss_fn=loss_with_aux, rng=rng,
                                        constraints=sp.get_constraints(model),
                                        best_n=self._ensemble_size or 1)
        return sp.StochasticProcessWithCoroutine(coroutine, params)

    def _trials_to_data(self, trials: Any) -> Any:
        """OSS's (scaled features, warped labels), with the labels unpadded and padded again
        on the host: OSS's device-side slice and pad compiled five small programs on every
        suggestion, since the shapes follow the trial count. Same values."""
        if not isinstance(self._padding_schedule, TrialPadding):
            return super()._trials_to_data(trials)
        from vizier._src.algorithms.designers.gp import output_warpers
        from vizier._src.jax import types as jax_types

        data = self._converter.to_xy(trials)
        unpadded = host_unpad(data.labels)
        warped, warpers = [], []
        for i in range(data.labels.shape[1]):
            warper = output_warpers.create_default_warper()
            warped.append(warper.warp(unpadded[:, i:i + 1]))
            warpers.append(warper)
        self._output_warpers = warpers  # type: ignore[misc]  # OSS's slot, as OSS sets it
        labels = host_padded(np.concatenate(warped, axis=-1),
                             tuple(np.asarray(data.labels.padded_array).shape),
                             data.labels.fill_value)
        return jax_types.ModelData(features=data.features, labels=labels)

    def _get_predictive_all_features(self, pending_features: Any, data: Any, model: Any,
                                     noise_is_high: bool) -> sp.UniformEnsemblePredictive:
        """OSS's, with the arrays joined and padded on the host: the number of pending trials
        grows by one with each suggestion of a batch, and OSS's device-side joins compiled
        programs for each new count."""
        if not isinstance(self._padding_schedule, TrialPadding):
            return super()._get_predictive_all_features(pending_features, data, model,
                                                        noise_is_high)
        from vizier._src.jax import types as jax_types

        pad = self._padding_schedule
        continuous = np.concatenate([host_unpad(data.features.continuous),
                                     host_unpad(pending_features.continuous)], axis=0)
        categorical = np.concatenate([host_unpad(data.features.categorical),
                                      host_unpad(pending_features.categorical)], axis=0)
        labels = host_unpad(data.labels)
        # Pending trials serve only the standard deviation: their labels do not matter.
        dummy = np.zeros((continuous.shape[0] - labels.shape[0], labels.shape[-1]),
                         dtype=np.asarray(data.labels.padded_array).dtype)
        all_data = jax_types.ModelData(
            features=jax_types.ModelInput(continuous=pad.pad_features(continuous),
                                          categorical=pad.pad_features(categorical)),
            labels=pad.pad_labels(np.concatenate([labels, dummy], axis=0)))
        pe_model = model
        if noise_is_high:
            pe_params = dict(model.params)
            pe_params["observation_noise_variance"] = jnp.array([1e-10])
            pe_model = sp.StochasticProcessWithCoroutine(model.coroutine, pe_params)
        return sp.UniformEnsemblePredictive(
            predictives=eqx.filter_jit(pe_model.precompute_predictive)(all_data))

    def _suggest_one(self, active_trials: Any, data: Any, model: Any, predictive: Any,
                     tr: Any, acquisition_problem: Any) -> vz.TrialSuggestion:
        if self.is_local(len(self._all_completed_trials) + len(active_trials)):
            best = self.incumbent()
            if best is not None:
                features = self._converter.to_features([best]).continuous
                center = features.replace_fill_value(0.0).padded_array[0]
                radius = self.radius()
                widths = None
                if self._distinct:
                    widths = jnp.asarray(half_widths(feature_grids(self._converter),
                                                     np.asarray(center), radius), center.dtype)
                tr = _IncumbentBox(center=center, radius=jnp.asarray(radius, center.dtype),
                                   widths=widths)
        return super()._suggest_one(active_trials, data, model, predictive, tr,
                                    acquisition_problem)
