"""Studies on a real Slurm through dask-jobqueue (ci/slurm/start.sh starts one)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys

import pytest

import asynchpo as ah


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(not _slurm_up(), reason="no Slurm here (sudo bash ci/slurm/start.sh)"),
]


@pytest.fixture
def cluster(tmp_path):
    jobqueue = pytest.importorskip("dask_jobqueue")
    c = jobqueue.SLURMCluster(
        cores=1,
        processes=1,
        memory="1GB",
        walltime="00:10:00",
        python=sys.executable,
        log_directory=str(tmp_path),
        scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
    )
    yield c
    with contextlib.suppress(AssertionError):  # dask-jobqueue, after a job killed outside
        c.close()


def test_a_study_runs_on_slurm_workers(cluster):
    from distributed import Client

    cluster.scale(2)
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        jobs = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
        assert len(jobs.stdout.split()) >= 2  # the workers are Slurm jobs

        def objective(p):
            import time

            time.sleep(0.2)
            return (p["x"] - 0.25) ** 2

        study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=0))
        study.optimize(objective, n_trials=12, client=client, progress=False)
    trials = study.trials
    assert len(trials) == 12 and all(t.state is ah.TrialState.COMPLETE for t in trials)
    assert len({t.worker for t in trials}) == 2


def test_a_job_cancelled_mid_trial_costs_one_retry_and_the_study_goes_on(cluster):
    import time

    from distributed import Client

    cluster.scale(2)
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)

        def objective(p):
            import time

            time.sleep(2.0)
            return p["x"]

        study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=1))
        run = study.start(objective, n_trials=6, client=client, max_concurrent=2)
        deadline = time.monotonic() + 60
        while len([t for t in study.get_trials(["running"]) if t.worker]) < 2:
            assert time.monotonic() < deadline, "trials did not start on both workers"
            time.sleep(0.1)
        victim = next(iter(cluster.workers.values()))
        subprocess.run(["scancel", str(victim.job_id)], check=True)
        assert run.wait(timeout=240) == "complete"
    trials = study.trials
    assert len(trials) == 6 and all(t.state is ah.TrialState.COMPLETE for t in trials)
    assert any(t.attempts == 2 for t in trials), "no trial was retried after the scancel"
