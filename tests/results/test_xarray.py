from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

import asynchpo as ah
from asynchpo.events import TrialAsked, TrialCompleted, TrialReported, TrialStarted
from asynchpo.storage import get_storage

xr = pytest.importorskip("xarray")

DATA = Path(__file__).parent / "data"

SPACE = ah.Space(
    lr=ah.Float(1e-4, 1e-1, log=True),
    q=ah.Float(0, 1, step=0.25),
    depth=ah.Int(1, 6),
    act=ah.Categorical(["relu", "gelu"]),
    flag=ah.Categorical([True, False, None]),
    width=ah.Categorical([16, 32]),
)


def objective(p):
    if p["depth"] == 6:
        raise ValueError("too deep")
    for step in range(3):
        ah.report(step, loss=p["lr"] * (3 - step), acc=0.1 * step)
        if p["q"] == 1.0 and step == 1:
            raise ah.Pruned()
    return {"loss": p["lr"] + p["depth"], "tag": p["act"], "count": 3}


@pytest.fixture(scope="module")
def study():
    s = ah.Study(SPACE, objective="loss", sampler=ah.RandomSampler(seed=4), name="xr")
    s.optimize(objective, n_trials=30, max_concurrent=3, progress=False)
    states = {t.state for t in s.trials}
    assert {ah.TrialState.FAILED, ah.TrialState.PRUNED, ah.TrialState.COMPLETE} <= states
    return s


def facts(t, *, saved=False):
    """Everything a trial holds, as text that tells 1 from 1.0 and True (JSON). ``saved``:
    as it comes back from a Dataset (running trials come back interrupted)."""
    state = "interrupted" if saved and t.state.value == "running" else t.state.value
    return json.dumps(
        {
            "number": t.number,
            "params": t.params,
            "state": state,
            "values": t.values,
            "value": t.value,
            "reports": [[r.step, r.metrics, r.time] for r in t.reports],
            "worker": t.worker,
            "attempts": t.attempts,
            "times": [t.asked_at, t.started_at, t.finished_at],
            "error": t.error if state == "failed" else None,
            "failure": None if t.failure is None else t.failure.value,
        },
        sort_keys=True,
    )


def same_trials(a, b):
    assert [facts(t, saved=True) for t in a.trials] == [facts(t, saved=True) for t in b.trials]


def test_layout(study):
    ds = study.to_xarray()
    n_reports = sum(len(t.reports) for t in study.trials)
    assert ds.sizes == {"trial": 30, "report": n_reports}
    assert ds.attrs["asynchpo_format"] == 2
    assert ds["param_lr"].attrs == {
        "role": "param",
        "type": "float",
        "low": 1e-4,
        "high": 0.1,
        "log": 1,
    }
    assert ds["param_q"].attrs["step"] == 0.25 and ds["param_depth"].dtype == np.int64
    assert ds["param_width"].dtype == np.int64  # int choices stay ints
    assert set(ds["param_act"].values) <= {"relu", "gelu"}
    assert ds["param_flag"].attrs["encoding"] == "json"
    assert set(ds["param_flag"].values) <= {"true", "false", "null"}
    assert ds["metric_loss"].attrs["role"] == "metric" and ds["metric_loss"].dtype == float
    assert ds["metric_tag"].attrs["encoding"] == "json"
    t = study.best_trial
    assert ds["metric_loss"].sel(trial=t.number).item() == t.value
    failed = [t.number for t in study.get_trials(["failed"])]
    assert all(math.isnan(ds["metric_loss"].sel(trial=n).item()) for n in failed)
    assert all(ds["metric_tag"].sel(trial=n).item() == "" for n in failed)
    assert ds["failure"].sel(trial=failed[0]).item() == "error"
    assert "too deep" in ds["error_message"].sel(trial=failed[0]).item()
    mine = ds.isel(report=ds["report_trial"] == t.number)
    np.testing.assert_array_equal(mine["report_step"], [0, 1, 2])
    np.testing.assert_allclose(mine["curve_loss"], [t.params["lr"] * k for k in (3, 2, 1)])
    np.testing.assert_array_equal(mine["report_time"], [r.time for r in t.reports])
    assert ds["curve_loss"].attrs["role"] == "curve"
    assert (ds["duration"] >= 0).all() and ds["worker"].values[0] != ""


