"""Argument checks shared by the public entry points.

Every check raises before any trial runs, with a message that names the parameter and says
what was wrong with the value it was given.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_real(value: Any) -> bool:
    """True for ints and floats (NumPy's too), False for bools and everything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """True for ints (NumPy's too), False for bools, floats and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value: Any, *, allow_none: bool = False, minimum: int = 1) -> Any:
    """Return ``value`` as an int, or raise naming ``name``."""
    if value is None and allow_none:
        return None
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """Return ``value`` as a finite float > 0, or raise naming ``name``."""
    if value is None and allow_none:
        return None
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)
