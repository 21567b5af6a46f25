"""Scrambled Sobol' points: random-like, but spread evenly over the cube."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import qmc

from asynchpo.samplers._base import BaseSampler, History
from asynchpo.samplers._random import Fresh, taken_points


class SobolSampler(BaseSampler):
    """Points of a scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``), in order.

    The sequence position is the number of trials asked so far, so a resumed study continues
    the same sequence rather than starting it again. Its balance is best at powers of two.
    A point that repeats a complete, failed or running one (or another of its batch) is
    replaced by a uniform draw that does not (seeded by the seed and its position).

    Args:
        seed: Seed of the scrambling; None draws fresh entropy.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.SobolSampler(seed=1))
        >>> 0.0 <= study.ask().params["x"] <= 1.0
        True
    """

    cheap = True

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._engine: qmc.Sobol | None = None
        self._drawn = 0
        self._fresh: Fresh | None = None

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        d = history.space.dim
        if self._engine is None or self._engine.d != d or history.n_asked < self._drawn:
            self._engine = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(self.seed))
            self._drawn = 0
        if history.n_asked > self._drawn:
            self._engine.fast_forward(history.n_asked - self._drawn)
            self._drawn = history.n_asked
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            points = self._engine.random(n)
        self._drawn += n
        if self._fresh is None or self._fresh.space is not history.space:
            self._fresh = Fresh(history.space)
        k, seed = history.n_asked, self.seed
        rngs: dict[int, np.random.Generator] = {}

        def draw(i: int, m: int) -> np.ndarray:
            if i not in rngs:  # one stream per trial number, as RandomSampler's
                rngs[i] = np.random.default_rng(None if seed is None else [seed, k + i])
            return rngs[i].random((m, d))

        return self._fresh(np.asarray(points), taken_points(history, pending), draw)
