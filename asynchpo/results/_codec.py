"""How values are held in the Dataset's variables, and read back exactly.

A variable is either numbers or text. Numbers: ``float64`` (NaN where a value is missing)
or ``int64``. Text: Python strings, either the values themselves (a categorical whose
choices are all strings) or, where ``attrs["encoding"] == "json"``, each value's JSON text
(``""`` where it is missing). JSON keeps what NumPy would lose: ``1`` apart from ``1.0``
and ``True``, ``None``, strings, and ints beyond ``int64``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from asynchpo._checks import short

#: The layout's number, in ``ds.attrs["asynchpo_format"]``; bumped when the layout changes.
FORMAT = 2

_INT64 = (-(2**63), 2**63 - 1)
_SCALARS = (str, int, float, bool, type(None))


class _Missing:
    """The mark of a value a trial or a report does not have."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def fits_int64(value: Any) -> bool:
    """Whether ``value`` is an int (not a bool) that ``int64`` holds."""
    return type(value) is int and _INT64[0] <= value <= _INT64[1]


def strings(values: Sequence[str]) -> np.ndarray:
    """An object array of Python strings, shape `n`."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _json(values: Sequence[Any]) -> tuple[np.ndarray, dict[str, Any]]:
    text = ["" if v is MISSING else json.dumps(v, allow_nan=False) for v in values]
    return strings(text), {"encoding": "json"}


def param_encoding(spec: Mapping[str, Any]) -> str:
    """How a parameter of distribution ``spec`` is held: ``"float"``, ``"int"``, ``"str"``
    or ``"json"``. It depends on the distribution only, never on the values sampled. A
    conditional parameter (``when``), missing from some trials, is held as floats (NaN
    where missing) or as JSON text (``""`` where missing)."""
    if spec.get("when"):
        plain = param_encoding({k: v for k, v in spec.items() if k != "when"})
        return "float" if plain == "float" else "json"
    kind = spec["type"]
    if kind == "float":
        return "float"
    if kind == "int":
        return "int" if fits_int64(spec["low"]) and fits_int64(spec["high"]) else "json"
    choices = spec["choices"]
    if all(type(c) is str for c in choices):
        return "str"
    if all(type(c) is float for c in choices):
        return "float"
    if all(fits_int64(c) for c in choices):
        return "int"
    return "json"


def encode_param(
    spec: Mapping[str, Any], values: Sequence[Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """One parameter's values (one per trial) as an array, with the variable's attributes:
    its role, its distribution's type, and the distribution's figures where they are
    numbers a file keeps (the whole space is in the Dataset's ``space`` attribute)."""
    attrs: dict[str, Any] = {"role": "param", "type": spec["type"]}
    if spec["type"] == "categorical":
        attrs["choices"] = json.dumps(list(spec["choices"]))
    else:
        for key in ("low", "high", "step"):
            v = spec.get(key)
            if type(v) is float or fits_int64(v):
                attrs[key] = v
        attrs["log"] = int(bool(spec["log"]))
    if spec.get("when"):
        attrs["when"] = json.dumps(spec["when"])
    how = param_encoding(spec)
    if how == "json":
        array, extra = _json(values)
        return array, {**attrs, **extra}
    if how == "str":
        return strings(values), attrs
    if how == "float":
        return np.array([math.nan if v is MISSING else v for v in values], dtype=float), attrs
    return np.asarray(values, dtype=np.int64), attrs


def encode_metric(values: Sequence[Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """One metric's values (``MISSING`` where there is none) as an array: ``float64`` if
    every value is a float, JSON text otherwise; and its attributes."""
    if all(v is MISSING or type(v) is float for v in values):
        return np.array([math.nan if v is MISSING else v for v in values], dtype=float), {}
    return _json(values)


def encode_ints(values: Sequence[int]) -> tuple[np.ndarray, dict[str, Any]]:
    """Ints as ``int64`` where they all fit, as JSON text otherwise."""
    if all(fits_int64(v) for v in values):
        return np.array(values, dtype=np.int64), {}
    return _json(values)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON holds")


def _text(v: Any) -> Any:
    return v.decode("utf-8") if isinstance(v, bytes) else v


def decode(what: str, values: np.ndarray, attrs: Mapping[str, Any], max_chars: int) -> list[Any]:
    """The Python values an array holds, ``MISSING`` where it holds none.

    Args:
        what: The variable, for messages (``"ds['param_x']"``).
        values: Its values, shape `n`.
        attrs: Its attributes (``encoding``).
        max_chars: The longest text a value may be.

    Raises:
        ValueError: Something that is not a value this layout holds (inf, text that is not
            a JSON scalar or is longer than ``max_chars``), naming ``what`` and the row.
    """
    kind = values.dtype.kind
    if kind == "f":
        bad = np.flatnonzero(np.isinf(values))
        if len(bad):
            raise ValueError(f"{what}: row {bad[0]} is {values[bad[0]]}, not a finite number")
        return [MISSING if math.isnan(v) else v for v in values.tolist()]
    if kind in "iu":
        return [int(v) for v in values.tolist()]
    if kind == "b":
        return [bool(v) for v in values.tolist()]
    if kind not in "OUS":
        raise ValueError(f"{what}: dtype {values.dtype} is neither numbers nor text")
    json_text = attrs.get("encoding") == "json"
    limit = 12 * max_chars + 2 if json_text else max_chars  # JSON escapes a character in 12
    out: list[Any] = []
    for row, v in enumerate(values.tolist()):
        v = _text(v)
        if not isinstance(v, str):
            raise ValueError(f"{what}: row {row} is {short(v)}, not text")
        if len(v) > limit:
            raise ValueError(f"{what}: row {row} is {len(v)} characters, over {limit}")
        if not json_text:
            out.append(v)
            continue
        if v == "":
            out.append(MISSING)
            continue
        try:
            x = json.loads(v, parse_constant=_constant)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{what}: row {row} is not JSON ({short(v)}): {exc}") from None
        if not isinstance(x, _SCALARS) or (isinstance(x, str) and len(x) > max_chars):
            raise ValueError(
                f"{what}: row {row} is {short(x)}, not a number, string, bool or null "
                f"of at most {max_chars} characters"
            )
        out.append(x)
    return out


def numbers(values: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """A variable's values as floats (NaN for what is missing or not a number), shape `n`:
    what a plot draws."""
    if values.dtype.kind in "fiu":
        return values.astype(float)
    out = np.full(len(values), math.nan)
    if attrs.get("encoding") == "json":
        for i, v in enumerate(values.tolist()):
            try:
                x = json.loads(_text(v)) if v else None
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    out[i] = float(x)
            except (ValueError, OverflowError, RecursionError):
                continue
    return out
