from __future__ import annotations

import asyncio
import math
import threading

import pytest

import asynchpo as ah
from asynchpo.trial import Failure

SPACE = ah.Space(x=ah.Float(-5.0, 5.0), k=ah.Int(0, 3), c=ah.Categorical(["a", "b"]))


def quad(p):
    return (p["x"] - 1.0) ** 2 + p["k"]


def sim(n_workers=4, seed=0, **kw):
    return ah.SimulatedBackend(n_workers=n_workers, seed=seed, **kw)


def test_ask_tell_and_best():
    study = ah.Study(SPACE, objective="loss", sampler=ah.RandomSampler(seed=0))
    trials = [study.ask() for _ in range(3)]
    assert all(t.state is ah.TrialState.RUNNING for t in trials)
    study.tell(trials[0], 3.0)
    study.tell(trials[1].number, {"loss": 1.0, "acc": 0.9})
    failed = study.tell(trials[2], error="out of memory")
    assert study.get_trials("failed") == study.get_trials([ah.TrialState.FAILED]) == [failed]
    with pytest.raises(ValueError, match=r"states: 'finished' is not one of \['running'"):
        study.get_trials(["finished"])
    assert failed.state is ah.TrialState.FAILED and failed.failure is Failure.ERROR
    assert study.best_value == 1.0 and study.best_trial.values["acc"] == 0.9
    assert study.best_params == dict(trials[1].params)
    with pytest.raises(ValueError, match="already complete"):
        study.tell(trials[0], 1.0)
    with pytest.raises(ValueError, match="no trial 99"):
        study.tell(99, 1.0)
    with pytest.raises(ValueError, match="exactly one of"):
        study.tell(study.ask(), 1.0, error="x")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (math.nan, "returned nan"),
        (math.inf, "returned inf"),
        ("0.3", "returned str"),
        ({"acc": 1.0}, "without 'loss'"),
        ([1.0], "returned list"),
        (None, None),
    ],
)
def test_invalid_results_are_failed_trials(value, why):
    study = ah.Study(SPACE, objective="loss")
    trial = study.ask()
    if why is None:  # None means "no value given"
        with pytest.raises(ValueError, match="exactly one of"):
            study.tell(trial, value)
        return
    told = study.tell(trial, value)
    assert told.state is ah.TrialState.FAILED and told.failure is Failure.INVALID
    assert why in told.error


def test_add_trial_warm_starts_and_checks_its_input():
    study = ah.Study(SPACE, direction="maximize")
    study.add_trial({"x": 0.5, "k": 2, "c": "b"}, 7.0)
    assert study.best_value == 7.0 and study.trials[0].state is ah.TrialState.COMPLETE
    with pytest.raises(ValueError, match="'k'=9 is outside"):
        study.add_trial({"x": 0.5, "k": 9, "c": "b"}, 1.0)
    with pytest.raises(ValueError, match="value: the objective returned nan"):
        study.add_trial({"x": 0.5, "k": 1, "c": "b"}, math.nan)
    assert len(study.trials) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"space": {"x": 3}}, "parameter 'x' must be Float"),
        ({"space": [1]}, "space must be an asynchpo.Space"),
        ({"direction": "down"}, "direction must be 'minimize' or 'maximize'"),
        ({"objective": ""}, "objective must be a metric name"),
        ({"sampler": "tpe"}, "sampler must be a BaseSampler"),
        ({"storage": 3.5}, "storage must be None, a file path"),
        ({"name": ""}, "name must be a non-empty str"),
    ],
)
def test_bad_study_arguments(kwargs, match):
    args = {"space": SPACE, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        ah.Study(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_trials": 0}, "n_trials must be an integer >= 1, got 0"),
        ({"n_trials": 2.5}, "n_trials must be an integer"),
        ({"timeout": -1}, "timeout must be a finite number > 0"),
        ({"max_concurrent": 0}, "max_concurrent must be an integer >= 1"),
        ({"trial_timeout": "1s"}, "trial_timeout must be a finite number > 0"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"callbacks": [3]}, "callbacks: 3 is not callable"),
        ({"resources": {"GPU": 1}}, "resources: worker resources need a dask client"),
        ({"backend": "dask"}, "backend must be an asynchpo Backend"),
        ({"client": object(), "backend": ah.SimulatedBackend()}, "give one of them, not both"),
        ({"objective": 3}, "objective must be callable"),
        ({"n_trials": None}, "n_trials: give n_trials or timeout"),
        ({"progress": "yes"}, "progress must be True, False or None, got 'yes'"),
    ],
)
def test_bad_optimize_arguments_fail_before_any_trial(kwargs, match):
    study = ah.Study(SPACE)
    args = {"objective": quad, "n_trials": 5, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        study.optimize(**args)
    assert study.trials == []


def test_existing_names_are_not_silently_reused(tmp_path):
    path = tmp_path / "runs.db"
    ah.Study(SPACE, storage=path, name="s").add_trial({"x": 0.0, "k": 0, "c": "a"}, 1.0)
    with pytest.raises(ValueError, match="already exists"):
        ah.Study(SPACE, storage=path, name="s")
    again = ah.Study(SPACE, storage=path, name="s", load_if_exists=True)
    assert len(again.trials) == 1
    with pytest.raises(ValueError, match="direction: the stored study 's' has 'minimize'"):
        ah.Study(SPACE, direction="maximize", storage=path, name="s", load_if_exists=True)
    with pytest.raises(ValueError, match="no study 'zz'"):
        ah.Study.load("zz", storage=path)


def test_local_backend_runs_reports_and_records_failures():
    def objective(p):
        for step in range(3):
            ah.report(step, loss=p["x"] * step)
        if p["c"] == "b" and p["k"] == 3:
            raise ValueError("bad combination")
        return quad(p)

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=3))
    study.optimize(objective, n_trials=40, max_concurrent=4, progress=False)
    assert len(study.trials) == 40
    assert all(t.state.finished for t in study.trials)
    for t in study.trials:
        assert [r.step for r in t.reports] == [0, 1, 2]
        assert t.attempts == 1 and t.worker == "local" and t.duration is not None
    failed = study.get_trials(["failed"])
    assert failed and all("ValueError: bad combination" in t.error for t in failed)


