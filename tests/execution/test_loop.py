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
    gate = threading.Event()

    def objective(p):
        gate.wait(30)
        return p["x"]

    run = study.start(objective, n_trials=4, max_concurrent=2, progress=False)
    while len(study.trials) < 2:
        time.sleep(0.01)
    gate.set()  # both trials finish; the first free slot asks for the slow suggestion
    assert sampler.blocked.wait(30)
    deadline = time.monotonic() + 20
    while len(study.get_trials(["complete"])) < 2:  # the other trial's result still lands
        assert time.monotonic() < deadline, "the driver's loop waited for the suggestion"
        time.sleep(0.01)
    assert not sampler.release.is_set()
    sampler.release.set()
    assert run.wait(timeout=60) == "complete"
    assert [t.state for t in study.trials] == [ah.TrialState.COMPLETE] * 4
