"""A Dataset read back into trials, every value checked, before anything is written.

Sizes and dtypes are checked first, from the Dataset's dimensions and variables alone, so a
file opened lazily (``xr.open_dataset``) that declares more than the limits is refused
before any of its values is read. Then each trial: its number, state, failure, attempts,
times, parameters (``Space.check``), metrics and reports. Every error is a ``ValueError``
that starts with ``ds`` and names the trial, the variable or the attribute at fault.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from asynchpo._checks import is_integer, is_real, short
from asynchpo._limits import (
    MAX_ATTEMPTS,
    MAX_CHOICES,
    MAX_PARAMS,
    MAX_RECORD_BYTES,
    MAX_STRING,
    MAX_TEXT,
)
from asynchpo.results._codec import FORMAT, MISSING, decode
from asynchpo.space import Space
from asynchpo.trial import Failure, Report, Trial, TrialState

if TYPE_CHECKING:
    import xarray as xr

#: The most trials a Dataset may hold to be imported.
MAX_TRIALS = 1_000_000
#: The most reports (all trials together) a Dataset may hold to be imported.
MAX_REPORTS = 10_000_000
#: Format 1 kept curves as `trial x step` grids: they are read this many cells at a time.
_CELLS = 1 << 22

_STATES = [s.value for s in TrialState]
_FAILURES = [f.value for f in Failure]
_DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Contents:
    """What a valid Dataset holds: the study's definition and its trials, in order."""

    name: str | None
    objective: str
    direction: str
    space: Space
    trials: list[Trial]


def read(ds: xr.Dataset) -> Contents:
    """The study a Dataset made by ``to_xarray`` (this format or an earlier one) holds.

    Raises:
        ValueError: Anything in ``ds`` that is not what that layout holds, or more of it
            than the limits (``MAX_TRIALS``, ``MAX_REPORTS`` here, and those of
            ``asynchpo._limits``).
    """
    fmt, name, objective, direction, space = _header(ds)
    n = _size(ds, "trial", MAX_TRIALS)
    for kind, what in (("metric", "metrics"), ("curve", "learning-curve metrics")):
        if fmt == 1:
            count = sum(ds.variables[v].attrs.get("role") == kind for v in ds.data_vars)
        else:
            count = sum(str(v).startswith(f"{kind}_") for v in ds.data_vars)
        if count > MAX_PARAMS:
            raise ValueError(f"ds: {count} {what}; the most a study holds is {MAX_PARAMS}")
    if fmt > 1 and "report" in ds.sizes:
        _size(ds, "report", MAX_REPORTS)
    rows = _TrialColumns(ds, n)
    if fmt == 1:
        params = [_old_param(ds, p, space[p].to_spec()) for p in space.names]
        values = _old_metrics(ds)
        reports = _old_reports(ds, n, rows.asked)
    else:
        stray = sorted(
            str(v)[len("param_") :]
            for v in ds.data_vars
            if str(v).startswith("param_") and str(v)[len("param_") :] not in space
        )
        if stray:  # a parameter the space does not hold: its values would be dropped
            names = ", ".join(short(p, 40) for p in stray[:5])
            raise ValueError(
                f"ds: parameters {names} are not in the 'space' attribute "
                f"({len(space)} parameters); the Dataset does not hold one study"
            )
        params = [_column(ds, f"param_{p}", "trial", "fiuOUS", MAX_STRING) for p in space.names]
        values = {
            str(v)[len("metric_") :]: _column(ds, str(v), "trial", "fOUS", MAX_STRING)
            for v in ds.data_vars
            if str(v).startswith("metric_")
        }
        reports = _reports(ds, n)
    trials = []
    for i in range(n):
        try:
            given = {p: col[i] for p, col in zip(space.names, params, strict=True)}
            checked = space.check({p: v for p, v in given.items() if v is not MISSING})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ds: trial {i}: {exc}") from None
        metrics = _values(i, values, rows.state[i], objective)
        trials.append(rows.trial(i, checked, metrics, reports[i], objective))
    return Contents(name, objective, direction, space, trials)