def test_netcdf_and_zarr_round_trips_lose_nothing(study, tmp_path):
    ds = study.to_xarray()
    ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "s.nc", engine="h5netcdf") as back:
        xr.testing.assert_identical(back.load(), ds)
    ds.to_zarr(tmp_path / "s.zarr", consolidated=False)
    with xr.open_zarr(tmp_path / "s.zarr", consolidated=False) as back:
        xr.testing.assert_identical(back.load(), ds)


@pytest.mark.parametrize("store", ["netcdf", "zarr"])
def test_a_study_rebuilt_from_a_file_is_the_same_study(study, tmp_path, store):
    ds = study.to_xarray()
    if store == "netcdf":
        ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")
        opened = xr.open_dataset(tmp_path / "s.nc", engine="h5netcdf")
    else:  # zarr reads strings back as NumPy's StringDType
        ds.to_zarr(tmp_path / "s.zarr", consolidated=False)
        opened = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    with opened as back:
        again = ah.Study.from_xarray(back, storage=tmp_path / "s.db", name="again")
    xr.testing.assert_identical(again.to_xarray().drop_attrs(), ds.drop_attrs())
    assert again.best_params == study.best_params and again.best_value == study.best_value
    same_trials(again, study)
    # and it goes on from there
    again.optimize(objective, n_trials=2, progress=False)
    assert len(again.trials) == 32


# -- nothing lost ---------------------------------------------------------------------------


def awkward_study(**space):
    """A study whose parameters and metrics take the names a Dataset uses for its own."""
    counter = itertools.count()  # one step counter for the whole study

    def f(p):
        for k in range(3):
            ah.report(next(counter), loss=0.5 * k, state="ok" if k else None, trial=k == 2)
        if p["worker"] == 3:
            raise ValueError("three")
        return {"loss": float(p["worker"]), "state": "done", "trial": None, "step": True}

    s = ah.Study(ah.Space(**space), objective="loss", sampler=ah.RandomSampler(seed=0))
    s.optimize(f, n_trials=20, progress=False)
    s.ask()  # still running when saved
    return s


def test_parameters_and_metrics_never_collide_with_the_datasets_own_names():
    study = awkward_study(
        state=ah.Float(0, 1),
        worker=ah.Int(0, 5),
        duration=ah.Categorical(["a", "b"]),
        trial=ah.Float(0, 1, step=0.5),
        step=ah.Int(1, 100, log=True),
        report_step=ah.Float(1, 2),
    )
    ds = study.to_xarray()
    assert ds["state"].attrs["role"] == "trial" and ds["worker"].attrs["role"] == "trial"
    for name in ("state", "worker", "duration", "trial", "step", "report_step"):
        assert ds[f"param_{name}"].attrs["role"] == "param"
    for name in ("state", "trial", "step"):
        assert ds[f"metric_{name}"].attrs["role"] == "metric"
    for name in ("state", "trial"):
        assert ds[f"curve_{name}"].attrs["role"] == "curve"
    back = ah.Study.from_xarray(ds, name="back")
    same_trials(back, study)
    assert [t.state.value for t in back.trials][-1] == "interrupted"


def test_choices_that_mix_types_and_the_largest_ints_come_back_as_they_were():
    study = awkward_study(
        worker=ah.Int(0, 5),
        mixed=ah.Categorical([1, 1.0, 2]),
        scalars=ah.Categorical([True, 1, 1.5, "1", None]),
        big=ah.Categorical([2**62, 2**62 + 1, -(2**63)]),
        wide=ah.Int(-(2**53), 2**53),
    )
    ds = study.to_xarray()
    assert ds["param_mixed"].attrs["encoding"] == "json"
    assert ds["param_big"].dtype == np.int64
    back = ah.Study.from_xarray(ds, name="back")
    same_trials(back, study)
    got = {json.dumps(t.params["mixed"]) for t in back.trials}
    assert got == {json.dumps(t.params["mixed"]) for t in study.trials} and "1.0" in got


