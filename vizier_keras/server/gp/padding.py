"""Trial counts padded (to at least 30, then to multiples of 10) so that array shapes repeat and
compiled programs are reused; padded rows are masked out by the model. The padding is done on
the host, so that no program is compiled for the padding itself.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from vizier._src.algorithms.designers.gp_ucb_pe import padding

MIN_PADDED_TRIALS = 30


@attrs.define(frozen=True, kw_only=True, hash=True, eq=True)
class TrialPadding(padding.PaddingSchedule):
    """Pads the trial count to at least :data:`MIN_PADDED_TRIALS`, then to multiples of 10.

    OSS's MULTIPLES_OF_10 makes a study compile its programs again at 10, 20 and 30 trials (and
    at each, once more when a pending trial reaches into the next ten): ~20 s each on 2 cores,
    a large share of a small study. Padded rows are masked out, so results do not change; the
    extra rows cost a little compute while a study is small.
    """

    def _pad_trailing_dims(self, array: Any, padding_types: Any) -> Any:
        array = np.asarray(array)
        shape = list(array.shape)
        trials_axis = len(shape) - len(padding_types)
        shape[trials_axis] = padded_trials(shape[trials_axis])
        fill = self._int_default if np.issubdtype(array.dtype, np.integer) else np.nan
        return host_padded(array, tuple(shape), fill)


def padded_trials(count: int) -> int:
    """The number of rows :class:`TrialPadding` gives ``count`` trials."""
    return max(MIN_PADDED_TRIALS, -(-count // 10) * 10)


def host_padded(array: np.ndarray, shape: tuple[int, ...], fill_value: Any) -> Any:
    """``PaddedArray.from_array(array, shape, fill_value=...)``, padded with NumPy.

    The same arrays; but OSS's ``jnp.pad`` compiles a small program for each new input shape,
    and the shapes here change with every trial, pending ones included: tens of compilations
    per suggestion, most of a batch's time.
    """
    from vizier._src.jax import types as jax_types

    spec = [(0, new - old) for old, new in zip(array.shape, shape, strict=True)]
    return jax_types.PaddedArray(
        padded_array=np.pad(array, spec, constant_values=fill_value),
        fill_value=fill_value,
        _original_shape=np.asarray(array.shape),
        _mask=np.pad(np.ones(array.shape, dtype=bool), spec, constant_values=False),
        _nopadding_done=tuple(array.shape) == tuple(shape))


def host_unpad(padded: Any) -> np.ndarray:
    """``padded.unpad()`` on the host (OSS's compiles a slice for each new shape)."""
    shape = [int(n) for n in np.asarray(padded._original_shape)]
    return np.asarray(padded.padded_array)[tuple(slice(0, n) for n in shape)]


TRIAL_PADDING = TrialPadding()
