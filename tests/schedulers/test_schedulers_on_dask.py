"""Schedulers on a real dask cluster: decisions reach the workers through dask's messaging."""

from __future__ import annotations

import time

import pytest
from distributed import Client, LocalCluster, get_worker

import asynchpo as ah
from asynchpo.execution._loop import DECISION_GRACE
from asynchpo.schedulers import BaseScheduler, Decision, Progress, Proposal

pytestmark = pytest.mark.slow

SPACE = ah.Space(x=ah.Float(0.0, 1.0))


class StopAt(BaseScheduler):
    def __init__(self, step: int):
        self.step = step

    def on_report(self, progress: Progress) -> Decision:
        return Decision.STOP if progress.step >= self.step else Decision.CONTINUE


class PauseAt(BaseScheduler):
    """Pauses each trial once at ``step``; resumes the paused ones only if ``resume_now``."""

    pauses = True

    def __init__(self, step: int, resume_now: bool):
        self.step, self.resume_now = step, resume_now
        self._paused: set[int] = set()

    def on_report(self, progress: Progress) -> Decision:
        if progress.step >= self.step and progress.number not in self._paused:
            self._paused.add(progress.number)
            return Decision.PAUSE
        return Decision.CONTINUE

    def resume(self, paused, *, idle=False, forecast=None):
        return min(paused) if paused and self.resume_now else None


def reporting(params):
    state = ah.restore() or {"epoch": 0, "starts": 0}
    state["starts"] += 1
    for epoch in range(state["epoch"] + 1, 31):
        time.sleep(0.05)
        state["epoch"] = epoch
        ah.checkpoint(state)
        ah.report(epoch, value=params["x"] / epoch, worker=get_worker().address, **state)
    return params["x"]


def _cluster():
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)


def test_a_stop_decision_ends_the_trial_on_its_worker_within_one_report(tmp_path):
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), scheduler=StopAt(3))
    with _cluster() as cluster, Client(cluster) as client:
        t0 = time.monotonic()
        study.optimize(reporting, n_trials=6, client=client, progress=False)
        took = time.monotonic() - t0
    trials = study.trials
    assert all(t.state is ah.TrialState.PRUNED for t in trials)
    # decided on the report at step 3: the worker raised at the next one (reports come every
    # 50 ms, the decision takes a few), or, on a machine busy with other work, the one after
    last = [t.reports[-1].step for t in trials]
    assert all(3 <= s <= 5 for s in last) and sorted(last)[len(last) // 2] <= 4, last
    # ended by the raise on the worker, not cancelled after the grace period
    assert took < 3 * DECISION_GRACE


def test_a_paused_trial_resumes_from_its_checkpoint_on_another_worker(tmp_path):
    db = tmp_path / "s.db"
    study = ah.Study(
        SPACE, sampler=ah.RandomSampler(seed=0), scheduler=PauseAt(4, False), storage=db
    )
    with _cluster() as cluster, Client(cluster) as client:
        study.optimize(reporting, n_trials=2, client=client, progress=False)
    assert [t.state for t in study.trials] == [ah.TrialState.PAUSED] * 2
    first = {t.number: {r.metrics["worker"] for r in t.reports} for t in study.trials}
    # a new cluster: the trials go on on workers that were not there when they paused
    again = ah.Study.load(
        study.name, db, sampler=ah.RandomSampler(seed=0), scheduler=PauseAt(4, True)
    )
    with _cluster() as cluster, Client(cluster) as client:
        again.optimize(reporting, client=client, progress=False)  # the paused ones only
    for t in again.trials:
        assert t.state is ah.TrialState.COMPLETE
        steps = [r.step for r in t.reports]
        assert steps == list(range(1, 31))  # on from where it paused, nothing twice
        later = [r for r in t.reports if r.metrics["starts"] == 2]
        assert later and later[0].step <= 6  # resumed from its checkpoint, not from scratch
        assert {r.metrics["worker"] for r in later}.isdisjoint(first[t.number])


def _lineage(params):
    state = ah.restore() or {"epoch": 0, "loss": 1.0}
    for epoch in range(state["epoch"] + 1, 11):
        time.sleep(0.05)
        state = {"epoch": epoch, "loss": state["loss"] * (0.5 + params["x"] / 2)}
        ah.checkpoint(state)
        ah.report(epoch, value=state["loss"])
    return state["loss"]


class CopyTheFirst(BaseScheduler):
    """Stops each odd-numbered trial at step 3 and starts a copy of trial 0 in its place."""

    needs_checkpoints = True

    def __init__(self):
        self._wanted: list[int] = []

    def on_start(self, number, params, parent=None):
        if parent is not None:
            self._wanted.pop(0)

    def on_report(self, progress: Progress) -> Decision:
        if progress.step == 3 and progress.number % 2 == 1 and progress.number < 6:
            self._wanted.append(progress.number)
            return Decision.STOP
        return Decision.CONTINUE

    def propose(self) -> Proposal | None:
        return Proposal({"x": 0.5}, parent=0) if self._wanted else None


def test_a_copy_of_a_large_checkpoint_does_not_hold_up_the_event_loop(tmp_path, monkeypatch):
    import asyncio

    from asynchpo import _checkpoint

    copy = _checkpoint.copy

    def slow_copy(*args, **kwargs):  # as writing a large file to a shared file system is
        out = copy(*args, **kwargs)
        time.sleep(0.6)
        return out

    monkeypatch.setattr(_checkpoint, "copy", slow_copy)

    async def main():
        gaps: list[float] = []

        async def tick():
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.02)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async with Client(
            processes=False, n_workers=4, threads_per_worker=1, asynchronous=True
        ) as client:
            study = ah.Study(
                SPACE,
                sampler=ah.RandomSampler(seed=0),
                scheduler=CopyTheFirst(),
                checkpoint_dir=tmp_path / "ckpt",
            )
            ticker = asyncio.ensure_future(tick())
            await study.optimize_async(
                _lineage, n_trials=8, client=client, max_concurrent=4, progress=False
            )
            ticker.cancel()
        return study, gaps

    study, gaps = asyncio.run(main())
    copies = [t for t in study.trials if t.parent is not None]
    assert copies and all(t.parent == 0 for t in copies)
    assert all(t.reports[0].step > 3 for t in copies if t.reports)  # on from the copy
    assert max(gaps) < 0.4  # dask's loop (the driver's) went on while the copies were made
