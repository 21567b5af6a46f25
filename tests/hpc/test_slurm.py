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


def _slurm_cluster(tmp_path, **extra):
    """One-core, 1 GB worker jobs on the local Slurm, their logs in ``tmp_path``."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    options = {
        "cores": 1,
        "processes": 1,
        "memory": "1GB",
        "walltime": "00:10:00",
        "python": sys.executable,
        "log_directory": str(tmp_path),
        "scheduler_options": {"host": "127.0.0.1", "dashboard_address": None},
    }
    return jobqueue.SLURMCluster(**{**options, **extra})


@pytest.fixture
def cluster(tmp_path):
    c = _slurm_cluster(tmp_path)
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


def test_jobs_that_reach_their_walltime_are_replaced_and_the_study_goes_on(tmp_path):
    """Both worker jobs run into their one-minute walltime mid-study: Slurm ends them, the
    trials they ran go back to the queue, new jobs are submitted, and trials complete on
    them. (Slurm enforces a walltime some seconds late: the study runs until it has.)"""
    import time

    import dask
    from distributed import Client

    cluster = _slurm_cluster(tmp_path, walltime="00:01:00")
    try:
        cluster.scale(2)
        lost_after = {"distributed.deploy.lost-worker-timeout": "3s"}
        with dask.config.set(lost_after), Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            first = {str(job.job_id) for job in cluster.workers.values()}
            old_workers = set(client.scheduler_info()["workers"])

            def objective(p):
                import time

                time.sleep(5.0)
                return p["x"]

            study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=2))
            run = study.start(objective, n_trials=200, client=client, max_concurrent=2)

            def on_new_workers() -> int:
                done = study.get_trials(["complete"])
                return sum(1 for t in done if t.worker and t.worker not in old_workers)

            deadline = time.monotonic() + 240  # within pytest-timeout: this message, not its
            while on_new_workers() < 4:
                assert not run.done, f"the run ended early: {run.reason}"
                assert time.monotonic() < deadline, "no trial completed on a replacement job"
                time.sleep(1.0)
            later = {str(job.job_id) for job in cluster.workers.values()}
            run.stop()
            assert run.wait(timeout=60) == "stopped"
    finally:
        with contextlib.suppress(AssertionError):
            cluster.close()
    trials = study.trials
    assert all(t.state is ah.TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert later and not later & first, "the jobs that reached their walltime were not replaced"
    assert not set(_jobs()) & first  # Slurm did end them


def _jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
    return out.stdout.split()


def test_adapt_grows_to_max_concurrent_and_gives_the_workers_back(cluster):
    import time

    from distributed import Client

    assert not cluster.workers
    with Client(cluster) as client:
        seen: list[int] = []

        def count(study, trial):
            seen.append(len(cluster.scheduler_info["workers"]))

        def objective(p):
            import time

            time.sleep(0.5)
            return p["x"]

        study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=2))
        study.optimize(
            objective,
            n_trials=10,
            client=client,
            max_concurrent=2,
            adapt=True,
            callbacks=[count],
            progress=False,
        )
        assert all(t.state is ah.TrialState.COMPLETE for t in study.trials)
        assert max(seen) == 2, seen  # grew to max_concurrent, never past it
        deadline = time.monotonic() + 60
        while _jobs():  # and gave every worker job back
            assert time.monotonic() < deadline, f"jobs left after the run: {_jobs()}"
            time.sleep(0.5)


def test_adapt_needs_max_concurrent_and_a_cluster(cluster):
    from distributed import Client

    with Client(cluster) as client:
        study = ah.Study(ah.Space(x=ah.Float(0, 1)))
        with pytest.raises(ValueError, match=r"adapt: needs client= .* and max_concurrent="):
            study.optimize(lambda p: 0.0, n_trials=1, client=client, adapt=True)
    assert not study.trials


def test_gpu_trials_run_only_on_workers_with_a_gpu(tmp_path):
    """Fake GPUs, honestly named: the Slurm workers declare a dask resource ``GPU=1``; a
    plain worker job joins the same scheduler without it. Trials asking for a GPU must all
    land on the first kind, and see one device (CUDA_VISIBLE_DEVICES, set per job here as
    Slurm's --gres would)."""
    import time

    from distributed import Client

    gpu = _slurm_cluster(
        tmp_path,
        worker_extra_args=["--resources", "GPU=1"],
        job_script_prologue=["export CUDA_VISIBLE_DEVICES=0"],
    )
    plain = None
    try:
        gpu.scale(1)
        with Client(gpu) as client:
            client.wait_for_workers(1, timeout=120)
            plain = subprocess.run(
                [
                    "sbatch",
                    "--parsable",
                    "--mem=1G",
                    "--cpus-per-task=1",
                    "-o",
                    str(tmp_path / "plain.out"),
                    "--wrap",
                    f"{sys.executable} -m distributed.cli.dask_worker "
                    f"{gpu.scheduler_address} --nthreads 1 --no-dashboard",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            client.wait_for_workers(2, timeout=120)
            info = client.scheduler_info()["workers"]
            with_gpu = {a for a, w in info.items() if w.get("resources", {}).get("GPU")}
            assert len(with_gpu) == 1 and len(info) == 2

            def objective(p):
                import os
                import time

                time.sleep(0.1)
                return {"value": p["x"], "devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}

            study = ah.Study(ah.Space(x=ah.Float(0, 1)), sampler=ah.RandomSampler(seed=3))
            study.optimize(
                objective,
                n_trials=8,
                client=client,
                max_concurrent=2,
                resources={"GPU": 1},
                progress=False,
            )
            trials = study.trials
            assert all(t.state is ah.TrialState.COMPLETE for t in trials)
            assert {t.worker for t in trials} == with_gpu
            assert {t.values["devices"] for t in trials} == {"0"}
    finally:
        if plain:
            subprocess.run(["scancel", plain], check=False)
        with contextlib.suppress(AssertionError):
            gpu.close()
        time.sleep(0.5)


def test_the_hpc_notebook_runs_on_slurm(tmp_path):
    import shutil
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    source = Path(__file__).resolve().parents[2] / "notebooks" / "hpc-slurm.ipynb"
    shutil.copy(source, tmp_path / source.name)
    nb = nbformat.read(tmp_path / source.name, as_version=4)
    import os

    os.environ["ASYNCHPO_SMALL"] = "1"
    try:
        nbclient.NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
    finally:
        del os.environ["ASYNCHPO_SMALL"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "IntProgressModel"]
    assert bars and bars[-1]["value"] == bars[-1]["max"] == 12
