"""Output transforms: a Yeo-Johnson warp (robust to heavy tails), then standardization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Warp:
    """``(yeojohnson((y - center) / scale, lmbda) - mean) / std``; fitted, then fixed.

    Yeo-Johnson with its maximum-likelihood ``lmbda`` pulls in a heavy tail of bad values
    (Rosenbrock's, say) so that one outlier does not flatten the model everywhere else.
    The identity warp is ``lmbda = 1``.

    Example:
        >>> w = Warp.fit(np.array([1.0, 2.0, 3.0, 1000.0]))
        >>> bool(w(np.array([1000.0]))[0] < 3)
        True
    """

    center: float = 0.0
    scale: float = 1.0
    lmbda: float = 1.0
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray) -> Warp:
        """The warp that makes ``y`` (minimized values, `n`) as Gaussian as Yeo-Johnson can."""
        y = np.asarray(y, dtype=float)
        spread = float(np.std(y)) if len(y) else 0.0
        if len(y) < 3 or spread == 0.0:
            return cls(mean=float(np.mean(y)) if len(y) else 0.0, std=spread or 1.0)
        center = float(np.median(y))
        z = (y - center) / spread
        lmbda = float(np.clip(stats.yeojohnson_normmax(z), -2.0, 2.0))
        w = stats.yeojohnson(z, lmbda)
        return cls(center, spread, lmbda, float(np.mean(w)), float(np.std(w)) or 1.0)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Warped, standardized values of ``y``."""
        z = (np.asarray(y, dtype=float) - self.center) / self.scale
        return np.asarray((stats.yeojohnson(z, self.lmbda) - self.mean) / self.std)
