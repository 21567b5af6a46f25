"""The array namespace acquisition runs on: NumPy on a CPU, CuPy on a GPU."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Namespace:
    """An array module with the few extras acquisition needs.

    Attributes:
        name: ``"numpy"`` or ``"cupy"``.
        xp: The array module.
        special: Its special functions (``erfcx``, ``ndtr``, ``log_ndtr``).
        solve_triangular: ``solve_triangular(L, B)`` for a lower-triangular ``L``.
        gpu: Whether arrays live on a GPU.
    """

    name: str
    xp: Any
    special: Any
    solve_triangular: Any
    gpu: bool

    def to_numpy(self, a: Any) -> np.ndarray:
        """``a`` as a NumPy array (a copy from the GPU, if it lives there)."""
        return np.asarray(a.get() if self.gpu else a)


def solve_lower(L: np.ndarray, B: np.ndarray, trans: bool = False) -> np.ndarray:
    """``L^-1 B`` (``L^-T B`` with ``trans``) for a lower-triangular ``L`` (`n x n`, nonzero
    diagonal) and ``B`` (`n` or `n x k`), by LAPACK's ``trtrs``.

    As ``scipy.linalg.solve_triangular``, whose checks and conversions cost ~10 us a call:
    a suggestion makes some eighty such solves, most of them small.
    """
    import scipy.linalg
    from scipy.linalg.lapack import dtrtrs

    if not L.shape[0] or not B.size:
        return np.zeros(B.shape)
    if not (L.flags.c_contiguous or L.flags.f_contiguous):
        L = np.ascontiguousarray(L)
    if L.flags.f_contiguous:
        x, info = dtrtrs(L, B, lower=1, trans=int(trans))
    else:  # the transpose of a C-ordered L is a Fortran-ordered upper factor
        x, info = dtrtrs(L.T, B, lower=0, trans=0 if trans else 1)
    if info != 0:  # an illegal argument or a zero pivot: SciPy says which
        out: np.ndarray = scipy.linalg.solve_triangular(
            L, B, lower=True, trans="T" if trans else "N", check_finite=False
        )
        return out
    return np.asarray(x)


@functools.cache
def numpy_namespace() -> Namespace:
    """NumPy with SciPy's special functions."""
    import scipy.special

    return Namespace("numpy", np, scipy.special, solve_lower, False)


@functools.cache
def cupy_namespace() -> Namespace:
    """CuPy on the current GPU. Raises ImportError (naming the extra) without CuPy or a GPU."""
    try:
        import cupy
        import cupyx.scipy.linalg
        import cupyx.scipy.special
    except ImportError as exc:
        raise ImportError("the GPU path needs CuPy: pip install 'asynchpo[gpu]'") from exc
    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise ImportError("CuPy is installed but sees no GPU")

    def solve(L: Any, B: Any) -> Any:
        return cupyx.scipy.linalg.solve_triangular(L, B, lower=True)

    return Namespace("cupy", cupy, cupyx.scipy.special, solve, True)


@functools.cache
def gpu_available() -> bool:
    """Whether CuPy is installed and sees a GPU."""
    try:
        cupy_namespace()
    except Exception:  # any failure to reach a GPU means: no GPU path
        return False
    return True


def get_namespace(device: str = "auto") -> Namespace:
    """``"cpu"``: NumPy; ``"gpu"``: CuPy (ImportError if impossible); ``"auto"``: CuPy when a
    GPU is visible, else NumPy."""
    if device == "cpu":
        return numpy_namespace()
    if device == "gpu":
        return cupy_namespace()
    if device == "auto":
        return cupy_namespace() if gpu_available() else numpy_namespace()
    raise ValueError(f"device must be 'auto', 'cpu' or 'gpu', got {device!r}")
