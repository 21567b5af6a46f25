"""A study as an ``xarray.Dataset``, and back: the form results are analysed, plotted and kept in.

The layout (format 2, in ``ds.attrs["asynchpo_format"]``):

- Dimension ``trial``, one row per trial, with coordinate ``trial`` (the trial numbers,
  0, 1, 2, ...). Its variables:

  - ``param_<name>``: each parameter of the space (``attrs``: ``role="param"``, the
    distribution's ``type``, and ``low``, ``high``, ``step``, ``log`` or ``choices``);
  - ``metric_<name>``: each metric the objective returned (``role="metric"``), NaN or
    ``""`` for trials without it;
  - the trial's own: ``state``, ``failure``, ``error_message``, ``worker``, ``attempts``,
    ``asked``, ``start``, ``end`` (seconds, NaN until they happen; ``role="trial"``),
    ``parent`` (the trial a population based training copy started from, -1 for none;
    a Dataset without it has no copies) and ``duration`` (``end - start``,
    ``role="derived"``).

- Dimension ``report``, one row per intermediate report (``asynchpo.report``), the
  trials' reports one after the other, each trial's in the order it made them, with
  coordinates ``report_trial`` (the trial's number), ``report_step`` and ``report_time``
  (seconds), and a variable ``curve_<name>`` for each metric reported (``role="curve"``),
  NaN or ``""`` in the reports without it. Memory grows with the number of reports, not
  with trials times steps. Trial 3's reports are ``ds.isel(report=ds.report_trial == 3)``;
  all of them as a table, ``ds[["curve_loss"]].to_dataframe()``.

The prefixes keep every name a study chooses (parameters, metrics) apart from the Dataset's
own names and from each other: a parameter called ``state`` is ``param_state``.

Values are kept exactly (see ``asynchpo.results._codec``): floats as ``float64``, ints as
``int64``, strings as text, and what NumPy would change (ints beyond ``int64``, categorical
choices that mix ``1`` and ``1.0`` or ``True``, ``None``, metrics that are not all floats) as
JSON text, with ``attrs["encoding"] == "json"``. The whole space is in ``ds.attrs["space"]``
(JSON), with ``name``, ``objective`` and ``direction``, so a Dataset read back from netCDF or
zarr is enough to rebuild the study. Every attribute is a string or a number, which both
formats keep as they are.

Format 1 (until the layout above) named parameters and metrics as they were and kept
curves on a dense ``trial x step`` grid; :func:`from_xarray` still reads it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from asynchpo.events import (
    Event,
    StudyState,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialForked,
    TrialInterrupted,
    TrialPaused,
    TrialPruned,
    TrialReported,
    TrialStarted,
)
from asynchpo.results._codec import (
    FORMAT,
    MISSING,
    encode_ints,
    encode_metric,
    encode_param,
    strings,
)
from asynchpo.results._read import read
from asynchpo.trial import Trial, TrialState

if TYPE_CHECKING:
    import xarray as xr

    from asynchpo.samplers import BaseSampler
    from asynchpo.storage import BaseStorage
    from asynchpo.study import Study

__all__ = ["FORMAT", "from_xarray", "metric_name", "to_xarray"]

_Vars = dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]]


def _xarray() -> Any:
    try:
        import xarray
    except ImportError as error:
        raise ImportError(
            "results as xarray need xarray: pip install 'asynchpo[results]'"
        ) from error
    return xarray


def _times(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def to_xarray(study: Study) -> xr.Dataset:
    """The study's trials as a Dataset (see the module's docstring for its layout).

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(0, 1), act=ah.Categorical(["a", "b"])),
        ...                  sampler=ah.RandomSampler(seed=0))
        >>> study.optimize(lambda p: p["x"], n_trials=3, progress=False)
        >>> ds = study.to_xarray()
        >>> ds.sizes["trial"], ds["param_x"].attrs["type"], str(ds["state"].values[0])
        (3, 'float', 'complete')
    """
    xarray = _xarray()
    trials: list[Trial] = study.trials
    space_spec = study.space.to_spec()
    data: _Vars = {}
    for name, spec in space_spec.items():
        values, attrs = encode_param(spec, [t.params.get(name, MISSING) for t in trials])
        data[f"param_{name}"] = (("trial",), values, attrs)
    for metric in sorted({k for t in trials for k in t.values}):
        values, attrs = encode_metric([t.values.get(metric, MISSING) for t in trials])
        data[f"metric_{metric}"] = (("trial",), values, {"role": "metric", **attrs})
    data.update(_trial_vars(trials))
    coords, curves = _reports(trials)
    data.update(curves)
    ds = xarray.Dataset(
        {k: xarray.Variable(dims, values, attrs) for k, (dims, values, attrs) in data.items()},
        coords={
            "trial": np.array([t.number for t in trials], dtype=np.int64),
            **{k: xarray.Variable(d, v, a) for k, (d, v, a) in coords.items()},
        },
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


def _trial_vars(trials: list[Trial]) -> _Vars:
    role = {"role": "trial"}
    seconds = {"role": "trial", "units": "s"}
    start = _times([t.started_at for t in trials])
    end = _times([t.finished_at for t in trials])
    return {
        "state": (("trial",), strings([t.state.value for t in trials]), role),
        "failure": (
            ("trial",),
            strings([t.failure.value if t.failure else "" for t in trials]),
            role,
        ),
        "error_message": (("trial",), strings([t.error or "" for t in trials]), role),
        "worker": (("trial",), strings([t.worker or "" for t in trials]), role),
        "attempts": (("trial",), np.array([t.attempts for t in trials], dtype=np.int64), role),
        "parent": (
            ("trial",),
            np.array([-1 if t.parent is None else t.parent for t in trials], dtype=np.int64),
            role,
        ),
        "asked": (("trial",), _times([t.asked_at for t in trials]), seconds),
        "start": (("trial",), start, seconds),
        "end": (("trial",), end, seconds),
        "duration": (("trial",), end - start, {"role": "derived", "units": "s"}),
    }


def _reports(trials: list[Trial]) -> tuple[_Vars, _Vars]:
    """The ``report`` dimension: its coordinates and one variable per metric, each `m`."""
    numbers: list[int] = []
    steps: list[int] = []
    times: list[float] = []
    cells: dict[str, list[tuple[int, Any]]] = {}
    for t in trials:
        for r in t.reports:
            row = len(numbers)
            numbers.append(t.number)
            steps.append(r.step)
            times.append(r.time)
            for metric, v in r.metrics.items():
                cells.setdefault(metric, []).append((row, v))
    step_values, step_attrs = encode_ints(steps)
    coords: _Vars = {
        "report_trial": (("report",), np.array(numbers, dtype=np.int64), {"role": "report"}),
        "report_step": (("report",), step_values, {"role": "report", **step_attrs}),
        "report_time": (
            ("report",),
            np.array(times, dtype=float),
            {"role": "report", "units": "s"},
        ),
    }
    curves: _Vars = {}
    for metric in sorted(cells):
        column: list[Any] = [MISSING] * len(numbers)
        for row, v in cells[metric]:
            column[row] = v
        values, attrs = encode_metric(column)
        curves[f"curve_{metric}"] = (("report",), values, {"role": "curve", **attrs})
    return coords, curves


def metric_name(ds: xr.Dataset, metric: str) -> str | None:
    """The variable that holds ``metric``, if a trial returned it."""
    var = f"metric_{metric}"
    return var if var in ds.data_vars else None


def from_xarray(
    ds: xr.Dataset,
    storage: str | BaseStorage | None = None,
    name: str | None = None,
    sampler: BaseSampler | str | None = None,
) -> Study:
    """A study rebuilt from a Dataset made by :func:`to_xarray` (read back from netCDF or
    zarr, say, in this format or format 1): same space, objective, direction, trials,
    states, parameters, values, reports, workers, times and parents. Trials that were running come
    back ``INTERRUPTED``, to be run again.

    The whole Dataset is checked before anything is written: its sizes and dtypes first,
    before any value is read (at most ``MAX_TRIALS`` trials and ``MAX_REPORTS`` reports, from
    ``asynchpo.results._read``, and the limits of ``asynchpo._limits``), then every trial's
    parameters against the space, its state, failure, attempts, times, metrics and reports.
    The journal gets all of its trials in one transaction, or nothing.

    Args:
        ds: The Dataset.
        storage: Where the new study's journal goes (in memory if None).
        name: Its name (the Dataset's if None).
        sampler: Its sampler (the default GP if None).

    Raises:
        ValueError: ``ds`` is not a Dataset that :func:`to_xarray` makes, or holds more than
            the limits; the message starts with ``ds`` and names what is wrong (the trial
            and the parameter, the variable, the attribute).
    """
    from asynchpo.study import Study

    contents = read(ds)
    if name is None and contents.name is None:
        raise ValueError("ds: no 'name' attribute; give the study a name")
    events = [e for t in contents.trials for e in _replay(t)]
    study = Study(
        contents.space,
        objective=contents.objective,
        direction=contents.direction,
        sampler=sampler,
        storage=storage,
        name=name if name is not None else contents.name,
    )

    def replay(state: StudyState) -> list[Event]:
        if state.n_trials:  # another writer got there first: the numbers would clash
            raise ValueError(f"name: the study {study.name!r} has trials already")
        return events

    study.journal.write(replay)  # one transaction: all of it, or nothing
    return study


_UNFINISHED = "it had not finished when the results were saved"


def _replay(t: Trial) -> list[Event]:
    """The events that lead to trial ``t``."""
    assert t.asked_at is not None
    n = t.number
    out: list[Event] = [TrialAsked(time=t.asked_at, number=n, params=dict(t.params), run=None)]
    if t.parent is not None:  # its lineage; the checkpoint it copied stays where it was
        out.append(TrialForked(time=t.asked_at, number=n, parent=t.parent, name="", sha256=""))
    for attempt in range(1, t.attempts + 1):
        last = attempt == t.attempts and t.started_at is not None
        at = t.started_at if last and t.started_at is not None else t.asked_at
        out.append(TrialStarted(time=at, number=n, attempt=attempt, worker=t.worker))
    for seq, r in enumerate(t.reports):
        out.append(
            TrialReported(time=r.time, number=n, step=r.step, metrics=dict(r.metrics), seq=seq)
        )
    start = t.started_at if t.started_at is not None else t.asked_at
    latest = max([t.asked_at, start, *(r.time for r in t.reports)])
    end = t.finished_at if t.finished_at is not None else latest
    if t.state is TrialState.COMPLETE:
        out.append(TrialCompleted(time=end, number=n, values=dict(t.values)))
    elif t.state is TrialState.FAILED:
        assert t.failure is not None
        out.append(TrialFailed(time=end, number=n, reason=t.error or "", failure=t.failure.value))
    elif t.state is TrialState.PRUNED:
        step = t.reports[-1].step if t.reports else None
        out.append(TrialPruned(time=end, number=n, step=step))
    elif t.state is TrialState.PAUSED:
        step = t.reports[-1].step if t.reports else None
        out.append(TrialPaused(time=end, number=n, step=step))
    else:  # running or interrupted when saved
        reason = t.error if t.state is TrialState.INTERRUPTED and t.error else _UNFINISHED
        out.append(TrialInterrupted(time=end, number=n, reason=reason))
    for e in out:  # each must be a record the journal takes, or nothing is written
        try:
            e.to_json()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ds: trial {n}: {exc}") from None
    return out
