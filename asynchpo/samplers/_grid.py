"""Exhaustive search over a grid of values."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from asynchpo._checks import positive_int
from asynchpo.samplers._base import BaseSampler, History
from asynchpo.space import Space

_MAX_SHUFFLED = 10_000_000


class GridSampler(BaseSampler):
    """Every combination of a few values per parameter, once each.

    The grid is walked in order (or in a seeded shuffled order), one point per trial asked;
    once every point is asked, ``suggest`` returns no rows and ``optimize`` stops asking.

    Args:
        values: Values to try per parameter name; parameters not named here get
            ``n_points`` values spread over their range (all values of categoricals, and of
            ints or stepped floats that have no more than ``n_points``).
        n_points: Points per parameter not named in ``values``.
        shuffle: Visit the grid in a random order (useful with a budget smaller than the grid).
        seed: Seed of the shuffle.

    Example:
        >>> import asynchpo as ah
        >>> space = ah.Space(x=ah.Int(0, 2), act=ah.Categorical(["a", "b"]))
        >>> study = ah.Study(space, sampler=ah.GridSampler())
        >>> [study.ask().params for _ in range(2)]
        [{'x': 0, 'act': 'a'}, {'x': 0, 'act': 'b'}]
    """

    def __init__(
        self,
        values: Mapping[str, Sequence[Any]] | None = None,
        n_points: int = 5,
        shuffle: bool = False,
        seed: int | None = None,
    ):
        self.values = dict(values or {})
        for name, vals in self.values.items():
            if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence) or not vals:
                raise ValueError(f"values[{name!r}] must be a non-empty list, got {vals!r}")
        self.n_points = positive_int("n_points", n_points)
        self.shuffle, self.seed = shuffle, seed
        self._space: Space | None = None
        self._axes: list[np.ndarray] = []
        self._order: np.ndarray | None = None

    def _build(self, space: Space) -> None:
        unknown = set(self.values) - set(space.names)
        if unknown:
            raise ValueError(f"values: unknown parameter(s) {sorted(unknown)}")
        axes = []
        for name, dist in space.items():
            vals = self.values.get(name)
            vals = [dist.check(name, v) for v in vals] if vals else dist.grid(self.n_points)
            axes.append(np.array([dist.encode(v) for v in vals], dtype=float))
        self._space, self._axes = space, axes
        self.size = math.prod(len(a) for a in axes)
        self._order = None
        if self.shuffle:
            if self.size > _MAX_SHUFFLED:
                raise ValueError(f"shuffle: the grid has {self.size} points, over {_MAX_SHUFFLED}")
            self._order = np.random.default_rng(self.seed).permutation(self.size)

    def _point(self, index: int) -> np.ndarray:
        if self._order is not None:
            index = int(self._order[index])
        row = np.empty(len(self._axes))
        for j in range(len(self._axes) - 1, -1, -1):
            index, r = divmod(index, len(self._axes[j]))
            row[j] = self._axes[j][r]
        return row

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        if self._space is not history.space:
            self._build(history.space)
        stop = min(history.n_asked + n, self.size)
        rows = [self._point(i) for i in itertools.islice(range(history.n_asked, stop), n)]
        return np.array(rows).reshape(len(rows), history.space.dim)
