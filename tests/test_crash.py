"""A driver process killed for real: nothing finished is lost, and the study goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from distributed import Client, LocalCluster

import asynchpo as ah
from asynchpo.events import TrialRetried, fold
from asynchpo.storage import SQLiteStorage

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import signal, sys, time
    import asynchpo as ah
    from distributed import Client, LocalCluster

    # Ctrl-C raises KeyboardInterrupt, even when this runs under a background job whose
    # shell set SIGINT to be ignored (Python then keeps it ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def objective(p):
        time.sleep(float(sys.argv[3]))
        return (p["x"] - 1) ** 2

    if __name__ == "__main__":
        space = ah.Space(x=ah.Float(-5, 5))
        study = ah.Study(space, storage=sys.argv[1], name="crash",
                         sampler=ah.RandomSampler(seed=0))
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            print("started", flush=True)
            try:
                study.optimize(objective, n_trials=int(sys.argv[2]), client=client,
                               progress=False)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(130)
""")


def objective(p):
    time.sleep(0.05)
    return (p["x"] - 1) ** 2


def _start(tmp_path, n_trials, sleep):
    script = tmp_path / "driver.py"
    script.write_text(SCRIPT)
    db = tmp_path / "runs.db"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(n_trials), str(sleep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, db


def _wait_for_complete(db, n, proc, limit=60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if db.exists():
            storage = SQLiteStorage(db)
            state = fold(storage.read("crash"))
            storage.close()
            done = {t.number for t in state.trials([ah.TrialState.COMPLETE])}
            if len(done) >= n:
                return done
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the driver did not complete {n} trials in {limit}s")


def test_sigkill_of_the_driver_loses_no_finished_trial_and_load_finishes_the_budget(tmp_path):
    proc, db = _start(tmp_path, n_trials=40, sleep=0.05)
    seen = _wait_for_complete(db, 8, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    study = ah.Study.load("crash", storage=db, sampler=ah.RandomSampler(seed=0))
    done = {t.number for t in study.get_trials(["complete"])}
    assert seen <= done  # everything seen finished before the kill is still there
    assert len(study.trials) < 40
    interrupted = study.get_trials(["interrupted"])
    assert len(study.get_trials(["running"])) == 0
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        study.optimize(objective, client=client, progress=False)  # no n_trials: resume
    trials = study.trials
    assert len(trials) == 40
    assert all(t.state is ah.TrialState.COMPLETE for t in trials)
    requeued = {e.number for e in study.storage.read("crash") if isinstance(e, TrialRetried)}
    assert requeued == {t.number for t in interrupted}
    # the file tells the same story when read afresh
    again = fold(SQLiteStorage(db).read("crash"))
    assert again.counts[ah.TrialState.COMPLETE] == 40


def test_ctrl_c_leaves_a_consistent_journal(tmp_path):
    proc, db = _start(tmp_path, n_trials=200, sleep=0.5)
    _wait_for_complete(db, 3, proc)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in out, err

    state = fold(SQLiteStorage(db).read("crash"))
    assert state.counts[ah.TrialState.RUNNING] == 0
    assert state.counts[ah.TrialState.INTERRUPTED] >= 1
    assert state.finished_runs == {0: "KeyboardInterrupt"}
    study = ah.Study.load("crash", storage=db)
    assert len(study.get_trials(["interrupted"])) == state.counts[ah.TrialState.INTERRUPTED]
