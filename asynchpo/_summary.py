"""What every view of a study draws (the live view, the progress line, ``asynchpo show``):
a frozen :class:`Summary`, kept up to date by the one fold of the study's events."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

RECENT = 8  # finished trials listed


@dataclass(frozen=True)
class RunningTrial:
    """A trial in flight: where it runs, since when (None until it has started), and the
    step of its latest report (None before its first)."""

    number: int
    params: Mapping[str, Any]
    worker: str | None = None
    started: float | None = None
    step: int | None = None


@dataclass(frozen=True)
class FinishedTrial:
    """A trial that ended: its state, its objective value, and how long it took."""

    number: int
    state: str
    value: float | None
    duration: float | None
    detail: str = ""


@dataclass(frozen=True)
class Summary:
    """A study at one moment, as its views draw it.

    Counts cover the whole study. ``total`` is the number of trials the study will have
    finished when the current run's budget is spent (None with a time budget only). Times
    are on the clock of the current (or last) run (``clock``: ``"wall"`` or
    ``"virtual"``), so a simulated run's view never mixes its seconds with wall time;
    ``best_by_time`` counts seconds of running only, summed over runs.
    """

    name: str = ""
    objective: str = "value"
    direction: str = "minimize"
    n_trials: int = 0
    done: int = 0  # finished: complete, failed or pruned
    complete: int = 0
    failed: int = 0
    pruned: int = 0
    interrupted: int = 0
    paused: int = 0  # paused by the scheduler, to be resumed
    steps: int = 0  # intermediate reports over all trials: the training done (e.g. epochs)
    total: int | None = None
    done_at_start: int = 0  # finished when the current run began
    run_started: float | None = None  # when the current (or last) run began
    last_time: float | None = None  # time of the current (or last) run's latest event
    clock: str = "wall"
    elapsed_before: float = 0.0  # seconds the runs before the current one took
    active: bool = False  # a run is going on
    reason: str | None = None  # why the last run ended
    error: str | None = None  # what the last run raised, if it did
    best_value: float | None = None
    best_number: int | None = None
    best_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # (trials finished, best value) and (seconds of running, best value)
    best_by_trial: tuple[tuple[int, float], ...] = ()
    best_by_time: tuple[tuple[float, float], ...] = ()
    running: Mapping[int, RunningTrial] = field(default_factory=lambda: MappingProxyType({}))
    recent: tuple[FinishedTrial, ...] = ()
    n_events: int = 0

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the current run began (to ``now`` while a wall-clock run goes on,
        else to its latest event)."""
        if self.run_started is None:
            return 0.0
        end = self.last_time
        if now is not None and self.active and self.clock == "wall":
            end = max(now, end if end is not None else now)
        return max(0.0, (end if end is not None else self.run_started) - self.run_started)

    def running_time(self, now: float | None = None) -> float:
        """Seconds of running over every run of the study, the current one to ``now``."""
        return self.elapsed_before + (self.elapsed(now) if self.active else 0.0)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at this run's pace so far, when it has a trial budget."""
        if not self.active or self.total is None:
            return None
        finished = self.done - self.done_at_start
        if finished <= 0:
            return None
        return self.elapsed(now) / finished * max(0, self.total - self.done)


class Tracker:
    """The parts of a :class:`Summary` that counts cannot give: runs, the trials in flight,
    the recent and the best. Told of each change by the study's fold, in O(1)."""

    def __init__(self) -> None:
        self.running: dict[int, RunningTrial] = {}
        self.recent: deque[FinishedTrial] = deque(maxlen=RECENT)
        self.best_by_trial: list[tuple[int, float]] = []
        self.best_by_time: list[tuple[float, float]] = []
        self.best_params: Mapping[str, Any] = MappingProxyType({})
        self.run: dict[str, Any] = {
            "total": None,
            "done_at_start": 0,
            "run_started": None,
            "last_time": None,
            "clock": "wall",
            "elapsed_before": 0.0,
            "active": False,
            "reason": None,
            "error": None,
        }

    def tick(self, t: float) -> None:
        """An event of the current run happened at ``t``."""
        if self.run["active"]:
            self.run["last_time"] = t

    def run_started(self, t: float, total: int | None, done: int, clock: str) -> None:
        self.run.update(
            total=total,
            done_at_start=done,
            run_started=t,
            last_time=t,
            clock=clock,
            active=True,
            reason=None,
            error=None,
        )

    def run_finished(self, t: float, reason: str, error: str | None) -> None:
        r = self.run
        if r["active"]:
            r["last_time"] = t
            r["elapsed_before"] += max(0.0, t - r["run_started"])
        r.update(active=False, reason=reason, error=error)

    def _now_running(self) -> float:
        r = self.run
        if not r["active"]:
            return float(r["elapsed_before"])
        return float(r["elapsed_before"] + max(0.0, r["last_time"] - r["run_started"]))

    def asked(self, number: int, params: Mapping[str, Any]) -> None:
        self.running[number] = RunningTrial(number, MappingProxyType(dict(params)))

    def started(self, number: int, worker: str | None, t: float) -> None:
        old = self.running.get(number)
        if old is not None:
            self.running[number] = RunningTrial(number, old.params, worker, t, old.step)

    def reported(self, number: int, step: int) -> None:
        old = self.running.get(number)
        if old is not None:
            self.running[number] = RunningTrial(number, old.params, old.worker, old.started, step)

    def left(self, number: int) -> None:
        """Trial ``number`` is no longer in flight (interrupted)."""
        self.running.pop(number, None)

    def finished(
        self,
        number: int,
        state: str,
        value: float | None,
        t: float,
        detail: str,
        params: Mapping[str, Any],
        best: bool,
        done: int,
    ) -> None:
        old = self.running.pop(number, None)
        started = old.started if old is not None else None
        duration = None if started is None else t - started
        self.recent.appendleft(FinishedTrial(number, state, value, duration, detail))
        if best and value is not None:
            self.best_params = MappingProxyType(dict(params))
            self.best_by_trial.append((done, value))
            self.best_by_time.append((self._now_running(), value))
