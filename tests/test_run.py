from __future__ import annotations

import asyncio
import threading

import pytest

import asynchpo as ah

SPACE = ah.Space(x=ah.Float(0, 1))


def _gated():
    gate = threading.Event()

    def objective(params):
        assert gate.wait(30), "the test never opened the gate"
        return params["x"]

    return gate, objective


def _study(**kw):
    return ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), **kw)


def test_start_returns_while_trials_run_and_wait_gives_the_end():
    study = _study()
    gate, objective = _gated()
    run = study.start(objective, n_trials=6, max_concurrent=3, progress=False)
    assert not run.done and run.reason is None  # every trial is held at the gate
    with pytest.raises(TimeoutError, match="still runs"):
        run.wait(timeout=0.2)
    assert len(study.get_trials(["running"])) == 3  # the notebook can read the study meanwhile
    gate.set()
    assert run.wait(timeout=30) == "complete"
    assert run.done and run.reason == "complete" and run.exception() is None
    assert len(study.get_trials(["complete"])) == 6


def test_a_run_can_be_awaited():
    study = _study()

    async def main():
        run = study.start(lambda p: p["x"], n_trials=4, progress=False)
        return await run

    assert asyncio.run(main()) == "complete"


def test_two_studies_run_at_once_and_one_study_runs_once():
    a, b = _study(), _study()
    gate, objective = _gated()
    run_a = a.start(objective, n_trials=4, max_concurrent=2, progress=False)
    run_b = b.start(objective, n_trials=4, max_concurrent=2, progress=False)
    with pytest.raises(RuntimeError, match="already running"):
        a.start(objective, n_trials=1, progress=False)
    assert not run_a.done and not run_b.done
    gate.set()
    assert run_a.wait(30) == run_b.wait(30) == "complete"
    run_again = a.start(lambda p: 0.0, n_trials=1, progress=False)  # free again once ended
    assert run_again.wait(30) == "complete" and len(a.trials) == 5


def test_errors_are_raised_by_wait_not_swallowed(caplog):
    study = _study()

    def bad_callback(study, trial):
        raise KeyError("from a callback")

    run = study.start(lambda p: p["x"], n_trials=3, callbacks=[bad_callback], progress=False)
    with pytest.raises(KeyError, match="from a callback"):
        run.wait(30)
    assert isinstance(run.exception(), KeyError) and run.reason is None
    assert "stopped on an error" in caplog.text
    assert "failed" in repr(run)


def test_stop_and_stop_trial_from_another_thread():
    study = _study()
    gate, objective = _gated()
    run = study.start(objective, n_trials=10, max_concurrent=2, progress=False)
    while len(study.get_trials(["running"])) < 2:
        threading.Event().wait(0.01)
    first = study.get_trials(["running"])[0].number
    run.stop_trial(first)
    while study.trials[first].state != ah.TrialState.FAILED:
        threading.Event().wait(0.01)
    assert study.trials[first].failure == ah.Failure.CANCELLED
    run.stop()
    gate.set()
    assert run.wait(30) == "stopped"
    assert len(study.trials) < 10
    assert not study.get_trials(["running"])
