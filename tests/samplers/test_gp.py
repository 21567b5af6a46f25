from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import asynchpo as ah
import asynchpo.samplers._gp as gp_module
from asynchpo.samplers import GPSampler, History
from asynchpo.surrogate._child import Child
from asynchpo.testing import MIXED, SamplerContract


class TestGP(SamplerContract):
    def make(self, seed):
        return GPSampler(seed=seed, n_initial=5)


class TestGPBeliever(SamplerContract):
    def make(self, seed):
        return GPSampler(seed=seed, n_initial=5, pending="believer")


class TestGPThompson(SamplerContract):
    def make(self, seed):
        return GPSampler(seed=seed, n_initial=5, acquisition="thompson")


def _history(space, n, seed=0, f=None):
    rng = np.random.default_rng(seed)
    X = np.array([space.encode(p) for p in space.sample(rng, n)]).reshape(n, space.dim)
    y = f(X) if f else np.sin(5 * X[:, 0]) + X[:, 1 % space.dim]
    return History(space, X, y, np.empty((0, space.dim)), n)


SPACE3 = ah.Space(a=ah.Float(0, 1), b=ah.Float(0, 1), c=ah.Float(0, 1))


@pytest.mark.parametrize(
    "acquisition, how",
    [("log_ei", "fantasies"), ("log_ei", "believer"), ("thompson", None), ("ucb", None)],
)
def test_no_duplicates_among_32_pending_trials(acquisition, how):
    hist = _history(SPACE3, 30)
    kwargs = {"pending": how} if how else {}
    sampler = GPSampler(seed=0, acquisition=acquisition, **kwargs)
    pending = np.empty((0, 3))
    for _ in range(32):  # one suggestion at a time, each one then running
        u = sampler.suggest(hist, pending, 1)
        pending = np.vstack([pending, u])
    dist = np.sqrt(((pending[:, None] - pending[None]) ** 2).sum(-1))
    dist[np.diag_indices(32)] = np.inf
    assert dist.min() >= 0.999e-3, "two workers were sent to the same place"
    obs = np.sqrt(((pending[:, None] - hist.X[None]) ** 2).sum(-1))
    assert obs.min() > 1e-6
    batch = GPSampler(seed=0, acquisition=acquisition, **kwargs).suggest(hist, np.empty((0, 3)), 32)
    dist = np.sqrt(((batch[:, None] - batch[None]) ** 2).sum(-1))
    dist[np.diag_indices(32)] = np.inf
    assert batch.shape == (32, 3) and dist.min() >= 0.999e-3


def test_pending_points_change_the_suggestion():
    hist = _history(SPACE3, 30)
    free = GPSampler(seed=0).suggest(hist, np.empty((0, 3)), 1)
    busy = GPSampler(seed=0).suggest(hist, free, 1)
    assert np.abs(free - busy).max() >= 0.999e-3


def test_discrete_spaces_are_never_suggested_twice():
    space = ah.Space(k=ah.Int(0, 3), c=ah.Categorical(["a", "b"]))  # 8 points in all
    study = ah.Study(space, sampler=GPSampler(seed=0, n_initial=2))
    study.optimize(
        lambda p: p["k"] + (p["c"] == "b"),
        n_trials=8,
        progress=False,
        backend=ah.SimulatedBackend(n_workers=3, seed=0),
    )
    seen = [tuple(t.params.values()) for t in study.trials]
    assert len(set(seen)) == 8


def test_failed_duplicate_and_constant_results_do_not_break_it():
    def objective(p):
        if p["a"] > 0.8:
            raise RuntimeError("diverged")
        return 1.0  # constant

    study = ah.Study(SPACE3, sampler=GPSampler(seed=0, n_initial=4))
    study.add_trial({"a": 0.5, "b": 0.5, "c": 0.5}, 1.0)
    study.add_trial({"a": 0.5, "b": 0.5, "c": 0.5}, 1.0)
    study.optimize(
        objective, n_trials=25, backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False
    )
    assert len(study.trials) == 27
    failed = study.get_trials(["failed"])
    assert failed and all(t.params["a"] > 0.8 for t in failed)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_it_optimizes_in_both_directions(direction):
    sign = 1 if direction == "minimize" else -1
    space = ah.Space(x=ah.Float(-2, 2), y=ah.Float(-2, 2))
    study = ah.Study(space, direction=direction, sampler=GPSampler(seed=1))
    study.optimize(
        lambda p: sign * ((p["x"] - 0.5) ** 2 + (p["y"] + 1) ** 2),
        n_trials=30,
        backend=ah.SimulatedBackend(n_workers=4, seed=0),
        progress=False,
    )
    assert abs(study.best_params["x"] - 0.5) < 0.1 and abs(study.best_params["y"] + 1) < 0.1


