"""Search spaces: what each hyperparameter may be, and the map to and from the unit cube.

Every parameter is one coordinate of the unit cube ``[0, 1]^d``. Continuous floats map
linearly (or in log space); discrete parameters (ints, floats with a ``step``, categoricals)
split ``[0, 1]`` into equal bins, one per value, and encode to the bin's centre, so a uniform
draw in the cube is a uniform draw over the values and ``decode(encode(x)) == x`` exactly.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from asynchpo._checks import is_integer, is_real

__all__ = ["Categorical", "Distribution", "Float", "Int", "Space"]

_SCALARS = (str, int, float, bool, type(None))


class Distribution(ABC):
    """One hyperparameter's domain and its coordinate of the unit cube."""

    @abstractmethod
    def encode(self, value: Any) -> float:
        """The unit-cube coordinate of ``value`` (assumed valid)."""

    @abstractmethod
    def decode(self, u: float) -> Any:
        """The value at unit-cube coordinate ``u`` (clipped into ``[0, 1]``)."""

    @abstractmethod
    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` normalized, or raise ``ValueError`` naming ``name``."""

    @abstractmethod
    def grid(self, n_points: int) -> list[Any]:
        """Up to ``n_points`` values spread over the domain (all values if discrete and fewer)."""

    @abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description; ``Distribution.from_spec`` reads it back."""

    @staticmethod
    def from_spec(spec: Mapping[str, Any]) -> Distribution:
        """Rebuild a distribution from :meth:`to_spec` output."""
        kind = spec.get("type")
        args = {k: v for k, v in spec.items() if k != "type"}
        if kind == "float":
            return Float(**args)
        if kind == "int":
            return Int(**args)
        if kind == "categorical":
            return Categorical(**args)
        raise ValueError(f"unknown distribution type {kind!r} in spec {dict(spec)!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self.to_spec()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


def _check_bounds(kind: str, low: Any, high: Any, check: Any) -> None:
    for label, value in (("low", low), ("high", high)):
        if not check(value) or (is_real(value) and not math.isfinite(value)):
            want = "an integer" if kind == "Int" else "a finite number"
            raise TypeError(f"{kind}: {label} must be {want}, got {value!r}")
    if low >= high:
        raise ValueError(f"{kind}: low must be < high, got low={low!r}, high={high!r}")


def _bin(u: float, n: int) -> int:
    """Index of the bin of ``u`` when ``[0, 1]`` is cut into ``n`` equal bins."""
    return min(max(math.floor(u * n), 0), n - 1)


class Float(Distribution):
    """A real-valued hyperparameter in ``[low, high]``.

    Args:
        low: Smallest value.
        high: Largest value (must be greater than ``low``).
        log: Search in log space (``low`` must then be > 0).
        step: If given, only ``low + k * step`` values are taken; ``high - low`` must be a
            multiple of it. Not combinable with ``log``.

    Example:
        >>> round(Float(1e-5, 1e-1, log=True).decode(0.5), 12)
        0.001
    """

    def __init__(self, low: float, high: float, log: bool = False, step: float | None = None):
        _check_bounds("Float", low, high, is_real)
        if not isinstance(log, bool):
            raise TypeError(f"Float: log must be True or False, got {log!r}")
        if log and low <= 0:
            raise ValueError(f"Float: log=True needs low > 0, got low={low!r}")
        self.low, self.high, self.log = float(low), float(high), log
        self.step: float | None = None
        self._n = 0
        if step is not None:
            if log:
                raise ValueError("Float: step cannot be combined with log=True")
            if not is_real(step) or not math.isfinite(step) or step <= 0:
                raise ValueError(f"Float: step must be a finite number > 0, got {step!r}")
            n = (self.high - self.low) / step
            if abs(n - round(n)) > 1e-9 * max(1.0, n):
                raise ValueError(
                    f"Float: high - low ({self.high - self.low!r}) must be a multiple of "
                    f"step ({step!r})"
                )
            self.step, self._n = float(step), round(n) + 1
        if log:
            self._a, self._b = math.log(self.low), math.log(self.high)

    def _value(self, k: int) -> float:
        assert self.step is not None
        return min(self.low + k * self.step, self.high)

    def encode(self, value: Any) -> float:
        if self.step is not None:
            return float((round((value - self.low) / self.step) + 0.5) / self._n)
        if self.log:
            return (math.log(value) - self._a) / (self._b - self._a)
        return float((value - self.low) / (self.high - self.low))

    def decode(self, u: float) -> float:
        if self.step is not None:
            return self._value(_bin(u, self._n))
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            x = math.exp(self._a + u * (self._b - self._a))
        else:
            x = self.low + u * (self.high - self.low)
        return min(max(x, self.low), self.high)

    def check(self, name: str, value: Any) -> float:
        if not is_real(value) or not math.isfinite(value):
            raise ValueError(f"parameter {name!r} must be a finite number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(
                f"parameter {name!r}={value!r} is outside [{self.low!r}, {self.high!r}]"
            )
        if self.step is not None:
            k = (value - self.low) / self.step
            if abs(k - round(k)) > 1e-9 * max(1.0, abs(k)):
                raise ValueError(
                    f"parameter {name!r}={value!r} is not on the grid low + k * {self.step!r}"
                )
            return self._value(round(k))
        return float(value)

    def grid(self, n_points: int) -> list[Any]:
        if self.step is not None and self._n <= n_points:
            return [self._value(k) for k in range(self._n)]
        us = np.linspace(0.0, 1.0, n_points) if n_points > 1 else np.array([0.5])
        return list(dict.fromkeys(self.decode(u) for u in us))

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "float",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
        }


class Int(Distribution):
    """An integer hyperparameter in ``[low, high]`` (both included).

    Args:
        low: Smallest value.
        high: Largest value (must be greater than ``low``).
        log: Search in log space (``low`` must then be >= 1, and ``step`` 1).
        step: Only ``low + k * step`` values are taken.

    Example:
        >>> Int(1, 8).decode(0.99)
        8
    """

    def __init__(self, low: int, high: int, log: bool = False, step: int = 1):
        _check_bounds("Int", low, high, is_integer)
        if not isinstance(log, bool):
            raise TypeError(f"Int: log must be True or False, got {log!r}")
        if not is_integer(step) or step < 1:
            raise ValueError(f"Int: step must be an integer >= 1, got {step!r}")
        if log and low < 1:
            raise ValueError(f"Int: log=True needs low >= 1, got low={low!r}")
        if log and step != 1:
            raise ValueError(f"Int: step must be 1 with log=True, got step={step!r}")
        if (high - low) % step:
            raise ValueError(f"Int: high - low ({high - low}) must be a multiple of step ({step})")
        self.low, self.high, self.log, self.step = int(low), int(high), log, int(step)
        self._n = (self.high - self.low) // self.step + 1
        if log:
            self._a, self._b = math.log(self.low - 0.5), math.log(self.high + 0.5)

    def encode(self, value: Any) -> float:
        if self.log:
            return (math.log(value) - self._a) / (self._b - self._a)
        return float(((value - self.low) // self.step + 0.5) / self._n)

    def decode(self, u: float) -> int:
        if self.log:
            u = min(max(float(u), 0.0), 1.0)
            x = round(math.exp(self._a + u * (self._b - self._a)))
            return min(max(x, self.low), self.high)
        return self.low + _bin(u, self._n) * self.step

    def check(self, name: str, value: Any) -> int:
        if not is_integer(value):
            if is_real(value) and float(value).is_integer():
                value = int(value)
            else:
                raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"parameter {name!r}={value!r} is outside [{self.low}, {self.high}]")
        if (value - self.low) % self.step:
            raise ValueError(
                f"parameter {name!r}={value!r} is not on the grid low + k * {self.step}"
            )
        return int(value)

    def grid(self, n_points: int) -> list[Any]:
        if self._n <= n_points:
            return [self.low + k * self.step for k in range(self._n)]
        us = np.linspace(0.0, 1.0, n_points) if n_points > 1 else np.array([0.5])
        return list(dict.fromkeys(self.decode(u) for u in us))

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "int",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
        }


class Categorical(Distribution):
    """A choice among a list of JSON scalars (str, int, float, bool or None).

    Example:
        >>> Categorical(["relu", "gelu", "tanh"]).decode(0.5)
        'gelu'
    """

    def __init__(self, choices: Sequence[Any]):
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise TypeError(f"Categorical: choices must be a list, got {choices!r}")
        if len(choices) == 0:
            raise ValueError("Categorical: choices must not be empty")
        keys = []
        for c in choices:
            if not isinstance(c, _SCALARS) or (isinstance(c, float) and not math.isfinite(c)):
                raise TypeError(
                    f"Categorical: each choice must be a str, int, finite float, bool or None, "
                    f"got {c!r}"
                )
            keys.append(self._key(c))
        if len(set(keys)) != len(keys):
            raise ValueError(f"Categorical: choices must be distinct, got {list(choices)!r}")
        self.choices = list(choices)
        self._index = {k: i for i, k in enumerate(keys)}

    @staticmethod
    def _key(value: Any) -> tuple[str, Any]:
        # True == 1 == 1.0 in Python; keep them apart, since JSON does.
        return (type(value).__name__, value)

    def index(self, value: Any) -> int:
        """The position of ``value`` among the choices (``KeyError`` if absent)."""
        return self._index[self._key(value)]

    def encode(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def decode(self, u: float) -> Any:
        return self.choices[_bin(u, len(self.choices))]

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if self._key(value) not in self._index:
            raise ValueError(f"parameter {name!r}={value!r} is not one of {self.choices!r}")
        return value

    def grid(self, n_points: int) -> list[Any]:
        return list(self.choices)

    def to_spec(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}


class Space(Mapping[str, Distribution]):
    """A named set of hyperparameters; one unit-cube coordinate each, in the order given.

    Args:
        params: Optionally a mapping of names to distributions, given positionally.
        **kwargs: More names and distributions.

    Example:
        >>> space = Space(lr=Float(1e-5, 1e-1, log=True), depth=Int(1, 8))
        >>> space.decode(space.encode({"lr": 1e-3, "depth": 4}))["depth"]
        4
    """

    def __init__(self, params: Mapping[str, Distribution] | None = None, /, **kwargs: Distribution):
        items: dict[str, Distribution] = {}
        if params is not None:
            if not isinstance(params, Mapping):
                raise TypeError(f"Space: params must be a mapping of names, got {params!r}")
            items.update(params)
        for name, dist in kwargs.items():
            if name in items:
                raise ValueError(f"Space: duplicate parameter name {name!r}")
            items[name] = dist
        if not items:
            raise ValueError("Space: give at least one parameter")
        for name, dist in items.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"Space: parameter names must be non-empty strings, got {name!r}")
            if not isinstance(dist, Distribution):
                raise TypeError(
                    f"Space: parameter {name!r} must be Float, Int or Categorical, got {dist!r}"
                )
        self._params = items
        self.names: tuple[str, ...] = tuple(items)

    def __getitem__(self, name: str) -> Distribution:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self.to_spec()))

    def __repr__(self) -> str:
        return "Space(" + ", ".join(f"{n}={d!r}" for n, d in self._params.items()) + ")"

    @property
    def dim(self) -> int:
        """The number of unit-cube coordinates, ``d``."""
        return len(self._params)

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``params`` normalized, or raise ``ValueError`` naming the bad parameter."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping of parameter names, got {params!r}")
        missing = [n for n in self.names if n not in params]
        extra = [n for n in params if n not in self._params]
        if missing:
            raise ValueError(f"params: missing parameter(s) {missing}")
        if extra:
            raise ValueError(
                f"params: unknown parameter(s) {extra}; the space has {list(self.names)}"
            )
        return {n: d.check(n, params[n]) for n, d in self._params.items()}

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Unit-cube coordinates of one valid parameter set, shape `d`."""
        return np.array([d.encode(params[n]) for n, d in self._params.items()], dtype=float)

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        """The parameter set at unit-cube point ``u`` of shape `d`."""
        return {n: d.decode(float(x)) for (n, d), x in zip(self._params.items(), u, strict=True)}

    def decode_many(self, U: np.ndarray) -> list[dict[str, Any]]:
        """The parameter sets at the rows of ``U``, shape `n x d`."""
        return [self.decode(row) for row in np.asarray(U)]

    def sample(self, rng: np.random.Generator, n: int = 1) -> list[dict[str, Any]]:
        """``n`` independent uniform draws over the space."""
        return self.decode_many(rng.random((n, self.dim)))

    def to_spec(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready description; :meth:`from_spec` reads it back."""
        return {n: d.to_spec() for n, d in self._params.items()}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Mapping[str, Any]]) -> Space:
        """Rebuild a space from :meth:`to_spec` output."""
        return cls({n: Distribution.from_spec(s) for n, s in spec.items()})
