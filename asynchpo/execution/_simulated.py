"""A simulated cluster on a virtual clock: the whole loop, deterministic, without dask."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from asynchpo._checks import is_real, positive_int
from asynchpo._report import context_for, run_trial
from asynchpo.execution._backend import Backend, Finished, Job, Message, Reported, Started
from asynchpo.execution._stepped import Stepped

Duration = float | Callable[[dict[str, Any]], float] | None


def _seconds(name: str, given: Any, params: dict[str, Any]) -> float:
    """A duration given as a number or as a function of the parameters, checked."""
    d = given(params) if callable(given) else given
    if not is_real(d) or not d >= 0:
        raise ValueError(f"{name}({params!r}) must be a number >= 0, got {d!r}")
    return float(d)


@dataclass(frozen=True)
class _Advance:
    """Internal: run trial ``number`` on to its next report, now."""

    number: int


class SimulatedBackend(Backend):
    """``n_workers`` virtual workers; each trial takes a virtual duration, no real time.

    By default the objective is evaluated in this process the moment a trial starts; its
    result is delivered when the virtual clock reaches the trial's end, and its intermediate
    reports arrive spread evenly over the trial's duration. With ``step_duration``, trials
    are learning curves instead: each ``asynchpo.report`` happens ``step_duration`` virtual
    seconds after the last (or after the start), the objective waits there until the clock
    gets there, and the study's scheduler can stop or pause it at that report, so early
    stopping is simulated with as many workers as wanted, in seconds. A trial submitted
    while every worker is busy waits for the first one to free up, as on a real cluster.
    Everything, durations included, follows from ``seed``: the same seed gives the same
    history.

    Args:
        n_workers: How many trials run at once.
        duration: Virtual seconds per trial: a number, a function of the parameters, or None
            for exponential durations with mean 1 (drawn from ``seed``). Not used with
            ``step_duration``.
        seed: Seed of the durations.
        step_duration: Virtual seconds per report: a number, or a function of the
            parameters (the cost of one epoch of that configuration). A trial that never
            reports takes one step. Needed with a scheduler.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(-2, 2)), sampler=ah.RandomSampler(seed=0))
        >>> study.optimize(lambda p: p["x"] ** 2, n_trials=20,
        ...                backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False)
        >>> len(study.trials)
        20
    """

    virtual = True

    def __init__(
        self,
        n_workers: int = 1,
        duration: Duration = None,
        seed: int | None = None,
        step_duration: Duration = None,
    ):
        self.n_workers = positive_int("n_workers", n_workers)
        for name, d in (("duration", duration), ("step_duration", step_duration)):
            if d is not None and not callable(d) and not (is_real(d) and d >= 0):
                raise ValueError(f"{name} must be a number >= 0, a function or None, got {d!r}")
        self.duration, self.step_duration = duration, step_duration
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._clock = 0.0
        self._free = [(0.0, i) for i in range(self.n_workers)]  # (free from, worker)
        self._events: list[tuple[float, int, Message, int]] = []  # (time, order, msg, attempt)
        self._order = 0
        self._live: dict[int, tuple[int, int, float]] = {}  # trial -> (attempt, worker, end)
        # learning curves (step_duration): each attempt stepped in lockstep with the clock
        self._stepped: dict[int, tuple[Stepped, int, float]] = {}  # trial -> (it, worker, step)
        self._idle = list(range(self.n_workers))
        self._queue: deque[Job] = deque()
        self._decided: dict[int, str] = {}

    def now(self) -> float:
        return self._clock

    async def default_concurrency(self) -> int:
        return int(self.n_workers)

    def _push(self, t: float, msg: Message, attempt: int) -> None:
        heapq.heappush(self._events, (t, self._order, msg, attempt))
        self._order += 1

    def _draw(self, params: dict[str, Any]) -> float:
        if self.duration is None:
            return float(self._rng.exponential(1.0))
        return _seconds("duration", self.duration, params)

    def check_scheduler(self, scheduler: Any) -> None:
        if self.step_duration is None:
            raise ValueError(
                "scheduler: a SimulatedBackend runs trials under a scheduler only with "
                "step_duration= (the virtual seconds each report takes, e.g. "
                "SimulatedBackend(n_workers=8, step_duration=1.0))"
            )

    def _step_of(self, params: dict[str, Any]) -> float:
        return _seconds("step_duration", self.step_duration, params)

    def submit(self, job: Job) -> None:
        if self.step_duration is not None:
            self._queue.append(job)
            self._start_queued()
            return
        free_at, worker = heapq.heappop(self._free)
        start = max(free_at, self._clock)
        end = start + self._draw(job.params)
        heapq.heappush(self._free, (end, worker))
        self._live[job.number] = (job.attempt, worker, end)
        name = f"sim-{worker}"
        ctx = context_for(job)
        out = run_trial(job.objective, job.params, job.objective_name, ctx)
        self._push(start, Started(job.number, job.attempt, name), job.attempt)
        reports = out["reports"]
        for i, r in enumerate(reports):
            t = start + (end - start) * (i + 1) / (len(reports) + 1)
            self._push(t, Reported.from_report(job.number, r), job.attempt)
        self._push(end, Finished.from_run(job.number, job.attempt, out, name), job.attempt)

    def _start_queued(self) -> None:
        while self._queue and self._idle:
            job, worker = self._queue.popleft(), self._idle.pop(0)
            step = self._step_of(job.params)
            self._stepped[job.number] = (Stepped(job), worker, step)
            self._live[job.number] = (job.attempt, worker, self._clock)
            self._push(self._clock, Started(job.number, job.attempt, f"sim-{worker}"), job.attempt)
            self._push(self._clock, _Advance(job.number), job.attempt)  # type: ignore[arg-type]

    def decide(self, number: int, decision: str) -> None:
        if number in self._stepped:
            self._decided[number] = decision  # told to it at the report it was decided on

    def _advance(self, number: int, attempt: int) -> None:
        stepped, worker, step = self._stepped[number]
        report = stepped.advance(self._decided.pop(number, None))
        if report is not None:
            t = self._clock + step
            self._push(t, Reported.from_report(number, report), attempt)
            self._push(t, _Advance(number), attempt)  # type: ignore[arg-type]
            return
        out = stepped.out
        assert out is not None
        end = self._clock if out["reports"] else self._clock + step
        self._push(end, Finished.from_run(number, attempt, out, f"sim-{worker}"), attempt)

    def _ended(self, number: int) -> None:
        """Trial ``number``'s attempt is over: its worker takes the next queued job."""
        entry = self._stepped.pop(number, None)
        self._decided.pop(number, None)
        if entry is not None:
            entry[0].abandon()
            self._idle.append(entry[1])
            self._idle.sort()
            self._start_queued()

    def _stale(self, entry: tuple[float, int, Message, int]) -> bool:
        live = self._live.get(entry[2].number)
        return live is None or live[0] != entry[3]

    async def wait(self, deadline: float | None) -> list[Message]:
        while self._events and self._stale(self._events[0]):
            heapq.heappop(self._events)
        if not self._events or (deadline is not None and deadline < self._events[0][0]):
            if deadline is not None:
                self._clock = max(self._clock, deadline)
            return []
        t = self._events[0][0]
        self._clock = max(self._clock, t)
        out: list[Message] = []
        while self._events and self._events[0][0] == t:
            entry = self._events[0]
            if isinstance(entry[2], _Advance) and out:
                break  # the driver hears of the report before the trial goes on past it
            heapq.heappop(self._events)
            if self._stale(entry):
                continue
            msg = entry[2]
            if isinstance(msg, _Advance):
                self._advance(msg.number, entry[3])
                continue
            out.append(msg)
            if isinstance(msg, Finished):
                del self._live[msg.number]
                self._ended(msg.number)
        return out

    def cancel(self, number: int, hung: bool = False) -> None:
        live = self._live.pop(number, None)
        if live is None:
            return
        if self.step_duration is not None:
            self._ended(number)
            return
        _, worker, end = live
        # the worker is free from now on, not from the cancelled trial's end
        self._free = [
            (min(t, self._clock) if (w == worker and t == end) else t, w) for t, w in self._free
        ]
        heapq.heapify(self._free)

    async def close(self) -> None:
        for number in list(self._stepped):  # their threads run to an end
            self._live.pop(number, None)
            self._ended(number)
        self._queue.clear()