def test_ints_beyond_int64_are_kept_as_json_text():
    from asynchpo.results._codec import decode, encode_ints, encode_param

    spec = {"type": "int", "low": 0, "high": 10**30, "log": False, "step": 1}
    values, attrs = encode_param(spec, [10**30, 7, 2**63])
    assert attrs["encoding"] == "json" and "high" not in attrs
    assert decode("x", values, attrs, 100) == [10**30, 7, 2**63]
    steps, attrs = encode_ints([1, -(2**70)])
    assert decode("s", steps, attrs, 100) == [1, -(2**70)]


def test_reports_keep_text_bools_and_none():
    study = awkward_study(worker=ah.Int(0, 5))
    back = ah.Study.from_xarray(study.to_xarray(), name="back")
    reports = [r.metrics for t in back.trials for r in t.reports]
    assert {"loss": 0.0, "state": None, "trial": False} in reports
    assert {"loss": 1.0, "state": "ok", "trial": True} in reports
    same_trials(back, study)


def recorded_study(n_trials, n_reports):
    """A study of ``n_trials`` trials of ``n_reports`` reports each, on one global step
    counter (each report a step of its own), written to the journal directly."""
    s = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
    events, step, t = [], 0, 100.0
    for n in range(n_trials):
        events += [TrialAsked(time=t, number=n, params={"x": 0.5}), TrialStarted(time=t, number=n)]
        for seq in range(n_reports):
            metrics = {"value": 1.0 / (seq + 1)}
            events.append(TrialReported(time=t, number=n, step=step, metrics=metrics, seq=seq))
            step, t = step + 1, t + 0.5
        events.append(TrialCompleted(time=t, number=n, values={"value": n / n_trials}))
    s.journal.record(*events)
    return s


def test_curves_take_memory_in_the_number_of_reports_not_trials_times_steps():
    study = recorded_study(500, 20)  # 10,000 steps: a grid would be 500 x 10,000
    ds = study.to_xarray()
    assert ds.sizes == {"trial": 500, "report": 10_000}
    assert ds.nbytes < 1_000_000  # a grid of floats: 40 MB per metric
    assert (np.diff(ds["report_step"].values) == 1).all()
    back = ah.Study.from_xarray(ds, name="back")
    same_trials(back, study)


# -- format 1 -------------------------------------------------------------------------------


def test_a_dataset_of_format_1_still_reads():
    expected = json.loads((DATA / "format1.json").read_text())
    with xr.open_dataset(DATA / "format1.nc", engine="h5netcdf") as ds:
        assert ds.attrs["asynchpo_format"] == 1 and "step" in ds.sizes
        study = ah.Study.from_xarray(ds)
    assert study.name == "old" and study.objective == "loss"
    assert len(study.trials) == len(expected)
    for t, e in zip(study.trials, expected, strict=True):
        assert json.dumps(dict(t.params), sort_keys=True) == json.dumps(e["params"], sort_keys=True)
        assert t.state.value == ("interrupted" if e["state"] == "running" else e["state"])
        assert dict(t.values) == e["values"]
        assert [[r.step, dict(r.metrics), r.time] for r in t.reports] == e["reports"]
        assert (t.worker, t.attempts, t.asked_at, t.started_at) == (
            e["worker"],
            e["attempts"],
            e["asked_at"],
            e["started_at"],
        )
        assert e["state"] == "running" or t.finished_at == e["finished_at"]
        assert (t.failure and t.failure.value) == e["failure"]
    assert study.to_xarray().attrs["asynchpo_format"] == 2  # and it is written anew


# -- nothing let in -------------------------------------------------------------------------


