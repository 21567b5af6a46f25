"""Uniform random search: the baseline every other sampler must beat."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from asynchpo.acquisition._optimize import point_keys
from asynchpo.samplers._base import BaseSampler, History
from asynchpo.space import Float, Space
from asynchpo.surrogate._features import Features

_TOL = 1e-9  # two points are the same if they agree this closely in every coordinate
_BLOCK, _BLOCKS = 64, 16  # redraws of a repeated point: up to 1024, 64 at a time

Draw = Callable[[int, int], np.ndarray]  # (row, how many) -> further points for that row


class Fresh:
    """Keeps a sampler's draws off the points already taken and off each other.

    Points are compared where the study will evaluate them (snapped onto the space's
    values: bins for discrete parameters), within ``1e-9`` in every coordinate. A draw that
    repeats a complete, failed or running point, or an earlier draw of the same batch, is
    replaced by the first free one of further draws. In a continuous space that is
    (almost) never needed; in a discrete one it spreads parallel workers over the values
    left. When no further draw is free (the space is used up), the repeat stays.
    """

    def __init__(self, space: Space):
        self.space = space
        self._snap = Features(space).snap
        self._columns = [Features(Space({n: d.without_condition()})).snap for n, d in space.items()]
        # continuous coordinates first: one of them tells points apart at once
        continuous = [isinstance(d, Float) and d.step is None for d in space.values()]
        self._order = sorted(range(space.dim), key=lambda j: not continuous[j])

    def __call__(self, U: np.ndarray, taken: np.ndarray, draw: Draw) -> np.ndarray:
        """``U`` (`n x d`) with each repeat replaced by a draw of ``draw(i, m)``."""
        U = np.array(U, dtype=float)
        S = self._snap(U)
        taken = np.asarray(taken, dtype=float).reshape(-1, self.space.dim)
        chosen: list[np.ndarray] = []  # snapped, this batch
        keys: np.ndarray | None = None  # of the snapped taken and chosen points
        for i in range(len(U)):
            if self._free(S[i], taken, chosen):
                chosen.append(S[i])
                if keys is not None:  # later redraws must keep off this one too
                    keys = np.concatenate([keys, point_keys(S[i : i + 1])])
                continue
            if keys is None:
                keys = point_keys(np.vstack([self._snap(taken), *chosen]))
            for _ in range(_BLOCKS):
                more = draw(i, _BLOCK)
                free = np.flatnonzero(~np.isin(point_keys(self._snap(more)), keys))
                if len(free):
                    U[i] = more[free[0]]
                    S[i] = self._snap(U[i : i + 1])[0]
                    break
            chosen.append(S[i])
            keys = np.concatenate([keys, point_keys(S[i : i + 1])])
        return U

    def _free(self, s: np.ndarray, taken: np.ndarray, chosen: list[np.ndarray]) -> bool:
        """Whether snapped point ``s`` repeats no taken point (narrowed one coordinate at a
        time: O(len(taken)), cheap) and no chosen one."""
        rows: np.ndarray | None = None
        for j in self._order:
            col = taken[:, j] if rows is None else taken[rows, j]
            hit = np.abs(self._columns[j](col[:, None])[:, 0] - s[j]) <= _TOL
            rows = np.flatnonzero(hit) if rows is None else rows[hit]
            if not len(rows):
                break
        else:
            return False
        return not chosen or not (np.abs(np.array(chosen) - s).max(axis=1) <= _TOL).any()


def taken_points(history: History, pending: np.ndarray) -> np.ndarray:
    """The complete, failed and running points, `t x d`."""
    d = history.space.dim
    parts = (history.X, history.X_failed, pending)
    return np.vstack([np.reshape(np.asarray(a, dtype=float), (-1, d)) for a in parts])


class RandomSampler(BaseSampler):
    """Independent uniform draws over the space, none repeating a point already taken.

    With a seed, the ``k``-th trial's point depends only on the seed, ``k`` and the points
    taken, so a study resumed from its journal goes on with the points it would have drawn.
    A draw that repeats a complete, failed or running point (or another of its batch) is
    drawn again: never needed in a continuous space, it spreads the workers over the values
    left in a discrete one.

    Args:
        seed: Seed for reproducible runs; None draws fresh entropy.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(-1, 1)), sampler=ah.RandomSampler(seed=0))
        >>> study.ask().params["x"] == ah.Study(
        ...     ah.Space(x=ah.Float(-1, 1)), sampler=ah.RandomSampler(seed=0)).ask().params["x"]
        True
    """

    cheap = True

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._fresh: Fresh | None = None

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        d = history.space.dim
        if self.seed is None:
            rng = np.random.default_rng()
            rngs = [rng] * n
            U = rng.random((n, d))
        else:
            # one stream per trial number: the same points however the asks are batched
            k = history.n_asked
            rngs = [np.random.default_rng([self.seed, k + i]) for i in range(n)]
            U = np.array([r.random(d) for r in rngs]).reshape(n, d)
        if self._fresh is None or self._fresh.space is not history.space:
            self._fresh = Fresh(history.space)
        return self._fresh(U, taken_points(history, pending), lambda i, m: rngs[i].random((m, d)))