def test_past_max_points_the_model_holds_the_best_half_and_a_spread_of_the_rest():
    f = lambda X: ((X - 0.3) ** 2).sum(axis=1)  # noqa: E731
    history = _history(SPACE3, 300, seed=2, f=f)
    sampler = GPSampler(seed=0, max_points=40)
    u = sampler.suggest(history, np.empty((0, 3)), 1)
    assert u.shape == (1, 3)
    held = sampler._post.y  # warped values of the rows it is conditioned on
    assert len(held) == 40
    # the 20 best trials are all in it: the warp keeps order, so they are its 20 least
    mean = sampler.forecast(history.X[np.argsort(history.y)[:20]])
    assert mean is not None and len(mean) == 20
    X_held = sampler._post.X
    best = sampler._features(history.X[np.argsort(history.y)[:20]])
    assert all((np.abs(X_held - b).max(axis=1) < 1e-12).any() for b in best)
    # and the rest spread over the ranks: the worst trial too
    worst = sampler._features(history.X[[np.argmax(history.y)]])
    assert (np.abs(X_held - worst).max(axis=1) < 1e-12).any()


def test_a_capped_model_still_finds_the_optimum():
    space = ah.Space(x=ah.Float(-2, 2), y=ah.Float(-2, 2))
    study = ah.Study(space, sampler=GPSampler(seed=1, max_points=20))
    study.optimize(
        lambda p: (p["x"] - 0.5) ** 2 + (p["y"] + 1) ** 2,
        n_trials=60,
        backend=ah.SimulatedBackend(n_workers=4, seed=0),
        progress=False,
    )
    assert abs(study.best_params["x"] - 0.5) < 0.05 and abs(study.best_params["y"] + 1) < 0.05


def test_seeded_runs_are_reproducible_refits_included():
    def run():
        study = ah.Study(SPACE3, sampler=GPSampler(seed=3))
        study.optimize(
            lambda p: (p["a"] - 0.3) ** 2 + p["b"] * p["c"],
            n_trials=40,
            backend=ah.SimulatedBackend(n_workers=5, seed=3),
            progress=False,
        )
        return [tuple(t.params.values()) for t in study.trials]

    assert run() == run()


# a job for the fitting process that ends once a file exists (or after 120 s): while it
# runs, a fit submitted after it cannot have started
_WAIT_FOR_FILE = (
    "import os, sys, time\n"
    "for _ in range(2400):\n"
    "    if os.path.exists(sys.argv[1]):\n"
    "        break\n"
    "    time.sleep(0.05)\n"
)


def test_suggest_never_waits_for_a_fit_in_the_fitting_process(tmp_path):
    release = tmp_path / "release"
    fitter = gp_module.child()
    blocker = fitter.submit(subprocess.call, [sys.executable, "-c", _WAIT_FOR_FILE, str(release)])
    try:
        sampler = GPSampler(seed=None, prefetch=False)
        hist = _history(SPACE3, 30)
        sampler.suggest(hist, np.empty((0, 3)), 1)  # launches a fit, queued behind the blocker
        job = sampler._job
        assert job is not None and job in fitter._futures.values(), "not in the fitting process"
        for _ in range(2):
            sampler.suggest(hist, np.empty((0, 3)), 1)
        # every suggest returned while the fit could not even start: none waited for it
        assert not blocker.done() and not job.done() and sampler._job is job
    finally:
        release.touch()
    assert blocker.result(timeout=180) == 0
    fitted = job.result(timeout=180)[1]
    sampler.suggest(hist, np.empty((0, 3)), 1)
    assert sampler._job is None and sampler._hyper is fitted  # swapped in once ready