def an_export(fmt):
    """A Dataset of format ``fmt`` (loaded in memory, so the test may change it)."""
    with xr.open_dataset(DATA / "format1.nc", engine="h5netcdf") as ds:
        old = ds.load()
    return old if fmt == 1 else ah.Study.from_xarray(old).to_xarray()


def names(fmt):
    """Where each thing is, in format ``fmt``."""
    if fmt == 1:
        return {"lr": "lr", "loss": "loss"}
    return {"lr": "param_lr", "loss": "metric_loss"}


def set_value(ds, var, row, value):
    values = ds[var].values.copy()
    if values.dtype.kind == "U":
        values = values.astype(object)
    values[row] = value
    ds[var] = (ds[var].dims, values, ds[var].attrs)


@pytest.mark.parametrize("fmt", [1, 2])
@pytest.mark.parametrize(
    ("var", "row", "value", "message"),
    [
        ("attempts", 2, 10**12, r"ds: trial 2 has attempts=1000000000000, not in 0\.\.10000"),
        ("attempts", 2, -1, r"ds: trial 2 has attempts=-1"),
        ("lr", 3, 5.0, r"ds: trial 3: parameter 'lr'=5\.0 is outside"),
        ("state", 2, "bogus", r"ds: trial 2 has state 'bogus', not one of \['running'"),
        ("failure", 0, "oops", r"ds: trial 0 has failure 'oops'"),
        ("asked", 1, math.nan, r"ds: trial 1: its asked time is not a finite number"),
        ("end", 4, math.nan, r"ds: trial 4: it is finished but its end time is NaN"),
        ("start", 4, math.inf, r"ds: trial 4: its start time is infinite"),
        ("loss", 5, math.nan, r"ds: trial 5 is complete but its objective 'loss' is missing"),
        ("loss", 5, math.inf, r"ds\['\w*loss'\]: row 5 is inf, not a finite number"),
        ("trial", 3, 7, r"ds: trial numbers must run 0, 1, 2, \.\.\.; got 7 at row 3"),
    ],
)
def test_a_crafted_dataset_is_refused_naming_what_is_wrong(fmt, var, row, value, message, tmp_path):
    ds = an_export(fmt)
    var = names(fmt).get(var, var)
    if var == "trial":
        ds = ds.assign_coords(trial=np.r_[np.arange(3), 7, np.arange(4, ds.sizes["trial"])])
    else:
        set_value(ds, var, row, value)
    path = tmp_path / "s.db"
    with pytest.raises(ValueError, match=message):
        ah.Study.from_xarray(ds, storage=path, name="crafted")
    assert "crafted" not in get_storage(path).studies()  # nothing was written


def test_a_parameter_outside_the_space_writes_nothing(tmp_path):
    ds = an_export(2)
    set_value(ds, "param_act", 9, "tanh")
    path = tmp_path / "s.db"
    with pytest.raises(ValueError, match=r"ds: trial 9: parameter 'act'='tanh' is not one of"):
        ah.Study.from_xarray(ds, storage=path, name="crafted")
    assert get_storage(path).studies() == []


def test_a_parameter_the_space_attribute_does_not_hold_is_refused_not_dropped(tmp_path):
    import json

    ds = an_export(2)
    spec = json.loads(ds.attrs["space"])
    dropped = sorted(spec)[0]
    del spec[dropped]
    ds.attrs["space"] = json.dumps(spec)  # its values would vanish on import
    path = tmp_path / "s.db"
    with pytest.raises(ValueError, match=f"ds: parameters '{dropped}' are not in the"):
        ah.Study.from_xarray(ds, storage=path, name="crafted")
    assert get_storage(path).studies() == []


