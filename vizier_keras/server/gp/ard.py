"""The ARD (GP hyperparameter) optimizer: SciPy's L-BFGS-B with OSS's options, fed from one jitted
function of a flat parameter vector; it takes the same steps as OSS's ``JaxoptScipyLbfgsB``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from vizier._src.algorithms.designers import gp_ucb_pe
from vizier._src.jax import stochastic_process_model as sp
from vizier._src.jax.optimizers import core as opt_core
from vizier._src.jax.optimizers import jaxopt_wrappers


class _Static:
    """A hashable holder for the static half of a loss function and the parameter layout."""

    def __init__(self, static: Any, layout: tuple[Any, ...]) -> None:
        self.static = static
        self.layout = layout
        self._hash = hash((jax.tree_util.tree_structure(static), layout))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Static) or other._hash != self._hash:
            return False
        if other.layout != self.layout:
            return False
        mine, mine_def = jax.tree_util.tree_flatten(self.static)
        theirs, their_def = jax.tree_util.tree_flatten(other.static)
        if not (mine_def == their_def):  # type: ignore[operator]
            return False
        return all(a is b or a == b for a, b in zip(mine, theirs, strict=True))


def _layout(params: Any) -> tuple[Any, ...]:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    return treedef, tuple((tuple(np.shape(x)), str(jnp.asarray(x).dtype)) for x in leaves)


def _unflatten(flat: jax.Array, layout: tuple[Any, ...]) -> Any:
    treedef, shapes = layout
    leaves, start = [], 0
    for shape, dtype in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        leaves.append(flat[start:start + size].reshape(shape).astype(dtype))
        start += size
    return jax.tree_util.tree_unflatten(treedef, leaves)


@functools.partial(jax.jit, static_argnums=(2,))
def _flat_value_and_grad(flat: jax.Array, dynamic: Any, holder: _Static
                         ) -> tuple[jax.Array, jax.Array]:
    loss_fn = eqx.combine(dynamic, holder.static)
    params = _unflatten(flat, holder.layout)
    (value, _), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params)
    flat_grads = jnp.concatenate([jnp.ravel(g).astype(jnp.float64)
                                  for g in jax.tree_util.tree_leaves(grads)])
    # With no data, OSS's designer passes a loss that returns a Python float.
    return jnp.asarray(value, jnp.float64), flat_grads


class FlatScipyLbfgsB(opt_core.Optimizer):
    """SciPy's L-BFGS-B over the ARD loss, as OSS's ``JaxoptScipyLbfgsB`` runs it (same options,
    same start points, same bounds, best loss wins), with the value and gradient computed by one
    jitted function of a flat float64 vector instead of jaxopt's per-leaf bridge."""

    def __init__(self, options: jaxopt_wrappers.LbfgsBOptions) -> None:
        self._options = options

    def __call__(
        self,
        init_params: Any,
        loss_fn: Callable[[Any], Any],
        rng: jax.Array,
        *,
        constraints: sp.Constraint | None = None,
        best_n: int | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        del rng
        starts = jaxopt_wrappers._unbatch_params(init_params)
        layout = _layout(starts[0])
        dynamic, static = eqx.partition(loss_fn, eqx.is_array)
        holder = _Static(static, layout)
        bounds = jaxopt_wrappers._get_bounds(starts[0], constraints)
        scipy_bounds = None
        if bounds is not None:
            scipy_bounds = scipy.optimize.Bounds(lb=_ravel(bounds[0]), ub=_ravel(bounds[1]))

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = _flat_value_and_grad(x, dynamic, holder)
            return float(value), np.asarray(grad, dtype=np.float64)

        losses, params = [], []
        for start in starts:
            result = scipy.optimize.minimize(
                fun, _ravel(start), jac=True, bounds=scipy_bounds, method="L-BFGS-B",
                options={"maxiter": self._options.maxiter, "gtol": self._options.tol,
                         "maxls": self._options.num_line_search_steps})
            losses.append(float(result.fun))
            params.append(_unflatten(jnp.asarray(result.x), layout))
        all_params = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *params)
        loss_array = jnp.asarray(losses)
        return (opt_core.get_best_params(loss_array, all_params, best_n=best_n),
                {"loss": loss_array[jnp.newaxis, :]})


def _ravel(tree: Any) -> np.ndarray:
    return np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1)
                           for x in jax.tree_util.tree_leaves(tree)])


def default_ard_options() -> jaxopt_wrappers.LbfgsBOptions:
    # OSS's default_ard_optimizer() options, read from it so that they stay the same.
    return gp_ucb_pe.default_ard_optimizer()._options
