"""Acquisition functions, written once against an array namespace (NumPy or CuPy).

All of them score candidates for *minimization* of the GP's (standardized) output, and a
higher score is better.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from asynchpo.acquisition._namespace import Namespace, numpy_namespace

_C1 = math.log(2 * math.pi) / 2
_C2 = math.log(math.pi / 2) / 2
_INV_SQRT_EPS = 1 / math.sqrt(np.finfo(float).eps)


def _log1mexp(x: Any, xp: Any) -> Any:
    """``log(1 - exp(x))`` for ``x < 0``, accurate on both sides of ``-log 2``."""
    return xp.where(x > -math.log(2.0), xp.log(-xp.expm1(x)), xp.log1p(-xp.exp(x)))


def log_h(z: Any, ns: Namespace) -> Any:
    """``log(phi(z) + z Phi(z))`` without underflow, for any real ``z``.

    The log of expected improvement per unit standard deviation, computed as in Ament et al.
    (2023), "Unexpected improvements to expected improvement for Bayesian optimization":
    directly for ``z > -1``, through ``erfcx`` below, and by its asymptote past
    ``-1/sqrt(eps)``.
    """
    xp, sp = ns.xp, ns.special
    z_hi = xp.clip(z, -1.0, None)
    upper = xp.log(xp.exp(-0.5 * z_hi * z_hi) / math.sqrt(2 * math.pi) + z_hi * sp.ndtr(z_hi))
    z_mid = xp.clip(z, -_INV_SQRT_EPS, -1.0)
    mid = (
        -0.5 * z_mid * z_mid
        - _C1
        + _log1mexp(xp.log(sp.erfcx(-z_mid / math.sqrt(2.0)) * xp.abs(z_mid)) + _C2, xp)
    )
    z_lo = xp.clip(z, None, -_INV_SQRT_EPS)
    tail = -0.5 * z_lo * z_lo - _C1 - 2.0 * xp.log(xp.abs(z_lo))
    return xp.where(z > -1.0, upper, xp.where(z > -_INV_SQRT_EPS, mid, tail))


def log_ei(mean: Any, var: Any, best: float, ns: Namespace) -> Any:
    """Log expected improvement below ``best``: ``log E[max(best - f, 0)]``, `m`."""
    xp = ns.xp
    sigma = xp.sqrt(var)
    return log_h((best - mean) / sigma, ns) + xp.log(sigma)


def log_ei_grad(
    mean: np.ndarray,
    var: np.ndarray,
    dmean: np.ndarray,
    dvar: np.ndarray,
    best: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`log_ei` (`m`) and its gradient (`m x D`), given the posterior's mean and
    variance (`m`) and their gradients (`m x D`). NumPy: it refines a few points.

    ``d log h(z) / dz = Phi(z) / h(z)``, taken as ``exp(log Phi(z) - log h(z))`` so that it
    stays finite far in the tail, where it tends to ``-z``.
    """
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    lh = log_h(z, numpy_namespace())
    dsigma = dvar / (2.0 * sigma)[:, None]
    dz = (-dmean - z[:, None] * dsigma) / sigma[:, None]
    ratio = np.exp(special.log_ndtr(z) - lh)
    value = lh + np.log(sigma)
    return value, ratio[:, None] * dz + dsigma / sigma[:, None]


def _log_mean_exp(a: Any, xp: Any) -> Any:
    """``log(mean(exp(a), axis=0))`` without overflow or underflow."""
    top = a.max(axis=0)
    return top + xp.log(xp.exp(a - top).mean(axis=0))


def log_qei(mean: Any, var: Any, C: Any, Z: Any, best: Any, ns: Namespace) -> Any:
    """Log expected improvement of a point added to a batch of pending points: ``log
    E[max(min(best, y(P)) - f(x), 0)]``, `m`, the gain of ``x`` over ``best`` and over
    whatever the pending points ``P`` turn out to give, ``y(P)`` being their observed
    outcomes, noise included (greedy sequential q-EI).

    The pending outcomes are drawn jointly, ``s`` draws of them given as ``z`` (`s x p`,
    standard normal: see ``Fantasy.pending_factor``); given a draw, ``f(x)`` is normal with
    mean ``mean + z @ C`` and variance ``var``, so its expected improvement on that draw's
    incumbent ``best`` (`s`: the least of the real incumbent and the draw) is exact, and
    only the pending outcomes are averaged over (a Rao-Blackwellized estimate).

    Args:
        mean, var: The posterior at the candidates given the complete trials and the pending
            points' inputs (the believer's variance), `m`.
        C: How the pending outcomes move the mean, `p x m`.
        Z: The draws, `s x p`.
        best: Each draw's incumbent, `s`.
    """
    xp = ns.xp
    a = log_ei(mean[None, :] + Z @ C, var[None, :], best[:, None], ns)
    return _log_mean_exp(a, xp)


