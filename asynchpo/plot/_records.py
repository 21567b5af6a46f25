"""What each plot shows, computed from the study's Dataset as plain arrays: no drawing here."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from asynchpo._limits import MAX_TEXT
from asynchpo.results._codec import MISSING, decode, numbers
from asynchpo.results._xarray import metric_name
from asynchpo.space import Space

if TYPE_CHECKING:
    import xarray as xr


@dataclass(frozen=True)
class History:
    """Objective of each complete trial, by trial number and by time, with the best so far."""

    objective: str
    trial: np.ndarray  # `n`, complete trials in order of number
    value: np.ndarray  # `n`
    best: np.ndarray  # `n`, best value among these trials up to each one
    seconds: np.ndarray  # `n`, when each ended, from the first trial's start
    best_by_time: np.ndarray  # `n`, best value among the trials ended by then
    order: np.ndarray  # `n`, indices that sort by end time


@dataclass(frozen=True)
class Slice:
    """Each parameter's value against the objective, over the complete trials."""

    objective: str
    params: dict[str, np.ndarray]  # name -> `n` values (categoricals as given)
    log: dict[str, bool]
    value: np.ndarray  # `n`
    trial: np.ndarray  # `n`


@dataclass(frozen=True)
class Parallel:
    """Complete trials as lines across the parameters, each scaled to [0, 1]."""

    objective: str
    axes: list[str]
    scaled: np.ndarray  # `n x p`
    value: np.ndarray  # `n`
    group: np.ndarray  # `n`, "best 10%", "10-50%" or "worst 50%"


@dataclass(frozen=True)
class Curves:
    """Reported learning curves in long form: one row per report of the metric."""

    metric: str
    trial: np.ndarray  # `m`, the number of the trial that made each report
    step: np.ndarray  # `m`
    value: np.ndarray  # `m`
    state: np.ndarray  # `m`, the state of that trial


@dataclass(frozen=True)
class Importance:
    """Variance-based importance of each parameter: Sobol' indices of the surrogate's mean.

    ``first[j]`` is the share of the variance of the fitted objective explained by
    parameter ``j`` alone (its functional-ANOVA main effect); ``total[j]`` adds every
    interaction it takes part in.
    """

    objective: str
    params: list[str]
    first: np.ndarray
    total: np.ndarray
    n_trials: int


def _complete(ds: xr.Dataset) -> tuple[xr.Dataset, np.ndarray]:
    """The complete trials with a finite objective, and the objective's values, `n`."""
    objective = metric_name(ds, str(ds.attrs["objective"]))
    done = ds.isel(trial=np.flatnonzero(ds["state"].values == "complete"))
    if objective is None:
        return done.isel(trial=slice(0, 0)), np.empty(0)
    value = _numbers(done[objective])
    keep = np.flatnonzero(np.isfinite(value))
    return done.isel(trial=keep), value[keep]


def _numbers(da: xr.DataArray) -> np.ndarray:
    return numbers(np.asarray(da.values), da.attrs)


def _params(ds: xr.Dataset, space: Space) -> list[dict[str, Any]]:
    """Each trial's parameters, as the space gives them (inactive ones absent)."""
    columns = {
        p: decode(p, np.asarray(ds[f"param_{p}"].values), ds[f"param_{p}"].attrs, MAX_TEXT)
        for p in space.names
    }
    return [
        {p: columns[p][i] for p in space.names if columns[p][i] is not MISSING}
        for i in range(ds.sizes["trial"])
    ]


def _space(ds: xr.Dataset) -> Space:
    return Space.from_spec(json.loads(ds.attrs["space"]))


def _running_best(values: np.ndarray, maximize: bool) -> np.ndarray:
    if not len(values):
        return values
    return np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)


def history(ds: xr.Dataset) -> History:
    done, value = _complete(ds)
    maximize = ds.attrs["direction"] == "maximize"
    trial = done["trial"].values
    end = done["end"].values.astype(float)
    t0 = np.nanmin(ds["start"].values) if np.isfinite(ds["start"].values).any() else 0.0
    order = np.argsort(end, kind="stable")
    return History(
        objective=str(ds.attrs["objective"]),
        trial=trial,
        value=value,
        best=_running_best(value, maximize),
        seconds=end - t0,
        best_by_time=_running_best(value[order], maximize),
        order=order,
    )


