"""What each plot shows, computed from the study's Dataset as plain arrays: no drawing here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from asynchpo.results._xarray import param_value
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
    """Reported learning curves in long form: one row per (trial, step)."""

    metric: str
    trial: np.ndarray
    step: np.ndarray
    value: np.ndarray
    state: np.ndarray


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


def _complete(ds: xr.Dataset) -> tuple[xr.Dataset, str]:
    from asynchpo.results._xarray import metric_name

    objective = metric_name(ds, str(ds.attrs["objective"])) or "<none>"
    done = ds.isel(trial=np.flatnonzero(ds["state"].values == "complete"))
    if objective in done:
        done = done.isel(trial=np.flatnonzero(np.isfinite(done[objective].values)))
    return done, objective


def _running_best(values: np.ndarray, maximize: bool) -> np.ndarray:
    if not len(values):
        return values
    return np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)


def history(ds: xr.Dataset) -> History:
    done, objective = _complete(ds)
    maximize = ds.attrs["direction"] == "maximize"
    value = done[objective].values.astype(float) if objective in done else np.empty(0)
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
    done, objective = _complete(ds)
    names = [str(v) for v in ds.data_vars if ds[v].attrs.get("role") == "param"]
    return Slice(
        objective=str(ds.attrs["objective"]),
        params={p: done[p].values for p in names},
        log={p: bool(ds[p].attrs.get("log", 0)) for p in names},
        value=done[objective].values.astype(float) if objective in done else np.empty(0),
        trial=done["trial"].values,
    )


def parallel(ds: xr.Dataset) -> Parallel:
    """Each axis scaled as the sampler sees it: log parameters in log space, categories
    spread evenly in the order of their choices."""
    import json

    done, objective = _complete(ds)
    space = Space.from_spec(json.loads(ds.attrs["space"]))
    axes = list(space.names)
    value = done[objective].values.astype(float) if objective in done else np.empty(0)
    if not len(value):
        return Parallel(str(ds.attrs["objective"]), axes, np.empty((0, len(axes))), value, value)
    rows = [{p: param_value(ds[p], done[p].values[i]) for p in axes} for i in range(len(value))]
    scaled = np.array([space.encode(r) for r in rows])
    rank = np.argsort(np.argsort(value if ds.attrs["direction"] == "minimize" else -value))
    q = (rank + 0.5) / len(value)
    group = np.where(q <= 0.1, "best 10%", np.where(q <= 0.5, "10-50%", "worst 50%"))
    return Parallel(str(ds.attrs["objective"]), axes, scaled, value, group)


def curves(ds: xr.Dataset, metric: str | None = None) -> Curves:
    names = {
        str(ds[v].attrs["metric"]): str(v)
        for v in ds.data_vars
        if ds[v].attrs.get("role") == "curve"
    }
    if metric is None:
        metric = str(ds.attrs["objective"]) if str(ds.attrs["objective"]) in names else None
        metric = metric or (sorted(names)[0] if names else str(ds.attrs["objective"]))
    if metric not in names:
        if names:
            raise ValueError(
                f"metric: no learning curve of {metric!r}; the study reported {sorted(names)}"
            )
        empty = np.empty(0)
        return Curves(metric, empty.astype(int), empty.astype(int), empty, empty.astype(str))
    grid = ds[names[metric]].values
    i, j = np.nonzero(np.isfinite(grid))
    return Curves(
        metric=metric,
        trial=ds["trial"].values[i],
        step=ds["step"].values[j],
        value=grid[i, j],
        state=ds["state"].values[i].astype(str),
    )


def importance(ds: xr.Dataset, n: int = 2**11, seed: int = 0) -> Importance:
    """Sobol' indices (``scipy.stats.sobol_indices``, Saltelli's estimator) of the mean of
    a GP fitted to the complete trials on the unit-cube encoding of the space."""
    import json

    from scipy.stats import sobol_indices, uniform

    from asynchpo.surrogate import Features, Posterior, Warp, fit_hyper

    done, objective = _complete(ds)
    space = Space.from_spec(json.loads(ds.attrs["space"]))
    names = list(space.names)
    value = done[objective].values.astype(float) if objective in done else np.empty(0)
    if len(value) < 3 or np.ptp(value) == 0:
        nan = np.full(len(names), math.nan)
        return Importance(str(ds.attrs["objective"]), names, nan, nan, len(value))
    rows = [{p: param_value(ds[p], done[p].values[i]) for p in names} for i in range(len(value))]
    X = np.array([space.encode(r) for r in rows])
    features = Features(space)
    warp = Warp.fit(value)
    wy = warp(value)
    hyper = fit_hyper(features(X), wy)
    post = Posterior(hyper, features(X), wy)

    def mean(U: np.ndarray) -> np.ndarray:  # `d x m` -> `1 x m`
        return post.predict(features(U.T))[0][None, :]

    result = sobol_indices(
        func=mean, n=n, dists=[uniform(0, 1)] * len(names), rng=np.random.default_rng(seed)
    )
    first = np.clip(np.asarray(result.first_order, dtype=float).ravel(), 0.0, 1.0)
    total = np.clip(np.asarray(result.total_order, dtype=float).ravel(), 0.0, 1.0)
    return Importance(str(ds.attrs["objective"]), names, first, total, len(value))