def _header(ds: xr.Dataset) -> tuple[int, str | None, str, str, Space]:
    attrs = ds.attrs
    for key in ("space", "objective", "direction", "asynchpo_format"):
        if key not in attrs:
            raise ValueError(f"ds: no {key!r} attribute; not a Dataset from Study.to_xarray()")
    fmt = attrs["asynchpo_format"]
    if isinstance(fmt, np.ndarray) and fmt.size == 1:
        fmt = fmt.reshape(()).item()
    if not is_integer(fmt) or fmt < 1:
        raise ValueError(f"ds: asynchpo_format is {short(fmt)}, not a format number")
    if fmt > FORMAT:
        raise ValueError(f"ds: made by a newer asynchpo (format {fmt}); upgrade")
    objective = _text_attr(attrs, "objective", MAX_STRING)
    direction = _text_attr(attrs, "direction", MAX_STRING)
    if direction not in _DIRECTIONS:
        raise ValueError(f"ds: direction is {short(direction)}, not 'minimize' or 'maximize'")
    name = _text_attr(attrs, "name", MAX_STRING) if "name" in attrs else None
    text = _text_attr(attrs, "space", MAX_RECORD_BYTES)
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"ds: the 'space' attribute is not JSON: {exc}") from None
    return int(fmt), name, objective, direction, _space(spec)


def _text_attr(attrs: Mapping[Any, Any], key: str, limit: int) -> str:
    v = attrs[key]
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str) or not v or len(v) > limit:
        raise ValueError(
            f"ds: the {key!r} attribute is {short(v)}, not a text of 1 to {limit} characters"
        )
    return v


def _space(spec: Any) -> Space:
    if not isinstance(spec, dict) or len(spec) > MAX_PARAMS:
        raise ValueError(
            f"ds: the 'space' attribute is not a space of at most {MAX_PARAMS} parameters"
        )
    for p, d in spec.items():
        if len(p) > MAX_STRING:
            raise ValueError(f"ds: a parameter name is over {MAX_STRING} characters")
        choices = d.get("choices") if isinstance(d, dict) else None
        if isinstance(choices, list) and len(choices) > MAX_CHOICES:
            raise ValueError(f"ds: parameter {short(p)} has over {MAX_CHOICES} choices")
    try:
        return Space.from_spec(spec)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"ds: the 'space' attribute is not a space: {exc}") from None


def _size(ds: xr.Dataset, dim: str, limit: int) -> int:
    if dim not in ds.sizes:
        if dim == "trial":
            raise ValueError("ds: no 'trial' dimension; not a Dataset from Study.to_xarray()")
        return 0
    size = int(ds.sizes[dim])
    if size > limit:
        raise ValueError(f"ds: {size} along {dim!r}; the most an import takes is {limit}")
    return size


def _array(ds: xr.Dataset, var: str, dims: tuple[str, ...], kinds: str) -> np.ndarray:
    """A variable's values, once its dims and dtype are what they must be."""
    if var not in ds.variables:
        raise ValueError(f"ds: no variable {var!r}; not a Dataset from Study.to_xarray()")
    v = ds.variables[var]
    if tuple(v.dims) != dims:
        raise ValueError(f"ds[{var!r}]: dims {tuple(v.dims)}, not {dims}")
    kind = v.dtype.kind
    if kind == "T" and "U" in kinds:  # NumPy's StringDType (zarr reads strings so): text
        return np.asarray(v.values).astype(object)
    if kind not in kinds:
        raise ValueError(f"ds[{var!r}]: dtype {v.dtype} is not one this variable holds")
    return np.asarray(v.values)


def _column(ds: xr.Dataset, var: str, dim: str, kinds: str, max_chars: int) -> list[Any]:
    values = _array(ds, var, (dim,), kinds)
    return decode(f"ds[{var!r}]", values, ds.variables[var].attrs, max_chars)


