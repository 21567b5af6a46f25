"""Schedulers at the edges: copies racing their parents, decisions across interruptions,
diverged trials, trials that end at a rung, folders that move."""

from __future__ import annotations

import math
import os
import time
import warnings

import pytest

import asynchpo as ah
from asynchpo.execution._schedule import SchedulerWarning
from asynchpo.schedulers import Progress

SPACE = ah.Space(x=ah.Float(0.0, 1.0))


def resumable(params):
    state = ah.restore() or {"epoch": 0}
    for epoch in range(state["epoch"] + 1, 30):
        state = {"epoch": epoch}
        ah.checkpoint(state)
        ah.report(epoch, value=params["x"] + 1 / epoch)
    return params["x"]


def test_a_copy_starts_from_its_parents_checkpoint_though_the_parent_trains_on(tmp_path):
    # the parent keeps only its latest two checkpoints: a copy has its own
    study = ah.Study(
        SPACE,
        sampler=ah.RandomSampler(seed=1),
        scheduler=ah.PBT(perturbation_interval=2, quantile=0.5),
        checkpoint_dir=tmp_path,
    )
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    study.optimize(resumable, n_trials=8, max_concurrent=3, backend=backend, progress=False)
    copies = [t for t in study.trials if t.parent is not None]
    assert copies and not study.get_trials([ah.TrialState.FAILED])


def test_pbt_does_not_copy_a_trial_at_its_end():
    def lineage(params):
        s = ah.restore() or {"epoch": 0, "loss": 1.0}
        for e in range(s["epoch"] + 1, 31):
            s = {**s, "epoch": e, "loss": s["loss"] * (0.5 + params["x"] / 2)}
            ah.checkpoint(s)
            ah.report(e, value=s["loss"])
        return s["loss"]

    study = ah.Study(
        SPACE,
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.PBT(perturbation_interval=5, seed=0, max_resource=30),
    )
    backend = ah.SimulatedBackend(n_workers=8, step_duration=1.0, seed=0)
    study.optimize(lineage, n_trials=30, backend=backend, progress=False)
    copies = [t for t in study.trials if t.parent is not None]
    assert copies and all(t.reports for t in copies)


def test_a_trial_stopped_then_interrupted_is_not_run_again():
    slow = {"on": False}

    def f(p):
        for s in range(1, 10):
            ah.report(s, value=p["x"] + 1 / s)
            time.sleep(1.0 if slow["on"] else 0.001)
        return p["x"]

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), scheduler=ah.ASHA(9))
    study.optimize(f, n_trials=1, max_concurrent=1, progress=False)  # x = 0.64
    slow["on"] = True
    run = study.start(f, n_trials=1, max_concurrent=1, progress=False)  # x = 0.89: stopped
    time.sleep(0.5)
    run.stop(cancel_running=True)
    run.wait()
    assert study.trials[1].state is ah.TrialState.INTERRUPTED
    slow["on"] = False
    study.optimize(f, n_trials=1, max_concurrent=1, progress=False)
    t = study.trials[1]
    assert t.state is ah.TrialState.PRUNED and [r.step for r in t.reports] == [1]


@pytest.mark.parametrize("make", [lambda: ah.ASHA(27), lambda: ah.MedianStopping(min_trials=1)])
def test_a_diverged_trial_is_stopped(make):
    def f(p):
        loss = math.nan
        for e in range(1, 28):
            loss = math.nan if p["x"] > 0.8 else p["x"] + 1 / e
            ah.report(e, value=loss)
        return loss

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), scheduler=make())
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    study.optimize(f, n_trials=10, backend=backend, progress=False)
    diverged = [t for t in study.trials if t.params["x"] > 0.8]
    assert diverged and all(len(t.reports) < 27 for t in diverged[1:])


def test_reports_without_the_objective_are_said_once():
    def f(p):
        for e in range(1, 28):
            ah.report(e, val_loss=p["x"] + 1 / e)  # the objective is "loss"
        return {"loss": p["x"]}

    study = ah.Study(
        SPACE, objective="loss", sampler=ah.RandomSampler(seed=0), scheduler=ah.ASHA(27)
    )
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        study.optimize(f, n_trials=4, backend=backend, progress=False)
    said = [str(w.message) for w in seen if issubclass(w.category, SchedulerWarning)]
    assert len(said) == 1 and "'loss'" in said[0] and "'val_loss'" in said[0]


def test_trials_that_fail_at_a_rung_leave_their_place_to_the_paused(tmp_path):
    def f(p):
        st = ah.restore() or {"epoch": 0}
        for e in range(st["epoch"] + 1, 10):
            st = {"epoch": e}
            ah.checkpoint(st)
            ah.report(e, value=p["x"] + 1 / e)
            if p["x"] < 0.5:
                raise MemoryError("out of memory")
        return p["x"]

    study = ah.Study(
        SPACE,
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.ASHA(max_resource=9, mode="promotion"),
        checkpoint_dir=tmp_path,
    )
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    study.optimize(f, n_trials=12, backend=backend, progress=False)
    assert study.get_trials([ah.TrialState.FAILED])
    assert study.get_trials([ah.TrialState.COMPLETE])


