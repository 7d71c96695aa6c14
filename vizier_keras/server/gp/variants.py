"""Experimental model variants, for benchmarks through ``--gp-settings`` (not in the service's
default): a floor on the fitted continuous length scales, and input warping (a Kumaraswamy CDF
per continuous parameter).
"""

from __future__ import annotations

from typing import Any

import attrs
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from tensorflow_probability.substrates.jax.internal import (
    parameter_properties as _tfp_parameter_properties,
)
from vizier._src.jax import stochastic_process_model as sp
from vizier._src.jax.models import tuned_gp_models

# OSS's VizierGaussianProcess names its continuous length scales (squared) this, bounded
# below by 1e-2, i.e. a length scale of 0.1 in the scaled [0, 1] space.
_CONTINUOUS_LENGTH_SCALE = "continuous_length_scale_squared"


@struct.dataclass
class _FlooredCoroutine:
    """A GP model coroutine that is ``inner``'s with the continuous length scales bounded
    below by ``min_length_scale`` (their prior, the regularizer, unchanged); everything else,
    and the parameters' order and names, as ``inner`` yields them. A frozen dataclass, equal to
    any other with equal fields, so that JAX's caches keyed on the model keep hitting."""

    inner: Any = struct.field(pytree_node=False)
    min_length_scale: float = struct.field(pytree_node=False)

    def __call__(self, inputs: Any = None, **kwargs: Any) -> Any:
        generator = self.inner(inputs=inputs, **kwargs)
        sent = None
        while True:
            try:
                parameter = generator.send(sent)
            except StopIteration as done:
                return done.value
            if parameter.name == _CONTINUOUS_LENGTH_SCALE:
                parameter = self._floored(parameter)
            sent = yield parameter

    def _floored(self, parameter: sp.ModelParameter) -> sp.ModelParameter:
        low, high = parameter.constraint.bounds
        low = np.maximum(np.asarray(low), self.min_length_scale ** 2)
        high = np.asarray(high)
        log_low, log_high = np.log(low), np.log(high)

        def init(key: jax.Array) -> jax.Array:  # log-uniform in the new bounds, as OSS's
            u = jax.random.uniform(key, low.shape, dtype=jnp.float64)
            return jnp.exp(u * (log_high - log_low) + log_low)

        bijector = tuned_gp_models.tfb.SoftClip(low, high, hinge_softness=1e-2)
        return sp.ModelParameter(name=parameter.name, init_fn=init,
                                 constraint=sp.Constraint((low, high), bijector),
                                 regularizer=parameter.regularizer)


@attrs.frozen
class FlooredLengthScaleGP:
    """A ``gp_model_class`` for OSS's designer: OSS's ``VizierGaussianProcess`` (Matern-5/2,
    ARD) with its continuous length scales kept at or above ``min_length_scale`` (OSS: 0.1).

    Why: on a rugged objective the fitted length scales fall to OSS's bound (rastrigin-4d, by
    trial 15): the model then fits the ripples, its mean is flat a short way from any trial, and
    it cannot see the objective's trend over the space. With a floor the GP should model the
    trend and take the ripples as observation noise. Off in the service's default: screened
    with floors 0.2 and 0.3, it did worse on rastrigin-4d (``benchmarks/notes/``)."""

    min_length_scale: float

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.min_length_scale <= 1.0:
            raise ValueError(f"min_length_scale must be in (0, 1], got {self.min_length_scale}")

    def build_model(self, data: Any, **kwargs: Any) -> sp.StochasticProcessModel:
        model = tuned_gp_models.VizierGaussianProcess.build_model(data, **kwargs)
        return sp.StochasticProcessModel(
            _FlooredCoroutine(model.coroutine, self.min_length_scale))


_WARP_BOUNDS = (0.2, 5.0)  # each Kumaraswamy concentration's range
_WARP_PRIOR_VARIANCE = 0.75  # of a concentration's log: a log-normal prior centred on 1 (no warp)
_WARP_EPSILON = 1e-7  # the warp sees [0, 1] squeezed into [eps, 1 - eps], so its slope is finite