def test_fits_run_in_another_process_and_fall_back_to_a_thread_when_it_dies(monkeypatch):
    FX, y = np.random.default_rng(0).random((20, 3)), np.random.default_rng(1).random(20)
    _, hyper = gp_module._submit_fit(FX, y, None).result(timeout=60)
    assert np.isfinite(hyper.lengthscales).all()
    dead = Child()
    dead._dead = True  # as after the process was killed
    monkeypatch.setattr(gp_module, "child", lambda: dead)
    _, hyper2 = gp_module._submit_fit(FX, y, None).result(timeout=60)  # in a thread
    np.testing.assert_allclose(hyper2.lengthscales, hyper.lengthscales, rtol=1e-6)


def test_prefetch_hands_out_the_point_computed_in_the_background():
    hist = _history(SPACE3, 30)
    pending = np.random.default_rng(5).random((6, 3))
    sampler = GPSampler(seed=0)  # 6 running: prefetch is on
    first = sampler.suggest(hist, pending, 1)
    (expected,) = sampler._producer.queued()
    second = sampler.suggest(hist, np.vstack([pending, first]), 1)
    np.testing.assert_array_equal(second[0], expected)
    assert np.abs(second - first).max() >= 0.999e-3
    # a prefetched point someone else took meanwhile is not handed out twice
    (taken,) = sampler._producer.queued()
    third = sampler.suggest(hist, np.vstack([pending, first, second, taken[None, :]]), 1)
    assert np.abs(third - taken).max() > 1e-9
    # with many trials running, still one point is kept ready (a deeper queue hands out
    # points blind to more results); a burst of 4 free workers gets it, then 3 computed
    many = GPSampler(seed=0)
    running = np.random.default_rng(6).random((31, 3))
    handed = many.suggest(hist, running, 1)
    queued = many._producer.queued()
    assert len(queued) == 1
    burst = many.suggest(hist, np.vstack([running, handed]), 4)
    np.testing.assert_array_equal(burst[0], queued[0])
    dist = np.abs(burst[:, None] - burst[None]).max(axis=2) + np.eye(4)
    assert dist.min() >= 0.999e-3
    assert len(many._producer.queued()) == 1
    lone = GPSampler(seed=0)  # one trial running: no prefetch, every result counts
    lone.suggest(hist, pending[:1], 1)
    assert lone._producer.queued() == []


def test_unseeded_requests_take_queued_points_without_waiting_for_the_next():
    hist = _history(SPACE3, 30)
    running = np.random.default_rng(7).random((31, 3))
    sampler = GPSampler(seed=None)
    handed = sampler.suggest(hist, running, 1)
    queued = sampler._producer.queued()
    release, started, finished = threading.Event(), threading.Event(), threading.Event()
    real = sampler._compute

    def stalled(*args, **kwargs):
        started.set()
        release.wait(60)
        try:
            return real(*args, **kwargs)
        finally:
            finished.set()

    sampler._compute = stalled  # the next point computed takes as long as the test says
    try:
        got = sampler.suggest(hist, np.vstack([running, handed]), 1)
        # handed out while the point computed after it could not be done
        assert not finished.is_set(), "waited for a point while one was queued"
        np.testing.assert_array_equal(got, np.array(queued))
        assert started.wait(60)  # and the next one is under way meanwhile
    finally:
        release.set()
    assert len(sampler._producer.queued()) == 1  # topped up in the background


def test_errors_in_the_background_reach_the_caller():
    hist = _history(SPACE3, 30)
    sampler = GPSampler(seed=0)

    def broken(*args, **kwargs):
        raise FloatingPointError("boom")

    sampler.suggest(hist, np.empty((0, 3)), 1)
    sampler._compute = broken
    with pytest.raises(FloatingPointError, match="boom"):
        sampler.suggest(hist, np.empty((0, 3)), 1)


def test_bad_arguments_are_named():
    for kwargs, match in [
        ({"acquisition": "ei"}, "acquisition must be one of"),
        ({"device": "tpu"}, "device must be"),
        ({"beta": 0}, "beta must be a number > 0"),
        ({"n_initial": 0}, "n_initial must be an integer >= 1"),
        ({"n_candidates": -5}, "n_candidates must be an integer >= 1"),
        ({"pending": "liar"}, "pending must be one of"),
        ({"n_fantasies": 0}, "n_fantasies must be an integer >= 1"),
        ({"max_points": 10}, "max_points must be at least 20"),
        ({"max_points": 2.5}, "max_points must be an integer"),
    ]:
        with pytest.raises(ValueError, match=match):
            GPSampler(**kwargs)


