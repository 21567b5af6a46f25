"""The exact GP posterior in plain arrays, grown one observation at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import cholesky

from asynchpo.acquisition._namespace import solve_lower
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
    conditions pending points in as a :class:`Fantasy`: the rows they would append to
    ``L``, kept apart from it.

    A suggestion conditions one observation in and then predicts a great deal, so what each
    observation changes is updated, not recomputed: ``L`` stays one contiguous array (no
    solve copies it), ``L^-1 y`` gains an entry, and so do the solves ``L^-1 k(X, x)`` kept
    for the points the :meth:`incumbent` and the fantasies predicted last (O(n) each).

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
        self._X = np.zeros((cap, D))
        self._y = np.zeros(cap)
        self.n = n
        self._X[:n], self._y[:n] = X, y
        # the factor lives in one of two flat buffers, C-contiguous; an added row writes the
        # grown factor into the other (one pass over it, never a fresh allocation)
        self._bufs: list[np.ndarray] = [np.empty(0), np.empty(0)]
        self._cur = 0
        self._factor: np.ndarray
        self._z: np.ndarray
        if n:
            K = self._k(X, X) + (hyper.noise + JITTER) * np.eye(n)
            # K is symmetric: the upper factor of its (Fortran) transpose is L, C-ordered
            self._factor = cholesky(K, lower=False, check_finite=False).T
            self._z = solve_lower(self._factor, self.y)
        else:
            self._factor, self._z = np.empty((0, 0)), np.empty(0)
        self._alpha: np.ndarray | None = None
        self._incumbent: dict[float, float] = {}
        # solves L^-1 k(X, x) kept for the points last predicted: (the points, q x D;
        # the solves, n x q), by what predicted them
        self._kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._fantasy: Fantasy | None = None  # the last one, to reuse its rows

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
        """The lower Cholesky factor of ``K + noise I``, `n x n` (contiguous; shared, so
        read-only by contract, and valid until the next :meth:`add`)."""
        return self._factor

    @property
    def z(self) -> np.ndarray:
        """``L^-1 y``, `n`: the mean at ``x`` is ``(L^-1 k(X, x)) @ z``."""
        return self._z

    def add(self, x: np.ndarray, y: float) -> None:
        """Condition one observation in: `D` input, standardized output. O(n^2)."""
        x = np.asarray(x, dtype=float).reshape(-1)
        m, noise = self.n, self.hyper.noise + JITTER
        if m == len(self._X):
            X, Y = np.zeros((2 * m, self._X.shape[1])), np.zeros(2 * m)
            X[:m], Y[:m] = self._X, self._y
            self._X, self._y = X, Y
        L = self._factor
        kx = self._k(self.X, x[None, :])[:, 0]
        row = solve_lower(L, kx) if m else kx
        d = float(np.sqrt(max(self.hyper.outputscale + noise - row @ row, noise)))
        # (a duplicate input must not break L: its pivot is kept at the noise level)
        other = 1 - self._cur
        size = (m + 1) ** 2
        if len(self._bufs[other]) < size:
            self._bufs[other] = np.empty(int(1.5 * (m + 1) + 64) ** 2)
        new = self._bufs[other][:size].reshape(m + 1, m + 1)
        new[:m, :m] = L
        new[:m, m] = 0.0
        new[m, :m] = row
        new[m, m] = d
        self._factor, self._cur = new, other
        self._z = np.append(self._z, (y - row @ self._z) / d)
        for key, (points, V) in self._kept.items():  # one more row of each kept solve
            kq = self._k(x[None, :], points)[0]
            self._kept[key] = (points, np.vstack([V, (kq - row @ V) / d]))
        self._X[m], self._y[m] = x, y
        self.n += 1
        self._alpha = self._fantasy = None
        self._incumbent.clear()

    def alpha(self) -> np.ndarray:
        """``(K + noise I)^-1 y``, `n`."""
        if self._alpha is None:
            self._alpha = solve_lower(self.L, self.z, trans=True)
        return self._alpha

    def _solves(self, key: str, points: np.ndarray) -> np.ndarray:
        """``L^-1 k(X, points)`` (`n x q`), reusing the solves kept for ``key``'s points of
        last time (updated as observations were added); these points are kept instead."""
        kept_points, kept = self._kept.get(key, (points[:0], np.empty((self.n, 0))))
        V = np.empty((self.n, len(points)))
        hit = np.full(len(points), -1)
        if len(kept_points) and len(points):
            match = (points[:, None, :] == kept_points[None, :, :]).all(axis=2)
            found = match.any(axis=1)
            hit[found] = match[found].argmax(axis=1)
        have = hit >= 0
        V[:, have] = kept[:, hit[have]]
        if not have.all() and self.n:
            fresh = self._k(self.X, points[~have])
            V[:, ~have] = solve_lower(self.L, fresh)
        self._kept[key] = (points.copy(), V)
        return V

    def incumbent(self, kappa: float = 2.0) -> float:
        """The bar to improve on: the least observed output, each believed only down to
        ``kappa`` posterior standard deviations below the posterior mean at its input.

        ``min_i max(y_i, mean_i - kappa sd_i)``. Where the model finds the outputs
        noise-free, that is the least output. Where it finds them noisy (or the objective
        varies on a scale finer than the model resolves, like Ackley's ripples), the least
        output is mostly a lucky draw, far below anything the model expects nearby: improving
        on it would look all but hopeless next to the best trials, and expected improvement
        would go where the model knows least, the far corners. Only outputs below the
        running bar can lower it, so few points are predicted, best first (once per
        observation added, from solves kept and updated since the last time).
        """
        if not self.n:
            raise ValueError("incumbent: the posterior has no observations")
        if not kappa >= 0:
            raise ValueError(f"kappa must be a number >= 0, got {kappa!r}")
        if kappa in self._incumbent:
            return self._incumbent[kappa]
        y, s = self.y, self.hyper.outputscale
        order = np.argsort(y, kind="stable")
        # which points need predicting depends on the predictions: find them block by block
        # (doubling), from the solves kept for last time's points, then keep theirs
        bar, start, size = np.inf, 0, 8
        used = order[:0]
        while start < len(order):
            block = order[start : start + size]
            start, size = start + size, 2 * size
            block = block[y[block] < bar]
            if not len(block):
                break
            used = np.concatenate([used, block])
            V = self._solves("incumbent", self.X[used])[:, -len(block) :]
            mean = V.T @ self.z
            var = np.clip(s - (V * V).sum(axis=0), 1e-12, None)
            bar = min(bar, float(np.min(np.maximum(y[block], mean - kappa * np.sqrt(var)))))
        self._incumbent[kappa] = bar
        return bar

    def fantasize(self, Xp: np.ndarray) -> Fantasy:
        """This posterior with pending points conditioned in at their own mean (the
        Kriging believer): the mean is unchanged, the variance shrinks around them.

        Valid until the next :meth:`add`. The solves of points pending last time are kept
        (and updated as observations are added), and the rows of a last fantasy that began
        with the same points are reused: a suggestion of several points grows the pending
        set one point at a time, and one ask after another keeps most of it."""
        Xp = np.asarray(Xp, dtype=float).reshape(-1, self._X.shape[1])
        p, h = len(Xp), self.hyper
        noise = h.noise + JITTER
        last = self._fantasy
        keep = 0
        if last is not None:
            k = min(last.pending, p)
            same = (last.X[:k] == Xp[:k]).all(axis=1)
            keep = k if same.all() else int(np.argmin(same))
        W = self._solves("pending", Xp)
        L22 = np.zeros((p, p))
        if keep:
            assert last is not None
            L22[:keep, :keep] = last.L22[:keep, :keep]
        if p > keep:
            # the Schur complement of the pending block, factored row by row as ``add``
            # would, so that a duplicate (of a complete or a pending point) cannot break it
            S = self._k(Xp, Xp[keep:]) - W.T @ W[:, keep:]  # p x (p - keep)
            wsq = (W[:, keep:] ** 2).sum(axis=0)
            for j, i in enumerate(range(keep, p)):
                r = solve_lower(L22[:i, :i], S[:i, j])
                L22[i, :i] = r
                d2 = h.outputscale + noise - wsq[j] - r @ r
                L22[i, i] = np.sqrt(max(d2, noise))
        self._fantasy = Fantasy(self, Xp.copy(), W, L22)
        return self._fantasy

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent mean and variance at `m x D` inputs, each `m`."""
        return Fantasy.none(self).predict(Xc)

    def mean(
        self, Xc: np.ndarray, Xp: np.ndarray | None = None, yp: np.ndarray | None = None
    ) -> np.ndarray:
        """Latent mean at `m x D` inputs, `m`, with observations ``(Xp, yp)`` (`p x D`,
        `p`) conditioned in as well, if given. O(m n + p n^2); it only reads the posterior,
        so it is safe next to a thread that predicts from it (not next to :meth:`add`).

        Example:
            >>> post = Posterior(Hyper(np.array([0.3]), 1.0, 1e-6), np.array([[0.1]]),
            ...                  np.array([1.0]))
            >>> both = Posterior(post.hyper, np.array([[0.1], [0.9]]), np.array([1.0, -1.0]))
            >>> bool(np.allclose(post.mean(np.array([[0.5]]), np.array([[0.9]]),
            ...      np.array([-1.0])), both.predict(np.array([[0.5]]))[0]))
            True
        """
        L, z, X = self.L, self.z, self.X
        Xc = np.asarray(Xc, dtype=float)
        if Xp is None or yp is None or not len(Xp):
            if not self.n:
                return np.zeros(len(Xc))
            return np.asarray(self._k(Xc, X) @ solve_lower(L, z, trans=True))
        Xp = np.asarray(Xp, dtype=float)
        yp = np.asarray(yp, dtype=float)
        noise = self.hyper.noise + JITTER
        # the factor of [X; Xp] is [[L, 0], [W^T, L22]]: W = L^-1 k(X, Xp), L22 the factor
        # of the Schur complement (kept positive definite by the noise, as ``add`` does)
        W = solve_lower(L, self._k(X, Xp)) if self.n else np.zeros((0, len(Xp)))
        S = self._k(Xp, Xp) + noise * np.eye(len(Xp)) - W.T @ W
        w, V = np.linalg.eigh(0.5 * (S + S.T))
        S = (V * np.maximum(w, noise)) @ V.T
        L22 = np.linalg.cholesky(S)
        z2 = solve_lower(L22, yp - W.T @ z)
        a2 = solve_lower(L22, z2, trans=True)
        out = self._k(Xc, Xp) @ a2
        if self.n:
            out = out + self._k(Xc, X) @ solve_lower(L, z - W @ a2, trans=True)
        return np.asarray(out)

    def to(self, ns: Any) -> DevicePosterior:
        """The arrays prediction needs, on the array namespace ``ns``."""
        return Fantasy.none(self).to(ns)


@dataclass
class Fantasy:
    """A posterior plus ``pending`` believer points: the Cholesky rows they would append.

    With ``L`` the real factor, the joint factor is ``[[L, 0], [W.T, L22]]``: ``W`` is
    ``L^-1 k(X, Xp)`` (`n x p`) and ``L22`` the factor of the pending points' covariance
    given the real data, noise included (`p x p`).
    """

    base: Posterior
    X: np.ndarray  # `p x D`, the pending inputs
    W: np.ndarray  # `n x p`
    L22: np.ndarray  # `p x p`, lower

    @classmethod
    def none(cls, base: Posterior) -> Fantasy:
        """No pending point: the posterior itself."""
        D = base._X.shape[1]
        return cls(base, np.empty((0, D)), np.empty((base.n, 0)), np.empty((0, 0)))

    @property
    def pending(self) -> int:
        """How many points are pending."""
        return len(self.X)

    def to(self, ns: Any) -> DevicePosterior:
        """The arrays prediction needs, on the array namespace ``ns``."""
        base = self.base
        xp = ns.xp
        inputs = np.vstack([base.X, self.X]) if self.pending else base.X
        return DevicePosterior(
            ns,
            xp.asarray(base.L),
            xp.asarray(inputs),
            xp.asarray(base.z),  # the real rows only: believers do not move the mean
            base.n,
            xp.asarray(base.hyper.lengthscales),
            base.hyper.outputscale,
            xp.asarray(self.W.T),
            xp.asarray(self.L22),
        )

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent mean and variance at `m x D` inputs, each `m`."""
        from asynchpo.acquisition._namespace import numpy_namespace

        mean, var = self.to(numpy_namespace()).predict(np.asarray(Xc))
        return np.asarray(mean), np.asarray(var)

    def pending_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """The pending points' joint posterior given the real rows: their mean (`p`) and
        the lower Cholesky factor of their covariance, observation noise included (`p x p`,
        the believer rows' own block of the joint factor). ``mean + factor @ z`` with
        ``z ~ N(0, I)`` draws their outcomes jointly."""
        base = self.base
        if not self.pending:
            return np.empty(0), np.empty((0, 0))
        return self.W.T @ base.z, self.L22.copy()

    def predict_grad(self, Xc: np.ndarray, joint: bool = False) -> tuple[np.ndarray, ...]:
        """Latent mean and variance at `m x D` inputs (each `m`) and their gradients in the
        inputs (each `m x D`): what a gradient-based refinement of the acquisition needs.

        With ``joint``, also ``C`` (`p x m`) and its gradient (`m x p x D`): the weights
        by which the pending points' outcomes, drawn as ``z`` through
        :meth:`pending_factor`, move the mean (``mean + z @ C``)."""
        base = self.base
        n, p = base.n, self.pending
        h = base.hyper
        Xc = np.asarray(Xc, dtype=float)
        inputs = np.vstack([base.X, self.X]) if p else base.X
        k, dk = matern52_grad(Xc, inputs, h.lengthscales, h.outputscale, np)
        dmean = np.einsum("cnd,n->cd", dk[:, :n], base.alpha())
        L, L21, L22 = base.L, self.W.T, self.L22

        def forward(B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """``[L, 0; L21, L22]^-1 B``, as its real and its pending rows."""
            top = solve_lower(L, B[:n])
            if not p:
                return top, B[n:]
            low = solve_lower(L22, B[n:] - L21 @ top)
            return top, low

        V1, V2 = forward(k.T)  # n x c, p x c
        mean = V1.T @ base.z
        var = np.clip(h.outputscale - (V1 * V1).sum(axis=0) - (V2 * V2).sum(axis=0), 1e-12, None)
        if not joint:
            # dvar = -2 dk^T K^-1 k, K^-1 k back through the transposed joint factor
            W2 = solve_lower(L22, V2, trans=True) if p else V2
            W1 = solve_lower(L, V1 - L21.T @ W2, trans=True)
            dvar = -2.0 * (
                np.einsum("cnd,nc->cd", dk[:, :n], W1) + np.einsum("cpd,pc->cd", dk[:, n:], W2)
            )
            return mean, var, dmean, dvar
        # the joint case needs the forward solves of dk anyway: dk^T K^-1 k = dV^T V
        c, D = Xc.shape
        dV1, dV2 = forward(dk.transpose(1, 0, 2).reshape(n + p, c * D))
        dV1, dV2 = dV1.reshape(n, c, D), dV2.reshape(p, c, D)
        dvar = -2.0 * (np.einsum("nc,ncd->cd", V1, dV1) + np.einsum("pc,pcd->cd", V2, dV2))
        return mean, var, dmean, dvar, V2, dV2.transpose(1, 0, 2)


@dataclass
class DevicePosterior:
    """Prediction arrays on one array namespace (NumPy, or CuPy on a GPU)."""

    ns: Any
    L: Any  # `n x n`, the real rows' factor
    X: Any  # `(n + p) x D`, real then pending inputs
    z: Any  # `n`, L^-1 y: real rows only, believers do not move the mean
    n: int
    lengthscales: Any
    outputscale: float
    L21: Any  # `p x n`, the pending rows of the joint factor ...
    L22: Any  # `p x p`, ... and their own block

    def predict(self, Xc: Any) -> tuple[Any, Any]:
        """Latent mean and variance at `c x D` inputs (arrays of this namespace)."""
        mean, var, _ = self.predict_joint(Xc)
        return mean, var

    def predict_joint(self, Xc: Any) -> tuple[Any, Any, Any]:
        """As :meth:`predict`, and the weights ``C`` (`p x c`) by which the pending points'
        outcomes, drawn as ``z`` through :meth:`Fantasy.pending_factor`, move the mean: given
        the draw, the mean is ``mean + z @ C`` and the variance stays ``var``."""
        xp, n = self.ns.xp, self.n
        Kc = matern52(Xc, self.X, self.lengthscales, self.outputscale, xp)
        V = self.ns.solve_triangular(self.L, Kc[:, :n].T)
        mean = self.z @ V
        var = self.outputscale - (V * V).sum(axis=0)
        C = Kc[:, n:].T
        if C.shape[0]:
            C = self.ns.solve_triangular(self.L22, C - self.L21 @ V)
            var -= (C * C).sum(axis=0)
        return mean, xp.clip(var, 1e-12, None), C
