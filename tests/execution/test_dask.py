"""The dask backend on real clusters of worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import dask
import pytest
from dask.utils import key_split
from distributed import Client, LocalCluster, Nanny, Scheduler, SpecCluster, get_worker

import asynchpo as ah
from asynchpo.events import TrialCompleted, TrialReported, TrialRetried, TrialStarted
from asynchpo.trial import Failure

pytestmark = pytest.mark.slow

SPACE = ah.Space(x=ah.Float(-5.0, 5.0), k=ah.Int(0, 3))
GRID = ah.GridSampler(values={"x": [0.0, 1.0]})  # 8 trials: k in 0..3, x in {0, 1}


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def sleepy(p):
    time.sleep(0.2)
    return {
        "loss": (p["x"] - 1) ** 2 + p["k"],
        "key": get_worker().get_current_task(),
        "pid": os.getpid(),
    }


def test_trials_run_as_futures_with_readable_keys_on_every_worker(client):
    study = ah.Study(SPACE, objective="loss", name="mlp_search", sampler=ah.RandomSampler(seed=0))
    study.optimize(sleepy, n_trials=20, client=client, progress=False)
    trials = study.trials
    assert all(t.state is ah.TrialState.COMPLETE for t in trials)
    for t in trials:
        assert t.values["key"].startswith(f"asynchpo-mlp-search-trial-{t.number}-1-")
        assert key_split(t.values["key"]) == "asynchpo-mlp-search-trial"
    assert len({t.worker for t in trials}) == 2 and len({t.values["pid"] for t in trials}) == 2
    # max_concurrent defaults to the cluster's 2 threads: 2 trials in flight, never more
    in_flight = [
        sum(1 for u in trials if u.started_at <= t.started_at < u.finished_at) for t in trials
    ]
    assert max(in_flight) == 2  # both workers kept busy, never a third trial


def test_reports_reach_the_driver_while_the_trial_runs(client):
    def objective(p):
        ah.report(0, loss=10.0)
        time.sleep(1.0)
        ah.report(1, loss=5.0)
        return 1.0

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=1))
    study.optimize(objective, n_trials=2, client=client, progress=False)
    events = study.storage.read(study.name)
    for n in (0, 1):
        first = next(e for e in events if isinstance(e, TrialReported) and e.number == n)
        done = next(e for e in events if isinstance(e, TrialCompleted) and e.number == n)
        assert first.step == 0 and done.time - first.time > 0.7  # it came live, not at the end
        assert [r.step for r in study.trials[n].reports] == [0, 1]


def test_a_trial_that_lasts_is_announced_with_its_worker_while_it_runs(client):
    def slow(p):
        time.sleep(3.0)
        return p["x"]

    client.run(lambda: __import__("asynchpo"))  # what a first trial on a worker imports
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=2))
    run = study.start(slow, n_trials=2, client=client, progress=False)
    deadline = time.monotonic() + 2.5
    started: list[ah.Trial] = []
    while time.monotonic() < deadline and len(started) < 2:
        started = [t for t in study.get_trials(["running"]) if t.started_at is not None]
        time.sleep(0.02)
    assert run.wait(timeout=30) == "complete"
    assert len(started) == 2  # both, before either ended
    assert {t.worker for t in started} == set(client.scheduler_info()["workers"])
    events = study.storage.read(study.name)
    assert sum(isinstance(e, TrialStarted) for e in events) == 2  # announced once each


def test_a_trial_too_short_to_announce_gets_its_start_from_its_result(client):
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=3))
    study.optimize(lambda p: p["x"], n_trials=6, client=client, progress=False)
    for t in study.trials:
        assert t.worker is not None and t.started_at is not None
        assert t.asked_at <= t.started_at <= t.finished_at


def test_failures_are_recorded_and_the_study_goes_on(client):
    def objective(p):
        if p["k"] == 1:
            raise MemoryError("CUDA out of memory (pretend)")
        if p["k"] == 2:
            return float("inf")
        return sleepy(p)

    study = ah.Study(SPACE, objective="loss", sampler=GRID)
    study.optimize(objective, n_trials=8, client=client, progress=False)
    by_k = {t.params["k"]: t for t in study.trials}
    assert by_k[1].failure is Failure.ERROR and "CUDA out of memory" in by_k[1].error
    assert by_k[2].failure is Failure.INVALID and "returned inf" in by_k[2].error
    assert by_k[0].state is by_k[3].state is ah.TrialState.COMPLETE


def test_resources_pass_through_to_dask():
    workers = {
        "gpu": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
        "cpu": {"cls": Nanny, "options": {"nthreads": 1}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, Client(cluster) as c:
        gpu_worker = next(
            addr
            for addr, w in c.scheduler_info()["workers"].items()
            if w.get("resources", {}).get("GPU")
        )
        study = ah.Study(SPACE, objective="loss", sampler=ah.RandomSampler(seed=0))
        study.optimize(
            sleepy, n_trials=6, client=c, max_concurrent=2, resources={"GPU": 1}, progress=False
        )
        assert {t.worker for t in study.trials} == {gpu_worker}
        assert all(t.state is ah.TrialState.COMPLETE for t in study.trials)


def _kill_own_worker_once(marker_dir):
    def objective(p):
        marker = os.path.join(marker_dir, f"k{p['k']}x{p['x']}")
        if p["k"] == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(0.3)  # let the start message leave the worker
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.1)
        return (p["x"] - 1) ** 2 + p["k"]

    return objective


@pytest.mark.parametrize("allowed_failures", [3, 0])
def test_a_worker_killed_mid_trial_costs_one_retry(tmp_path, allowed_failures):
    # allowed-failures=3: dask reruns the task elsewhere and the driver sees it start again;
    # allowed-failures=0: dask gives up at once (KilledWorker) and the driver resubmits it.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        study = ah.Study(SPACE, sampler=GRID)
        study.optimize(_kill_own_worker_once(str(tmp_path)), n_trials=8, client=c, progress=False)
    assert all(t.state is ah.TrialState.COMPLETE for t in study.trials)
    killed = [t for t in study.trials if t.params["k"] == 3]
    assert [t.attempts for t in killed] == [2, 2]
    retried = [e for e in study.storage.read(study.name) if isinstance(e, TrialRetried)]
    assert sorted(e.number for e in retried) == sorted(t.number for t in killed)
    assert all("lost" in e.reason for e in retried)


def test_a_trial_that_always_kills_its_worker_fails_after_its_retries():
    def objective(p):
        if p["k"] == 3 and p["x"] == 1.0:
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGKILL)
        return (p["x"] - 1) ** 2 + p["k"]

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        study = ah.Study(SPACE, sampler=GRID)
        study.optimize(objective, n_trials=8, client=c, max_retries=1, progress=False)
    bad = next(t for t in study.trials if t.params == {"x": 1.0, "k": 3})
    assert bad.failure is Failure.WORKER_LOST and "lost on all 2 attempts" in bad.error
    others = [t for t in study.trials if t is not bad]
    assert all(t.state is ah.TrialState.COMPLETE for t in others) and len(others) == 7


def test_a_hung_trial_times_out_and_its_worker_is_restarted():
    def objective(p):
        if p["k"] == 3 and p["x"] == 0.0:
            time.sleep(600)
        time.sleep(0.05)
        return (p["x"] - 1) ** 2 + p["k"]

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        pids_before = set(c.run(os.getpid).values())
        study = ah.Study(SPACE, sampler=GRID)
        t0 = time.monotonic()
        study.optimize(objective, n_trials=8, client=c, trial_timeout=3.0, progress=False)
        assert time.monotonic() - t0 < 60
        hung = next(t for t in study.trials if t.params == {"x": 0.0, "k": 3})
        assert hung.failure is Failure.TIMEOUT
        assert all(t.state is ah.TrialState.COMPLETE for t in study.trials if t is not hung)
        # the hung worker's process was replaced by its nanny; the other one is untouched
        c.wait_for_workers(2, timeout=30)
        pids_after = set(c.run(os.getpid).values())
        assert len(pids_after) == 2 and len(pids_after & pids_before) == 1


def test_optimize_async_on_an_asynchronous_client():
    async def main():
        async with (
            LocalCluster(
                n_workers=1,
                threads_per_worker=2,
                processes=False,
                asynchronous=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster, asynchronous=True) as c,
        ):
            study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
            await study.optimize_async(lambda p: p["x"] ** 2, n_trials=8, client=c, progress=False)
            return study

    study = asyncio.run(main())
    assert len(study.get_trials(["complete"])) == 8
    assert (
        max(
            sum(1 for u in study.trials if u.started_at <= t.started_at < u.finished_at)
            for t in study.trials
        )
        <= 2
    )


def test_adapt_must_be_a_positive_count_of_workers(client):
    from asynchpo.execution import DaskBackend

    for bad in (0, -2, 1.5, "4"):
        with pytest.raises(ValueError, match=r"adapt must be an integer >= 1"):
            DaskBackend(client, adapt=bad)


def test_a_worker_that_goes_away_for_good_is_started_anew():
    """The cluster-side half of a walltime: a worker (with its nanny, as a batch job would
    be) closes mid-study for good. The study's only worker is replaced and it finishes."""
    with (
        dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        (name,) = cluster.workers
        first = set(c.scheduler_info()["workers"])
        study = ah.Study(SPACE, objective="loss", sampler=ah.RandomSampler(seed=0))
        run = study.start(sleepy, n_trials=12, client=c, max_concurrent=1, progress=False)
        deadline = time.monotonic() + 30
        while len(study.get_trials(["complete"])) < 3:
            assert time.monotonic() < deadline, "the study did not start"
            time.sleep(0.05)
        cluster.sync(cluster.workers[name].close)  # the job ends: no nanny restarts it
        assert run.wait(timeout=60) == "complete"
        workers = {t.worker for t in study.get_trials(["complete"])}
    assert len(study.get_trials(["complete"])) == 12
    assert workers - first, "no trial ran on a replacement worker"


@pytest.mark.parametrize("allowed_failures", [0, 3])
def test_a_worker_killed_for_its_memory_says_so(allowed_failures):
    # 0: dask gives up at once (KilledWorker); 3: dask runs the task again on a new worker
    def objective(p):
        if p["k"] == 3 and p["x"] == 1.0:
            hog = []
            for _ in range(200):  # up to 4 GiB, well past the worker's limit
                hog.append(bytearray(20 << 20))
                time.sleep(0.02)
        return (p["x"] - 1) ** 2 + p["k"]

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            memory_limit="1GiB",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        study = ah.Study(SPACE, sampler=GRID)
        study.optimize(objective, n_trials=8, client=c, max_retries=1, progress=False)
    bad = next(t for t in study.trials if t.params == {"x": 1.0, "k": 3})
    assert bad.failure is Failure.WORKER_LOST
    assert "memory limit" in bad.error, bad.error
    retried = [e for e in study.storage.read(study.name) if isinstance(e, TrialRetried)]
    assert [e.number for e in retried] == [bad.number]
    assert "memory limit" in retried[0].reason, retried[0].reason
    others = [t for t in study.trials if t is not bad]
    assert all(t.state is ah.TrialState.COMPLETE for t in others) and len(others) == 7


def test_an_objective_that_raises_systemexit_fails_its_trial_and_keeps_its_worker(client):
    def objective(p):
        if p["k"] == 3:
            raise SystemExit(f"exit from trial with x={p['x']}")
        if p["k"] == 2:
            raise KeyboardInterrupt
        return {"loss": p["x"], "pid": os.getpid()}

    pids = set(client.run(os.getpid).values())
    study = ah.Study(SPACE, objective="loss", sampler=GRID)
    study.optimize(objective, n_trials=8, client=client, progress=False)
    failed = study.get_trials(["failed"])
    assert sorted(t.params["k"] for t in failed) == [2, 2, 3, 3]
    assert all(t.failure is Failure.ERROR and t.attempts == 1 for t in failed)
    assert all(
        ("SystemExit" if t.params["k"] == 3 else "KeyboardInterrupt") in t.error for t in failed
    )
    assert not [e for e in study.storage.read(study.name) if isinstance(e, TrialRetried)]
    assert set(client.run(os.getpid).values()) == pids  # no worker died
    assert {t.values["pid"] for t in study.get_trials(["complete"])} <= pids
