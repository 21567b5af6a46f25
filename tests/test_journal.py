"""The journal owns the study: numbers, runs, leases, recovery and the clock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import asynchpo as ah
from asynchpo.execution import Backend, Finished, LocalBackend, Started
from asynchpo.storage import InMemoryStorage, SQLiteStorage

SPACE = ah.Space(x=ah.Float(0.0, 1.0))


class SlowStorage(InMemoryStorage):
    """Appends take 50 ms: what a busy disk or a network file system does."""

    def append(self, *args, **kwargs):
        time.sleep(0.05)
        super().append(*args, **kwargs)


def test_threads_asking_at_once_get_numbers_of_their_own():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=SlowStorage())
    got: list[int] = []
    lock = threading.Lock()

    def ask():
        for _ in range(3):
            trial = study.ask()
            with lock:
                got.append(trial.number)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(12))
    assert [t.number for t in study.trials] == list(range(12))


def test_add_trial_during_a_run_gets_a_number_of_its_own():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=SlowStorage())

    def objective(p):
        time.sleep(0.02)
        return p["x"]

    run = study.start(objective, n_trials=12, max_concurrent=3, progress=False)
    added = [study.add_trial({"x": 0.5}, 1.0).number for _ in range(4)]
    assert run.wait(timeout=60) == "complete"
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(16)) and set(added) <= set(numbers)
    assert all(t.state is ah.TrialState.COMPLETE for t in study.trials)
    assert sum(1 for t in study.trials if t.params == {"x": 0.5} and t.value == 1.0) >= 4


def test_loading_a_study_that_runs_in_this_kernel_neither_takes_it_over_nor_breaks_it(tmp_path):
    path = tmp_path / "runs.db"
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=path, name="s")
    release = threading.Event()

    def objective(p):
        release.wait(30)
        return p["x"]

    run = study.start(objective, n_trials=6, max_concurrent=3, progress=False)
    deadline = time.monotonic() + 30
    while len(study.trials) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(ah.StudyInUseError, match=r"being run .*in this process.*read_only=True"):
        ah.Study.load("s", storage=path)
    with pytest.raises(ah.StudyInUseError, match="being run"):
        ah.Study(SPACE, storage=path, name="s", load_if_exists=True)
    with pytest.raises(ValueError, match="read_only must be True or False"):
        ah.Study.load("s", storage=path, read_only="yes")
    look = ah.Study.load("s", storage=path, read_only=True)
    assert look.read_only and len(look.get_trials(["running"])) == 3
    with pytest.raises(ah.StudyInUseError, match="read-only"):
        look.ask()
    release.set()
    assert run.wait(timeout=60) == "complete"
    assert [t.state for t in study.trials] == [ah.TrialState.COMPLETE] * 6
    assert len(look.get_trials(["complete"])) == 6  # it follows the run it watches
    again = ah.Study.load("s", storage=path)  # the run is over: free to go on with
    assert len(again.get_trials(["complete"])) == 6


KILLED = textwrap.dedent("""
    import sys, time
    import asynchpo as ah

    def objective(p):
        time.sleep(0.05 if p["x"] < 0.5 else 60)
        return p["x"]

    study = ah.Study(ah.Space(x=ah.Float(0.0, 1.0)), storage=sys.argv[1], name="s",
                     sampler=ah.RandomSampler(seed=0))
    study.optimize(objective, n_trials=10, max_concurrent=4, progress=False)
