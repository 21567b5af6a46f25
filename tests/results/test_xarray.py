from __future__ import annotations

import math

import numpy as np
import pytest

import asynchpo as ah

xr = pytest.importorskip("xarray")

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


def test_layout(study):
    ds = study.to_xarray()
    assert ds.sizes == {"trial": 30, "step": 3}
    assert ds["lr"].attrs == {"role": "param", "type": "float", "low": 1e-4, "high": 0.1, "log": 1}
    assert ds["q"].attrs["step"] == 0.25 and ds["depth"].dtype == np.int64
    assert set(ds["act"].values) <= {"relu", "gelu"}
    assert ds["loss"].attrs["role"] == "metric" and ds["tag"].attrs["encoding"] == "json"
    t = study.best_trial
    assert ds["loss"].sel(trial=t.number).item() == t.value
    failed = [t.number for t in study.get_trials(["failed"])]
    assert all(math.isnan(ds["loss"].sel(trial=n).item()) for n in failed)
    assert ds["failure"].sel(trial=failed[0]).item() == "error"
    assert "too deep" in ds["error_message"].sel(trial=failed[0]).item()
    curve = ds["curve_loss"].sel(trial=t.number).values
    np.testing.assert_allclose(curve, [t.params["lr"] * 3, t.params["lr"] * 2, t.params["lr"]])
    assert (ds["duration"] >= 0).all() and ds["worker"].values[0] != ""


def test_netcdf_and_zarr_round_trips_lose_nothing(study, tmp_path):
    ds = study.to_xarray()
    ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "s.nc", engine="h5netcdf") as back:
        xr.testing.assert_identical(back.load(), ds)
    ds.to_zarr(tmp_path / "s.zarr", consolidated=False)
    with xr.open_zarr(tmp_path / "s.zarr", consolidated=False) as back:
        xr.testing.assert_identical(back.load(), ds)


def test_a_study_rebuilt_from_a_file_is_the_same_study(study, tmp_path):
    ds = study.to_xarray()
    ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "s.nc", engine="h5netcdf") as back:
        again = ah.Study.from_xarray(back.load(), storage=tmp_path / "s.db", name="again")
    xr.testing.assert_identical(again.to_xarray().drop_attrs(), ds.drop_attrs())
    assert again.best_params == study.best_params and again.best_value == study.best_value
    for a, b in zip(again.trials, study.trials, strict=True):
        assert (a.params, a.state, a.failure, a.worker) == (b.params, b.state, b.failure, b.worker)
        assert [r.metrics for r in a.reports] == [r.metrics for r in b.reports]
    # and it goes on from there
    again.optimize(objective, n_trials=2, progress=False)
    assert len(again.trials) == 32


def test_bad_datasets_are_refused():
    with pytest.raises(ValueError, match=r"not a Dataset from Study\.to_xarray"):
        ah.Study.from_xarray(xr.Dataset())


def test_an_empty_study_exports():
    ds = ah.Study(SPACE).to_xarray()
    assert ds.sizes["trial"] == 0 and ah.Study.from_xarray(ds).trials == []
