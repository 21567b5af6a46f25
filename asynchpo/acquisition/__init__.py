"""Acquisition functions and their optimizer, on NumPy or (on a GPU) CuPy."""

from __future__ import annotations

from asynchpo.acquisition._functions import (
    log_ei,
    log_ei_grad,
    log_h,
    log_qei,
    log_qei_grad,
    rff_evaluate,
    rff_evaluate_grad,
    rff_sample,
    ucb,
    ucb_grad,
)
from asynchpo.acquisition._namespace import (
    Namespace,
    cupy_namespace,
    get_namespace,
    gpu_available,
    numpy_namespace,
)
from asynchpo.acquisition._optimize import optimize_acquisition

__all__ = [
    "Namespace",
    "cupy_namespace",
    "get_namespace",
    "gpu_available",
    "log_ei",
    "log_ei_grad",
    "log_h",
    "log_qei",
    "log_qei_grad",
    "numpy_namespace",
    "optimize_acquisition",
    "rff_evaluate",
    "rff_evaluate_grad",
    "rff_sample",
    "ucb",
    "ucb_grad",
]