def test_report_outside_a_trial_does_nothing_and_checks_its_input():
    ah.report(0, loss=1.0)  # no trial: nothing happens

    def objective(p):
        ah.report("first", loss=1.0)
        return 1.0

    study = ah.Study(SPACE)
    study.optimize(objective, n_trials=1, progress=False)
    assert "report: step must be an integer" in study.trials[0].error


def test_simulated_runs_are_reproducible():
    def run(seed):
        study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=seed))
        study.optimize(quad, n_trials=60, backend=sim(n_workers=7, seed=seed), progress=False)
        return [
            (t.number, dict(t.params), t.value, t.started_at, t.finished_at, t.worker)
            for t in study.trials
        ]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_simulated_clock_keeps_max_concurrent_in_flight():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    study.optimize(
        quad,
        n_trials=50,
        max_concurrent=5,
        backend=sim(n_workers=5, duration=lambda p: 1.0 + p["k"]),
        progress=False,
    )
    trials = study.trials
    for t in trials:
        assert t.duration == pytest.approx(1.0 + t.params["k"])
    # at every start, exactly 5 trials are in flight until the budget runs out
    for t in trials[:45]:
        busy = sum(1 for u in trials if u.started_at <= t.started_at < u.finished_at)
        assert busy == 5


def test_queued_trials_wait_for_a_free_virtual_worker():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    study.optimize(
        quad, n_trials=6, max_concurrent=6, backend=sim(n_workers=2, duration=1.0), progress=False
    )
    assert sorted(t.started_at for t in study.trials) == [0, 0, 1, 1, 2, 2]


def test_stop_from_a_callback_lets_running_trials_finish():
    def stop_at_ten(study, trial):
        if len(study.get_trials(["complete"])) >= 10:
            study.stop()

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    study.optimize(
        quad, n_trials=100, backend=sim(n_workers=4), callbacks=[stop_at_ten], progress=False
    )
    assert 10 <= len(study.trials) <= 14
    assert all(t.state is ah.TrialState.COMPLETE for t in study.trials)
    assert study.journal.query(lambda s: s.finished_runs) == {0: "stopped"}


def test_a_failing_callback_leaves_a_consistent_journal():
    def broken(study, trial):
        raise KeyError("bug in my callback")

    study = ah.Study(SPACE)
    with pytest.raises(KeyError, match="bug in my callback"):
        study.optimize(
            quad, n_trials=10, backend=sim(n_workers=3), callbacks=[broken], progress=False
        )
    assert len(study.get_trials(["running"])) == 0
    assert len(study.get_trials(["interrupted"])) == 2
    study.optimize(quad, n_trials=1, backend=sim(n_workers=3), progress=False)
    assert all(t.state.finished for t in study.trials)


def test_timeout_and_trial_timeout_on_the_virtual_clock():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    study.optimize(
        quad,
        timeout=10.0,
        trial_timeout=2.5,
        backend=sim(n_workers=2, duration=lambda p: 1.0 + p["k"]),
        progress=False,
    )
    assert max(t.started_at for t in study.trials) < 10.0
    for t in study.trials:
        if t.params["k"] >= 2:
            assert t.failure is Failure.TIMEOUT and "trial_timeout=2.5s" in t.error
            assert t.finished_at - t.started_at == pytest.approx(2.5)
        else:
            assert t.state is ah.TrialState.COMPLETE