def slices(ds: xr.Dataset) -> Slice:
    """Parameters as drawn: numbers as numbers (ints beyond ``int64`` as floats), other
    values as their text (JSON text for choices that mix types)."""
    done, value = _complete(ds)
    names = list(_space(ds).names)
    params = {}
    for p in names:
        da = done[f"param_{p}"]
        json_text = da.attrs.get("encoding") == "json"
        params[p] = _numbers(da) if json_text and da.attrs["type"] == "int" else da.values
    return Slice(
        objective=str(ds.attrs["objective"]),
        params=params,
        log={p: bool(ds[f"param_{p}"].attrs.get("log", 0)) for p in names},
        value=value,
        trial=done["trial"].values,
    )


def parallel(ds: xr.Dataset) -> Parallel:
    """Each axis scaled as the sampler sees it: log parameters in log space, categories
    spread evenly in the order of their choices."""
    done, value = _complete(ds)
    space = _space(ds)
    axes = list(space.names)
    if not len(value):
        return Parallel(str(ds.attrs["objective"]), axes, np.empty((0, len(axes))), value, value)
    scaled = np.array([space.encode(r) for r in _params(done, space)])
    rank = np.argsort(np.argsort(value if ds.attrs["direction"] == "minimize" else -value))
    q = (rank + 0.5) / len(value)
    group = np.where(q <= 0.1, "best 10%", np.where(q <= 0.5, "10-50%", "worst 50%"))
    return Parallel(str(ds.attrs["objective"]), axes, scaled, value, group)


def curves(ds: xr.Dataset, metric: str | None = None) -> Curves:
    """The reports of ``metric`` (the objective's by default, else the first reported),
    from the ``report`` dimension; non-numbers are left out."""
    names = sorted(str(v)[len("curve_") :] for v in ds.data_vars if str(v).startswith("curve_"))
    objective = str(ds.attrs["objective"])
    if metric is None:
        metric = objective if objective in names or not names else names[0]
    if metric not in names:
        if names:
            raise ValueError(f"metric: no learning curve of {metric!r}; the study reported {names}")
        empty = np.empty(0)
        return Curves(metric, empty.astype(int), empty.astype(int), empty, empty.astype(str))
    value = _numbers(ds[f"curve_{metric}"])
    keep = np.flatnonzero(np.isfinite(value))
    trial = ds["report_trial"].values[keep]
    step = ds["report_step"]
    steps = step.values[keep] if step.dtype.kind in "iu" else _numbers(step)[keep]
    row = np.searchsorted(ds["trial"].values, trial)
    return Curves(
        metric=metric,
        trial=trial,
        step=steps,
        value=value[keep],
        state=ds["state"].values[row].astype(str),
    )


def importance(ds: xr.Dataset, n: int = 2**11, seed: int = 0) -> Importance:
    """Sobol' indices (``scipy.stats.sobol_indices``, Saltelli's estimator) of the mean of
    a GP fitted to the complete trials on the unit-cube encoding of the space."""
    from scipy.stats import sobol_indices, uniform

    from asynchpo.surrogate import Features, Posterior, Warp, fit_hyper

    done, value = _complete(ds)
    space = _space(ds)
    names = list(space.names)
    if len(value) < 3 or np.ptp(value) == 0:
        nan = np.full(len(names), math.nan)
        return Importance(str(ds.attrs["objective"]), names, nan, nan, len(value))
    X = np.array([space.encode(r) for r in _params(done, space)])
    features = Features(space)
    warp = Warp.fit(value)
    wy = warp(value)
    hyper = fit_hyper(features(X), wy)
    post = Posterior(hyper, features(X), wy)

    def mean(U: np.ndarray) -> np.ndarray:  # `d x m` -> `1 x m`
        return post.predict(features(U.T))[0][None, :]

    if len(names) == 1:  # all of the variance is the one parameter's, if there is any
        varies = np.ptp(mean(np.linspace(0.0, 1.0, 257)[None, :])) > 0
        one = np.array([1.0 if varies else math.nan])
        return Importance(str(ds.attrs["objective"]), names, one, one.copy(), len(value))
    result = sobol_indices(
        func=mean, n=n, dists=[uniform(0, 1)] * len(names), rng=np.random.default_rng(seed)
    )
    first = np.clip(np.asarray(result.first_order, dtype=float).ravel(), 0.0, 1.0)
    total = np.clip(np.asarray(result.total_order, dtype=float).ravel(), 0.0, 1.0)
    return Importance(str(ds.attrs["objective"]), names, first, total, len(value))
