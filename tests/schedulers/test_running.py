"""Schedulers in a running study: on the virtual clock, with checkpoints, after a crash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import asynchpo as ah
from asynchpo.events import fold
from asynchpo.execution._schedule import SchedulerWarning, Scheduling
from asynchpo.storage import SQLiteStorage

SPACE = ah.Space(x=ah.Float(0.0, 1.0))
EPOCHS = 27


def curve(params):
    """A learning curve that resumes from its checkpoint: loss floor set by x."""
    state = ah.restore() or {"epoch": 0, "starts": 0}
    state = {**state, "starts": state["starts"] + 1}
    floor = (params["x"] - 0.3) ** 2
    loss = 1.0
    for epoch in range(state["epoch"] + 1, EPOCHS + 1):
        loss = floor + 1.0 / epoch
        state = {**state, "epoch": epoch}
        ah.checkpoint(state)
        ah.report(epoch, value=loss, starts=state["starts"])
    return {"value": loss, "starts": state["starts"]}


def _run(scheduler, tmp_path, name, n_trials=60, workers=8):
    study = ah.Study(
        SPACE,
        sampler=ah.RandomSampler(seed=1),
        scheduler=scheduler,
        storage=tmp_path / f"{name}.db",
        name=name,
    )
    backend = ah.SimulatedBackend(n_workers=workers, step_duration=1.0, seed=0)
    study.optimize(curve, n_trials=n_trials, backend=backend, progress=False)
    return study, backend


def _outline(study):
    return [
        (t.number, t.state.value, [(r.step, r.metrics["value"]) for r in t.reports], t.value)
        for t in study.trials
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: ah.ASHA(EPOCHS, mode="promotion"),
        lambda: ah.Hyperband(EPOCHS, seed=3),
        lambda: ah.MedianStopping(),
    ],
)
def test_a_simulated_study_under_a_scheduler_is_the_same_every_time(tmp_path, make):
    a, clock_a = _run(make(), tmp_path, "a")
    b, clock_b = _run(make(), tmp_path, "b")
    assert _outline(a) == _outline(b) and clock_a.now() == clock_b.now()
    steps = sum(len(t.reports) for t in a.trials)
    assert steps < 60 * EPOCHS / 2  # most of the training was saved


def test_stopping_saves_virtual_time_next_to_running_every_trial_out(tmp_path):
    _, full_clock = _run(None, tmp_path, "full", n_trials=48)
    asha, asha_clock = _run(ah.ASHA(EPOCHS), tmp_path, "asha", n_trials=48)
    assert asha_clock.now() < full_clock.now() / 2
    pruned = asha.get_trials([ah.TrialState.PRUNED])
    assert pruned and all(len(t.reports) < EPOCHS for t in pruned)
    # each was stopped at a rung: the report it was judged on is its last
    assert {t.reports[-1].step for t in pruned} <= {1, 3, 9}


def test_a_paused_trial_resumes_from_its_checkpoint(tmp_path):
    study, _ = _run(ah.ASHA(EPOCHS, mode="promotion"), tmp_path, "p")
    resumed = [t for t in study.trials if any(r.metrics["starts"] > 1 for r in t.reports)]
    assert resumed, "no trial was resumed"
    for t in study.trials:
        steps = [r.step for r in t.reports]
        assert steps == sorted(set(steps)), f"trial {t.number} went over epochs again"
    # it went on where it paused, in the same trial: epochs count on, not from 1
    t = resumed[0]
    first_again = next(r for r in t.reports if r.metrics["starts"] > 1)
    assert first_again.step > 1
    assert study.get_trials([ah.TrialState.COMPLETE])
    # each attempt keeps its latest two checkpoints on disk, not one per epoch
    files = [f for _, _, fs in os.walk(study.checkpoint_dir) for f in fs]
    assert 0 < len(files) <= 2 * sum(t.attempts + 1 for t in study.trials)


def test_a_study_loaded_without_the_checkpoint_folder_it_ran_with_says_so(tmp_path):
    folder = tmp_path / "elsewhere"
    study = ah.Study(
        SPACE,
        sampler=ah.RandomSampler(seed=1),
        scheduler=ah.ASHA(EPOCHS, mode="promotion"),
        storage=tmp_path / "s.db",
        name="s",
        checkpoint_dir=folder,
    )
    backend = ah.SimulatedBackend(n_workers=4, step_duration=1.0, seed=0)
    study.optimize(curve, n_trials=12, backend=backend, progress=False)
    paused = {t.number: len(t.reports) for t in study.get_trials([ah.TrialState.PAUSED])}
    assert paused

    def load(**kw):
        return ah.Study.load(
            "s", tmp_path / "s.db", sampler=ah.RandomSampler(seed=1),
            scheduler=ah.ASHA(EPOCHS, mode="promotion"), **kw,
        )  # fmt: skip

    lost = load()  # the default folder, beside the storage: not where the checkpoints are
    with pytest.raises(ValueError, match=r"checkpoint_dir: \d+ trial\(s\) wait to go on"):
        lost.optimize(curve, n_trials=4, backend=backend, progress=False)
    assert {t.number for t in lost.get_trials([ah.TrialState.PAUSED])} == set(paused)  # none ran
    # with the folder, they go on from their checkpoints
    found = load(checkpoint_dir=folder)
    found.optimize(curve, n_trials=24, backend=backend, progress=False)
    again = [t for t in found.trials if t.number in paused]
    assert not any(t.state == ah.TrialState.FAILED for t in again)
    assert any(len(t.reports) > paused[t.number] for t in again)  # trained on
    # a scheduler that never resumes (or none) leaves paused trials paused: nothing to look
    # for (the files gone for good, as if the study were looked at on another machine)
    shutil.rmtree(folder)
    for scheduler in (ah.ASHA(EPOCHS), None):
        other = ah.Study.load(
            "s", tmp_path / "s.db", sampler=ah.RandomSampler(seed=1), scheduler=scheduler
        )
        with pytest.warns(SchedulerWarning, match="they stay paused"):
            other.optimize(curve, n_trials=2, backend=backend, progress=False)
    # and the folder given explicitly is taken at its word: the trials fail as they resume
    gone = load(checkpoint_dir=folder)
    gone.optimize(curve, n_trials=2, backend=backend, progress=False)
    assert gone.get_trials([ah.TrialState.FAILED])


def test_a_checkpoint_that_changed_on_disk_is_never_unpickled(tmp_path):
    study, _ = _run(ah.ASHA(EPOCHS, mode="promotion"), tmp_path, "c", n_trials=12)
    paused = study.get_trials([ah.TrialState.PAUSED])
    assert paused
    for root, _, names in os.walk(study.checkpoint_dir):
        for n in names:
            with open(os.path.join(root, n), "wb") as f:  # a stranger's bytes in its place
                f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    backend = ah.SimulatedBackend(n_workers=4, step_duration=1.0)
    study.optimize(curve, n_trials=1, backend=backend, progress=False)
    failed = [t for t in study.get_trials([ah.TrialState.FAILED]) if t.attempts > 1]
    assert failed and all("is not a file this user" in (t.error or "") for t in failed)


def test_a_simulation_needs_the_time_of_a_step_before_any_trial_runs():
    study = ah.Study(SPACE, scheduler=ah.ASHA(EPOCHS))
    with pytest.raises(ValueError, match="step_duration"):
        study.optimize(curve, n_trials=3, backend=ah.SimulatedBackend(n_workers=2))
    assert study.trials == []


def test_a_resource_no_report_holds_is_said_once(tmp_path):
    study = ah.Study(SPACE, scheduler=ah.ASHA(EPOCHS, resource="epoch"))
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        study.optimize(curve, n_trials=4, backend=backend, progress=False)
    said = [w for w in seen if issubclass(w.category, SchedulerWarning)]
    assert len(said) == 1 and "'epoch'" in str(said[0].message)
    assert len(study.get_trials([ah.TrialState.COMPLETE])) == 4  # left running, not stopped


def test_an_objective_reported_as_text_is_said_once_and_judged_the_worst():
    def text_sometimes(params):
        for epoch in range(1, EPOCHS + 1):
            ah.report(epoch, value="abc" if params["x"] > 0.5 else params["x"] + 1 / epoch)
        return params["x"]

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), scheduler=ah.ASHA(EPOCHS))
    backend = ah.SimulatedBackend(n_workers=2, step_duration=1.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        study.optimize(text_sometimes, n_trials=12, backend=backend, progress=False)
    said = [str(w.message) for w in seen if issubclass(w.category, SchedulerWarning)]
    assert len(said) == 1, said
    assert "reported the objective 'value' as 'abc'" in said[0] and "not a number" in said[0]
    texts = [t for t in study.trials if t.params["x"] > 0.5]
    assert texts and texts[0].reports[0].metrics["value"] == "abc"  # kept as it came
    # judged the worst, as a diverged trial: it stops at the first rung
    assert all(t.state is ah.TrialState.PRUNED and len(t.reports) == 1 for t in texts)


class Logged(ah.ASHA):
    """ASHA that prints every call it gets, as JSON lines."""

    def on_report(self, progress):
        d = super().on_report(progress)
        print(json.dumps([progress.number, progress.resource, progress.loss, d.value]), flush=True)
        return d


SCRIPT = textwrap.dedent("""
    import json, sys, time
    import asynchpo as ah
    from tests.schedulers.test_running import Logged, SPACE

    def objective(p):
        floor = (p["x"] - 0.3) ** 2
        for epoch in range(1, 28):
            time.sleep(0.004)
            ah.report(epoch, value=floor + 1.0 / epoch)
        return floor + 1.0 / 27

    if __name__ == "__main__":
        study = ah.Study(SPACE, storage=sys.argv[1], name="asha",
                         sampler=ah.RandomSampler(seed=0), scheduler=Logged(27))
        study.optimize(objective, n_trials=400, max_concurrent=4, progress=False)
