"""Search spaces: what each hyperparameter may be, and the map to and from the unit cube.

Every parameter is one coordinate of the unit cube ``[0, 1]^d``. Continuous floats map
linearly (or in log space); discrete parameters (ints, floats with a ``step``, categoricals)
split ``[0, 1]`` into equal bins, one per value, and encode to the bin's centre, so a uniform
draw in the cube is a uniform draw over the values and ``decode(encode(x)) == x`` exactly.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence, Sized
from typing import Any

import numpy as np

from asynchpo._checks import finite_float, is_integer, is_real, short
from asynchpo._limits import (
    MAX_CHOICES,
    MAX_EXACT,
    MAX_INT,
    MAX_PARAMS,
    MAX_RECORD_BYTES,
    MAX_STRING,
)

__all__ = ["Categorical", "Distribution", "Float", "Int", "Space"]

_INT64 = MAX_INT


def plain_scalar(value: Any) -> Any:
    """``value`` as a plain JSON scalar (str, int, finite float, bool or None).

    NumPy scalars become Python ones, subclasses of str, int and float (``np.str_``,
    ``np.float64``, enums) their base type, so that a value is stored, compared and read
    back as what it is.

    Raises:
        TypeError: ``value`` is not such a scalar (the message shows it and its type).
        ValueError: It is a string longer than ``MAX_STRING``, a float that is not finite,
            or an int beyond 64 bits.
    """
    if value is None or type(value) is bool:
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        value = value.item()
        if type(value) is bool:
            return value
    if isinstance(value, str):
        text = str.__str__(value)
        if len(text) > MAX_STRING:
            raise ValueError(f"a string of {len(text)} characters, over {MAX_STRING}")
        return text
    if isinstance(value, int):  # bool was handled first
        number = int.__int__(value)
        if not -_INT64 <= number < _INT64:
            raise ValueError(f"an int beyond 64 bits ({short(number)})")
        return number
    if isinstance(value, float):
        x = float.__float__(value)
        if not math.isfinite(x):
            raise ValueError(f"a float that is not finite ({x!r})")
        return x
    raise TypeError(f"{short(value)} (a {type(value).__name__})")


class Distribution(ABC):
    """One hyperparameter's domain and its coordinate of the unit cube.

    Every distribution takes ``when``: the values of other parameters under which it is
    active, as ``{parent: value or [values]}`` (all parents must match, and be active
    themselves). An inactive parameter is absent from a trial's parameters; its
    unit-cube coordinate is fixed, so samplers see one point per distinct configuration.
    The parents are checked when the :class:`Space` is built.
    """

    #: ``{parent: [values]}`` under which the parameter is active; None: always active.
    when: dict[str, list[Any]] | None = None

    def _set_when(self, when: Mapping[str, Any] | None) -> None:
        kind = type(self).__name__
        if when is None:
            self.when = None
            return
        if not isinstance(when, Mapping):
            raise TypeError(
                f"{kind}: when must be a mapping of parameter names to values, got {short(when)}"
            )
        out: dict[str, list[Any]] = {}
        for parent, values in when.items():
            if not isinstance(parent, str) or not parent or len(parent) > MAX_STRING:
                raise ValueError(
                    f"{kind}: when: parameter names are non-empty strings, got {short(parent)}"
                )
            listed = values if isinstance(values, (list, tuple)) else [values]
            if len(listed) > MAX_CHOICES:
                raise ValueError(
                    f"{kind}: when[{parent!r}]: {len(listed)} values, over {MAX_CHOICES}"
                )
            try:
                out[str.__str__(parent)] = [plain_scalar(v) for v in listed]
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{kind}: when[{parent!r}]: each value must be a str, int, finite float, "
                    f"bool or None; got {exc}"
                ) from None
        self.when = out or None

    def _spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.when is not None:
            spec["when"] = {k: list(v) for k, v in self.when.items()}
        return spec

    def without_condition(self) -> Distribution:
        """The same domain, always active."""
        spec = self.to_spec()
        spec.pop("when", None)
        return Distribution.from_spec(spec)

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
        """Rebuild a distribution from :meth:`to_spec` output.

        The spec may come from a file: anything wrong with it raises ``ValueError`` (never
        another error), saying what.
        """
        if not isinstance(spec, Mapping):
            raise ValueError(f"a distribution is a JSON object, got {short(spec)}")
        kind = spec.get("type")
        known = _KINDS.get(kind) if isinstance(kind, str) else None
        if known is None:
            raise ValueError(f"unknown distribution type {short(kind)}")
        cls, required, optional = known
        extra = [k for k in spec if k != "type" and k not in required + optional]
        if extra:
            raise ValueError(f"{kind}: unknown field(s) {short(extra)}")
        missing = [k for k in required if k not in spec]
        if missing:
            raise ValueError(f"{kind}: missing field(s) {missing}")
        choices = spec.get("choices")
        if isinstance(choices, Sized) and len(choices) > MAX_CHOICES:  # before reading them
            raise ValueError(f"{kind}: {len(choices)} choices, over {MAX_CHOICES}")
        try:
            return cls(**{k: v for k, v in spec.items() if k != "type"})
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(str(exc)) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self.to_spec()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


def _float_bound(label: str, value: Any) -> float:
    if not is_real(value):
        raise TypeError(f"Float: {label} must be a finite number, got {short(value)}")
    x = finite_float(value)
    if x is None:
        raise ValueError(
            f"Float: {label} must be a finite number (within the range of a float), "
            f"got {short(value)}"
        )
    return x


def _int_bound(label: str, value: Any) -> int:
    if not is_integer(value):
        raise TypeError(f"Int: {label} must be an integer, got {short(value)}")
    if not -MAX_EXACT <= value <= MAX_EXACT:
        raise ValueError(f"Int: {label} must be an integer within +-2**53, got {short(value)}")
    return int(value)


def _ordered(kind: str, low: float, high: float) -> None:
    if low >= high:
        raise ValueError(f"{kind}: low must be < high, got low={low!r}, high={high!r}")


def _over(a: float, b: float, d: float) -> float:
    """``(a - b) / d`` for finite floats, without overflowing where ``a - b`` would."""
    diff = a - b
    if math.isfinite(diff):
        return diff / d
    return (a / 2 - b / 2) / (d / 2)


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

    def __init__(
        self,
        low: float,
        high: float,
        log: bool = False,
        step: float | None = None,
        *,
        when: Mapping[str, Any] | None = None,
    ):
        low, high = _float_bound("low", low), _float_bound("high", high)
        _ordered("Float", low, high)
        if not isinstance(log, bool):
            raise TypeError(f"Float: log must be True or False, got {short(log)}")
        if log and low <= 0:
            raise ValueError(f"Float: log=True needs low > 0, got low={low!r}")
        self.low, self.high, self.log = low, high, log
        # high - low overflows for bounds wider than the largest float: then every formula
        # goes through halves, or weighs the two bounds
        self._wide = not math.isfinite(high - low)
        self.step: float | None = None
        self._n = 0
        if step is not None:
            if log:
                raise ValueError("Float: step cannot be combined with log=True")
            size = finite_float(step) if is_real(step) else None
            if size is None or size <= 0:
                raise ValueError(f"Float: step must be a finite number > 0, got {short(step)}")
            n = _over(high, low, size)
            if not n < MAX_EXACT:
                raise ValueError(f"Float: step {size!r} makes more than 2**53 values")
            if abs(n - round(n)) > 1e-9 * max(1.0, n):
                raise ValueError(
                    f"Float: high - low ({high - low!r}) must be a multiple of step ({size!r})"
                )
            self.step, self._n = size, round(n) + 1
        if log:
            self._a, self._b = math.log(self.low), math.log(self.high)
        self._set_when(when)

    def _value(self, k: int) -> float:
        assert self.step is not None
        if self._wide:
            return min(2 * (self.low / 2 + k * (self.step / 2)), self.high)
        return min(self.low + k * self.step, self.high)

    def encode(self, value: Any) -> float:
        if self.step is not None:
            return float((round(_over(value, self.low, self.step)) + 0.5) / self._n)
        if self.log:
            return (math.log(value) - self._a) / (self._b - self._a)
        if self._wide:
            return float((value / 2 - self.low / 2) / (self.high / 2 - self.low / 2))
        return float((value - self.low) / (self.high - self.low))

    def decode(self, u: float) -> float:
        if self.step is not None:
            return self._value(_bin(u, self._n))
        u = min(max(float(u), 0.0), 1.0)
        if u in (0.0, 1.0):  # the bounds themselves, whatever exp and log round to
            return self.high if u else self.low
        if self.log:
            try:
                x = math.exp(self._a + u * (self._b - self._a))
            except OverflowError:  # rounding past the largest float, near u = 1
                x = self.high
        elif self._wide:
            x = self.low * (1.0 - u) + self.high * u
        else:
            x = self.low + u * (self.high - self.low)
        return min(max(x, self.low), self.high)

    def check(self, name: str, value: Any) -> float:
        x = finite_float(value) if is_real(value) else None
        if x is None:
            raise ValueError(f"parameter {name!r} must be a finite number, got {short(value)}")
        value = x
        if not self.low <= value <= self.high:
            raise ValueError(
                f"parameter {name!r}={value!r} is outside [{self.low!r}, {self.high!r}]"
            )
        if self.step is not None:
            k = _over(value, self.low, self.step)
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
        return self._spec(
            {
                "type": "float",
                "low": self.low,
                "high": self.high,
                "log": self.log,
                "step": self.step,
            }
        )


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

    def __init__(
        self,
        low: int,
        high: int,
        log: bool = False,
        step: int = 1,
        *,
        when: Mapping[str, Any] | None = None,
    ):
        low, high = _int_bound("low", low), _int_bound("high", high)
        _ordered("Int", low, high)
        if not isinstance(log, bool):
            raise TypeError(f"Int: log must be True or False, got {short(log)}")
        if not is_integer(step) or step < 1:
            raise ValueError(f"Int: step must be an integer >= 1, got {short(step)}")
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
        self._set_when(when)

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
            x = finite_float(value) if is_real(value) else None
            if x is None or not x.is_integer():
                raise ValueError(f"parameter {name!r} must be an integer, got {short(value)}")
            value = int(x)
        if not self.low <= value <= self.high:
            raise ValueError(
                f"parameter {name!r}={short(value)} is outside [{self.low}, {self.high}]"
            )
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
        return self._spec(
            {"type": "int", "low": self.low, "high": self.high, "log": self.log, "step": self.step}
        )


class Categorical(Distribution):
    """A choice among a list of JSON scalars (str, int, float, bool or None).

    Choices are kept as plain JSON values (NumPy scalars and subclasses of str, int and
    float become the plain type), so that they are stored and read back as they are; ``1``,
    ``1.0`` and ``True`` are three distinct choices, as they are in JSON. A value is matched
    to a choice the same way.

    Example:
        >>> Categorical(["relu", "gelu", "tanh"]).decode(0.5)
        'gelu'
    """

    def __init__(
        self, choices: Sequence[Any] | np.ndarray, *, when: Mapping[str, Any] | None = None
    ):
        if isinstance(choices, np.ndarray) and choices.ndim == 1:
            choices = choices.tolist()
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise TypeError(f"Categorical: choices must be a list, got {short(choices)}")
        if len(choices) == 0:
            raise ValueError("Categorical: choices must not be empty")
        if len(choices) > MAX_CHOICES:
            raise ValueError(f"Categorical: {len(choices)} choices, over {MAX_CHOICES}")
        plain: list[Any] = []
        size = 0
        self._index: dict[tuple[str, Any], int] = {}
        for i, c in enumerate(choices):
            try:
                value = plain_scalar(c)
            except (TypeError, ValueError) as exc:
                raise type(exc)(
                    f"Categorical: each choice must be a str, int, finite float, bool or None; "
                    f"choice {i} is {exc}"
                ) from None
            key = self._key(value)
            if key in self._index:
                raise ValueError(
                    f"Categorical: choices must be distinct; choice {i} ({short(c)}) is "
                    f"choice {self._index[key]} again"
                )
            self._index[key] = i
            plain.append(value)
            size += len(value) if isinstance(value, str) else 1
            if size > MAX_RECORD_BYTES:  # no record could hold them: stop reading them
                raise ValueError(
                    f"Categorical: the choices take more than the {MAX_RECORD_BYTES} bytes "
                    "a study's record holds"
                )
        self.choices = plain
        self._set_when(when)

    @staticmethod
    def _key(value: Any) -> tuple[str, Any]:
        # True == 1 == 1.0 in Python; keep them apart, since JSON does.
        return (type(value).__name__, value)

    def index(self, value: Any) -> int:
        """The position of ``value`` among the choices (``KeyError`` if absent)."""
        try:
            key = self._key(plain_scalar(value))
        except (TypeError, ValueError):
            raise KeyError(value) from None
        return self._index[key]

    def encode(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def decode(self, u: float) -> Any:
        return self.choices[_bin(u, len(self.choices))]

    def check(self, name: str, value: Any) -> Any:
        try:
            return self.choices[self.index(value)]
        except KeyError:
            raise ValueError(
                f"parameter {name!r}={short(value)} is not one of {short(self.choices)}"
            ) from None

    def grid(self, n_points: int) -> list[Any]:
        return list(self.choices)

    def to_spec(self) -> dict[str, Any]:
        return self._spec({"type": "categorical", "choices": list(self.choices)})


#: Each kind of distribution in a spec: its class, its required and its optional fields.
_KINDS: dict[str, tuple[type[Distribution], tuple[str, ...], tuple[str, ...]]] = {
    "float": (Float, ("low", "high"), ("log", "step", "when")),
    "int": (Int, ("low", "high"), ("log", "step", "when")),
    "categorical": (Categorical, ("choices",), ("when",)),
}


def _discrete(dist: Distribution) -> bool:
    return not (isinstance(dist, Float) and dist.step is None)


def _code(dist: Distribution, value: Any) -> int:
    """The index of a (valid) value of a discrete distribution: what a condition matches."""
    if isinstance(dist, Categorical):
        return dist.index(value)
    if isinstance(dist, Int):
        return int(value) if dist.log else (int(value) - dist.low) // dist.step
    assert isinstance(dist, Float) and dist.step is not None
    return round(_over(value, dist.low, dist.step))


def _codes(dist: Distribution, u: np.ndarray) -> np.ndarray:
    """:func:`_code` of the values at unit-cube coordinates ``u``, vectorized."""
    u = np.clip(u, 0.0, 1.0)
    if isinstance(dist, Int) and dist.log:
        x = np.round(np.exp(dist._a + u * (dist._b - dist._a)))
        return np.clip(x, dist.low, dist.high).astype(np.int64)
    n = len(dist.choices) if isinstance(dist, Categorical) else dist._n  # type: ignore[attr-defined]
    return np.asarray(np.minimum(np.floor(u * n), n - 1), dtype=np.int64)


#: A parameter's conditions: (parent, the codes of the values it is active under).
_Conditions = list[tuple[str, frozenset[int]]]


def _read_conditions(items: Mapping[str, Distribution]) -> tuple[dict[str, _Conditions], list[str]]:
    """Each conditional parameter's conditions, checked, and every parameter in an order
    where parents come before their children."""
    conditions: dict[str, _Conditions] = {}
    for name, dist in items.items():
        if dist.when is None:
            continue
        conds: _Conditions = []
        for parent, values in dist.when.items():
            where = f"Space: parameter {name!r}: when"
            if parent == name:
                raise ValueError(f"{where}: a parameter cannot depend on itself")
            if parent not in items:
                raise ValueError(
                    f"{where}: unknown parameter {parent!r}; the space has {short(list(items))}"
                )
            pdist = items[parent]
            if not _discrete(pdist):
                raise ValueError(
                    f"{where}: {parent!r} takes continuous values; a parent must be a "
                    "Categorical, an Int or a Float with a step"
                )
            if not values:
                raise ValueError(f"{where}: no value given for {parent!r}")
            codes = set()
            for v in values:
                try:
                    codes.add(_code(pdist, pdist.check(parent, v)))
                except (ValueError, TypeError, KeyError):
                    raise ValueError(f"{where}: {parent!r} never takes {short(v)}") from None
            conds.append((parent, frozenset(codes)))
        conditions[name] = conds
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise ValueError(
                "Space: the conditions make a cycle: " + " -> ".join(repr(n) for n in cycle)
            )
        state[name] = 1
        for parent, _ in conditions.get(name, []):
            visit(parent, [*path, name])
        state[name] = 2
        order.append(name)

    for name in items:
        visit(name, [])
    return conditions, order


class Space(Mapping[str, Distribution]):
    """A named set of hyperparameters; one unit-cube coordinate each, in the order given.

    A parameter given ``when={parent: values}`` is active only while its parents take
    those values (and are active themselves); it is then absent from the parameters of the
    trials where it is not, and its coordinate is held at one value there. The conditions
    are checked here: an unknown parent, a value the parent never takes, a parent with
    continuous values, or a cycle raises ``ValueError`` naming the parameter.

    Args:
        params: Optionally a mapping of names to distributions, given positionally.
        **kwargs: More names and distributions.

    Example:
        >>> space = Space(lr=Float(1e-5, 1e-1, log=True), depth=Int(1, 8))
        >>> space.decode(space.encode({"lr": 1e-3, "depth": 4}))["depth"]
        4
        >>> opt = Space(opt=Categorical(["sgd", "adam"]), momentum=Float(0, 1, when={"opt": "sgd"}))
        >>> sorted(opt.decode([0.9, 0.3]))
        ['opt']
    """

    def __init__(self, params: Mapping[str, Distribution] | None = None, /, **kwargs: Distribution):
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"Space: params must be a mapping of names, got {short(params)}")
        given = (len(params) if params is not None else 0) + len(kwargs)
        if given > MAX_PARAMS:  # before reading them
            raise ValueError(f"Space: {given} parameters, over {MAX_PARAMS}")
        items: dict[str, Distribution] = {}
        for name, dist in [*(params.items() if params is not None else ()), *kwargs.items()]:
            if not isinstance(name, str) or not name:
                raise TypeError(
                    f"Space: parameter names must be non-empty strings, got {short(name)}"
                )
            name = str.__str__(name)
            if len(name) > MAX_STRING:
                raise ValueError(
                    f"Space: parameter name {short(name)} has {len(name)} characters, "
                    f"over {MAX_STRING}"
                )
            if name in items:
                raise ValueError(f"Space: duplicate parameter name {name!r}")
            if not isinstance(dist, Distribution):
                raise TypeError(
                    f"Space: parameter {name!r} must be Float, Int or Categorical, "
                    f"got {short(dist)}"
                )
            items[name] = dist
        if not items:
            raise ValueError("Space: give at least one parameter")
        self._params = items
        self.names: tuple[str, ...] = tuple(items)
        self._conditions, self._order = _read_conditions(items)
        # an inactive coordinate's value: the encoding of the middle value of its domain
        self._fill = np.array([d.encode(d.decode(0.5)) for d in items.values()], dtype=float)
        self._column = {n: j for j, n in enumerate(self.names)}
        size = len(json.dumps(self.to_spec(), separators=(",", ":")))
        if size > MAX_RECORD_BYTES:
            raise ValueError(
                f"Space: its description takes {size} bytes of JSON, more than the "
                f"{MAX_RECORD_BYTES} a study's record holds"
            )

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

    @property
    def conditional(self) -> bool:
        """Whether some parameter is active only under conditions (``when``)."""
        return bool(self._conditions)

    def _holds(self, name: str, params: Mapping[str, Any], active: set[str]) -> bool:
        """Whether ``name``'s conditions hold, its parents' activity in ``active``."""
        for parent, codes in self._conditions.get(name, ()):
            if parent not in active:
                return False
            try:
                if _code(self._params[parent], params[parent]) not in codes:
                    return False
            except (KeyError, TypeError, ValueError, ArithmeticError):
                return False
        return True

    def active(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``params`` (valid values, all parameters or at least the active
        ones) that are active there, in the space's order."""
        on: set[str] = set()
        for name in self._order:
            if name in params and self._holds(name, params, on):
                on.add(name)
        return {n: params[n] for n in self.names if n in on}

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``params`` normalized, or raise ``ValueError`` naming the bad parameter.

        ``params`` holds every active parameter and no inactive one. It may come from a
        file: whatever is wrong with it, the error is a ``ValueError``.
        """
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a mapping of parameter names, got {short(params)}")
        extra = [n for n in params if not isinstance(n, str) or n not in self._params]
        if extra:
            raise ValueError(
                f"params: unknown parameter(s) {short(extra)}; the space has "
                f"{short(list(self.names))}"
            )
        out: dict[str, Any] = {}
        missing: list[str] = []
        unknown: set[str] = set()  # missing, or below a parameter that is
        for n in self._order:
            if not self._holds(n, out, set(out)):
                # a parent missing (or unknown) is the error to report; ``n`` is unknown then
                if any(p in unknown for p, _ in self._conditions[n]):
                    unknown.add(n)
                elif n in params:
                    conds = ", ".join(
                        f"{p} in {short(self._params[n].when[p])}"  # type: ignore[index]
                        for p, _ in self._conditions[n]
                    )
                    now = ", ".join(
                        f"{p}={short(out[p])}" if p in out else f"{p} inactive"
                        for p, _ in self._conditions[n]
                    )
                    raise ValueError(
                        f"params: parameter {n!r} is inactive: it needs {conds}, and here {now}"
                    )
                continue
            if n not in params:
                missing.append(n)
                unknown.add(n)
                continue
            try:
                out[n] = self._params[n].check(n, params[n])
            except (TypeError, KeyError, ArithmeticError) as exc:  # a value's own methods raised
                raise ValueError(f"parameter {n!r}: {type(exc).__name__}: {exc}") from None
        if missing:
            names = sorted(missing, key=self._column.__getitem__)
            raise ValueError(f"params: missing parameter(s) {short(names)}")
        return {n: out[n] for n in self.names if n in out}

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Unit-cube coordinates of one valid parameter set, shape `d` (inactive
        parameters at their fixed coordinate)."""
        if not self._conditions:
            return np.array([d.encode(params[n]) for n, d in self._params.items()], dtype=float)
        on = self.active(params)
        return np.array(
            [
                d.encode(on[n]) if n in on else self._fill[j]
                for j, (n, d) in enumerate(self.items())
            ],
            dtype=float,
        )

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        """The parameter set at unit-cube point ``u`` of shape `d` (active parameters only)."""
        out = {n: d.decode(float(x)) for (n, d), x in zip(self._params.items(), u, strict=True)}
        return self.active(out) if self._conditions else out

    def decode_many(self, U: np.ndarray) -> list[dict[str, Any]]:
        """The parameter sets at the rows of ``U``, shape `n x d`."""
        return [self.decode(row) for row in np.asarray(U)]

    def active_mask(self, U: np.ndarray) -> np.ndarray:
        """Which coordinates of the points ``U`` (`n x d`) are active, `n x d` booleans."""
        U = np.asarray(U, dtype=float).reshape(-1, self.dim)
        mask = np.ones(U.shape, dtype=bool)
        for name in self._order:
            j = self._column[name]
            for parent, codes in self._conditions.get(name, ()):
                k = self._column[parent]
                hit = np.isin(_codes(self._params[parent], U[:, k]), list(codes))
                mask[:, j] &= mask[:, k] & hit
        return mask

    def canonical(self, U: np.ndarray) -> np.ndarray:
        """The points ``U`` (`n x d`) with every inactive coordinate at its fixed value:
        two points that decode to the same parameters then agree. A copy."""
        U = np.array(U, dtype=float)
        if not self._conditions:
            return U
        fill = np.broadcast_to(self._fill, U.shape)
        return np.where(self.active_mask(U).reshape(U.shape), U, fill)

    def sample(self, rng: np.random.Generator, n: int = 1) -> list[dict[str, Any]]:
        """``n`` independent uniform draws over the space."""
        return self.decode_many(rng.random((n, self.dim)))

    def to_spec(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready description; :meth:`from_spec` reads it back."""
        return {n: d.to_spec() for n, d in self._params.items()}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Mapping[str, Any]]) -> Space:
        """Rebuild a space from :meth:`to_spec` output.

        The spec may come from a file: anything wrong with it (a type, an unknown kind, a
        bound, a limit) raises ``ValueError`` naming the parameter, never another error.
        """
        if not isinstance(spec, Mapping):
            raise ValueError(f"space: a space is a JSON object, got {short(spec)}")
        if len(spec) > MAX_PARAMS:
            raise ValueError(f"space: {len(spec)} parameters, over {MAX_PARAMS}")
        dists: dict[str, Distribution] = {}
        for name, dist in spec.items():
            if not isinstance(name, str) or not name or len(name) > MAX_STRING:
                raise ValueError(
                    f"space: parameter names are non-empty strings of at most {MAX_STRING} "
                    f"characters, got {short(name)}"
                )
            try:
                dists[name] = Distribution.from_spec(dist)
            except ValueError as exc:
                raise ValueError(f"space: parameter {name!r}: {exc}") from None
        try:
            return cls(dists)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"space: {exc}") from None
