from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import asynchpo as ah
from asynchpo.plot import _records

pytest.importorskip("hvplot")
pytest.importorskip("xarray")

SPACE = ah.Space(x=ah.Float(1e-3, 1, log=True), k=ah.Int(1, 5), c=ah.Categorical(["a", "b"]))


def objective(p):
    if p["k"] == 5 and p["c"] == "b":
        raise ValueError("a failing corner")
    for step in range(4):
        ah.report(step, value=p["x"] * (4 - step))
    return p["x"] + 0.1 * p["k"] + (p["c"] == "a")


@pytest.fixture(scope="module")
def study():
    s = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), name="plots")
    s.optimize(objective, n_trials=60, max_concurrent=2, progress=False)
    return s


def test_history_record_is_the_running_best(study):
    r = _records.history(study.to_xarray())
    done = study.get_trials(["complete"])
    assert list(r.trial) == [t.number for t in done]
    np.testing.assert_array_equal(r.best, np.minimum.accumulate([t.value for t in done]))
    assert r.best[-1] == study.best_value == r.best_by_time[-1]
    assert (np.diff(r.seconds[r.order]) >= 0).all() and (r.seconds >= 0).all()


def test_slice_and_parallel_records(study):
    ds = study.to_xarray()
    s = _records.slices(ds)
    assert s.log == {"x": True, "k": False, "c": False} and len(s.value) == len(s.trial)
    p = _records.parallel(ds)
    assert p.scaled.shape == (len(p.value), 3) and ((p.scaled >= 0) & (p.scaled <= 1)).all()
    best = int(np.argmin(p.value))
    assert p.group[best] == "best 10%" and set(p.group) == {"best 10%", "10-50%", "worst 50%"}


def test_curves_record_and_a_bad_metric(study):
    c = _records.curves(study.to_xarray())
    n = len(study.get_trials(["complete"]))
    assert c.metric == "value" and len(c.value) == 4 * n and set(c.step) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="no learning curve of 'loss'"):
        _records.curves(study.to_xarray(), "loss")


def test_importance_matches_the_variance_shares_of_an_additive_objective(study):
    r = _records.importance(study.to_xarray())
    # objective = x + 0.1 k + [c == "a"]: additive, so first order = total = variance share
    # x log-uniform on [1e-3, 1], k uniform on 1..5, c a fair coin
    a, b = np.log(1e-3), 0.0
    ex = (np.exp(b) - np.exp(a)) / (b - a)
    ex2 = (np.exp(2 * b) - np.exp(2 * a)) / (2 * (b - a))
    var = {"x": ex2 - ex**2, "k": 0.01 * 2.0, "c": 0.25}
    share = {p: v / sum(var.values()) for p, v in var.items()}
    got = dict(zip(r.params, r.first, strict=True))
    for p in share:
        assert abs(got[p] - share[p]) < 0.08, (got, share)
    assert np.all(r.total >= r.first - 0.02)
    assert max(got, key=got.get) == "c"


def test_importance_of_a_one_parameter_space_is_all_that_parameter_s(tmp_path):
    one = ah.Study(ah.Space(x=ah.Float(0.0, 1.0)), sampler=ah.RandomSampler(seed=0))
    one.optimize(lambda p: (p["x"] - 0.3) ** 2, n_trials=15, progress=False)
    r = _records.importance(one.to_xarray())
    assert r.params == ["x"] and r.first.tolist() == [1.0] and r.total.tolist() == [1.0]
    one.plot.save(one.plot.importance(), tmp_path / "importance.html")
    flat = ah.Study(ah.Space(x=ah.Float(0.0, 1.0)), sampler=ah.RandomSampler(seed=0))
    flat.optimize(lambda p: 1.0, n_trials=5, progress=False)  # nothing to explain
    assert np.isnan(_records.importance(flat.to_xarray()).first).all()


def test_every_plot_draws_and_saves_without_a_cdn(study, tmp_path):
    import holoviews as hv

    plots = study.plot
    for i, plot in enumerate(
        [
            plots.history(),
            plots.history(by="time"),
            plots.slice(),
            plots.parallel_coordinates(),
            plots.learning_curves(),
            plots.importance(),
        ]
    ):
        assert isinstance(plot, hv.core.Dimensioned)
        path = tmp_path / f"plot{i}.html"
        plots.save(plot, path)  # renders it: a plot that cannot draw fails here
        html = path.read_text()
        assert "Bokeh" in html and "cdn.bokeh.org" not in html


def test_bad_arguments_are_named(study):
    with pytest.raises(ValueError, match="by must be"):
        study.plot.history(by="epoch")
    with pytest.raises(ValueError, match=r"params: \['nope'\]"):
        study.plot.slice(["nope"])


def test_an_empty_study_plots_without_error():
    empty = ah.Study(SPACE)
    empty.plot.history()
    r = _records.importance(empty.to_xarray())
    assert np.isnan(r.first).all()


def test_records_read_parameters_named_like_the_datasets_own_and_mixed_choices():
    space = ah.Space(state=ah.Float(0, 1), trial=ah.Categorical([1, 1.0, 2]), k=ah.Int(1, 3))
    s = ah.Study(space, sampler=ah.RandomSampler(seed=1), name="names")
    s.optimize(lambda p: p["state"] + p["k"], n_trials=30, progress=False)
    ds = s.to_xarray()
    r = _records.slices(ds)
    assert list(r.params) == ["state", "trial", "k"]
    done = s.get_trials(["complete"])
    np.testing.assert_array_equal(r.params["state"], [t.params["state"] for t in done])
    assert list(r.params["trial"]) == [json.dumps(t.params["trial"]) for t in done]
    p = _records.parallel(ds)
    np.testing.assert_allclose(p.scaled, [space.encode(t.params) for t in done])
    assert {json.dumps(t.params["trial"]) for t in done} == {"1", "1.0", "2"}


def test_learning_curves_on_a_global_step_counter_are_one_row_per_report():
    counter = itertools.count()

    def f(p):
        for _ in range(5):
            ah.report(next(counter), value=p["x"], note="text is left out")
        if p["k"] == 5:
            raise ValueError("a failing corner")
        return p["x"]

    s = ah.Study(SPACE, sampler=ah.RandomSampler(seed=2), name="global")
    s.optimize(f, n_trials=20, progress=False)
    c = _records.curves(s.to_xarray())
    rows = [
        (t.number, r.step, r.metrics["value"], t.state.value) for t in s.trials for r in t.reports
    ]
    assert list(zip(c.trial, c.step, c.value, c.state, strict=True)) == rows
    assert len(set(c.step)) == 100
    with pytest.raises(ValueError, match=r"the study reported \['note', 'value'\]"):
        _records.curves(s.to_xarray(), "loss")
    assert len(_records.curves(s.to_xarray(), "note").value) == 0
    s.plot.learning_curves()
