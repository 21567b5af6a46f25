"""Uniform random search: the baseline every other sampler must beat."""

from __future__ import annotations

import numpy as np

from asynchpo.samplers._base import BaseSampler, History


class RandomSampler(BaseSampler):
    """Independent uniform draws over the space.

    With a seed, the ``k``-th trial's point depends only on the seed and ``k``, so a study
    resumed from its journal goes on with the points it would have drawn.

    Args:
        seed: Seed for reproducible runs; None draws fresh entropy.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(-1, 1)), sampler=ah.RandomSampler(seed=0))
        >>> study.ask().params["x"] == ah.Study(
        ...     ah.Space(x=ah.Float(-1, 1)), sampler=ah.RandomSampler(seed=0)).ask().params["x"]
        True
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        d = history.space.dim
        if self.seed is None:
            return np.random.default_rng().random((n, d))
        # one stream per trial number: the same points however the asks are batched
        k = history.n_asked
        rows = [np.random.default_rng([self.seed, k + i]).random(d) for i in range(n)]
        return np.array(rows).reshape(n, d)
