import numpy as np
import pytest

import asynchpo as ah
from asynchpo.samplers import CMAESSampler, History
from asynchpo.testing import SamplerContract


class TestCMAES(SamplerContract):
    def make(self, seed):
        return CMAESSampler(seed=seed)


class TestCMAESPlain(SamplerContract):
    """Without mirrored draws, the running trials still count: never drawn again."""

    uses_running = False

    def make(self, seed):
        return CMAESSampler(seed=seed, mirrored=False)


SPACE = ah.Space(a=ah.Float(-2.0, 2.0), b=ah.Float(-2.0, 2.0), c=ah.Float(-2.0, 2.0))


def _history(X, y, n_asked=None):
    X = np.asarray(X, dtype=float).reshape(-1, SPACE.dim)
    n = len(X) if n_asked is None else n_asked
    return History(SPACE, X, np.asarray(y, dtype=float), np.empty((0, SPACE.dim)), n)


def _sphere(U):
    return ((np.asarray(U) - 0.7) ** 2).sum(axis=-1)


def test_a_free_worker_gets_the_reflection_of_a_running_draw_through_the_mean():
    sampler = CMAESSampler(seed=0)
    empty = _history(np.empty((0, 3)), [])
    first = sampler.suggest(empty, np.empty((0, 3)), 1)
    second = sampler.suggest(_history(np.empty((0, 3)), [], 1), first, 1)
    # the first generation's mean is the centre of the cube
    np.testing.assert_allclose(second[0], 1.0 - first[0], atol=1e-12)
    # once the first one has finished, its reflection is no longer owed: a fresh draw
    third = sampler.suggest(_history(first, _sphere(first), 2), second, 1)
    assert not np.allclose(third[0], 1.0 - second[0])


def test_a_generation_is_told_once_popsize_results_have_come_in_whichever_were_drawn():
    sampler = CMAESSampler(seed=1, popsize=4)
    rng = np.random.default_rng(0)
    X = rng.random((11, 3))  # not drawn by the sampler: enqueued by hand, say
    sampler.suggest(_history(X[:3], _sphere(X[:3])), np.empty((0, 3)), 1)
    assert sampler.generation == 0
    sampler.suggest(_history(X[:4], _sphere(X[:4])), np.empty((0, 3)), 1)
    assert sampler.generation == 1
    sampler.suggest(_history(X, _sphere(X)), np.empty((0, 3)), 1)
    assert sampler.generation == 2


def test_a_fresh_sampler_folds_a_history_into_the_same_state_as_one_that_grew_with_it():
    rng = np.random.default_rng(3)
    X = rng.random((30, 3))
    grown, fresh = CMAESSampler(seed=5), CMAESSampler(seed=5)
    for k in range(5, 31, 5):
        grown.suggest(_history(X[:k], _sphere(X[:k])), np.empty((0, 3)), 1)
    a = grown.suggest(_history(X, _sphere(X), 40), np.empty((0, 3)), 3)
    b = fresh.suggest(_history(X, _sphere(X), 40), np.empty((0, 3)), 3)
    np.testing.assert_array_equal(a, b)
    assert grown.generation == fresh.generation == 30 // fresh.population_size


@pytest.mark.parametrize("restart", ["ipop", "bipop"])
def test_a_converged_run_restarts_elsewhere_and_ipop_doubles_the_population(restart):
    space = ah.Space(x=ah.Float(-1.0, 1.0), y=ah.Float(-1.0, 1.0))
    sampler = CMAESSampler(seed=2, restart=restart)
    study = ah.Study(space, sampler=sampler)
    study.optimize(
        lambda p: p["x"] ** 2 + p["y"] ** 2,
        n_trials=900,
        backend=ah.SimulatedBackend(n_workers=2, seed=0),
        progress=False,
    )
    assert study.best_value < 1e-6
    assert sampler.restarts >= 1
    sizes = sampler.population_sizes
    assert sizes[0] == 4 + int(3 * np.log(2))
    large = [s for s in sizes[1:] if s > sizes[0]]
    assert large and large[0] == 2 * sizes[0]
    if restart == "ipop":
        assert sizes == [sizes[0] * 2**i for i in range(len(sizes))]
    else:  # BIPOP interleaves local runs with a smaller population
        assert len(sizes) >= 3 and min(sizes[1:]) < max(sizes[1:])


def test_it_beats_random_search_on_a_rotated_ellipsoid_with_parallel_workers():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    scale = np.diag([1.0, 10.0, 100.0, 1000.0])
    space = ah.Space({f"x{i}": ah.Float(-1.0, 1.0) for i in range(4)})

    def f(p):
        x = Q @ np.array([p[f"x{i}"] - 0.3 for i in range(4)])
        return float(x @ scale @ x)

    best = {}
    for name, sampler in {"cma": CMAESSampler(seed=0), "random": ah.RandomSampler(0)}.items():
        study = ah.Study(space, sampler=sampler)
        backend = ah.SimulatedBackend(n_workers=8, seed=1)
        study.optimize(f, n_trials=300, backend=backend, progress=False)
        best[name] = study.best_value
    assert best["cma"] < best["random"] / 20


def test_x0_sets_the_first_mean():
    sampler = CMAESSampler(seed=0, sigma0=1e-3, x0={"a": 1.0, "b": -1.0, "c": 0.0})
    U = sampler.suggest(_history(np.empty((0, 3)), []), np.empty((0, 3)), 4)
    np.testing.assert_allclose(U.mean(axis=0), [0.75, 0.25, 0.5], atol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma0": 0.0}, "sigma0"),
        ({"sigma0": 2.0}, "sigma0"),
        ({"popsize": 1}, "popsize"),
        ({"popsize": 3.5}, "popsize"),
        ({"restart": "sometimes"}, "restart"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CMAESSampler(**kwargs)


def test_a_bad_x0_is_refused_naming_the_parameter():
    sampler = CMAESSampler(x0={"a": 5.0, "b": 0.0, "c": 0.0})
    with pytest.raises(ValueError, match=r"CMAESSampler\(x0=\.\.\.\): .*'a'"):
        sampler.suggest(_history(np.empty((0, 3)), []), np.empty((0, 3)), 1)
    with pytest.raises(ValueError, match=r"CMAESSampler\(x0=\.\.\.\): .*'y'"):
        CMAESSampler(x0={"y": 0.0}).suggest(_history(np.empty((0, 3)), []), np.empty((0, 3)), 1)
    with pytest.raises(TypeError, match="x0 must be a dict of parameters, got list"):
        CMAESSampler(x0=[0.5, 0.5])  # type: ignore[arg-type]
