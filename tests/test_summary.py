"""The summary every view draws, from the one fold of the study's events."""

from __future__ import annotations

import dataclasses

import pytest

import asynchpo as ah
from asynchpo.events import (
    RunFinished,
    RunStarted,
    StudyCreated,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialInterrupted,
    TrialPruned,
    TrialRetried,
    TrialStarted,
    fold,
)
from asynchpo.storage import CorruptRecordWarning

SPACE = ah.Space(x=ah.Float(0.0, 10.0)).to_spec()


def _journal():
    return [
        StudyCreated(time=0.0, space=SPACE, objective="loss", direction="minimize"),
        RunStarted(time=1.0, run=0, n_trials=4, max_concurrent=2),
        TrialAsked(time=1.0, number=0, params={"x": 0.5}, run=0),
        TrialAsked(time=1.0, number=1, params={"x": 0.1}, run=0),
        TrialStarted(time=1.5, number=0, worker="w0"),
        TrialStarted(time=1.5, number=1, worker="w1"),
        TrialCompleted(time=3.0, number=0, values={"loss": 2.0}),
        TrialAsked(time=3.0, number=2, params={"x": 0.9}, run=0),
        TrialFailed(time=4.0, number=1, reason="ValueError: boom", failure="error"),
        TrialAsked(time=4.0, number=3, params={"x": 0.3}, run=0),
        TrialStarted(time=4.5, number=2, worker="w0"),
        TrialCompleted(time=5.0, number=2, values={"loss": 1.0}),
    ]


def test_counts_best_and_convergence_follow_the_events():
    s = fold(_journal()).summary("s")
    assert (s.done, s.complete, s.failed, s.pruned) == (3, 2, 1, 0)
    assert s.total == 4 and s.active and s.objective == "loss" and s.name == "s"
    assert s.best_value == 1.0 and s.best_number == 2 and dict(s.best_params) == {"x": 0.9}
    assert s.best_by_trial == ((1, 2.0), (3, 1.0))  # improvements only
    assert s.best_by_time == ((2.0, 2.0), (4.0, 1.0))  # seconds since the run began
    assert sorted(s.running) == [3] and s.running[3].started is None
    assert [t.number for t in s.recent] == [2, 1, 0]  # newest first
    assert s.recent[0].duration == 0.5 and s.recent[1].state == "failed"
    assert "boom" in s.recent[1].detail
    assert s.elapsed() == 4.0
    assert s.eta() == 4.0 / 3 * 1  # 3 finished in 4 s, 1 to go


def test_a_summary_is_a_copy_that_later_events_leave_alone():
    state = fold(_journal()[:5])
    before = state.summary()
    running = dict(before.running)
    for e in _journal()[5:]:
        state.apply(e)
    assert dict(before.running) == running and before.done == 0
    assert state.summary().done == 3


def test_maximize_pruned_interrupted_and_retried_trials():
    events = [
        StudyCreated(time=0.0, space=SPACE, objective="acc", direction="maximize"),
        RunStarted(time=0.0, run=0, n_trials=3, max_concurrent=3),
        TrialAsked(time=0.0, number=0, params={"x": 1}, run=0),
        TrialAsked(time=0.0, number=1, params={"x": 2}, run=0),
        TrialAsked(time=0.0, number=2, params={"x": 3}, run=0),
        TrialCompleted(time=1.0, number=0, values={"acc": 0.5}),
        TrialCompleted(time=2.0, number=1, values={"acc": 0.7}),
        TrialPruned(time=2.5, number=2, step=3),
        TrialAsked(time=3.0, number=3, params={"x": 4}, run=0),
        TrialInterrupted(time=3.5, number=3, reason="driver died"),
        RunFinished(time=3.5, run=0, reason="interrupted"),
    ]
    state = fold(events)
    s = state.summary()
    assert s.best_value == 0.7 and s.pruned == 1 and s.recent[0].detail == "at step 3"
    assert s.interrupted == 1 and not s.running and not s.active
    assert s.reason == "interrupted" and s.eta() is None and s.elapsed_before == 3.5
    for e in [
        RunStarted(time=10.0, run=1, n_trials=1, max_concurrent=1),
        TrialRetried(time=10.0, number=3, attempt=2, reason="re-queued", cause="interrupted"),
    ]:
        state.apply(e)
    resumed = state.summary()
    assert resumed.total == 3 + 1 + 1  # done, the interrupted one, and the new budget
    assert resumed.interrupted == 0 and dict(resumed.running[3].params) == {"x": 4}
    assert resumed.elapsed() == 0.0 and resumed.done_at_start == 3
    assert resumed.running_time() == 3.5  # the first run's seconds, the second's so far


def test_runs_on_other_clocks_never_mix():
    events = [
        StudyCreated(time=1.7e9, space=SPACE, objective="loss"),  # wall clock
        TrialAsked(time=1.7e9, number=0, params={"x": 1.0}),
        TrialCompleted(time=1.7e9, number=0, values={"loss": 3.0}),
        RunStarted(time=0.0, run=0, n_trials=1, clock="virtual"),
        TrialAsked(time=0.0, number=1, params={"x": 2.0}, run=0),
        TrialStarted(time=0.0, number=1),
        TrialCompleted(time=7.0, number=1, values={"loss": 2.0}),
        RunFinished(time=7.0, run=0, reason="complete"),
    ]
    s = fold(events).summary()
    assert s.clock == "virtual" and s.elapsed(now=1.8e9) == 7.0
    assert s.best_by_time == ((0.0, 3.0), (7.0, 2.0))


def test_a_result_that_is_not_a_number_is_reported_and_skipped():
    events = [
        StudyCreated(time=0.0, space=SPACE, objective="loss", direction="minimize"),
        TrialAsked(time=0.0, number=0, params={"x": 1}),
        TrialCompleted(time=1.0, number=0, values={"loss": True}),
        TrialAsked(time=1.0, number=1, params={"x": 2}),
        TrialCompleted(time=2.0, number=1, values={"loss": 0.5}),
    ]
    with pytest.warns(CorruptRecordWarning, match="trial 0.*'loss'"):
        s = fold(events).summary()
    assert s.best_value == 0.5 and s.complete == 1 and len(s.running) == 1


def test_a_whole_study_folds_to_what_the_study_says():
    study = ah.Study(ah.Space(x=ah.Float(-1, 1)), sampler=ah.RandomSampler(seed=1))
    study.optimize(
        lambda p: {"value": p["x"] ** 2} if p["x"] < 0.8 else 1 / 0,
        n_trials=60,
        backend=ah.SimulatedBackend(n_workers=5, seed=1),
        progress=False,
    )
    s = fold(study.storage.read(study.name)).summary()
    failed = len(study.get_trials(["failed"]))
    assert failed > 0 and s.failed == failed
    assert s.done == 60 and s.complete == 60 - failed and s.reason == "complete"
    assert s.best_value == study.best_value and s.best_number == study.best_trial.number
    assert s == dataclasses.replace(study.journal.summary(), name="")
