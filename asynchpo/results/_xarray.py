"""A study as an ``xarray.Dataset``, and back: the form results are analysed, plotted and kept in.

The Dataset has a ``trial`` dimension (one row per trial, by number) and a ``step``
dimension (the steps reported by ``asynchpo.report``). Each variable says what it is in
``attrs["role"]``: ``"param"``, ``"metric"``, ``"curve"`` (a metric reported per step),
``"curve_time"`` or ``"trial"`` (state, worker, times). Parameters keep their distribution in
their attributes, and the whole space is in ``ds.attrs["space"]`` (JSON), so a Dataset read
back from netCDF or zarr is enough to rebuild the study. Every attribute is a string or a
number, which both formats keep as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from asynchpo._limits import MAX_ATTEMPTS
from asynchpo.events import (
    Event,
    StudyState,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialInterrupted,
    TrialPruned,
    TrialReported,
    TrialStarted,
)
from asynchpo.space import Space
from asynchpo.trial import Trial, TrialState

if TYPE_CHECKING:
    import xarray as xr

    from asynchpo.samplers import BaseSampler
    from asynchpo.storage import BaseStorage
    from asynchpo.study import Study

FORMAT = 1  # bumped when the layout changes
_TRIAL_VARS = ("state", "failure", "error_message", "worker", "attempts", "asked", "start", "end")


def _xarray() -> Any:
    try:
        import xarray
    except ImportError as error:
        raise ImportError(
            "results as xarray need xarray: pip install 'asynchpo[results]'"
        ) from error
    return xarray


def _strings(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _param_var(
    name: str, spec: Mapping[str, Any], values: list[Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    attrs: dict[str, Any] = {"role": "param", "type": spec["type"]}
    if spec["type"] == "categorical":
        choices = list(spec["choices"])
        attrs["choices"] = json.dumps(choices)
        if all(isinstance(c, str) for c in choices):
            return _strings(values), attrs
        if all(_is_number(c) for c in choices):
            return np.asarray(values, dtype=float), attrs
        return _strings([json.dumps(v) for v in values]), {**attrs, "encoding": "json"}
    attrs.update(low=spec["low"], high=spec["high"], log=int(bool(spec["log"])))
    if spec.get("step") is not None:
        attrs["step"] = spec["step"]
    dtype = np.int64 if spec["type"] == "int" else float
    return np.asarray(values, dtype=dtype), attrs


def to_xarray(study: Study) -> xr.Dataset:
    """The study's trials as a Dataset (see the module's docstring for its layout).

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(0, 1), act=ah.Categorical(["a", "b"])),
        ...                  sampler=ah.RandomSampler(seed=0))
        >>> study.optimize(lambda p: p["x"], n_trials=3, progress=False)
        >>> ds = study.to_xarray()
        >>> ds.sizes["trial"], ds["x"].attrs["type"], str(ds["state"].values[0])
        (3, 'float', 'complete')
    """
    xarray = _xarray()
    trials: list[Trial] = study.trials
    space_spec = study.space.to_spec()
    numbers = np.array([t.number for t in trials], dtype=np.int64)
    data: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]] = {}
    for name, spec in space_spec.items():
        values, attrs = _param_var(name, spec, [t.params[name] for t in trials])
        data[name] = (("trial",), values, attrs)

    taken = set(data) | set(_TRIAL_VARS) | {"duration", "trial", "step"}
    metric_names = sorted({k for t in trials for k in t.values})

    def metric_var(metric: str, prefix: str = "") -> str:
        name = prefix + metric
        return name if name not in taken else f"metric_{name}"

    for metric in metric_names:
        raw = [t.values.get(metric) for t in trials]
        attrs = {"role": "metric", "metric": metric}
        if all(v is None or _is_number(v) for v in raw):
            values = np.array([_nan(v) for v in raw], dtype=float)
        else:  # not a number: kept as JSON text
            values = _strings(["" if v is None else json.dumps(v) for v in raw])
            attrs["encoding"] = "json"
        data[metric_var(metric)] = (("trial",), values, attrs)

    data["state"] = (("trial",), _strings([t.state.value for t in trials]), {"role": "trial"})
    data["failure"] = (
        ("trial",),
        _strings(["" if t.failure is None else t.failure.value for t in trials]),
        {"role": "trial"},
    )
    data["error_message"] = (
        ("trial",),
        _strings([t.error or "" for t in trials]),
        {"role": "trial"},
    )
    data["worker"] = (("trial",), _strings([t.worker or "" for t in trials]), {"role": "trial"})
    data["attempts"] = (
        ("trial",),
        np.array([t.attempts for t in trials], dtype=np.int64),
        {"role": "trial"},
    )
    for var, attr in (("asked", "asked_at"), ("start", "started_at"), ("end", "finished_at")):
        values = np.array([_nan(getattr(t, attr)) for t in trials], dtype=float)
        data[var] = (("trial",), values, {"role": "trial", "units": "s"})
    data["duration"] = (
        ("trial",),
        data["end"][1] - data["start"][1],
        {"role": "derived", "units": "s"},
    )

    steps = sorted({r.step for t in trials for r in t.reports})
    col = {s: j for j, s in enumerate(steps)}
    curve_metrics = sorted(
        {k for t in trials for r in t.reports for k, v in r.metrics.items() if _is_number(v)}
    )
    for metric in curve_metrics:
        grid = np.full((len(trials), len(steps)), np.nan)
        for i, t in enumerate(trials):
            for r in t.reports:
                v = r.metrics.get(metric)
                if _is_number(v):
                    grid[i, col[r.step]] = v
        name = metric_var(metric, "curve_")
        data[name] = (("trial", "step"), grid, {"role": "curve", "metric": metric})
    if steps:
        when = np.full((len(trials), len(steps)), np.nan)
        for i, t in enumerate(trials):
            for r in t.reports:
                when[i, col[r.step]] = r.time
        data["curve_time"] = (("trial", "step"), when, {"role": "curve_time", "units": "s"})

    coords = {"trial": numbers, "step": np.array(steps, dtype=np.int64)}
    ds = xarray.Dataset(
        {k: xarray.Variable(dims, values, attrs) for k, (dims, values, attrs) in data.items()},
        coords=coords,
    )
    ds.attrs.update(
        name=study.name,
        objective=study.objective,
        direction=study.direction,
        space=json.dumps(space_spec),
        asynchpo_format=FORMAT,
    )
    dataset: xr.Dataset = ds
    return dataset


def metric_name(ds: xr.Dataset, metric: str) -> str | None:
    """The variable that holds ``metric`` (its name, or ``metric_<name>`` on a clash)."""
    for var in ds.data_vars:
        attrs = ds[var].attrs
        if attrs.get("role") == "metric" and attrs.get("metric") == metric:
            return str(var)
    return None


def param_value(da: Any, v: Any) -> Any:
    """A parameter's value as the space gives it, from an element of its variable ``da``."""
    kind = da.attrs["type"]
    if kind == "int":
        return int(v)
    if kind == "float":
        return float(v)
    if da.attrs.get("encoding") == "json":
        return json.loads(str(v))
    choices = json.loads(da.attrs["choices"])
    for c in choices:  # the choice itself, with its own type
        if c == v or str(c) == str(v):
            return c
    raise ValueError(f"{da.name}: {v!r} is not one of its choices {choices}")


