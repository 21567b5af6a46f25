"""A simulated cluster on a virtual clock: the whole loop, deterministic, without dask."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from asynchpo._checks import is_real, positive_int
from asynchpo._report import TrialContext, run_trial
from asynchpo.execution._backend import Backend, Finished, Job, Message, Reported, Started

Duration = float | Callable[[dict[str, Any]], float] | None


class SimulatedBackend(Backend):
    """``n_workers`` virtual workers; each trial takes a virtual duration, no real time.

    The objective is evaluated in this process the moment a trial starts; its result is
    delivered when the virtual clock reaches the trial's end. A trial submitted while every
    worker is busy waits for the first one to free up, as on a real cluster. Intermediate
    reports arrive spread evenly over the trial's duration. Everything, durations included,
    follows from ``seed``: the same seed gives the same history.

    Args:
        n_workers: How many trials run at once.
        duration: Virtual seconds per trial: a number, a function of the parameters, or None
            for exponential durations with mean 1 (drawn from ``seed``).
        seed: Seed of the durations.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(-2, 2)), sampler=ah.RandomSampler(seed=0))
        >>> study.optimize(lambda p: p["x"] ** 2, n_trials=20,
        ...                backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False)
        >>> len(study.trials)
        20
    """

    virtual = True

    def __init__(self, n_workers: int = 1, duration: Duration = None, seed: int | None = None):
        self.n_workers = positive_int("n_workers", n_workers)
        if (
            duration is not None
            and not callable(duration)
            and not (is_real(duration) and duration >= 0)
        ):
            raise ValueError(
                f"duration must be a number >= 0, a function or None, got {duration!r}"
            )
        self.duration = duration
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._clock = 0.0
        self._free = [(0.0, i) for i in range(self.n_workers)]  # (free from, worker)
        self._events: list[tuple[float, int, Message, int]] = []  # (time, order, msg, attempt)
        self._order = 0
        self._live: dict[int, tuple[int, int, float]] = {}  # trial -> (attempt, worker, end)

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
        d = self.duration(params) if callable(self.duration) else self.duration
        if not is_real(d) or not d >= 0:
            raise ValueError(f"duration({params!r}) must be a number >= 0, got {d!r}")
        return float(d)

    def submit(self, job: Job) -> None:
        free_at, worker = heapq.heappop(self._free)
        start = max(free_at, self._clock)
        end = start + self._draw(job.params)
        heapq.heappush(self._free, (end, worker))
        self._live[job.number] = (job.attempt, worker, end)
        name = f"sim-{worker}"
        out = run_trial(
            job.objective, job.params, job.objective_name, TrialContext(job.number, job.attempt)
        )
        self._push(start, Started(job.number, job.attempt, name), job.attempt)
        reports = out["reports"]
        for i, r in enumerate(reports):
            t = start + (end - start) * (i + 1) / (len(reports) + 1)
            self._push(t, Reported(job.number, r["step"], r["metrics"], r["seq"]), job.attempt)
        self._push(end, Finished.from_run(job.number, job.attempt, out, name), job.attempt)

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
            entry = heapq.heappop(self._events)
            if self._stale(entry):
                continue
            msg = entry[2]
            out.append(msg)
            if isinstance(msg, Finished):
                del self._live[msg.number]
        return out

    def cancel(self, number: int, hung: bool = False) -> None:
        live = self._live.pop(number, None)
        if live is None:
            return
        _, worker, end = live
        # the worker is free from now on, not from the cancelled trial's end
        self._free = [
            (min(t, self._clock) if (w == worker and t == end) else t, w) for t, w in self._free
        ]
        heapq.heapify(self._free)
