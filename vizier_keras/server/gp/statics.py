"""Sampler and projection of the acquisition optimizer that compare by value, so that JAX's
cache keeps the jitted Eagle-strategy loop across designers (OSS's compare by identity).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vizier._src.algorithms.optimizers import eagle_strategy as es


class StableRandomSampler(es.DefaultRandomSampler):
    """OSS's random sampler, equal to any other built for the same feature layout."""

    def _key(self) -> tuple[Any, ...]:
        return (self._max_categorical_size,
                tuple(np.asarray(self._categorical_sizes).reshape(-1).tolist()),
                self._continuous_padded_dim)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StableRandomSampler) and type(other) is type(self) and (
            other._key() == self._key())

    def __hash__(self) -> int:
        return hash(self._key())


class StableProjection(es.DefaultProjection):
    """OSS's projection (a clip to [0, 1]); it holds no state, so all are equal."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))
