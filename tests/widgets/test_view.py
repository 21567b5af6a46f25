from __future__ import annotations

import itertools
import threading
import time

import pytest

import asynchpo as ah

pytest.importorskip("ipywidgets")

SPACE = ah.Space(x=ah.Float(0, 1), k=ah.Int(1, 4))


def _until(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_the_view_draws_a_finished_study():
    study = ah.Study(SPACE, objective="loss", sampler=ah.RandomSampler(seed=0))
    w = study.widget()
    assert study.widget() is w  # one view per study
    study.optimize(
        lambda p: {"loss": p["x"]} if p["x"] < 0.9 else 1 / 0,
        n_trials=40,
        backend=ah.SimulatedBackend(n_workers=4, seed=0),
        progress=False,
    )
    w.draw()
    failed = len(study.get_trials(["failed"]))
    assert (w.progress.value, w.progress.max) == (40, 40)
    assert w.progress.bar_style == "success"
    assert "<b>40</b> / 40 done" in w.counts.value and f"{failed} failed" in w.counts.value
    assert f"{study.best_value:.6g}" in w.best.value and f"trial {study.best_trial.number}" in (
        w.best.value
    )
    assert w.plot.value.count("<svg") == 2 and "<path" in w.plot.value
    assert "trial" in w.recent.value and str(study.trials[-1].number) in w.recent.value
    assert w.stop_button.disabled and "StudyWidget" in repr(w)


def test_a_view_opened_later_shows_the_whole_journal(tmp_path):
    path = tmp_path / "s.db"
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=path, name="s")
    study.optimize(lambda p: p["x"], n_trials=7, progress=False)
    again = ah.Study.load("s", storage=path)
    w = again.widget()
    assert w.state.done == 7 and "<b>7</b>" in w.counts.value


def test_redraws_stay_bounded_however_fast_trials_finish():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    w = study.widget()
    drawn_by_the_view = []
    render = w._render

    def timed(*args):
        if threading.current_thread().name == "asynchpo-widget":
            drawn_by_the_view.append(time.monotonic())
        render(*args)

    w._render = timed
    study.optimize(
        lambda p: p["x"],
        n_trials=10_000,
        backend=ah.SimulatedBackend(n_workers=50, seed=0),
        progress=False,
    )
    _until(lambda: w.state.done == 10_000)  # the view catches up by itself
    assert w.state.n_events >= 30_000 and len(drawn_by_the_view) >= 2
    # the view's own thread never redraws faster than max_rate (4 a second)
    gaps = [b - a for a, b in itertools.pairwise(drawn_by_the_view)]
    assert all(gap >= 0.25 - 0.01 for gap in gaps), gaps


def test_the_buttons_stop_a_trial_and_the_run():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    gate = threading.Event()

    def objective(p):
        gate.wait(30)
        return p["x"]

    w = study.widget()
    run = study.start(objective, n_trials=20, max_concurrent=3, progress=False)
    _until(lambda: len(study.get_trials(["running"])) == 3)
    _until(lambda: len(w.trial_choice.options) == 3 and not w.stop_trial_button.disabled)
    victim = w.trial_choice.options[1]
    w.trial_choice.value = victim
    w.stop_trial_button.click()
    _until(lambda: study.trials[victim].failure == ah.Failure.CANCELLED)
    w.stop_button.click()
    gate.set()
    assert run.wait(30) == "stopped"
    _until(lambda: not w.state.active)
    w.draw()
    assert "run stopped" in w.counts.value and w.stop_button.disabled
    assert "cancelled" in w.recent.value


def test_an_error_in_the_run_shows_in_the_view():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    w = study.widget()

    def broken(study, trial):
        raise RuntimeError("callback broke")

    run = study.start(lambda p: 0.0, n_trials=3, callbacks=[broken], progress=False)
    with pytest.raises(RuntimeError):
        run.wait(30)
    _until(lambda: "callback broke" in w.message.value)
    assert w.progress.bar_style == "danger"


def test_a_bad_redraw_rate_is_named():
    from asynchpo.widgets._view import StudyWidget

    with pytest.raises(ValueError, match="max_rate"):
        StudyWidget(ah.Study(SPACE), max_rate=0)