def _first(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if len(bad) else None


class _TrialColumns:
    """The per-trial variables (number, state, failure, error, worker, attempts, times,
    parent), checked as a whole."""

    def __init__(self, ds: xr.Dataset, n: int):
        numbers = _array(ds, "trial", ("trial",), "iu")
        i = _first(numbers != np.arange(n))
        if i is not None:
            raise ValueError(
                f"ds: trial numbers must run 0, 1, 2, ...; got {numbers[i]} at row {i}"
            )
        self.state = self._choice(ds, "state", _STATES)
        self.failure = self._choice(ds, "failure", ["", *_FAILURES])
        self.error = _column(ds, "error_message", "trial", "OUS", MAX_TEXT)
        self.worker = _column(ds, "worker", "trial", "OUS", MAX_STRING)
        attempts = _array(ds, "attempts", ("trial",), "iu")
        i = _first((attempts < 0) | (attempts > MAX_ATTEMPTS))
        if i is not None:
            raise ValueError(f"ds: trial {i} has attempts={attempts[i]}, not in 0..{MAX_ATTEMPTS}")
        self.attempts = [int(a) for a in attempts.tolist()]
        self.parent: list[int | None] = [None] * n
        if "parent" in ds.variables:  # (older Datasets have no copies)
            parent = _array(ds, "parent", ("trial",), "i")
            i = _first((parent < -1) | (parent >= np.arange(n)))
            if i is not None:
                raise ValueError(
                    f"ds: trial {i} has parent={parent[i]}: not -1 (none) or an earlier trial"
                )
            self.parent = [None if p < 0 else int(p) for p in parent.tolist()]
        self.asked, start, end = (_array(ds, v, ("trial",), "f") for v in ("asked", "start", "end"))
        finished = np.array([TrialState(s).finished for s in self.state], dtype=bool)
        for label, mask in (
            ("its asked time is not a finite number", ~np.isfinite(self.asked)),
            ("its start time is infinite", np.isinf(start)),
            ("its end time is infinite", np.isinf(end)),
            ("it is finished but its end time is NaN", finished & np.isnan(end)),
            ("it has a start time but no attempts", np.isfinite(start) & (attempts == 0)),
        ):
            i = _first(mask)
            if i is not None:
                raise ValueError(f"ds: trial {i}: {label}")
        self.start, self.end = start.tolist(), end.tolist()

    @staticmethod
    def _choice(ds: xr.Dataset, var: str, allowed: list[str]) -> list[str]:
        values = _column(ds, var, "trial", "OUS", MAX_STRING)
        ok = set(allowed)
        for i, v in enumerate(values):
            if v not in ok:
                raise ValueError(
                    f"ds: trial {i} has {var} {short(v)}, not one of {[a for a in allowed if a]}"
                )
        return values

    def trial(
        self,
        i: int,
        params: dict[str, Any],
        values: dict[str, Any],
        reports: list[Report],
        objective: str,
    ) -> Trial:
        """Trial ``i``, with what the other variables hold for it."""
        state = TrialState(self.state[i])
        failure = None
        if state is TrialState.FAILED:
            failure = Failure(self.failure[i] or Failure.ERROR.value)
        elif self.failure[i]:
            raise ValueError(f"ds: trial {i} is {state.value} but has failure {self.failure[i]!r}")

        def when(x: float) -> float | None:
            return None if math.isnan(x) else x

        return Trial(
            number=i,
            params=params,
            state=state,
            values=values,
            value=float(values[objective]) if state is TrialState.COMPLETE else None,
            reports=tuple(reports),
            worker=self.worker[i] or None,
            attempts=self.attempts[i],
            asked_at=float(self.asked[i]),
            started_at=when(self.start[i]),
            finished_at=when(self.end[i]),
            error=self.error[i] or None,
            failure=failure,
            parent=self.parent[i],
        )


def _values(i: int, columns: Mapping[str, list[Any]], state: str, objective: str) -> dict[str, Any]:
    values = {m: col[i] for m, col in columns.items() if col[i] is not MISSING}
    if state != TrialState.COMPLETE.value:
        if values:
            raise ValueError(
                f"ds: trial {i} is {state} but holds metric {short(next(iter(values)))}"
            )
        return values
    v = values.get(objective, MISSING)
    if not is_real(v) or not math.isfinite(v):
        raise ValueError(
            f"ds: trial {i} is complete but its objective {objective!r} is "
            f"{'missing' if v is MISSING else short(v)}, not a finite number"
        )
    return values


def _reports(ds: xr.Dataset, n: int) -> list[list[Report]]:
    out: list[list[Report]] = [[] for _ in range(n)]
    curves = sorted(str(v) for v in ds.data_vars if str(v).startswith("curve_"))
    if "report" not in ds.sizes and not curves:
        return out
    trial = _array(ds, "report_trial", ("report",), "iu")
    k = _first((trial < 0) | (trial >= n))
    if k is not None:
        raise ValueError(f"ds: report {k} is of trial {trial[k]}, which ds does not hold")
    time = _array(ds, "report_time", ("report",), "f")
    k = _first(~np.isfinite(time))
    if k is not None:
        raise ValueError(f"ds: report {k} (trial {trial[k]}): its time is not a finite number")
    steps = _column(ds, "report_step", "report", "iuOUS", MAX_STRING)
    columns = {c[len("curve_") :]: _column(ds, c, "report", "fOUS", MAX_STRING) for c in curves}
    for k, (t, step, at) in enumerate(zip(trial.tolist(), steps, time.tolist(), strict=True)):
        if not is_integer(step):
            raise ValueError(
                f"ds: report {k} (trial {t}): its step {short(step)} is not an integer"
            )
        metrics = {m: col[k] for m, col in columns.items() if col[k] is not MISSING}
        if not metrics:
            raise ValueError(f"ds: report {k} (trial {t}) holds no metric")
        out[t].append(Report(step=step, metrics=metrics, time=at))
    return out


# Format 1: parameters and metrics under their own names, curves as `trial x step` grids.


def _old_param(ds: xr.Dataset, p: str, spec: Mapping[str, Any]) -> list[Any]:
    values = _column(ds, p, "trial", "fiuOUS", MAX_STRING)
    attrs = ds.variables[p].attrs
    if spec["type"] != "categorical" or attrs.get("encoding") == "json":
        return values
    choices = spec["choices"]  # numbers were kept as floats: each is its first equal choice
    for i, v in enumerate(values):
        if isinstance(v, float):
            match = [c for c in choices if is_real(c) and c == v]
            values[i] = match[0] if match else v
    return values


def _old_roles(ds: xr.Dataset, role: str) -> dict[str, str]:
    """The variables of a layout-1 Dataset with ``role`` (metric, curve), by metric name."""
    out: dict[str, str] = {}
    for v in ds.data_vars:
        attrs = ds.variables[v].attrs
        if attrs.get("role") == role:
            metric = attrs.get("metric")
            if not isinstance(metric, str) or not metric or len(metric) > MAX_STRING:
                raise ValueError(f"ds[{str(v)!r}]: its 'metric' attribute is not a metric name")
            out[metric] = str(v)
    return out


def _old_metrics(ds: xr.Dataset) -> dict[str, list[Any]]:
    return {
        m: _column(ds, v, "trial", "fOUS", MAX_STRING) for m, v in _old_roles(ds, "metric").items()
    }


def _old_reports(ds: xr.Dataset, n: int, asked: np.ndarray) -> list[list[Report]]:
    out: list[list[Report]] = [[] for _ in range(n)]
    curves = _old_roles(ds, "curve")
    if not curves:
        return out
    n_steps = _size(ds, "step", MAX_REPORTS)
    steps = _array(ds, "step", ("step",), "iu").tolist()
    grids = {m: _grid(ds, v, n_steps) for m, v in curves.items()}
    when = _grid(ds, "curve_time", n_steps) if "curve_time" in ds.variables else None
    block, total = max(1, _CELLS // max(1, n_steps)), 0
    for i0 in range(0, n, block):
        rows = slice(i0, min(n, i0 + block))
        values = {m: np.asarray(g[rows].values) for m, g in grids.items()}
        times = np.asarray(when[rows].values) if when is not None else None
        for m, a in values.items():
            if np.isinf(a).any():
                raise ValueError(f"ds[{curves[m]!r}]: a value is infinite")
        present = np.zeros(next(iter(values.values())).shape, dtype=bool)
        for a in values.values():
            present |= np.isfinite(a)
        total += int(present.sum())
        if total > MAX_REPORTS:
            raise ValueError(f"ds: over {MAX_REPORTS} reports; the most an import takes")
        for r, j in zip(*np.nonzero(present), strict=True):
            i = i0 + int(r)
            at = float(asked[i]) if times is None else float(times[r, j])
            if not math.isfinite(at):
                raise ValueError(f"ds: trial {i}: its report at step {steps[j]} has no finite time")
            metrics = {m: float(a[r, j]) for m, a in values.items() if math.isfinite(a[r, j])}
            out[i].append(Report(step=int(steps[j]), metrics=metrics, time=at))
    return out


def _grid(ds: xr.Dataset, var: str, n_steps: int) -> Any:
    v = ds.variables[var]
    if tuple(v.dims) != ("trial", "step"):
        raise ValueError(f"ds[{var!r}]: dims {tuple(v.dims)}, not ('trial', 'step')")
    if v.dtype.kind != "f":
        raise ValueError(f"ds[{var!r}]: dtype {v.dtype} is not one this variable holds")
    return v
