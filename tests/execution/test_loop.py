"""The driver: a slow suggestion never holds up the messages of running trials."""

from __future__ import annotations

import threading
import time

import asynchpo as ah

SPACE = ah.Space(x=ah.Float(0.0, 1.0))


class SlowOnce(ah.RandomSampler):
    """Its second suggestion takes as long as the test says (a refit, a large history)."""

    cheap = False

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.calls = 0
        self.blocked, self.release = threading.Event(), threading.Event()

    def suggest(self, history, pending, n):
        self.calls += 1
        if self.calls == 2:
            self.blocked.set()
            self.release.wait(30)
        return super().suggest(history, pending, n)


def test_results_are_recorded_while_a_suggestion_is_being_computed():
    sampler = SlowOnce()
    study = ah.Study(SPACE, sampler=sampler)
    gates = [threading.Event(), threading.Event()]
    calls = iter(range(4))

    def objective(p):
        i = next(calls)
        if i < 2:
            gates[i].wait(30)
        return p["x"]

    run = study.start(objective, n_trials=4, max_concurrent=2, progress=False)
    deadline = time.monotonic() + 30
    while len(study.trials) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gates[0].set()  # one trial ends; its free slot asks for the slow suggestion
    assert sampler.blocked.wait(30)
    gates[1].set()  # the other ends while that suggestion is computed
    deadline = time.monotonic() + 20
    while len(study.get_trials(["complete"])) < 2:  # and its result lands meanwhile
        assert time.monotonic() < deadline, "the driver's loop waited for the suggestion"
        time.sleep(0.01)
    assert not sampler.release.is_set()
    sampler.release.set()
    assert run.wait(timeout=60) == "complete"
    assert [t.state for t in study.trials] == [ah.TrialState.COMPLETE] * 4


class SlowFirst(ah.RandomSampler):
    """Its first suggestion waits for the test: trials are asked while the run goes on."""

    cheap = False

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.release = threading.Event()
        self.calls = 0

    def suggest(self, history, pending, n):
        self.calls += 1
        if self.calls == 1:
            self.release.wait(30)
        return super().suggest(history, pending, n)


def test_a_trial_stopped_before_it_was_handed_to_a_worker_never_runs():
    sampler = SlowFirst()
    study = ah.Study(SPACE, sampler=sampler)
    ran: list[float] = []

    def objective(p):
        ran.append(p["x"])
        return p["x"]

    run = study.start(objective, n_trials=3, max_concurrent=1, progress=False)
    run.stop_trial(0)  # trial 0 is being suggested: it exists only once that returns
    sampler.release.set()
    assert run.wait(timeout=60) == "complete"
    first = study.trials[0]
    assert first.state is ah.TrialState.FAILED and first.failure is ah.Failure.CANCELLED
    assert first.params["x"] not in ran and len(ran) == 2


def _overflows(p):
    return 10**400 if p["x"] < 0.5 else p["x"]


def test_an_objective_returning_a_number_past_a_float_fails_its_trial_only():
    for backend in (None, ah.SimulatedBackend(n_workers=2, seed=0)):
        study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=2))
        study.optimize(_overflows, n_trials=10, backend=backend, timeout=60, progress=False)
        assert len(study.trials) == 10
        for t in study.trials:
            if t.params["x"] < 0.5:
                assert t.state is ah.TrialState.FAILED and t.failure is ah.Failure.INVALID
                assert "not a number" in t.error or "too large" in t.error, t.error
            else:
                assert t.state is ah.TrialState.COMPLETE


def _exits(p):
    if p["x"] < 0.5:
        raise SystemExit("the objective called sys.exit")
    if p["x"] < 0.7:
        raise KeyboardInterrupt
    return p["x"]


def test_an_objective_that_raises_systemexit_or_keyboardinterrupt_fails_its_trial_only():
    for backend in (None, ah.SimulatedBackend(n_workers=2, seed=0)):
        study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=1))
        study.optimize(_exits, n_trials=12, backend=backend, progress=False)
        assert len(study.trials) == 12
        for t in study.trials:
            if t.params["x"] < 0.7:
                assert t.state is ah.TrialState.FAILED and t.failure is ah.Failure.ERROR
                word = "SystemExit" if t.params["x"] < 0.5 else "KeyboardInterrupt"
                assert word in t.error, t.error
            else:
                assert t.state is ah.TrialState.COMPLETE


class _LoggingStorage(ah.storage.InMemoryStorage):
    def __init__(self):
        super().__init__()
        self.appends: list[list[str]] = []

    def append(self, study, events, at):
        self.appends.append([e.kind for e in events])
        super().append(study, events, at)


def test_a_cheap_sampler_records_a_round_and_its_new_trials_in_one_transaction():
    storage = _LoggingStorage()
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=storage)
    backend = ah.SimulatedBackend(n_workers=2, seed=0)
    study.optimize(lambda p: p["x"], n_trials=40, backend=backend, progress=False)
    assert len(study.get_trials(["complete"])) == 40
    completed = [kinds for kinds in storage.appends if "trial_completed" in kinds]
    assert len(completed) == 40
    # every result but the last two (nothing replaces them) is recorded with the new trial
    assert all(kinds == ["trial_completed", "trial_asked"] for kinds in completed[:-2])


def test_callbacks_see_each_result_before_the_next_trial_is_asked():
    seen: list[tuple[int, int]] = []  # (trial finished, trials asked by then)

    def callback(study, trial):
        seen.append((trial.number, len(study.trials)))

    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0))
    study.optimize(lambda p: p["x"], n_trials=10, callbacks=[callback], progress=False)
    assert [n for n, _ in seen] == list(range(10))
    assert all(asked == n + 1 for n, asked in seen)  # one at a time: nothing asked ahead