def from_xarray(
    ds: xr.Dataset,
    storage: str | BaseStorage | None = None,
    name: str | None = None,
    sampler: BaseSampler | None = None,
) -> Study:
    """A study rebuilt from a Dataset made by :func:`to_xarray` (read back from netCDF or
    zarr, say): same space, objective, direction, trials, states, values, reports, workers
    and times. Trials that were running come back ``INTERRUPTED``, to be run again.

    Args:
        ds: The Dataset.
        storage: Where the new study's journal goes (in memory if None).
        name: Its name (the Dataset's if None).
        sampler: Its sampler (the default GP if None).

    Raises:
        ValueError: ``ds`` was not made by :func:`to_xarray`.
    """
    from asynchpo.study import Study

    for key in ("space", "objective", "direction", "asynchpo_format"):
        if key not in ds.attrs:
            raise ValueError(f"ds: no {key!r} attribute; not a Dataset from Study.to_xarray()")
    if int(ds.attrs["asynchpo_format"]) > FORMAT:
        raise ValueError(
            f"ds: made by a newer asynchpo (format {ds.attrs['asynchpo_format']}); upgrade"
        )
    space = Space.from_spec(json.loads(ds.attrs["space"]))
    roles: dict[str, list[str]] = {}
    for var in ds.data_vars:
        roles.setdefault(str(ds[var].attrs.get("role")), []).append(str(var))
    steps = [int(s) for s in ds["step"].values] if "step" in ds.coords else []
    has_time = "curve_time" in ds
    events: list[Event] = []  # all read and checked before the study exists
    for i, number in enumerate(int(n) for n in ds["trial"].values):
        if number != i:
            raise ValueError(f"ds: trial numbers must run 0, 1, 2, ...; got {number} at row {i}")
        events += _replay_trial(ds, i, number, space, roles, steps, has_time)
    study = Study(
        space,
        objective=str(ds.attrs["objective"]),
        direction=str(ds.attrs["direction"]),
        sampler=sampler,
        storage=storage,
        name=name if name is not None else str(ds.attrs["name"]),
    )

    def replay(state: StudyState) -> list[Event]:
        if state.n_trials:  # another writer got there first: the numbers would clash
            raise ValueError(f"name: the study {study.name!r} has trials already")
        return events

    study.journal.write(replay)  # one transaction: all of it, or nothing
    return study