""")


def _killed_driver(tmp_path):
    """A study file whose driver was killed (SIGKILL) while trials ran."""
    script, path = tmp_path / "driver.py", tmp_path / "runs.db"
    script.write_text(KILLED)
    proc = subprocess.Popen([sys.executable, str(script), str(path)])
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and proc.poll() is None
            if path.exists():
                storage = SQLiteStorage(path)
                running = 0
                if storage.exists("s"):  # the driver may not have created it yet
                    look = ah.Study.load("s", storage=storage, read_only=True)
                    running = len(look.get_trials(["running"]))
                storage.close()
                if running == 4:
                    break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    return path


@pytest.mark.parametrize("how", ["load", "load_if_exists"])
def test_every_way_of_opening_recovers_a_killed_driver(tmp_path, how):
    path = _killed_driver(tmp_path)
    if how == "load":
        study = ah.Study.load("s", storage=path, sampler=ah.RandomSampler(seed=1))
    else:
        study = ah.Study(
            SPACE, storage=path, name="s", sampler=ah.RandomSampler(seed=1), load_if_exists=True
        )
    assert not study.get_trials(["running"])
    interrupted = {t.number for t in study.get_trials(["interrupted"])}
    assert len(interrupted) == 4
    study.optimize(lambda p: p["x"], n_trials=2, progress=False)
    assert {t.number for t in study.get_trials(["complete"])} >= interrupted
    assert all(t.state is ah.TrialState.COMPLETE for t in study.trials)


class _Scripted(Backend):
    """A backend whose ``submit`` queues the messages the test scripts for each job."""

    def __init__(self):
        self.out = []

    async def wait(self, deadline):
        import asyncio

        await asyncio.sleep(0.005)
        out, self.out = self.out, []
        return out

    def cancel(self, number, hung=False):
        pass


class _Slow(_Scripted):
    """Trials that start and never end (until cancelled): a run stopped with cancel_running."""

    def submit(self, job):
        self.out.append(Started(job.number, job.attempt, "w0"))


def test_a_local_backend_can_be_reused_after_a_cancelled_trial():
    backend = LocalBackend()
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    gate = threading.Event()

    def objective(p):
        gate.wait(5)
        return p["x"]

    run = study.start(objective, n_trials=2, max_concurrent=2, backend=backend, progress=False)
    while len(study.trials) < 2:
        time.sleep(0.01)
    run.stop(cancel_running=True)
    assert run.wait(timeout=30) == "stopped"
    gate.set()
    again = study.start(objective, n_trials=1, backend=backend, progress=False)
    assert again.wait(timeout=30) == "complete"  # hung for ever: a stale cancellation
    assert all(t.state is ah.TrialState.COMPLETE for t in study.trials)


def test_a_simulated_run_keeps_one_clock():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    study.add_trial({"x": 0.9}, 0.9)  # before the run: wall time

    def add_during(study, trial):
        if trial.number == 3:
            study.add_trial({"x": 0.1}, 0.1)  # a warm start from a callback, mid-run

    study.optimize(
        lambda p: p["x"],
        n_trials=10,
        backend=ah.SimulatedBackend(n_workers=2, duration=1.0),
        callbacks=[add_during],
        progress=False,
    )
    run_trials = [t for t in study.trials if t.number > 0]
    assert all(t.asked_at is not None and t.asked_at < 100 for t in run_trials)
    s = study.journal.summary()
    assert s.clock == "virtual" and s.elapsed(time.time()) == pytest.approx(5.0)
    assert all(x < 100 for x, _ in s.best_by_time)


def test_the_progress_line_counts_a_retried_trial_once():
    from asynchpo._progress import progress_line
    from asynchpo.events import (
        RunStarted,
        StudyCreated,
        TrialAsked,
        TrialRetried,
        TrialStarted,
        fold,
    )

    events = [
        StudyCreated(time=0.0, space=SPACE.to_spec()),
        RunStarted(time=0.0, run=0, n_trials=2),
        TrialAsked(time=0.0, number=0, params={"x": 0.5}, run=0),
        TrialStarted(time=0.1, number=0, worker="w0"),
        TrialRetried(time=0.5, number=0, reason="worker w0 was lost", run=0, cause="worker_lost"),
        TrialStarted(time=0.6, number=0, worker="w1"),
    ]
    line = progress_line(fold(events).summary("s"))
    assert line.startswith("s: 0/2 done | 1 running")


class _LosesFirstAttempts(_Scripted):
    """Each trial's first submission in a run is lost (its worker died); then it runs."""

    def __init__(self):
        super().__init__()
        self.seen: set[int] = set()

    def submit(self, job):
        if job.number not in self.seen:
            self.seen.add(job.number)
            self.out.append(Finished(job.number, job.attempt, "lost", error="worker died"))
        else:
            self.out.append(
                Finished(job.number, job.attempt, "ok", values={"value": job.params["x"]})
            )


