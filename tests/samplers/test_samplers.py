from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

import asynchpo as ah
from asynchpo.samplers import GridSampler, History, RandomSampler, SobolSampler
from asynchpo.testing import SamplerContract


class TestRandom(SamplerContract):
    def make(self, seed):
        return RandomSampler(seed=seed)


class TestSobol(SamplerContract):
    def make(self, seed):
        return SobolSampler(seed=seed)


class TestGrid(SamplerContract):
    def make(self, seed):
        return GridSampler(n_points=3, shuffle=seed is not None, seed=seed)


def _empty(space, n_asked=0):
    d = space.dim
    return History(space, np.empty((0, d)), np.empty(0), np.empty((0, d)), n_asked)


def test_sobol_is_scipys_scrambled_sequence_and_continues_after_a_resume():
    space = ah.Space(a=ah.Float(0, 1), b=ah.Float(0, 1))
    want = qmc.Sobol(2, scramble=True, rng=np.random.default_rng(7)).random(8)
    sampler = SobolSampler(seed=7)
    got = np.vstack(
        [
            sampler.suggest(_empty(space, 0), np.empty((0, 2)), 4),
            sampler.suggest(_empty(space, 4), np.empty((0, 2)), 4),
        ]
    )
    np.testing.assert_allclose(got, want)
    resumed = SobolSampler(seed=7).suggest(_empty(space, 4), np.empty((0, 2)), 4)
    np.testing.assert_allclose(resumed, want[4:])


def test_random_points_depend_on_seed_and_position_only():
    space = ah.Space(a=ah.Float(0, 1), b=ah.Float(0, 1))
    none = np.empty((0, 2))
    a = RandomSampler(seed=1).suggest(_empty(space, 10), none, 3)
    b = RandomSampler(seed=1).suggest(_empty(space, 10), none, 3)
    np.testing.assert_array_equal(a, b)
    # asked one at a time or in a batch, trial 11 gets the same point
    c = RandomSampler(seed=1).suggest(_empty(space, 11), none, 2)
    np.testing.assert_array_equal(c, a[1:])
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(a, RandomSampler(seed=2).suggest(_empty(space, 10), none, 3))


def test_a_seeded_random_study_is_the_same_whatever_order_trials_finish_in():
    space = ah.Space(x=ah.Float(0, 1), k=ah.Int(1, 5))

    def run():
        study = ah.Study(space, sampler=RandomSampler(seed=3))
        study.optimize(lambda p: p["x"] + p["k"], n_trials=24, max_concurrent=3, progress=False)
        return {t.number: t.params for t in study.get_trials()}

    assert run() == run()


def test_grid_visits_every_point_once_then_the_study_stops():
    space = ah.Space(x=ah.Int(0, 2), act=ah.Categorical(["a", "b"]), lr=ah.Float(0.1, 1.0))
    study = ah.Study(space, sampler=GridSampler(values={"lr": [0.1, 1.0]}))
    study.optimize(
        lambda p: p["x"] + p["lr"] + (p["act"] == "b"),
        n_trials=100,
        backend=ah.SimulatedBackend(n_workers=5, seed=0),
        progress=False,
    )
    seen = [tuple(t.params.values()) for t in study.trials]
    assert len(seen) == 12 and len(set(seen)) == 12
    assert study.best_params == {"x": 0, "act": "a", "lr": 0.1}


def test_grid_arguments_are_checked():
    with pytest.raises(ValueError, match=r"values\['x'\] must be a non-empty list"):
        GridSampler(values={"x": []})
    with pytest.raises(ValueError, match="n_points must be an integer >= 1"):
        GridSampler(n_points=0)
    study = ah.Study(ah.Space(x=ah.Int(0, 2)), sampler=GridSampler(values={"y": [1]}))
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['y'\]"):
        study.ask()
    study = ah.Study(ah.Space(x=ah.Int(0, 2)), sampler=GridSampler(values={"x": [5]}))
    with pytest.raises(ValueError, match="'x'=5 is outside"):
        study.ask()
