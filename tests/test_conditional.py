"""Conditional spaces: a parameter active only when others take given values."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

import asynchpo as ah
from asynchpo.samplers import (
    CMAESSampler,
    EnsembleSampler,
    GPSampler,
    GridSampler,
    PortfolioSampler,
    RandomSampler,
    SobolSampler,
    TPESampler,
)


def space():
    return ah.Space(
        optimizer=ah.Categorical(["sgd", "adam", "rmsprop"]),
        lr=ah.Float(1e-4, 1e-1, log=True),
        momentum=ah.Float(0.0, 0.99, when={"optimizer": "sgd"}),
        nesterov=ah.Categorical([True, False], when={"optimizer": "sgd"}),
        dampening=ah.Float(0.0, 0.5, when={"nesterov": False}),  # nested: only under sgd
        beta2=ah.Float(0.9, 0.9999, when={"optimizer": ["adam", "rmsprop"]}),
        layers=ah.Int(1, 3),
        width2=ah.Int(8, 64, log=True, when={"layers": [2, 3]}),
    )


def active(p):
    """Which parameters a valid set holds, derived by hand."""
    names = {"optimizer", "lr", "layers"}
    if p["optimizer"] == "sgd":
        names |= {"momentum", "nesterov"}
        if p["nesterov"] is False:
            names.add("dampening")
    else:
        names.add("beta2")
    if p["layers"] >= 2:
        names.add("width2")
    return names


def objective(p):
    extra = p.get("momentum", 0.5) + p.get("dampening", 0.0) + p.get("beta2", 0.95)
    return (math.log10(p["lr"]) + 2) ** 2 + extra + 0.1 * p["layers"]


def test_decode_drops_inactive_parameters_and_round_trips():
    s = space()
    rng = np.random.default_rng(0)
    seen = set()
    for p in s.sample(rng, 400):
        assert set(p) == active(p), p
        assert s.check(p) == p
        assert s.decode(s.encode(p)) == p
        seen.add(frozenset(p))
    assert len(seen) == 6  # every combination of branches is reached


def test_inactive_coordinates_encode_to_one_value_whatever_the_cube_held():
    s = space()
    rng = np.random.default_rng(1)
    U = rng.random((200, s.dim))
    for u in U:
        p = s.decode(u)
        v = s.encode(p)
        w = s.encode(s.decode(np.where(np.isin(s.names, list(p)), u, rng.random(s.dim))))
        np.testing.assert_array_equal(v, w)  # inactive coordinates are imputed alike
    canon = s.canonical(U)
    for u, c in zip(U, canon, strict=True):
        np.testing.assert_allclose(s.encode(s.decode(c)), s.encode(s.decode(u)))
        np.testing.assert_allclose(s.canonical(c[None])[0], c)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"optimizer": "adam", "lr": 0.01, "layers": 1}, r"missing parameter\(s\) \['beta2'\]"),
        (
            {"optimizer": "adam", "lr": 0.01, "layers": 1, "beta2": 0.99, "momentum": 0.5},
            r"'momentum' is inactive.*optimizer",
        ),
        (
            {
                "optimizer": "sgd",
                "lr": 0.01,
                "layers": 1,
                "momentum": 0.5,
                "nesterov": True,
                "dampening": 0.1,
            },
            r"'dampening' is inactive.*nesterov",
        ),
        (  # the parent is what is missing: its child is not called inactive
            {"lr": 0.01, "layers": 1, "momentum": 0.5, "nesterov": False, "dampening": 0.1},
            r"missing parameter\(s\) \['optimizer'\]$",
        ),
    ],
)
def test_check_asks_for_exactly_the_active_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        space().check(params)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ah.Space(a=ah.Float(0, 1, when={"b": 1})), r"'a'.*unknown parameter 'b'"),
        (
            lambda: ah.Space(c=ah.Categorical(["x", "y"]), a=ah.Float(0, 1, when={"c": "z"})),
            r"'a'.*'c' never takes 'z'",
        ),
        (
            lambda: ah.Space(k=ah.Int(0, 3), a=ah.Float(0, 1, when={"k": [1, 7]})),
            r"'a'.*'k' never takes 7",
        ),
        (
            lambda: ah.Space(
                a=ah.Categorical([0, 1], when={"b": 1}), b=ah.Categorical([0, 1], when={"a": 1})
            ),
            r"cycle.*'a'.*'b'",
        ),
        (lambda: ah.Space(a=ah.Categorical([0, 1], when={"a": 1})), r"'a'.*itself"),
        (
            lambda: ah.Space(x=ah.Float(0, 1), a=ah.Float(0, 1, when={"x": 0.5})),
            r"'a'.*'x' takes continuous values",
        ),
        (
            lambda: ah.Space(c=ah.Categorical(["x"]), a=ah.Float(0, 1, when={"c": []})),
            r"'a'.*no value",
        ),
    ],
)
def test_bad_conditions_are_refused_when_the_space_is_built(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    ("when", "match"),
    [({"": 1}, "when"), ("optimizer", "when"), ({"c": [[1]]}, "when")],
)
def test_bad_when_arguments_are_refused_naming_them(when, match):
    with pytest.raises((TypeError, ValueError), match=match):
        ah.Float(0, 1, when=when)


def test_specs_round_trip_and_unconditional_specs_are_unchanged():
    s = space()
    spec = json.loads(json.dumps(s.to_spec()))
    assert ah.Space.from_spec(spec) == s
    assert spec["momentum"]["when"] == {"optimizer": ["sgd"]}
    assert "when" not in ah.Float(0, 1).to_spec()
    spec["momentum"]["when"] = {"optimizer": ["nadam"]}
    with pytest.raises(ValueError, match="momentum"):
        ah.Space.from_spec(spec)


SAMPLERS = {
    "random": lambda: RandomSampler(seed=0),
    "sobol": lambda: SobolSampler(seed=0),
    "gp": lambda: GPSampler(seed=0, n_initial=6),
    "tpe": lambda: TPESampler(seed=0, n_startup=6),
    "cmaes": lambda: CMAESSampler(seed=0, popsize=6),
    "ensemble": lambda: EnsembleSampler(seed=0, k=2, n_initial=6),
    "portfolio": lambda: PortfolioSampler(seed=0),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_runs_a_conditional_study(name):
    study = ah.Study(space(), sampler=SAMPLERS[name]())
    study.optimize(
        objective, n_trials=24, backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False
    )
    trials = study.get_trials(["complete"])
    assert len(trials) == 24
    for t in trials:
        assert set(t.params) == active(t.params)
        assert not any(isinstance(v, float) and math.isnan(v) for v in t.params.values())


def test_a_grid_runs_each_distinct_configuration_once():
    s = ah.Space(
        opt=ah.Categorical(["sgd", "adam"]),
        momentum=ah.Categorical([0.0, 0.9], when={"opt": "sgd"}),
        depth=ah.Int(1, 2),
    )
    study = ah.Study(s, sampler=GridSampler())
    study.optimize(
        lambda p: p["depth"], n_trials=20, backend=ah.SimulatedBackend(n_workers=3), progress=False
    )
    configs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(configs) == len(set(configs)) == 6  # sgd x 2 momenta x 2 depths + adam x 2


def test_parallel_draws_spread_over_the_distinct_configurations():
    s = ah.Space(
        opt=ah.Categorical(["sgd", "adam"]),
        momentum=ah.Categorical([0.0, 0.5, 0.9], when={"opt": "sgd"}),
    )
    study = ah.Study(s, sampler=RandomSampler(seed=0))
    trials = [study.ask() for _ in range(4)]  # 4 distinct: sgd x 3 and adam
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4


def test_round_trip_through_sqlite_load_and_xarray(tmp_path):
    path = tmp_path / "cond.db"
    study = ah.Study(space(), storage=path, name="c", sampler=RandomSampler(seed=3))
    study.optimize(
        objective, n_trials=30, backend=ah.SimulatedBackend(n_workers=4, seed=1), progress=False
    )
    before = {t.number: dict(t.params) for t in study.trials}
    study.storage.close()
    loaded = ah.Study.load("c", storage=path, sampler=RandomSampler(seed=4))
    assert {t.number: dict(t.params) for t in loaded.trials} == before
    assert loaded.space == space()
    loaded.optimize(objective, n_trials=5, backend=ah.SimulatedBackend(n_workers=2), progress=False)

    ds = loaded.to_xarray()
    assert ds["param_nesterov"].attrs.get("encoding") == "json"
    momentum = ds["param_momentum"].values
    sgd = ds["param_optimizer"].values == "sgd"
    assert np.isnan(momentum[~sgd]).all() and not np.isnan(momentum[sgd]).any()
    nc = tmp_path / "cond.nc"
    ds.to_netcdf(nc)
    import xarray as xr

    with xr.open_dataset(nc) as back:
        again = ah.Study.from_xarray(back.load())
    assert {t.number: dict(t.params) for t in again.trials} == {
        t.number: dict(t.params) for t in loaded.trials
    }


def test_plots_and_the_table_draw_inactive_parameters_as_missing(tmp_path):
    pytest.importorskip("hvplot")
    study = ah.Study(space(), sampler=RandomSampler(seed=5))
    study.optimize(objective, n_trials=20, backend=ah.SimulatedBackend(n_workers=4), progress=False)
    from asynchpo.plot import _records

    r = _records.slices(study.to_xarray())
    sgd = np.array([t.params["optimizer"] == "sgd" for t in study.get_trials(["complete"])])
    assert np.isnan(np.asarray(r.params["momentum"], dtype=float)[~sgd]).all()
    for name in ("slice", "parallel_coordinates", "importance"):
        study.plot.save(getattr(study.plot, name)(), tmp_path / f"{name}.html")
        assert (tmp_path / f"{name}.html").stat().st_size > 1000


def test_all_configurations_of_a_small_discrete_space_are_found():
    s = ah.Space(
        a=ah.Categorical(["x", "y"]),
        b=ah.Int(0, 2, when={"a": "x"}),
        c=ah.Categorical([1, 2], when={"b": [1, 2]}),
    )
    expect = {(("a", "y"),)}
    for b, c in itertools.product(range(3), (1, 2)):
        expect.add(tuple(sorted({"a": "x", "b": b, **({"c": c} if b else {})}.items())))
    study = ah.Study(s, sampler=RandomSampler(seed=0))
    got = {tuple(sorted(study.ask().params.items())) for _ in range(len(expect))}
    assert got == expect


def test_pbt_copies_into_a_conditional_space_keep_exactly_the_active_parameters():
    from asynchpo.schedulers import Progress

    s = ah.PBT(perturbation_interval=1, quantile=0.25, resample_probability=0.5, seed=2)
    sp = space()
    s.on_study(sp)
    rng = np.random.default_rng(0)
    params = {n: sp.decode(rng.random(sp.dim)) for n in range(8)}
    for n in range(8):
        s.on_start(n, params[n])
    seen = set()
    for n in range(8):
        s.on_report(Progress(n, params[n], 1, 1.0, float(n), {}))
    for _ in range(20):
        proposal = s.propose()
        if proposal is None:
            break
        assert set(proposal.params) == active(proposal.params)
        seen.add(proposal.params["optimizer"])
        number = max(params) + 1
        params[number] = proposal.params
        s.on_start(number, proposal.params, parent=proposal.parent)
        s.on_report(Progress(number, proposal.params, 2, 2.0, 99.0, {}))
    assert seen


def test_the_command_line_table_leaves_inactive_parameters_blank(tmp_path, capsys):
    from asynchpo.cli import main

    path = tmp_path / "cond.db"
    study = ah.Study(space(), storage=path, name="c", sampler=RandomSampler(seed=3))
    study.optimize(objective, n_trials=8, backend=ah.SimulatedBackend(n_workers=2), progress=False)
    study.storage.close()
    assert main(["show", str(path), "c"]) == 0
    out = capsys.readouterr().out
    assert "momentum" in out and "beta2" in out
