import threading
import time

import numpy as np
import pytest

import asynchpo as ah
from asynchpo.samplers import EnsembleSampler, History
from asynchpo.samplers._ensemble import _least, _one_torch_thread, _Trainer, batch_rows
from asynchpo.samplers._stack import OPTIMIZERS, Stack, draw_specs
from asynchpo.testing import SamplerContract

torch = pytest.importorskip("torch")


class TestEnsemble(SamplerContract):
    def make(self, seed):
        return EnsembleSampler(k=3, steps=4, seed=seed)


SPACE = ah.Space({f"x{i}": ah.Float(0.0, 1.0) for i in range(3)})


def _history(X, y, n_asked=None):
    X = np.asarray(X, dtype=float)
    return History(SPACE, X, np.asarray(y, dtype=float), np.empty((0, 3)), n_asked or len(X))


def test_the_networks_differ_in_optimizer_activation_initialization_and_sparsity():
    specs = draw_specs(6, seed=0)
    assert {s.optimizer for s in specs} == set(OPTIMIZERS)
    assert len({s.activation for s in specs}) >= 3
    assert len({s.init for s in specs}) >= 2
    assert len({(s.width, s.depth) for s in specs}) >= 2
    sampler = EnsembleSampler(k=6, seed=0)
    sampler.suggest(_history(np.empty((0, 3)), []), np.empty((0, 3)), 1)
    assert len(sampler.networks) == 6 and all("sparse" in line for line in sampler.networks)


def test_every_network_sees_every_result_over_time_in_batches_of_its_own():
    n, k, window = 1000, 5, 64
    best = np.arange(16)
    seen = np.zeros((k, n), dtype=bool)
    first = batch_rows(n, k, 1, window, 0, best)
    assert len({tuple(r) for r in first}) == k  # no two networks share a batch
    for r in range(1, 2 * n // window + 2):
        rows = batch_rows(n, k, r, window, 0, best)
        assert rows.shape == (k, window + 32)
        seen[np.arange(k)[:, None], rows] = True
    assert seen.all()
    # while the results fit in a window, every network trains on all of them
    np.testing.assert_array_equal(
        batch_rows(40, k, 3, window, 0, best), np.tile(np.arange(40), (k, 1))
    )


def test_one_step_trains_every_network_and_keeps_their_masks():
    specs = draw_specs(6, seed=1)
    stack = Stack(specs, d=3, seed=1)
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(6, 50, 3, generator=gen)
    y = (X**2).sum(dim=2)
    before = stack.copy()
    losses = [stack.step(X, y) for _ in range(200)]
    assert losses[-1] < 0.5 * losses[0]
    after = stack.copy()
    moved = (after - before).abs().sum(dim=1)
    assert (moved > 0).all()  # every network, whatever its optimizer
    # masked weights (padding, sparsity) stay exactly zero
    assert (after[stack.mask == 0] == 0).all()
    # each network alone: its prediction does not depend on its siblings' rows
    one = stack.forward(X, after)[2]
    other = after.clone()
    other[[0, 1, 3, 4, 5]] = 0.0
    torch.testing.assert_close(stack.forward(X, other)[2], one)


def test_suggestions_go_to_the_minimum_of_a_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.random((80, 3))
    y = ((X - [0.2, 0.7, 0.5]) ** 2).sum(axis=1)
    sampler = EnsembleSampler(k=5, kappa=0.0, seed=0)  # no weight on disagreement
    for i in range(20):  # let it train a little on this history
        U = sampler.suggest(_history(X, y, 80 + i), np.empty((0, 3)), 1)
    assert np.abs(U[0] - [0.2, 0.7, 0.5]).max() < 0.25
    mean, spread = sampler.predict(np.array([[0.2, 0.7, 0.5], [0.95, 0.05, 0.95]]))
    assert mean[0] < mean[1] and (spread >= 0).all()


def test_it_beats_random_search_in_a_study_with_parallel_workers():
    space = ah.Space({f"x{i}": ah.Float(-1.0, 1.0) for i in range(4)})

    def f(p):
        return sum((p[f"x{i}"] - 0.3 * i + 0.4) ** 2 for i in range(4))

    best = {}
    for name, sampler in {
        "nn": EnsembleSampler(k=4, seed=0),
        "random": ah.RandomSampler(0),
    }.items():
        study = ah.Study(space, sampler=sampler)
        study.optimize(f, n_trials=80, backend=ah.SimulatedBackend(8, seed=0), progress=False)
        best[name] = study.best_value
    assert best["nn"] < best["random"] / 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k"),
        ({"steps": 0}, "steps"),
        ({"window": 1}, "window"),
        ({"kappa": -1.0}, "kappa"),
        ({"n_initial": 0}, "n_initial"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnsembleSampler(**kwargs)


def _until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_without_a_seed_the_networks_train_between_suggestions_in_the_background():
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 3)), rng.random(200)
    sampler = EnsembleSampler(k=3, steps=5)
    sampler.suggest(_history(X, y), np.empty((0, 3)), 1)
    # the suggestion returned before its training: it goes on in the background
    _until(lambda: sampler.steps_trained == 5)
    time.sleep(0.2)
    assert sampler.steps_trained == 5  # exactly the steps owed, then it rests


