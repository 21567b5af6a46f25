"""The Matern-5/2 kernel with one lengthscale per input (ARD), on any array namespace."""

from __future__ import annotations

from typing import Any

SQRT5 = 5.0**0.5


def matern52(A: Any, B: Any, lengthscales: Any, outputscale: float, xp: Any) -> Any:
    """``k(A, B)`` for inputs `n x D` and `m x D`, shape `n x m`.

    ``outputscale * (1 + sqrt(5) r + 5/3 r^2) exp(-sqrt(5) r)`` with ``r`` the distance
    after dividing each input by its lengthscale: gpytorch's ``ScaleKernel(MaternKernel(2.5))``.
    Computed in place, one pass per operation: this is the hot loop of acquisition.
    """
    a, b = A / lengthscales, B / lengthscales
    r = a @ b.T
    r *= -2.0
    r += (a * a).sum(axis=1)[:, None]
    r += (b * b).sum(axis=1)[None, :]
    xp.maximum(r, 0.0, out=r)
    xp.sqrt(r, out=r)
    r *= SQRT5  # sqrt(5) * distance
    k = xp.exp(-r)
    k *= outputscale
    poly = r * (1.0 / 3.0)
    poly += 1.0
    poly *= r
    poly += 1.0  # 1 + r + r^2 / 3
    k *= poly
    return k


def matern52_grad(
    A: Any, B: Any, lengthscales: Any, outputscale: float, xp: Any
) -> tuple[Any, Any]:
    """``k(A, B)`` (`n x m`) and its gradient in the rows of ``A`` (`n x m x D`).

    With ``r = sqrt(5) |(a - b) / l|``: ``dk/da = -s (5/3) (1 + r) exp(-r) (a - b) / l^2``,
    smooth everywhere (also at ``a = b``).
    """
    diff = (A[:, None, :] - B[None, :, :]) / lengthscales  # n x m x D, scaled
    r = SQRT5 * xp.sqrt((diff * diff).sum(axis=2))
    e = outputscale * xp.exp(-r)
    k = e * (1.0 + r * (1.0 + r / 3.0))
    dk = (-(5.0 / 3.0) * e * (1.0 + r))[:, :, None] * (diff / lengthscales)
    return k, dk
