import numpy as np
import pytest

import asynchpo as ah
from asynchpo.samplers import History, TPESampler
from asynchpo.testing import SamplerContract


class TestTPE(SamplerContract):
    def make(self, seed):
        return TPESampler(seed=seed)


SPACE = ah.Space(a=ah.Float(0.0, 1.0), b=ah.Float(0.0, 1.0))


def _history(X, y, n_asked=None, failed=None):
    X = np.asarray(X, dtype=float).reshape(-1, 2)
    failed = np.empty((0, 2)) if failed is None else np.asarray(failed, dtype=float)
    return History(SPACE, X, np.asarray(y, dtype=float), failed, n_asked or len(X) + len(failed))


def test_points_go_where_the_good_trials_are():
    rng = np.random.default_rng(0)
    X = rng.random((60, 2))
    y = ((X - [0.2, 0.8]) ** 2).sum(axis=1)
    U = TPESampler(seed=0).suggest(_history(X, y), np.empty((0, 2)), 8)
    assert np.median(np.abs(U - [0.2, 0.8]).max(axis=1)) < 0.15


def test_running_trials_near_the_best_push_the_next_points_away():
    rng = np.random.default_rng(1)
    X = rng.random((40, 2))
    y = ((X - 0.5) ** 2).sum(axis=1)
    running = np.full((12, 2), 0.5) + rng.normal(scale=0.02, size=(12, 2))
    alone = TPESampler(seed=3).suggest(_history(X, y), np.empty((0, 2)), 6)
    crowded = TPESampler(seed=3).suggest(_history(X, y), running, 6)
    near = lambda U: np.abs(U - 0.5).max(axis=1).mean()  # noqa: E731
    assert near(crowded) > near(alone)


def test_uniform_points_until_n_startup_trials_are_complete():
    sampler = TPESampler(seed=0, n_startup=5)
    X = np.array([[0.1, 0.1]] * 4) + np.arange(4)[:, None] * 1e-3
    U = sampler.suggest(_history(X, np.arange(4.0)), np.empty((0, 2)), 200)
    assert np.abs(U.mean(axis=0) - 0.5).max() < 0.06  # not drawn towards the trials


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_startup": -1}, "n_startup"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"n_candidates": 2.5}, "n_candidates"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TPESampler(**kwargs)
