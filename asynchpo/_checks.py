"""Argument checks shared by the public entry points.

Every check raises before any trial runs, with a message that names the parameter and says
what was wrong with the value it was given.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from asynchpo.trial import Trial

if TYPE_CHECKING:
    from asynchpo.events import StudyState

#: How much of a value an error message shows.
SHORT = 80


def cut(text: str, n: int = 200) -> str:
    """``text`` cut to ``n`` characters, ``...`` marking the cut."""
    return text if len(text) <= n else text[: n - 3] + "..."


def short(value: Any, limit: int = SHORT) -> str:
    """``repr(value)``, cut to about ``limit`` characters, for an error message; never raises
    (a value whose ``repr`` fails, or is too long to make, is named by its type)."""
    try:
        text = repr(value)
    except Exception:  # an int of thousands of digits, or a value's own __repr__ raising
        return f"<{type(value).__name__} that cannot be shown>"
    return cut(text, limit)


def finite_float(value: Any) -> float | None:
    """``value`` as a finite float, or None where it is none (too large, NaN, inf, or a
    value ``float`` refuses)."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


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


def trial_number(name: str, trial: Any) -> int:
    """The number of ``trial`` (a :class:`~asynchpo.Trial`, or an integer of any kind but
    bool), or ``ValueError`` naming ``name``."""
    if isinstance(trial, Trial):
        return trial.number
    if not is_integer(trial):
        raise ValueError(f"{name} must be a Trial or a trial number, got {short(trial)}")
    return int(trial)


def find_trial(state: StudyState, study: str, name: str, trial: Any) -> int:
    """The number of ``trial`` in ``state``, the fold of study ``study``; ``ValueError``
    naming ``name`` if the study has no such trial.

    A :class:`~asynchpo.Trial` must be a trial of this study: the same number, asked at the
    same time with the same parameters (a trial of another study is refused).
    """
    number = trial_number(name, trial)
    if not state.has_trial(number):
        raise ValueError(f"{name}: no trial {number} in study {study!r}")
    if isinstance(trial, Trial):
        ours = state.trial(number)
        if ours.asked_at != trial.asked_at or dict(ours.params) != dict(trial.params):
            raise ValueError(
                f"{name}: the trial given is not trial {number} of study {study!r} "
                "(it was asked at another time, or with other parameters): it belongs to "
                "another study"
            )
    return number