""")


@pytest.mark.slow
def test_a_killed_asha_run_goes_on_with_the_same_rungs(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(SCRIPT)
    db = tmp_path / "asha.db"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db.exists():
            storage = SQLiteStorage(db, read_only=True)
            state = fold(storage.read("asha")) if storage.exists("asha") else None
            storage.close()
            if state is not None and state.counts[ah.TrialState.PRUNED] >= 10:
                break
        assert proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    live = [json.loads(line) for line in proc.communicate()[0].splitlines() if line.endswith("]")]

    study = ah.Study.load("asha", db, sampler=ah.RandomSampler(seed=0), scheduler=Logged(27))
    done = {t.number for t in study.get_trials([ah.TrialState.COMPLETE, ah.TrialState.PRUNED])}
    assert len(done) >= 10
    heard = []
    real = Logged.on_report

    def spy(self, progress):
        d = real(self, progress)
        heard.append([progress.number, progress.resource, progress.loss, d.value])
        return d

    Logged.on_report = spy
    try:
        replayed = Scheduling(study.scheduler, study.journal)
    finally:
        Logged.on_report = real
    replayed.close()
    # the rebuilt scheduler heard exactly what the killed one did, in the same order (the
    # killed one heard each report once it was recorded, and may have died before saying so)
    assert live and live == heard[: len(live)] and len(heard) - len(live) <= 8
    before = {t.number: t.value for t in study.get_trials([ah.TrialState.COMPLETE])}
    study.optimize(curve, n_trials=6, max_concurrent=3, progress=False)
    after = {t.number: t.value for t in study.get_trials([ah.TrialState.COMPLETE])}
    assert before.items() <= after.items()
    assert len(study.trials) >= len(done) + 6


class StopAtThree(ah.BaseScheduler):
    def on_report(self, progress):
        return (
            ah.schedulers.Decision.STOP if progress.step >= 3 else ah.schedulers.Decision.CONTINUE
        )


def test_a_stopped_trial_that_reports_no_more_is_cancelled_as_pruned():
    release = __import__("threading").Event()

    def hangs_after_three(params):
        for epoch in range(1, 4):
            ah.report(epoch, value=params["x"])
        release.wait(60)  # never reports again
        return params["x"]

    study = ah.Study(SPACE, scheduler=StopAtThree())
    t0 = time.monotonic()
    study.optimize(hangs_after_three, n_trials=2, max_concurrent=2, progress=False)
    took = time.monotonic() - t0
    release.set()
    assert [t.state for t in study.trials] == [ah.TrialState.PRUNED] * 2
    assert all(t.reports[-1].step == 3 for t in study.trials)
    assert took < 20


def lineage(params):
    """Training whose state remembers how many trials it went through."""
    state = ah.restore() or {"epoch": 0, "loss": 1.0, "depth": 0}
    state = {**state, "depth": state["depth"] + 1}
    for epoch in range(state["epoch"] + 1, 31):
        state = {**state, "epoch": epoch, "loss": state["loss"] * (0.5 + params["x"] / 2)}
        ah.checkpoint(state)
        ah.report(epoch, value=state["loss"], depth=state["depth"])
    return state["loss"]


def _pbt_study(storage=None):
    study = ah.Study(
        SPACE,
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.PBT(perturbation_interval=5, seed=0),
        storage=storage,
    )
    backend = ah.SimulatedBackend(n_workers=8, step_duration=1.0, seed=0)
    study.optimize(lineage, n_trials=30, backend=backend, progress=False)
    return study


def test_pbt_copies_a_better_trial_from_its_checkpoint(tmp_path):
    study = _pbt_study(tmp_path / "pbt.db")
    trials = {t.number: t for t in study.trials}
    copies = [t for t in trials.values() if t.parent is not None]
    assert copies, "no trial was copied"
    trained = [t for t in copies if t.reports]  # (a copy of a trial at its end has none)
    assert trained
    for child in trained:
        parent = trials[child.parent]
        first = child.reports[0]
        # it started from the parent's state: one trial deeper, epochs counting on from a
        # checkpoint the parent had saved, at a loss the parent had reached
        assert first.metrics["depth"] == parent.reports[0].metrics["depth"] + 1
        assert first.step > 1
        before = next(r for r in parent.reports if r.step == first.step - 1)
        assert first.metrics["value"] == pytest.approx(
            before.metrics["value"] * (0.5 + child.params["x"] / 2)
        )
        assert child.params != parent.params
    assert len(study.get_trials([ah.TrialState.PRUNED])) >= len(copies)
    # PBT's draws are seeded: the same study again is the same
    assert [t.params for t in _pbt_study().trials] == [t.params for t in study.trials]


@pytest.mark.parametrize("workers", [2, 3])
def test_pbt_with_two_or_three_trials_running_still_copies_the_better(workers):
    # a quarter of two or three running trials, rounded up: one is copied, one replaced
    study = ah.Study(
        SPACE, sampler=ah.RandomSampler(seed=0), scheduler=ah.PBT(perturbation_interval=5)
    )
    backend = ah.SimulatedBackend(n_workers=workers, step_duration=1.0, seed=0)
    study.optimize(lineage, n_trials=12, backend=backend, progress=False)
    copies = [t for t in study.trials if t.parent is not None]
    assert copies, "no trial was copied"
    assert all(c.reports[0].step > 1 for c in copies if c.reports)  # from the checkpoint


def test_pbt_without_checkpoints_says_so():
    def no_checkpoints(params):
        for epoch in range(1, 31):
            ah.report(epoch, value=params["x"] / epoch)
        return params["x"]

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), scheduler=ah.PBT(5))
    with pytest.raises(ValueError, match=r"checkpoint: PBT copies trial \d+, which saved no"):
        study.optimize(
            no_checkpoints,
            n_trials=20,
            backend=ah.SimulatedBackend(8, step_duration=1.0),
            progress=False,
        )


def test_pbt_with_a_checkpoint_folder_it_cannot_write_stops_before_any_trial(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    study = ah.Study(SPACE, scheduler=ah.PBT(5), checkpoint_dir=blocker / "sub")
    with pytest.raises(ValueError, match="checkpoint_dir"):
        study.optimize(lineage, n_trials=4, backend=ah.SimulatedBackend(2, step_duration=1.0))
    assert study.trials == []


def test_the_views_show_paused_and_pruned_trials_and_the_steps_trained(tmp_path, capsys):
    from asynchpo import cli
    from asynchpo._progress import progress_line
    from asynchpo.widgets._view import StudyWidget

    study, _ = _run(ah.ASHA(EPOCHS, mode="promotion"), tmp_path, "v", n_trials=20)
    s = study.journal.summary()
    assert s.paused == len(study.get_trials([ah.TrialState.PAUSED])) > 0
    assert s.steps == sum(len(t.reports) for t in study.trials)
    line = progress_line(s)
    assert f"{s.paused} paused" in line and f"{s.steps} steps" in line
    paused = [r for r in s.recent if r.state == "paused"]
    assert paused and all(r.detail.startswith("at step ") for r in paused)
    html = StudyWidget._counts(s, 0.0, False)
    assert f"{s.paused} paused" in html and "steps trained" in html
    assert cli.main(["show", str(tmp_path / "v.db"), "v"]) == 0
    out = capsys.readouterr().out
    header = next(x for x in out.splitlines() if x.startswith("#"))
    assert "step" in header.split()
    rows = [x.split() for x in out.splitlines() if x.split() and x.split()[0].isdigit()]
    assert {r[1] for r in rows} >= {"paused"}
    # to_xarray keeps them, and a study made from it has them in the same states
    ds = study.to_xarray()
    assert set(ds["state"].values.astype(str)) >= {"paused"}
    again = ah.Study.from_xarray(ds)
    assert [t.state for t in again.trials] == [t.state for t in study.trials]


def test_a_pbt_lineage_goes_to_xarray_and_back(tmp_path):
    import xarray as xr

    study = _pbt_study()
    ds = study.to_xarray()
    parents = {t.number: t.parent for t in study.trials}
    assert any(p is not None for p in parents.values())
    assert [None if p < 0 else p for p in ds["parent"].values.tolist()] == list(parents.values())
    ds.to_netcdf(tmp_path / "pbt.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "pbt.nc", engine="h5netcdf") as back:
        again = ah.Study.from_xarray(back.load(), name="again")
    assert {t.number: t.parent for t in again.trials} == parents
    # a copy's checkpoint stayed with the study it came from: nothing to restore from
    assert all(t.state is not ah.TrialState.RUNNING for t in again.trials)
    bad = ds.copy()
    bad["parent"] = bad["parent"].copy(data=np.where(ds["trial"] == 3, 7, ds["parent"]))
    with pytest.raises(ValueError, match=r"ds: trial 3 has parent=7: not -1 \(none\)"):
        ah.Study.from_xarray(bad, name="bad")


def test_the_checkpoints_of_a_study_in_memory_go_with_it():
    import gc

    study = _pbt_study()  # in memory: its checkpoints in a temporary folder of its own
    folder = study.checkpoint_dir
    assert os.path.isdir(folder) and os.listdir(folder)
    del study
    gc.collect()
    assert not os.path.exists(folder)
    assert not os.path.exists(os.path.dirname(folder))  # (the storage's folder too)