def test_forecasts_never_promote_more_than_the_share_of_a_rung():
    a = ah.ASHA(max_resource=9, mode="promotion")
    for n, loss in enumerate([0.1, 0.2, 0.3]):
        a.on_report(Progress(n, {}, 1, 1.0, loss, {}))
    paused, promoted = {0, 1, 2}, []
    for order in ({0: 0, 1: 1, 2: 2}, {0: 2, 1: 0, 2: 1}, {0: 1, 1: 2, 2: 0}):  # three refits
        r = a.resume(paused, forecast=lambda ts, o=order: [o[t] for t in ts])
        if r is not None:
            promoted.append(r)
            a.on_start(r, {})
            paused.discard(r)
    assert promoted == [0]  # one in three


def test_a_relative_checkpoint_folder_is_fixed_when_the_study_is_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = ah.Study(SPACE, checkpoint_dir="ckpts", storage="runs.db")
    assert study.checkpoint_dir == str(tmp_path / "ckpts")
    other = ah.Study(SPACE, storage="other.db")
    assert os.path.isabs(other.checkpoint_dir)
    assert other.checkpoint_dir.startswith(str(tmp_path / "other.db-checkpoints"))


def test_a_study_in_memory_keeps_its_checkpoint_folder_when_loaded():
    storage = ah.InMemoryStorage()
    study = ah.Study(SPACE, storage=storage, name="m")
    again = ah.Study.load("m", storage=storage)
    assert again.checkpoint_dir == study.checkpoint_dir


def test_paused_trials_a_run_cannot_resume_are_said(tmp_path):
    study = ah.Study(
        SPACE,
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.ASHA(9, mode="promotion"),
        storage=tmp_path / "p.db",
        name="p",
    )
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    study.optimize(resumable, n_trials=6, backend=backend, progress=False)
    assert study.get_trials([ah.TrialState.PAUSED])
    plain = ah.Study.load("p", tmp_path / "p.db", sampler=ah.RandomSampler(seed=0))
    with pytest.warns(SchedulerWarning, match="paused"):
        plain.optimize(resumable, n_trials=1, backend=backend, progress=False)
    with pytest.raises(ValueError, match="n_trials"):  # nothing it could run on
        plain.optimize(resumable, backend=backend, progress=False)


def test_a_reduction_factor_barely_above_one_is_refused():
    with pytest.raises(ValueError, match="reduction_factor"):
        ah.ASHA(1e3, reduction_factor=1 + 1e-6)
    with pytest.raises(ValueError, match="reduction_factor"):
        ah.Hyperband(20, reduction_factor=1.005)


def test_a_study_and_checkpoints_from_a_stranger_are_never_unpickled(tmp_path, monkeypatch):
    # a stranger's journal and checkpoints agree with each other, but were made with their
    # key, not ours: nothing of theirs is unpickled here
    from asynchpo import _checkpoint

    monkeypatch.setenv("ASYNCHPO_CHECKPOINT_KEY", "the stranger's key")
    saved = _checkpoint.save({"epoch": 3}, str(tmp_path), 0, 3)
    assert _checkpoint.load(str(tmp_path), saved["name"], saved["sha256"]) == {"epoch": 3}
    monkeypatch.setenv("ASYNCHPO_CHECKPOINT_KEY", "our key")
    with pytest.raises(_checkpoint.CheckpointError, match="not a file this user"):
        _checkpoint.load(str(tmp_path), saved["name"], saved["sha256"])
    with pytest.raises(_checkpoint.CheckpointError, match="not a file this user"):
        _checkpoint.copy(str(tmp_path), saved["name"], saved["sha256"], 0)
    # and without the variable, a key of this user's, kept private in the home folder
    monkeypatch.delenv("ASYNCHPO_CHECKPOINT_KEY")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    mine = _checkpoint.save([1, 2], str(tmp_path), 1, 0)
    key = tmp_path / "home" / ".asynchpo" / "checkpoint.key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    assert _checkpoint.load(str(tmp_path), mine["name"], mine["sha256"]) == [1, 2]


def test_pruned_and_paused_points_are_not_suggested_again():
    study = ah.Study(
        SPACE, sampler=ah.RandomSampler(seed=0), scheduler=ah.ASHA(9, mode="promotion")
    )
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    study.optimize(resumable, n_trials=12, backend=backend, progress=False)
    history, _ = study.journal.snapshot()
    held = study.get_trials([ah.TrialState.PAUSED, ah.TrialState.PRUNED, ah.TrialState.FAILED])
    assert held and len(history.X_failed) == len(held)
    assert {tuple(r) for r in history.X_failed} == {tuple(SPACE.encode(t.params)) for t in held}