def test_local_trial_timeout_gives_up_on_a_hung_trial():
    release = threading.Event()

    hung_returned = []

    def objective(p):
        if p["k"] == 3:
            release.wait(30)
            hung_returned.append(p)
        return quad(p)

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=1))
    study.optimize(objective, n_trials=12, max_concurrent=3, trial_timeout=0.5, progress=False)
    assert not hung_returned  # the run ended without waiting for its hung trials
    release.set()
    for t in study.trials:
        assert (t.failure is Failure.TIMEOUT) == (t.params["k"] == 3)


def test_pruned_trials():
    def objective(p):
        ah.report(0, value=p["x"])
        if p["x"] > 0:
            raise ah.Pruned()
        return p["x"]

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=2))
    study.optimize(objective, n_trials=20, backend=sim(), progress=False)
    pruned = study.get_trials(["pruned"])
    assert pruned and all(t.params["x"] > 0 for t in pruned)
    assert len(pruned) + len(study.get_trials(["complete"])) == 20


def test_resume_finishes_the_budget_of_an_interrupted_run(tmp_path):
    path = tmp_path / "runs.db"
    study = ah.Study(SPACE, storage=path, name="s", sampler=ah.RandomSampler(seed=0))

    def crash_after_eight(study, trial):
        if len(study.get_trials(["complete"])) == 8:
            raise SystemExit("simulated crash")

    with pytest.raises(SystemExit):
        study.optimize(
            quad,
            n_trials=30,
            backend=sim(n_workers=4),
            callbacks=[crash_after_eight],
            progress=False,
        )
    study.storage.close()
    resumed = ah.Study.load("s", storage=path, sampler=ah.RandomSampler(seed=0))
    assert len(resumed.get_trials(["complete"])) == 8
    resumed.optimize(quad, backend=sim(n_workers=4), progress=False)
    assert len(resumed.trials) == 30
    assert all(t.state is ah.TrialState.COMPLETE for t in resumed.trials)
    with pytest.raises(ValueError, match="no unfinished budget"):
        resumed.optimize(quad, backend=sim(), progress=False)


def test_repr_does_no_io(tmp_path):
    study = ah.Study(SPACE, storage=tmp_path / "r.db", name="s")
    study.add_trial({"x": 1.0, "k": 0, "c": "a"}, 0.25)
    study.storage.close()  # a repr that touched the file would now fail
    assert (
        repr(study)
        == "<Study 's' minimize 'value': 1 complete, 0 running, 0 failed, best 'value'=0.25>"
    )


def test_optimize_blocks_fine_inside_a_running_event_loop():
    # a notebook cell runs inside the kernel's event loop; optimize must not need that loop
    async def cell():
        study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
        study.optimize(quad, n_trials=5, max_concurrent=2, progress=False)
        study.optimize(quad, n_trials=5, backend=sim(), progress=False)
        return study

    study = asyncio.run(cell())
    assert len(study.get_trials(["complete"])) == 10


def test_optimize_async_and_its_argument_checks():
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    asyncio.run(study.optimize_async(quad, n_trials=6, backend=sim(), progress=False))
    assert len(study.trials) == 6
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_trails'"):
        asyncio.run(study.optimize_async(quad, n_trails=6, backend=sim()))
    with pytest.raises(ValueError, match="max_concurrent"):
        asyncio.run(study.optimize_async(quad, 6, backend=sim(), max_concurrent=0))
    assert len(study.trials) == 6  # refused before any trial was asked


def test_optimize_and_optimize_async_take_the_arguments_start_declares():
    import inspect

    start = inspect.signature(ah.Study.start)
    for method in (ah.Study.optimize, ah.Study.optimize_async):
        sig = inspect.signature(method)
        assert list(sig.parameters) == list(start.parameters)
        assert all(
            sig.parameters[k].default == start.parameters[k].default for k in start.parameters
        )


def test_text_progress_line(capsys):
    study = ah.Study(SPACE, objective="loss", name="demo", sampler=ah.RandomSampler(seed=0))

    def objective(p):
        if p["k"] == 3:
            raise ValueError("no")
        return quad(p)

    study.optimize(objective, n_trials=20, backend=sim(), progress=True)
    last = capsys.readouterr().err.rstrip().split("\r")[-1]
    failed = len(study.get_trials(["failed"]))
    assert last.startswith(f"demo: 20/20 done | 0 running | {failed} failed | best loss=")
    assert f"best loss={study.best_value:.6g}" in last
