"""The contract every scheduler must meet; subclass and define ``make``.

Example (in a test module)::

    from asynchpo.testing import SchedulerContract

    class TestMyScheduler(SchedulerContract):
        def make(self):
            return MyScheduler(max_resource=27)
"""

from __future__ import annotations

import copy
import pickle

import numpy as np

from asynchpo.execution import SimulatedBackend
from asynchpo.schedulers import BaseScheduler, Decision, Progress
from asynchpo.space import Float, Space
from asynchpo.study import Study
from asynchpo.trial import TrialState

#: The resource a trial of the contract's curves reaches when it runs to its end.
MAX_RESOURCE = 27


def curves(seed: int, n: int) -> list[np.ndarray]:
    """``n`` learning curves of ``MAX_RESOURCE`` noisy, decaying losses."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        floor, speed = rng.uniform(0, 1), rng.uniform(0.05, 0.5)
        t = np.arange(1, MAX_RESOURCE + 1)
        out.append(floor + np.exp(-speed * t) + rng.normal(0, 0.01, MAX_RESOURCE))
    return out


def play(
    scheduler: BaseScheduler, seed: int, n: int = 30, running: int = 4
) -> list[tuple[int, int, Decision]]:
    """Run ``n`` curves through ``scheduler``, ``running`` at a time, interleaved by a
    seeded draw; resumes paused trials when asked; every decision, in order."""
    rng = np.random.default_rng(seed + 1)
    scheduler.on_study(Space(x=Float(0.0, float(n))))
    data = curves(seed, n)
    step = dict.fromkeys(range(n), 0)
    todo, live = list(range(n)), list[int]()
    paused: set[int] = set()
    log: list[tuple[int, int, Decision]] = []
    while todo or live or paused:
        while len(live) < running:
            number = scheduler.resume(frozenset(paused), idle=not todo) if paused else None
            if number is not None:
                assert number in paused, f"resume gave {number}, which is not paused"
                paused.discard(number)
                scheduler.on_start(number, {"x": float(number)})
            elif todo:
                number = todo.pop(0)
                scheduler.on_start(number, {"x": float(number)})
            else:
                break
            live.append(number)
        if not live:
            break
        number = live[int(rng.integers(len(live)))]
        step[number] += 1
        s = step[number]
        loss = float(data[number][s - 1])
        d = scheduler.on_report(Progress(number, {"x": float(number)}, s, float(s), loss, {}))
        assert isinstance(d, Decision), f"on_report returned {d!r}, not a Decision"
        log.append((number, s, d))
        if d is Decision.STOP or s == MAX_RESOURCE:
            live.remove(number)
            scheduler.on_finish(number, loss if s == MAX_RESOURCE else None)
        elif d is Decision.PAUSE:
            assert scheduler.pauses, "PAUSE from a scheduler whose pauses is False"
            live.remove(number)
            paused.add(number)
    return log


class SchedulerContract:
    """Checks a scheduler's promises: pure and replayable, answers of the right kinds,
    never stops the best trial, never leaves a study with nothing to show."""

    def make(self) -> BaseScheduler:
        """A fresh scheduler for curves that end at ``MAX_RESOURCE`` steps."""
        raise NotImplementedError

    def test_is_a_scheduler_with_a_resource(self) -> None:
        s = self.make()
        assert isinstance(s, BaseScheduler)
        assert isinstance(s.resource, str) and s.resource
        assert repr(s)

    def test_the_same_events_give_the_same_decisions(self) -> None:
        # pure: two copies (one through pickle, as a process boundary would) agree
        a, b = self.make(), pickle.loads(pickle.dumps(self.make()))
        assert play(a, seed=3) == play(b, seed=3)

    def test_a_copy_made_midway_decides_as_the_original(self) -> None:
        # its state is a fold: a copy of a half-fed scheduler goes on exactly alike
        s = self.make()
        s.on_study(Space(x=Float(0.0, 6.0)))
        data = curves(5, 6)
        for t in range(5):
            for n in range(6):
                s.on_report(Progress(n, {}, t + 1, float(t + 1), float(data[n][t]), {}))
        twin = copy.deepcopy(s)
        for t in range(5, 12):
            for n in range(6):
                p = Progress(n, {}, t + 1, float(t + 1), float(data[n][t]), {})
                assert s.on_report(p) == twin.on_report(p)

    def test_resume_changes_nothing(self) -> None:
        s = self.make()
        play(s, seed=1, n=12)
        before = pickle.dumps(s)
        paused = frozenset(range(12))
        first = s.resume(paused)
        assert s.resume(paused) == first and pickle.dumps(s) == before
        assert first is None or first in paused

    def test_a_report_without_the_objective_goes_on(self) -> None:
        s = self.make()
        for t in range(1, MAX_RESOURCE + 1):
            assert s.on_report(Progress(0, {}, t, float(t), None, {})) is Decision.CONTINUE

    def test_the_best_trial_so_far_is_never_stopped(self) -> None:
        s = self.make()
        s.on_study(Space(x=Float(0.0, 25.0)))
        best: dict[int, float] = {}  # step -> best loss seen there
        for number, losses in enumerate(curves(7, 25)):
            for t, loss in enumerate(losses, 1):
                p = Progress(number, {}, t, float(t), float(loss), {})
                decision = s.on_report(p)
                if loss < best.get(t, np.inf):
                    assert decision is not Decision.STOP, f"stopped trial {number}, best at {t}"
                best[t] = min(best.get(t, np.inf), float(loss))
                if decision is not Decision.CONTINUE:
                    break

    def test_some_trials_reach_the_end(self) -> None:
        log = play(self.make(), seed=11, n=30)
        ended = {n for n, s, d in log if s == MAX_RESOURCE}
        assert ended, "no trial ran to its end"

    def test_a_study_runs_under_it_and_saves_resource(self) -> None:
        def curve(params: dict[str, float]) -> float:
            from asynchpo import checkpoint, report, restore

            start = restore() or 0
            floor = (params["x"] - 0.3) ** 2
            loss = floor + 1.0
            for t in range(start + 1, MAX_RESOURCE + 1):
                loss = floor + 1.0 / t
                checkpoint(t)
                report(t, value=loss)
            return loss

        study = Study(Space(x=Float(0.0, 1.0)), scheduler=self.make())
        backend = SimulatedBackend(n_workers=4, step_duration=1.0, seed=0)
        study.optimize(curve, n_trials=40, backend=backend, progress=False)
        trials = study.trials
        assert len(trials) == 40 and not study.get_trials([TrialState.RUNNING])
        assert study.best_trial is not None
        steps = sum(len(t.reports) for t in trials)
        assert steps < 40 * MAX_RESOURCE, "nothing was stopped early"