def test_mixed_space_suggestions_decode_to_valid_params():
    hist = _history(MIXED, 20, f=lambda X: X.sum(axis=1))
    U = GPSampler(seed=0, n_initial=5).suggest(hist, np.empty((0, MIXED.dim)), 4)
    for params in MIXED.decode_many(U):
        assert MIXED.check(params) == params


def test_gpu_path_runs_where_a_gpu_is(ns):
    if not ns.gpu:
        pytest.skip("NumPy is covered by every other test")
    hist = _history(SPACE3, 30)
    cpu = GPSampler(seed=0, device="cpu", n_candidates=4096).suggest(hist, np.empty((0, 3)), 1)
    gpu = GPSampler(seed=0, device="gpu").suggest(hist, np.empty((0, 3)), 1)
    assert cpu.shape == gpu.shape == (1, 3)
    # with trials running: log EI over drawn outcomes, scored on the GPU
    running = np.random.default_rng(1).random((4, 3))
    drawn = GPSampler(seed=0, device="gpu", prefetch=False).suggest(hist, running, 2)
    assert drawn.shape == (2, 3) and np.abs(drawn[:, None] - running[None]).max(-1).min() > 1e-3


def test_drawn_outcomes_keep_a_new_point_further_from_a_promising_running_trial():
    space = ah.Space(x=ah.Float(0, 1), z=ah.Float(0, 1))
    X = np.random.default_rng(0).random((25, 2))
    y = ((X - 0.3) ** 2).sum(axis=1)
    hist = History(space, X, y, np.empty((0, 2)), 25)
    running = np.array([[0.3, 0.3]])  # where the model expects the minimum
    far = {}
    for how in ("fantasies", "believer"):
        sampler = GPSampler(seed=0, pending=how, prefetch=False)
        sampler.suggest(hist, running, 1)
        sampler._job.result()  # the fitted model, not the priors' modes
        sampler.seed = None  # adopt it at once
        u = sampler.suggest(hist, running, 1)
        far[how] = np.abs(u - running).max()
    # the believer goes just past the collapsed variance; the draws count on the running
    # trial to find the minimum, so only a clearly better point pays
    assert far["fantasies"] > far["believer"]
    assert GPSampler()._drawn(1) and not GPSampler()._drawn(0)
    assert not GPSampler(pending="believer")._drawn(1)
    assert not GPSampler(acquisition="ucb")._drawn(1)


def test_expected_improvement_is_measured_from_the_believed_incumbent(monkeypatch):
    # noisy outputs with one lucky draw: the model does not believe it at face value
    rng = np.random.default_rng(0)
    hist = _history(SPACE3, 100)
    y = hist.y + rng.normal(0.0, 0.3, len(hist.y))
    y[np.argmin(y)] -= 1.0
    hist = History(SPACE3, hist.X, y, hist.X_failed, hist.n_asked)
    sampler = GPSampler(seed=0, prefetch=False)
    sampler.suggest(hist, np.empty((0, 3)), 1)
    sampler._job.result()  # the fitted model, noise learned
    sampler.seed = None  # adopt it at once
    bars = []
    log_ei = gp_module.log_ei

    def spy(mean, var, best, ns):
        bars.append(best)
        return log_ei(mean, var, best, ns)

    monkeypatch.setattr(gp_module, "log_ei", spy)
    sampler.suggest(hist, np.empty((0, 3)), 1)
    post = sampler._post
    assert bars and set(bars) == {post.incumbent()}
    assert post.incumbent() > post.y.min() + 0.3  # not the lucky draw's face value


def test_ucb_does_not_compute_log_eis_bar(monkeypatch):
    from asynchpo.surrogate import Posterior

    def unused(self, kappa=2.0):
        raise AssertionError("UCB asked for log EI's bar")

    monkeypatch.setattr(Posterior, "incumbent", unused)
    sampler = GPSampler(seed=0, acquisition="ucb", prefetch=False)
    u = sampler.suggest(_history(SPACE3, 20), np.empty((0, 3)), 1)
    assert u.shape == (1, 3)
