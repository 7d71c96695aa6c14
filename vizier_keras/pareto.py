"""Pareto fronts: which results no other result beats in every objective.

Used by the embedded service's ``listOptimalTrials``, the Keras layer's best trials of a
multi-objective study and the results layer. Points are sequences of numbers, higher better in
every coordinate (:func:`point` makes one from a result's metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vizier_keras import wire

__all__ = ["dominates", "pareto_fronts", "point"]


def point(values: Mapping[str, float], objectives: Sequence[tuple[str, wire.Goal]]
          ) -> list[float]:
    """The objectives' values of one result, higher better in each (a MINIMIZE metric is
    negated), in the objectives' order."""
    return [values[m] if goal is wire.Goal.MAXIMIZE else -values[m] for m, goal in objectives]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True))


def pareto_fronts(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``points`` in non-dominated fronts: the first front holds the points no
    other point dominates, the next those dominated only by the first, and so on (Deb's fast
    non-dominated sort, O(m n^2); one coordinate is a sort, and each front is one value's
    ties). Indices are ascending within a front."""
    n = len(points)
    if n and len(points[0]) == 1:
        fronts: list[list[int]] = []
        for i in sorted(range(n), key=lambda i: (-points[i][0], i)):
            if fronts and points[fronts[-1][0]][0] == points[i][0]:
                fronts[-1].append(i)
            else:
                fronts.append([i])
        return fronts
    beaten_by = [0] * n
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                beats[i].append(j)
                beaten_by[j] += 1
            elif dominates(points[j], points[i]):
                beats[j].append(i)
                beaten_by[i] += 1
    fronts = []
    current = [i for i in range(n) if beaten_by[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts
