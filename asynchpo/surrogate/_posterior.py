"""The exact GP posterior in plain arrays, grown one observation at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular

from asynchpo.surrogate._kernel import matern52, matern52_grad

JITTER = 1e-8


@dataclass(frozen=True)
class Hyper:
    """Kernel and noise hyperparameters, in standardized output units.

    Attributes:
        lengthscales: One per GP input, `D`.
        outputscale: Prior variance of the latent function.
        noise: Observation noise variance.
    """

    lengthscales: np.ndarray
    outputscale: float
    noise: float

    @classmethod
    def default(cls, dim: int) -> Hyper:
        """The mode of the priors: what to use before any fit."""
        from asynchpo.surrogate._fit import lengthscale_prior_loc

        return cls(np.full(dim, np.exp(lengthscale_prior_loc(dim))), 1.0, 1e-4)


class Posterior:
    """A zero-mean GP conditioned on ``(X, y)`` through a Cholesky factor ``L``.

    :meth:`add` conditions one more observation in by appending a row to ``L``: O(n^2),
    the same factor a full refactorization would give (to rounding). :meth:`fantasize`
    appends rows for pending points after the real ones, in the same buffer, without
    copying it: the result is valid until the next :meth:`add`.

    Args:
        hyper: Kernel and noise hyperparameters.
        X: Inputs, `n x D`.
        y: Standardized outputs, `n`.

    Example:
        >>> X = np.array([[0.1], [0.5], [0.9]]); y = np.array([1.0, -1.0, 0.5])
        >>> post = Posterior(Hyper(np.array([0.3]), 1.0, 1e-6), X, y)
        >>> mean, var = post.predict(X)
        >>> np.allclose(mean, y, atol=1e-3) and bool((var < 1e-3).all())
        True
    """

    def __init__(self, hyper: Hyper, X: np.ndarray, y: np.ndarray):
        self.hyper = hyper
        n, D = X.shape
        cap = max(64, 2 * n)
        self._L = np.zeros((cap, cap))
        self._X = np.zeros((cap, D))
        self._y = np.zeros(cap)
        self.n = n
        self._X[:n], self._y[:n] = X, y
        if n:
            K = self._k(X, X) + (hyper.noise + JITTER) * np.eye(n)
            self._L[:n, :n] = cholesky(K, lower=True)
        self._alpha: np.ndarray | None = None
        self._incumbent: dict[float, float] = {}
        self._fantasies = 0  # believer rows written after the real ones

    def _k(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        h = self.hyper
        out: np.ndarray = matern52(A, B, h.lengthscales, h.outputscale, np)
        return out

    @property
    def X(self) -> np.ndarray:
        """The conditioned inputs, `n x D`."""
        return self._X[: self.n]

    @property
    def y(self) -> np.ndarray:
        """The conditioned outputs, `n`."""
        return self._y[: self.n]

    @property
    def L(self) -> np.ndarray:
        """The lower Cholesky factor of ``K + noise I``, `n x n`."""
        return self._L[: self.n, : self.n]

    def _grow(self, rows: int) -> None:
        cap = len(self._L)
        if self.n + rows <= cap:
            return
        self._fantasies = 0
        new = max(2 * cap, self.n + rows)
        L, X, y = np.zeros((new, new)), np.zeros((new, self._X.shape[1])), np.zeros(new)
        L[: self.n, : self.n] = self.L
        X[: self.n], y[: self.n] = self.X, self.y
        self._L, self._X, self._y = L, X, y

    def _append_rows(self, start: int, Xn: np.ndarray) -> None:
        """Write Cholesky rows for ``Xn`` at ``start`` (rows before it untouched)."""
        noise = self.hyper.noise + JITTER
        for i, x in enumerate(Xn):
            m = start + i
            kx = self._k(self._X[:m], x[None, :])[:, 0]
            row = solve_triangular(self._L[:m, :m], kx, lower=True, check_finite=False)
            d2 = self.hyper.outputscale + noise - row @ row
            self._L[m, :m] = row
            self._L[m, m] = np.sqrt(max(d2, noise))  # a duplicate input must not break L
            self._L[m, m + 1 :] = 0.0
            self._X[m] = x

    def add(self, x: np.ndarray, y: float) -> None:
        """Condition one observation in: `D` input, standardized output. O(n^2)."""
        self._grow(1)
        self._append_rows(self.n, np.asarray(x, dtype=float)[None, :])
        self._y[self.n] = y
        self.n += 1
        self._alpha = None
        self._incumbent.clear()
        self._fantasies = 0  # the new row overwrote the first believer row

    def alpha(self) -> np.ndarray:
        """``(K + noise I)^-1 y``, `n`."""
        if self._alpha is None:
            self._alpha = cho_solve((self.L, True), self.y, check_finite=False)
        return self._alpha

    def incumbent(self, kappa: float = 2.0) -> float:
        """The bar to improve on: the least observed output, each believed only down to
        ``kappa`` posterior standard deviations below the posterior mean at its input.

        ``min_i max(y_i, mean_i - kappa sd_i)``. Where the model finds the outputs
        noise-free, that is the least output. Where it finds them noisy (or the objective
        varies on a scale finer than the model resolves, like Ackley's ripples), the least
        output is mostly a lucky draw, far below anything the model expects nearby: improving
        on it would look all but hopeless next to the best trials, and expected improvement
        would go where the model knows least, the far corners. Only outputs below the
        running bar can lower it, so few points are predicted, best first (and once per
        observation added).
        """
        if not self.n:
            raise ValueError("incumbent: the posterior has no observations")
        if not kappa >= 0:
            raise ValueError(f"kappa must be a number >= 0, got {kappa!r}")
        if kappa in self._incumbent:
            return self._incumbent[kappa]
        y = self.y
        order = np.argsort(y, kind="stable")
        bar = np.inf
        for start in range(0, len(order), 8):
            block = order[start : start + 8]
            block = block[y[block] < bar]
            if not len(block):
                break
            mean, var = self.predict(self.X[block])
            bar = min(bar, float(np.min(np.maximum(y[block], mean - kappa * np.sqrt(var)))))
        self._incumbent[kappa] = bar
        return bar

    def fantasize(self, Xp: np.ndarray) -> Fantasy:
        """This posterior with pending points conditioned in at their own mean (the
        Kriging believer): the mean is unchanged, the variance shrinks around them."""
        Xp = np.asarray(Xp, dtype=float).reshape(-1, self._X.shape[1])
        self._grow(len(Xp))
        # rows of an earlier fantasy that begins the same way are still valid: keep them
        k = min(self._fantasies, len(Xp))
        same = self._X[self.n : self.n + k] == Xp[:k]
        keep = k if same.all() else int(np.argmin(same.all(axis=1)))
        self._append_rows(self.n + keep, Xp[keep:])
        self._fantasies = len(Xp)
        return Fantasy(self, len(Xp))

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent mean and variance at `m x D` inputs, each `m`."""
        return Fantasy(self, 0).predict(Xc)

    def to(self, ns: Any, pending: int = 0) -> DevicePosterior:
        """The arrays prediction needs, on the array namespace ``ns``."""
        return Fantasy(self, pending).to(ns)


@dataclass
class Fantasy:
    """A posterior plus ``pending`` believer rows, sharing its buffers."""

    base: Posterior
    pending: int

    def to(self, ns: Any) -> DevicePosterior:
        """The arrays prediction needs, on the array namespace ``ns``."""
        base = self.base
        m = base.n + self.pending
        alpha = base.alpha()  # the real rows only: believers do not move the mean
        xp = ns.xp
        return DevicePosterior(
            ns,
            xp.asarray(base._L[:m, :m]),
            xp.asarray(base._X[:m]),
            xp.asarray(alpha),
            base.n,
            xp.asarray(base.hyper.lengthscales),
            base.hyper.outputscale,
        )

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent mean and variance at `m x D` inputs, each `m`."""
        from asynchpo.acquisition._namespace import numpy_namespace

        mean, var = self.to(numpy_namespace()).predict(np.asarray(Xc))
        return np.asarray(mean), np.asarray(var)

    def pending_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """The pending points' joint posterior given the real rows: their mean (`p`) and
        the lower Cholesky factor of their covariance, observation noise included (`p x p`,
        the believer rows' own block of ``L``). ``mean + factor @ z`` with ``z ~ N(0, I)``
        draws their outcomes jointly."""
        base, n, p = self.base, self.base.n, self.pending
        mean = Fantasy(base, 0).predict(base._X[n : n + p])[0] if p else np.empty(0)
        return mean, base._L[n : n + p, n : n + p].copy()

    def predict_grad(self, Xc: np.ndarray, joint: bool = False) -> tuple[np.ndarray, ...]:
        """Latent mean and variance at `m x D` inputs (each `m`) and their gradients in the
        inputs (each `m x D`): what a gradient-based refinement of the acquisition needs.

        With ``joint``, also ``C`` (`p x m`) and its gradient (`m x p x D`): the weights
        by which the pending points' outcomes, drawn as ``z`` through
        :meth:`pending_factor`, move the mean (``mean + z @ C``)."""
        base = self.base
        m = base.n + self.pending
        h = base.hyper
        Xc = np.asarray(Xc, dtype=float)
        k, dk = matern52_grad(Xc, base._X[:m], h.lengthscales, h.outputscale, np)
        alpha = base.alpha()
        mean = k[:, : base.n] @ alpha
        dmean = np.einsum("cnd,n->cd", dk[:, : base.n], alpha)
        L = base._L[:m, :m]
        V = solve_triangular(L, k.T, lower=True, check_finite=False)  # m x c
        W = solve_triangular(L, V, lower=True, trans="T", check_finite=False)  # K^-1 k
        var = np.clip(h.outputscale - (V * V).sum(axis=0), 1e-12, None)
        dvar = -2.0 * np.einsum("cmd,mc->cd", dk, W)
        if not joint:
            return mean, var, dmean, dvar
        c, D = Xc.shape
        dV = solve_triangular(
            L, dk.transpose(1, 0, 2).reshape(m, c * D), lower=True, check_finite=False
        )
        dC = dV[base.n :].reshape(self.pending, c, D).transpose(1, 0, 2)
        return mean, var, dmean, dvar, V[base.n :], dC


@dataclass
class DevicePosterior:
    """Prediction arrays on one array namespace (NumPy, or CuPy on a GPU)."""

    ns: Any
    L: Any  # `m x m`, real rows then believer rows
    X: Any  # `m x D`
    alpha: Any  # `n`, real rows only: believers do not move the mean
    n: int
    lengthscales: Any
    outputscale: float

    def predict(self, Xc: Any) -> tuple[Any, Any]:
        """Latent mean and variance at `c x D` inputs (arrays of this namespace)."""
        mean, var, _ = self.predict_joint(Xc)
        return mean, var

    def predict_joint(self, Xc: Any) -> tuple[Any, Any, Any]:
        """As :meth:`predict`, and the weights ``C`` (`p x c`) by which the pending points'
        outcomes, drawn as ``z`` through :meth:`Fantasy.pending_factor`, move the mean: given
        the draw, the mean is ``mean + z @ C`` and the variance stays ``var``."""
        xp = self.ns.xp
        Kc = matern52(Xc, self.X, self.lengthscales, self.outputscale, xp)
        mean = Kc[:, : self.n] @ self.alpha
        V = self.ns.solve_triangular(self.L, Kc.T)
        var = xp.clip(self.outputscale - (V * V).sum(axis=0), 1e-12, None)
        return mean, var, V[self.n :]