def test_interruptions_do_not_spend_the_retries_of_lost_workers():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    for i in range(2):  # the driver stopped twice while the trial ran
        backend = _Slow()
        run = study.start(lambda p: p["x"], n_trials=1, backend=backend, progress=False)
        deadline = time.monotonic() + 30
        while not study.trials or study.trials[0].attempts <= i:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        run.stop(cancel_running=True)
        run.wait(timeout=30)
    (trial,) = study.trials
    assert trial.state is ah.TrialState.INTERRUPTED
    study.optimize(
        lambda p: p["x"], n_trials=1, backend=_LosesFirstAttempts(), max_retries=1, progress=False
    )
    trial = study.trials[0]
    assert trial.state is ah.TrialState.COMPLETE, trial.error
    assert trial.attempts == 4  # two interrupted, one lost, one that ran


class _BrokenSubmit(_Scripted):
    def submit(self, job):
        raise RuntimeError("the cluster went away")


def test_trials_asked_but_never_submitted_are_run_next_time():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    with pytest.raises(RuntimeError, match="went away"):
        study.optimize(
            lambda p: p["x"], n_trials=3, max_concurrent=3, backend=_BrokenSubmit(), progress=False
        )
    assert not study.get_trials(["running"])
    asked = {t.number for t in study.get_trials(["interrupted"])}
    assert len(asked) == 3
    study.optimize(lambda p: p["x"], n_trials=1, backend=ah.SimulatedBackend(), progress=False)
    assert {t.number for t in study.get_trials(["complete"])} >= asked


WRITER = textwrap.dedent("""
    import os, sys, time
    import asynchpo as ah
    study = ah.Study(ah.Space(x=ah.Float(0.0, 1.0)), storage=sys.argv[1], name="s",
                     sampler=ah.RandomSampler(), load_if_exists=True)
    while not os.path.exists(sys.argv[3]):  # both start writing at once
        time.sleep(0.001)
    for _ in range(int(sys.argv[2])):
        study.tell(study.ask(), 0.5)
""")


@pytest.mark.slow
def test_two_processes_writing_one_study_never_share_a_number(tmp_path):
    script, path, go = tmp_path / "writer.py", tmp_path / "runs.db", tmp_path / "go"
    script.write_text(WRITER)
    ah.Study(SPACE, storage=path, name="s")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), "150", str(go)], stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    time.sleep(3)  # both are waiting for the signal
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    events = SQLiteStorage(path).read("s")
    asked = [e.number for e in events if e.kind == "trial_asked"]
    assert sorted(asked) == list(range(300))
    study = ah.Study.load("s", storage=path)
    assert len(study.get_trials(["complete"])) == 300


RUNNER = textwrap.dedent("""
    import sys, time
    import asynchpo as ah
    try:
        study = ah.Study(ah.Space(x=ah.Float(0.0, 1.0)), storage=sys.argv[1], name="demo",
                         sampler=ah.RandomSampler(), load_if_exists=True)
        study.optimize(lambda p: time.sleep(0.02) or p["x"], n_trials=40, max_concurrent=2,
                       progress=False)
    except ah.StudyInUseError as error:
        print("in use:", error)
        sys.exit(3)
""")


