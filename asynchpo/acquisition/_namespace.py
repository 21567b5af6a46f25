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


@functools.cache
def numpy_namespace() -> Namespace:
    """NumPy with SciPy's special functions."""
    import scipy.linalg
    import scipy.special

    def solve(L: Any, B: Any) -> Any:
        return scipy.linalg.solve_triangular(L, B, lower=True, check_finite=False)

    return Namespace("numpy", np, scipy.special, solve, False)


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