@pytest.mark.parametrize(
    ("var", "row", "value", "message"),
    [
        ("report_time", 0, math.nan, r"ds: report 0 \(trial 1\): its time is not a finite"),
        ("report_trial", 1, 99, r"ds: report 1 is of trial 99, which ds does not hold"),
        ("report_trial", 1, -1, r"ds: report 1 is of trial -1"),
        ("param_flag", 2, "[1]", r"ds\['param_flag'\]: row 2 is \[1\], not a number, string"),
        ("param_flag", 2, "NaN", r"ds\['param_flag'\]: row 2 is not JSON"),
        ("param_flag", 2, "", r"ds: trial 2: params: missing parameter\(s\) \['flag'\]"),
        ("metric_tag", 1, "{", r"ds\['metric_tag'\]: row 1 is not JSON"),
        ("worker", 1, "w" * 10_001, r"ds\['worker'\]: row 1 is 10001 characters, over 10000"),
    ],
)
def test_crafted_reports_and_values_are_refused(var, row, value, message):
    ds = an_export(2)
    set_value(ds, var, row, value)
    with pytest.raises(ValueError, match=message):
        ah.Study.from_xarray(ds)


def test_a_report_without_a_metric_is_refused():
    ds = an_export(2)
    for var in ("curve_acc", "curve_loss"):
        set_value(ds, var, 0, math.nan)
    with pytest.raises(ValueError, match=r"ds: report 0 \(trial 1\) holds no metric"):
        ah.Study.from_xarray(ds)


def test_wrong_dims_dtypes_attributes_and_counts_are_refused():
    ds = an_export(2)
    cases = [
        (xr.Dataset(), r"ds: no 'space' attribute; not a Dataset from Study\.to_xarray"),
        (ds.assign_attrs(asynchpo_format=3), r"ds: made by a newer asynchpo \(format 3\)"),
        (ds.assign_attrs(asynchpo_format="2"), r"ds: asynchpo_format is '2', not a format"),
        (ds.assign_attrs(space="{"), r"ds: the 'space' attribute is not JSON"),
        (ds.assign_attrs(space='{"x": 1}'), r"ds: the 'space' attribute is not a space"),
        (ds.assign_attrs(direction="up"), r"ds: direction is 'up', not 'minimize'"),
        (ds.drop_vars("param_lr"), r"ds: no variable 'param_lr'"),
        (ds.assign(state=("trial", np.zeros(13))), r"ds\['state'\]: dtype float64 is not"),
        (ds.assign(attempts=("trial", np.ones(13))), r"ds\['attempts'\]: dtype float64 is not"),
        (
            ds.assign(curve_loss=(("trial",), np.ones(13))),
            r"ds\['curve_loss'\]: dims \('trial',\), not \('report',\)",
        ),
        (
            ds.assign({f"metric_m{i}": ("trial", np.ones(13)) for i in range(1001)}),
            r"ds: \d+ metrics; the most a study holds is 1000",
        ),
    ]
    for crafted, message in cases:
        with pytest.raises(ValueError, match=message):
            ah.Study.from_xarray(crafted)


def test_a_file_that_declares_a_billion_rows_is_refused_before_it_is_read(tmp_path):
    h5netcdf = pytest.importorskip("h5netcdf")
    attrs = {k: v for k, v in an_export(2).attrs.items()}
    for dims in ({"trial": 10**9}, {"trial": 13, "report": 10**9}):
        path = tmp_path / f"{len(dims)}.nc"
        with h5netcdf.File(path, "w") as f:  # the dimensions are declared, nothing written
            f.dimensions = dims
            for dim in dims:
                f.create_variable(f"{dim}_x", (dim,), "f8", chunks=(min(dims[dim], 1 << 20),))
            f.attrs.update(attrs)
        assert path.stat().st_size < 100_000
        dim, size = list(dims.items())[-1]
        with (
            xr.open_dataset(path, engine="h5netcdf") as ds,
            pytest.raises(
                ValueError, match=rf"ds: {size} along '{dim}'; the most an import takes is"
            ),
        ):
            ah.Study.from_xarray(ds)


def test_an_empty_study_exports():
    ds = ah.Study(SPACE).to_xarray()
    assert ds.sizes == {"trial": 0, "report": 0}
    assert ah.Study.from_xarray(ds).trials == []