def _replay_trial(
    ds: xr.Dataset,
    i: int,
    number: int,
    space: Space,
    roles: dict[str, list[str]],
    steps: list[int],
    has_time: bool,
) -> list[Event]:
    def when(var: str, default: float) -> float:
        v = float(ds[var].values[i])
        return default if math.isnan(v) else v

    out: list[Event] = []
    params = {p: param_value(ds[p], ds[p].values[i]) for p in space.names}
    asked = when("asked", 0.0)
    out.append(TrialAsked(time=asked, number=number, params=params, run=None))
    worker = str(ds["worker"].values[i]) or None
    start = float(ds["start"].values[i])
    attempts = int(ds["attempts"].values[i])
    if not 0 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"ds: attempts of trial {number} is {attempts}, not in 0..{MAX_ATTEMPTS}")
    for attempt in range(1, attempts + 1):
        at = asked if math.isnan(start) or attempt < attempts else start
        out.append(TrialStarted(time=at, number=number, attempt=attempt, worker=worker))
    last_step = None
    for j, step in enumerate(steps):
        metrics = {
            str(ds[v].attrs["metric"]): float(ds[v].values[i, j])
            for v in roles.get("curve", [])
            if not math.isnan(float(ds[v].values[i, j]))
        }
        if metrics:
            last_step = step
            t = float(ds["curve_time"].values[i, j]) if has_time else asked
            out.append(TrialReported(time=t, number=number, step=step, metrics=metrics, seq=j))
    state = TrialState(str(ds["state"].values[i]))
    end = when("end", asked)
    if state is TrialState.COMPLETE:
        values: dict[str, Any] = {}
        for v in roles.get("metric", []):
            raw = ds[v].values[i]
            metric = str(ds[v].attrs["metric"])
            if ds[v].attrs.get("encoding") == "json":
                if str(raw):
                    values[metric] = json.loads(str(raw))
            elif not math.isnan(float(raw)):
                values[metric] = float(raw)
        out.append(TrialCompleted(time=end, number=number, values=values))
    elif state is TrialState.FAILED:
        failure = str(ds["failure"].values[i]) or "error"
        reason = str(ds["error_message"].values[i])
        out.append(TrialFailed(time=end, number=number, reason=reason, failure=failure))
    elif state is TrialState.PRUNED:
        out.append(TrialPruned(time=end, number=number, step=last_step))
    else:  # running or interrupted when saved
        reason = "it had not finished when the results were saved"
        out.append(TrialInterrupted(time=end, number=number, reason=reason))
    return out
