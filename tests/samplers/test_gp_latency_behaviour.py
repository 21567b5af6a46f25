"""What keeps a suggestion fast on the path a study takes: seeded fits adopted at a fixed
later point (no wait before it), one BLAS thread while computing, and a time budget that
a refit's factorization does not shrink."""

from __future__ import annotations

import concurrent.futures
import threading

import numpy as np
import pytest

import asynchpo as ah
import asynchpo.samplers._gp as gp_module
from asynchpo.acquisition._threads import single_blas_thread
from asynchpo.samplers import GPSampler, History

SPACE3 = ah.Space(a=ah.Float(0, 1), b=ah.Float(0, 1), c=ah.Float(0, 1))


def _history(n: int, seed: int = 0) -> History:
    X = np.random.default_rng(seed).random((n, 3))
    return History(SPACE3, X, np.sin(5 * X[:, 0]) + X[:, 1], np.empty((0, 3)), n)


def _blas_threads() -> list[int]:
    import threadpoolctl

    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def _first(hist: History, k: int) -> History:
    return History(hist.space, hist.X[:k], hist.y[:k], hist.X_failed, k)


def test_a_seeded_fit_is_adopted_at_a_fixed_later_point_and_not_waited_for_before(
    monkeypatch,
):
    pool = concurrent.futures.ThreadPoolExecutor(1)
    release = threading.Event()

    def held_submit(FX, y, start):
        def job():
            release.wait(60)
            return gp_module._fit(FX, y, start)

        return pool.submit(job)

    monkeypatch.setattr(gp_module, "_submit_fit", held_submit)
    monkeypatch.setattr(gp_module, "_lag", lambda n: 6)  # as at n ~ 1000, a few trials on
    sampler = GPSampler(seed=0, prefetch=False)
    hist = _history(60)
    sampler.suggest(_first(hist, 40), np.empty((0, 3)), 1)  # launches the fit of 40
    job = sampler._job
    assert job is not None and sampler._job_n == 40
    due = 40 + gp_module._lag(40)
    for k in range(41, due):
        sampler.suggest(_first(hist, k), np.empty((0, 3)), 1)
        # the fit cannot finish before the release below: a suggest that waited for it
        # would have waited until the job gave up, and adopted it
        assert not job.done() and sampler._job is job
    release.set()
    sampler.suggest(_first(hist, due), np.empty((0, 3)), 1)  # adopted here, and only here
    assert sampler._hyper is job.result()[1]
    assert sampler._job is not job and sampler._job_n == due  # the next fit is under way
    pool.shutdown()


def test_the_lag_grows_with_the_history():
    # where fits are quick, at the next trial (fresh hyperparameters matter most early on);
    # where they take seconds, a good share of the history later
    assert [gp_module._lag(n) for n in (1, 8, 100, 199)] == [1, 1, 1, 1]
    lags = [gp_module._lag(n) for n in (200, 300, 1000, 3000)]
    assert (
        lags == sorted(lags)
        and lags[2] >= 200
        and all(k <= n // 4 for k, n in zip(lags, (200, 300, 1000, 3000), strict=True))
    )


def test_suggestions_are_computed_on_one_blas_thread_and_the_limit_is_restored(monkeypatch):
    pytest.importorskip("threadpoolctl")

    seen = []
    compute = GPSampler._compute_points

    def spy(self, *args):
        seen.append(_blas_threads())
        return compute(self, *args)

    monkeypatch.setattr(GPSampler, "_compute_points", spy)
    before = _blas_threads()
    u = GPSampler(seed=0, prefetch=False).suggest(_history(20), np.empty((0, 3)), 1)
    assert u.shape == (1, 3)
    assert seen and all(set(threads) <= {1} for threads in seen)
    assert _blas_threads() == before


def test_overlapping_blas_limits_restore_the_limits_once_the_last_ends():
    pytest.importorskip("threadpoolctl")

    before = _blas_threads()
    inside, leave = threading.Event(), threading.Event()

    def other():
        with single_blas_thread():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    with single_blas_thread():
        thread.start()
        inside.wait(10)
    assert all(t == 1 for t in _blas_threads())  # the other one is still inside
    leave.set()
    thread.join()
    assert _blas_threads() == before


def test_a_slow_model_update_does_not_shrink_the_candidate_budget(monkeypatch):
    class Clock:  # the time the sampler reads: only the model update takes any
        now = 0.0

        def perf_counter(self):
            return self.now

    clock = Clock()
    sync = GPSampler._sync

    def slow_sync(self, history):
        clock.now += 10.0  # as a refit's O(n^3) factorization would take, once per refit
        return sync(self, history)

    monkeypatch.setattr(gp_module, "time", clock)
    monkeypatch.setattr(GPSampler, "_sync", slow_sync)
    sampler = GPSampler(prefetch=False)
    hist = _history(40)
    for k in range(30, 34):
        sampler.suggest(_first(hist, k), np.empty((0, 3)), 1)
    # the budget was given more than its share of time, not less: it grew
    assert sampler._slowdown < 1.0