@pytest.mark.slow
def test_two_drivers_started_at_once_never_share_a_study(tmp_path):
    script, path = tmp_path / "runner.py", tmp_path / "runs.db"
    script.write_text(RUNNER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    codes = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        codes.append(p.returncode)
        assert p.returncode in (0, 3), out
    events = SQLiteStorage(path).read("demo")
    asked = [e.number for e in events if e.kind == "trial_asked"]
    assert sorted(asked) == list(range(len(asked)))  # no number twice
    study = ah.Study.load("demo", storage=path)
    assert not study.get_trials(["running"]) and not study.get_trials(["interrupted"])
    # either one was refused while the other ran, or they ran one after the other
    assert len(study.get_trials(["complete"])) == 40 * codes.count(0)
    assert os.path.getsize(path) > 0


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_simulated_run_is_ended_on_its_own_clock():
    import socket

    from asynchpo.events import RunStarted, StudyCreated, TrialAsked, TrialStarted

    storage = InMemoryStorage()
    events = [
        StudyCreated(time=1.7e9, space=SPACE.to_spec()),
        RunStarted(
            time=0.0,
            run=0,
            n_trials=5,
            pid=_dead_pid(),
            host=socket.gethostname(),
            holder="gone",
            clock="virtual",
        ),
        TrialAsked(time=0.0, number=0, params={"x": 0.5}, run=0),
        TrialStarted(time=3.0, number=0, worker="sim-0"),
    ]
    storage.append("s", events, 0)
    study = ah.Study.load("s", storage=storage, sampler=ah.RandomSampler(seed=0))
    assert [t.state for t in study.trials] == [ah.TrialState.INTERRUPTED]
    assert study.journal.summary().running_time() == pytest.approx(3.0)
    study.optimize(lambda p: p["x"], n_trials=3, backend=ah.SimulatedBackend(duration=1.0))
    s = study.journal.summary()
    assert s.running_time() == pytest.approx(3.0 + 4.0)
    assert all(x < 10 for x, _ in s.best_by_time)


def test_the_heartbeat_keeps_a_run_lease_and_a_lost_lease_stops_the_run(monkeypatch):
    import asynchpo.journal as journal_module

    monkeypatch.setattr(journal_module, "LEASE_SECONDS", 0.4)
    storage = InMemoryStorage()
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=storage, name="s")
    gate = threading.Event()
    run = study.start(lambda p: gate.wait(30) and p["x"], n_trials=2, progress=False)
    deadline = time.monotonic() + 10
    while not storage.leases("s"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (first,) = storage.leases("s")
    time.sleep(0.5)  # longer than the lease lasts
    (later,) = storage.leases("s")
    assert later.holder == first.holder and later.expires > first.expires + 0.2
    storage.release("s", first.holder)  # as a process that took the study over would
    with pytest.raises(ah.StudyInUseError, match="lease expired"):
        run.wait(timeout=10)
    gate.set()


def test_opening_a_study_leaves_the_trials_asked_here_alone(tmp_path):
    path = tmp_path / "runs.db"
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=path, name="s")
    trial = study.ask()
    other = ah.Study.load("s", storage=path)  # a second look, in the same kernel
    assert [t.state for t in other.trials] == [ah.TrialState.RUNNING]
    assert study.tell(trial, 0.25).state is ah.TrialState.COMPLETE


def test_a_snapshot_is_a_copy_later_events_leave_alone():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    study.add_trial({"x": 0.5}, 1.0)
    running = study.ask()
    history, pending = study.journal.snapshot()
    X, y, P = history.X.copy(), history.y.copy(), pending.copy()
    study.tell(running, 0.5)
    for _ in range(20):
        study.add_trial({"x": 0.1}, 2.0)
    np.testing.assert_array_equal(history.X, X)
    np.testing.assert_array_equal(history.y, y)
    np.testing.assert_array_equal(pending, P)
    assert history.n_asked == 2 and len(pending) == 1


def test_start_says_at_once_that_another_run_holds_the_study(tmp_path):
    path = tmp_path / "runs.db"
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=path, name="s")
    gate = threading.Event()
    run = study.start(lambda p: gate.wait(30) and p["x"], n_trials=2, progress=False)
    deadline = time.monotonic() + 10
    while not study.trials:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    look = ah.Study.load("s", storage=path, read_only=True)
    with pytest.raises(ah.StudyInUseError, match="read-only"):
        look.start(lambda p: p["x"], n_trials=1)
    gate.set()
    assert run.wait(timeout=30) == "complete"
    assert look.journal.summary().complete == 2  # a read-only view follows the run


class _SlowClaim(InMemoryStorage):
    """Its claims take a while (a busy file): the heartbeat beats meanwhile."""

    def claim(self, study, lease, alive):
        time.sleep(0.3)
        return super().claim(study, lease, alive)


def test_a_lease_being_claimed_is_not_taken_for_lost(caplog):
    storage = _SlowClaim()
    study = ah.Study(SPACE, storage=storage, name="s", sampler=ah.RandomSampler(seed=0))
    study.add_trial({"x": 0.5}, 1.0)
    with caplog.at_level("WARNING", logger="asynchpo"):
        ah.Study.load("s", storage=storage)  # recovery claims a lease
        study.optimize(lambda p: p["x"], n_trials=3, progress=False)  # so does the run
    assert "was lost" not in caplog.text
    assert len(study.get_trials(["complete"])) == 4
