"""Exhaustive search over a grid of values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from asynchpo._checks import positive_int
from asynchpo.samplers._base import BaseSampler, History
from asynchpo.space import Space

_MAX_SHUFFLED = 10_000_000
_TOL = 1e-9  # a point is a grid point if it is this close to one in every coordinate


class GridSampler(BaseSampler):
    """Every combination of a few values per parameter, once each.

    The grid is walked in order (or in a seeded shuffled order): each suggestion is the
    first grid point that no complete, failed or running trial has taken yet, wherever that
    trial came from (another sampler, ``Study.add_trial``, an earlier run). Once every
    point is taken, ``suggest`` returns no rows and ``optimize`` stops asking. (A pruned
    trial does not take its point: the history does not show it.)

    Args:
        values: Values to try per parameter name; parameters not named here get
            ``n_points`` values spread over their range (all values of categoricals, and of
            ints or stepped floats that have no more than ``n_points``). A value given twice
            is tried once.
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

    cheap = True

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
        self._axes: list[np.ndarray] = []  # unit-cube values per parameter, in grid order
        self._sorted: list[tuple[np.ndarray, np.ndarray]] = []  # (argsort, sorted values)
        self._order: np.ndarray | None = None  # position -> grid index, when shuffled
        self._rank: np.ndarray | None = None  # grid index -> position, when shuffled
        self.size = 0

    def _build(self, space: Space) -> None:
        unknown = set(self.values) - set(space.names)
        if unknown:
            raise ValueError(f"values: unknown parameter(s) {sorted(unknown)}")
        axes = []
        for name, dist in space.items():
            vals = self.values.get(name)
            vals = [dist.check(name, v) for v in vals] if vals else dist.grid(self.n_points)
            axes.append(_distinct(np.array([dist.encode(v) for v in vals], dtype=float)))
        self._space, self._axes = space, axes
        self._sorted = [(np.argsort(a, kind="stable"), np.sort(a, kind="stable")) for a in axes]
        self.size = math.prod(len(a) for a in axes)
        self._order = self._rank = None
        if self.shuffle:
            if self.size > _MAX_SHUFFLED:
                raise ValueError(f"shuffle: the grid has {self.size} points, over {_MAX_SHUFFLED}")
            order = np.random.default_rng(self.seed).permutation(self.size)
            self._order = order.astype(np.int32 if self.size < 2**31 else np.int64)
            self._rank = np.empty_like(self._order)
            self._rank[self._order] = np.arange(self.size, dtype=self._order.dtype)

    def _point(self, position: int) -> np.ndarray:
        index = int(self._order[position]) if self._order is not None else position
        row = np.empty(len(self._axes))
        for j in range(len(self._axes) - 1, -1, -1):
            index, r = divmod(index, len(self._axes[j]))
            row[j] = self._axes[j][r]
        return row

    def _positions(self, U: np.ndarray, stop: int) -> np.ndarray:
        """Positions in the walk, below ``stop``, of the rows of ``U`` that are grid points,
        found per axis by binary search: O(len(U) d log k), whatever the grid's size."""
        hit = np.ones(len(U), dtype=bool)
        digits = []  # per axis, the index of each row's value among the axis's values
        for j, (argsort, values) in enumerate(self._sorted):
            u = U[:, j]
            right = np.clip(np.searchsorted(values, u), 0, len(values) - 1)
            left = np.maximum(right - 1, 0)
            nearest = np.where(np.abs(values[left] - u) < np.abs(values[right] - u), left, right)
            hit &= np.abs(values[nearest] - u) <= _TOL
            digits.append(argsort[nearest])
        rows = [d[hit] for d in digits]
        if self.size < 2**62:
            index = np.ravel_multi_index(tuple(rows), tuple(len(a) for a in self._axes))
            if self._rank is not None:
                index = self._rank[index]
            out: np.ndarray = index[index < stop]
            return out
        flat = np.zeros(len(rows[0]), dtype=object)  # too large for int64: Python integers
        for r, axis in zip(rows, self._axes, strict=True):
            flat = flat * len(axis) + r.astype(object)
        return np.array([int(i) for i in flat if i < stop], dtype=np.int64)

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        if self._space is not history.space:
            self._build(history.space)
        d = history.space.dim
        taken = np.vstack(
            [
                np.reshape(np.asarray(a, dtype=float), (-1, d))
                for a in (history.X, history.X_failed, pending)
            ]
        )
        if history.space.conditional:
            return self._conditional(history.space, taken, n)
        # the first n free positions of the walk lie among its first n + len(taken)
        stop = min(n + len(taken), self.size)
        free = np.ones(stop, dtype=bool)
        free[self._positions(taken, stop)] = False
        rows = [self._point(int(p)) for p in np.flatnonzero(free)[:n]]
        return np.array(rows).reshape(len(rows), d)

    def _on_grid(self, space: Space, U: np.ndarray) -> np.ndarray:
        """``U`` with every inactive coordinate at its axis's first value: the one grid
        point of each distinct configuration."""
        first = np.array([a[0] for a in self._axes])
        return np.where(space.active_mask(U), U, first)

    def _conditional(self, space: Space, taken: np.ndarray, n: int) -> np.ndarray:
        """The walk's first ``n`` free grid points that are their configuration's one
        point; the others decode to a configuration met elsewhere in the walk."""
        done = set(self._positions(self._on_grid(space, taken), self.size).tolist())
        rows: list[np.ndarray] = []
        position = 0
        while len(rows) < n and position < self.size:
            block = range(position, min(position + 256, self.size))
            position = block.stop
            points = np.array([self._point(p) for p in block])
            own = (np.abs(self._on_grid(space, points) - points) <= _TOL).all(axis=1)
            fresh = [p not in done for p in block]
            rows.extend(points[own & np.array(fresh, dtype=bool)])
        return np.array(rows[:n]).reshape(-1, space.dim)


def _distinct(values: np.ndarray) -> np.ndarray:
    """``values`` without those within ``_TOL`` of an earlier one, in their order."""
    order = np.argsort(values, kind="stable")
    starts = np.flatnonzero(np.diff(values[order], prepend=-np.inf) > _TOL)
    first = np.minimum.reduceat(order, starts) if len(order) else order
    out: np.ndarray = values[np.sort(first)]
    return out