def test_with_a_seed_each_suggestion_trains_first_and_runs_are_reproducible():
    rng = np.random.default_rng(1)
    X, y = rng.random((60, 3)), rng.random(60)

    def run():
        s = EnsembleSampler(k=3, steps=4, seed=5)
        out = [s.suggest(_history(X, y, 60 + i), np.empty((0, 3)), 1) for i in range(3)]
        assert s.steps_trained == 12
        return np.vstack(out)

    np.testing.assert_array_equal(run(), run())


def test_the_trainer_holds_off_during_a_suggestion_and_hands_errors_on():
    done = []
    trainer = _Trainer(lambda: done.append(1))
    with trainer.paused():
        trainer.owe(3)
        time.sleep(0.2)
        assert not done  # nothing runs while a suggestion is being made
    _until(lambda: len(done) == 3)
    with trainer.paused():
        trainer.owe(10, cap=4)  # old debt beyond the cap is let go
    _until(lambda: len(done) == 7)
    time.sleep(0.3)
    assert len(done) == 7

    def boom():
        raise ValueError("bad batch")

    failing = _Trainer(boom)
    failing.owe(1)
    _until(lambda: not failing._running)
    with pytest.raises(RuntimeError, match=r"training failed.*bad batch"):
        failing.owe(1)  # the next suggestion's


def test_one_torch_thread_in_a_suggestion_thread_leaves_the_main_thread_alone():
    before = torch.get_num_threads()
    seen = {}

    def suggestion():  # suggestions are computed off the caller's thread
        start = torch.get_num_threads()
        with _one_torch_thread():
            seen["inside"] = torch.get_num_threads()
        seen["after"] = torch.get_num_threads() == start

    t = threading.Thread(target=suggestion)
    t.start()
    t.join()
    assert seen["inside"] == 1 and seen["after"]
    assert torch.get_num_threads() == before


def test_least_picks_the_smallest_in_order():
    rng = np.random.default_rng(3)
    for n in (5, 16, 100, 5000):
        s = rng.random(n)
        np.testing.assert_array_equal(_least(s, 16), np.argsort(s)[:16])


def test_descent_keeps_the_best_point_of_each_path_at_each_starts_own_step():
    stack = Stack(draw_specs(2, seed=0), d=3, seed=0)
    # a bowl at 0.5 instead of the networks: a step of 0.12 from 0.01 away overshoots
    stack.forward = lambda X, theta=None: ((X - 0.5) ** 2).sum(dim=2)  # type: ignore[method-assign]
    start = torch.tensor([0.51, 0.5, 0.5])
    starts = start.expand(2, 3, 3).clone()
    ends, values = stack.descend(starts, 8, torch.tensor([0.12, 0.03, 0.0]), None)
    off = (ends - 0.5).abs().amax(dim=2)
    # the path of full steps passes 0.005 from the minimum and ends 0.01 from it, where
    # it started: the nearest point is kept, not the last
    assert (off[:, 0] < 0.006).all()
    assert (off[:, 1] < 0.002).all()  # short steps: nearer still
    torch.testing.assert_close(ends[:, 2], starts[:, 2])  # no step: where it started
    torch.testing.assert_close(values, ((ends - 0.5) ** 2).sum(dim=2))


def test_the_explorers_keep_off_the_best_results_neighbourhood(monkeypatch):
    from asynchpo.samplers import _ensemble

    rng = np.random.default_rng(0)
    X = rng.random((80, 3))
    c = np.array([0.3, 0.6, 0.4])
    y = ((X - c) ** 2).sum(axis=1)
    best = X[np.argmin(y)]

    def explorers(tabu):
        monkeypatch.setattr(_ensemble, "_TABU", tabu)
        sampler = EnsembleSampler(k=3, seed=0)
        out = []
        for n_asked in range(80, 110):
            U = sampler.suggest(_history(X, y, n_asked), np.empty((0, 3)), 1)
            if n_asked % 3 == 2:  # network 2 of 3: the one that explores
                out.append(np.sqrt(((U[0] - best) ** 2).mean()))
        return np.array(out)

    tabu = _ensemble._TABU
    assert (explorers(tabu) >= tabu).all()
    assert (explorers(0.0) < tabu).any()  # without it, they end on its rim
