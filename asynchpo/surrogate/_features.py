"""From the space's unit cube to the GP's inputs: discrete values snapped, categoricals one-hot."""

from __future__ import annotations

import math

import numpy as np

from asynchpo.space import Categorical, Float, Int, Space


class Features:
    """The GP's view of a space.

    ``snap`` moves unit-cube points (`n x d`) onto values the space can take (bin centres
    for ints, stepped floats and categoricals; log-spaced ints rounded in log space), so that
    a candidate is scored where it will actually be evaluated. ``__call__`` turns snapped
    points into GP inputs (`n x D`): continuous coordinates as they are, each categorical as
    a one-hot block, so every pair of distinct choices is equally far apart.

    Example:
        >>> from asynchpo.space import Categorical, Float, Space
        >>> f = Features(Space(x=Float(0, 1), c=Categorical(["a", "b", "c"])))
        >>> f(f.snap(np.array([[0.3, 0.9]]))).round(3).tolist()
        [[0.3, 0.0, 0.0, 1.0]]
    """

    def __init__(self, space: Space):
        self.space = space
        self._bins: list[tuple[int, int]] = []  # (column, number of values): linear bins
        self._logints: list[tuple[int, Int]] = []
        self._onehot: list[tuple[int, int]] = []  # (column, number of choices)
        self._continuous: list[int] = []
        for j, dist in enumerate(space.values()):
            if isinstance(dist, Categorical):
                self._bins.append((j, len(dist.choices)))
                self._onehot.append((j, len(dist.choices)))
            elif isinstance(dist, Int) and dist.log:
                self._logints.append((j, dist))
                self._continuous.append(j)
            elif isinstance(dist, Int) or (isinstance(dist, Float) and dist.step is not None):
                self._bins.append((j, dist._n))
                self._continuous.append(j)
            else:
                self._continuous.append(j)
        self.dim = len(self._continuous) + sum(k for _, k in self._onehot)
        stepped = {j for j, _ in self._bins} | {j for j, _ in self._logints}
        # (unit-cube column, GP input column) of the truly continuous coordinates: where the
        # acquisition has a gradient
        pairs = [(j, c) for c, j in enumerate(self._continuous) if j not in stepped]
        self.free = np.array([j for j, _ in pairs], dtype=int)
        self.free_inputs = np.array([c for _, c in pairs], dtype=int)

    def snap(self, U: np.ndarray) -> np.ndarray:
        """Points moved onto the space's values, shape `n x d`; inactive coordinates of a
        conditional space onto their fixed value."""
        U = np.clip(np.array(U, dtype=float), 0.0, 1.0)
        for j, k in self._bins:
            U[:, j] = (np.minimum(np.floor(U[:, j] * k), k - 1) + 0.5) / k
        for j, dist in self._logints:
            a, b = math.log(dist.low - 0.5), math.log(dist.high + 0.5)
            x = np.clip(np.round(np.exp(a + U[:, j] * (b - a))), dist.low, dist.high)
            U[:, j] = (np.log(x) - a) / (b - a)
        return self.space.canonical(U) if self.space.conditional else U

    def __call__(self, U: np.ndarray) -> np.ndarray:
        """GP inputs of snapped points, shape `n x D`."""
        U = np.asarray(U, dtype=float)
        if not self._onehot:
            return U
        blocks = [U[:, self._continuous]]
        for j, k in self._onehot:
            idx = np.minimum(np.floor(U[:, j] * k), k - 1).astype(int)
            blocks.append(np.eye(k)[idx])
        return np.hstack(blocks)