def log_qei_grad(
    mean: np.ndarray,
    var: np.ndarray,
    dmean: np.ndarray,
    dvar: np.ndarray,
    C: np.ndarray,
    dC: np.ndarray,
    Z: np.ndarray,
    best: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`log_qei` (`m`) and its gradient (`m x D`), given also the gradients of the
    mean, the variance (`m x D`) and ``C`` (`m x p x D`). NumPy: it refines a few points."""
    s, m = len(Z), len(mean)
    means = mean[None, :] + Z @ C
    dmeans = dmean[None] + np.einsum("sp,mpd->smd", Z, dC)
    a, g = log_ei_grad(
        means.ravel(),
        np.tile(var, s),
        dmeans.reshape(s * m, -1),
        np.tile(dvar, (s, 1)),
        np.repeat(best, m),
    )
    a, g = a.reshape(s, m), g.reshape(s, m, -1)
    value = _log_mean_exp(a, np)
    weights = np.exp(a - value[None, :]) / s
    return value, np.einsum("sm,smd->md", weights, g)


def ucb_grad(
    mean: np.ndarray, var: np.ndarray, dmean: np.ndarray, dvar: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ucb` (`m`) and its gradient (`m x D`), as :func:`log_ei_grad`."""
    sigma = np.sqrt(var)
    root = math.sqrt(beta)
    return -(mean - root * sigma), -dmean + (root / (2.0 * sigma))[:, None] * dvar


def ucb(mean: Any, var: Any, beta: float, ns: Namespace) -> Any:
    """Lower confidence bound, negated so that higher is better: ``-(mean - sqrt(beta var))``."""
    return -(mean - math.sqrt(beta) * ns.xp.sqrt(var))


def rff_sample(
    X: np.ndarray,
    y: np.ndarray,
    lengthscales: np.ndarray,
    outputscale: float,
    noise: float,
    rng: np.random.Generator,
    n_features: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One posterior draw of the GP as random Fourier features (for Thompson sampling).

    The Matern-5/2 spectral density is a Student-t with 5 degrees of freedom, so
    ``omega = z / sqrt(g / 5) / lengthscales`` with ``z ~ N(0, I)``, ``g ~ chi2(5)``; the
    weights are drawn from their Bayesian linear-regression posterior given ``(X, y)``.

    Returns:
        ``(omega, phase, weights)`` with shapes `F x D`, `F`, `F`: the draw is
        ``sqrt(2 s / F) cos(x @ omega.T + phase) @ weights``.
    """
    D = X.shape[1]
    g = rng.chisquare(5.0, size=(n_features, 1))
    omega = rng.standard_normal((n_features, D)) / np.sqrt(g / 5.0) / lengthscales
    phase = rng.uniform(0.0, 2 * np.pi, n_features)
    Phi = math.sqrt(2.0 * outputscale / n_features) * np.cos(X @ omega.T + phase)
    A = Phi.T @ Phi + noise * np.eye(n_features)
    L = np.linalg.cholesky(A)
    mean = np.linalg.solve(L.T, np.linalg.solve(L, Phi.T @ y))
    weights = mean + math.sqrt(noise) * np.linalg.solve(L.T, rng.standard_normal(n_features))
    return omega, phase, weights


def rff_evaluate(
    Xc: Any, omega: Any, phase: Any, weights: Any, outputscale: float, ns: Namespace
) -> Any:
    """Values of a :func:`rff_sample` draw at `m x D` inputs, `m`."""
    xp = ns.xp
    F = len(weights)
    return math.sqrt(2.0 * outputscale / F) * xp.cos(Xc @ omega.T + phase) @ weights


def rff_evaluate_grad(
    Xc: np.ndarray, omega: np.ndarray, phase: np.ndarray, weights: np.ndarray, outputscale: float
) -> tuple[np.ndarray, np.ndarray]:
    """A :func:`rff_sample` draw at `m x D` inputs (`m`) and its gradient (`m x D`)."""
    c = math.sqrt(2.0 * outputscale / len(weights))
    arg = Xc @ omega.T + phase
    return c * np.cos(arg) @ weights, -c * (np.sin(arg) * weights) @ omega