def kumaraswamy_warp(x: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """The Kumaraswamy CDF ``1 - (1 - x^a)^b`` of ``x`` in [0, 1] (squeezed into [eps, 1 - eps]
    first; values outside [0, 1] are clipped): an increasing map of [0, 1] onto itself, the
    identity at ``a = b = 1``."""
    x = jnp.clip(x, 0.0, 1.0) * (1.0 - 2.0 * _WARP_EPSILON) + _WARP_EPSILON
    return 1.0 - (1.0 - x ** a) ** b


class KumaraswamyWarped(tuned_gp_models.tfpk.FeatureTransformed):
    """``kernel`` on inputs whose continuous features pass each through
    :func:`kumaraswamy_warp` with its own concentrations (``concentration1`` = a and
    ``concentration0`` = b, each shaped [batch..., continuous features]); categorical features
    are passed as they are. ``kernel`` takes ``ContinuousAndCategoricalValues``, as OSS's GP
    kernels do."""

    def __init__(self, kernel: Any, concentration1: Any, concentration0: Any,
                 validate_args: bool = False, name: str = "KumaraswamyWarped") -> None:
        parameters = dict(locals())
        self._concentration1 = jnp.asarray(concentration1)
        self._concentration0 = jnp.asarray(concentration0)

        def warp(x: Any, feature_ndims: Any, example_ndims: int) -> Any:
            a, b = self._concentration1, self._concentration0
            shape = a.shape[:-1] + (1,) * example_ndims + a.shape[-1:]
            return sp.tfpke.ContinuousAndCategoricalValues(
                continuous=kumaraswamy_warp(x.continuous, a.reshape(shape), b.reshape(shape)),
                categorical=x.categorical)

        super().__init__(kernel, transformation_fn=warp, validate_args=validate_args,
                         name=name, parameters=parameters)

    @property
    def concentration1(self) -> jax.Array:
        return self._concentration1

    @property
    def concentration0(self) -> jax.Array:
        return self._concentration0

    @classmethod
    def _parameter_properties(cls, dtype: Any) -> dict[str, Any]:
        return {"kernel": _tfp_parameter_properties.BatchedComponentProperties(),
                "concentration1": _tfp_parameter_properties.ParameterProperties(event_ndims=1),
                "concentration0": _tfp_parameter_properties.ParameterProperties(event_ndims=1)}


@struct.dataclass
class _WarpedCoroutine:
    """``inner``'s GP model coroutine with each continuous input passed through its own
    Kumaraswamy CDF before the kernel sees it; the two concentrations per continuous dimension
    are fitted with the other GP parameters, after them (``inner``'s parameters, their order and
    names unchanged). A frozen dataclass, equal to any other with equal fields, so that JAX's
    caches keyed on the model keep hitting."""

    inner: Any = struct.field(pytree_node=False)
    continuous_dim: int = struct.field(pytree_node=False)

    def __call__(self, inputs: Any = None, **kwargs: Any) -> Any:
        gp = yield from self.inner(inputs=inputs, **kwargs)
        a = yield self._concentration(_WARP_A)
        b = yield self._concentration(_WARP_B)
        return gp.copy(kernel=KumaraswamyWarped(gp.kernel, a, b))

    def _concentration(self, name: str) -> sp.ModelParameter:
        low, high = (np.full(self.continuous_dim, bound, dtype=np.float64)
                     for bound in _WARP_BOUNDS)

        def init(key: jax.Array) -> jax.Array:  # near no warp: log-uniform in [1/2, 2]
            u = jax.random.uniform(key, low.shape, dtype=jnp.float64)
            return jnp.exp((2.0 * u - 1.0) * np.log(2.0))

        return sp.ModelParameter(
            name=name, init_fn=init,
            constraint=sp.Constraint((low, high), tuned_gp_models.tfb.SoftClip(
                low, high, hinge_softness=1e-2)),
            regularizer=lambda x: jnp.sum(jnp.log(x) ** 2) / (2.0 * _WARP_PRIOR_VARIANCE))


_WARP_A, _WARP_B = "continuous_warp_concentration1", "continuous_warp_concentration0"


# OSS's fixed start for its GP's parameters, and no warp (a = b = 1).
_NEUTRAL_START = {"signal_variance": 0.039, "observation_noise_variance": 0.0039,
                  "continuous_length_scale_squared": 1.0,
                  "categorical_length_scale_squared": 1.0, _WARP_A: 1.0, _WARP_B: 1.0}


def neutral_start(name: str, random_starts: jax.Array) -> jax.Array:
    """One start for parameter ``name`` shaped as one of ``random_starts`` (leading axis 1):
    its neutral value, or for a parameter without one (a multi-task kernel's) the first random
    start (OSS's fit starts those at a random value too)."""
    if name not in _NEUTRAL_START:
        return random_starts[:1]
    return jnp.full((1, *random_starts.shape[1:]), _NEUTRAL_START[name],
                    dtype=random_starts.dtype)


@attrs.frozen
class InputWarpedGP:
    """A ``gp_model_class`` for OSS's designer: ``base``'s GP (OSS's ``VizierGaussianProcess``
    unless given, e.g. a :class:`FlooredLengthScaleGP`) on continuous inputs warped each by its
    own fitted Kumaraswamy CDF (input warping: Snoek et al. 2014, "Input Warping for Bayesian
    Optimization of Non-Stationary Functions"; HEBO uses the same warp). Categorical inputs are
    not warped.

    Why: a stationary kernel assumes the objective varies alike over each parameter's range, and
    a tuning objective often does not (flat over most of a learning rate's range and steep near
    one end, even on a log scale). The warp stretches the part of the range where the objective
    changes. Each concentration lies in [0.2, 5] with a log-normal prior centred on 1, the
    identity (variance 0.75 of its log, as BoTorch's default warp). Off in the service's
    default: screened, it did worse on the 4-D test functions, clearly so on rosenbrock-4d
    (``benchmarks/notes/``)."""

    base: Any = tuned_gp_models.VizierGaussianProcess

    def build_model(self, data: Any, **kwargs: Any) -> sp.StochasticProcessModel:
        model = self.base.build_model(data, **kwargs)
        return sp.StochasticProcessModel(_WarpedCoroutine(
            model.coroutine, int(data.features.continuous.padded_array.shape[-1])))
