"""What the live view shows, as a pure fold of the study's events: no I/O, no widgets."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from asynchpo.events import (
    Event,
    RunFinished,
    RunStarted,
    StudyCreated,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialInterrupted,
    TrialPruned,
    TrialRetried,
    TrialStarted,
)

RECENT = 8  # finished trials listed


@dataclass(frozen=True)
class RunningTrial:
    """A trial in flight: where it runs and since when (None until it has started)."""

    number: int
    params: Mapping[str, Any]
    worker: str | None = None
    started: float | None = None


@dataclass(frozen=True)
class FinishedTrial:
    """A trial that ended: its state, its objective value, and how long it took."""

    number: int
    state: str
    value: float | None
    duration: float | None
    detail: str = ""


@dataclass(frozen=True)
class ViewState:
    """Everything the study's view draws, folded from the study's events by :func:`fold`.

    Counts cover the whole study. ``total`` is the number of trials the study will have
    finished when the current run's budget is spent (None with a time budget only).
    Convergence is kept as the improvements of the best value only (a step function), so
    a state stays small however many trials the study has.
    """

    objective: str = "value"
    direction: str = "minimize"
    done: int = 0  # finished: complete, failed or pruned
    complete: int = 0
    failed: int = 0
    pruned: int = 0
    interrupted: int = 0
    total: int | None = None
    done_at_start: int = 0  # finished when the current run began
    run_started: float | None = None  # when the current (or last) run began
    first_started: float | None = None  # when the study's first run began
    last_time: float | None = None  # time of the latest event
    active: bool = False  # a run is going on
    reason: str | None = None  # why the last run ended
    best_value: float | None = None
    best_number: int | None = None
    best_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # (trials finished, best value) and (seconds since the first run began, best value)
    best_by_trial: tuple[tuple[int, float], ...] = ()
    best_by_time: tuple[tuple[float, float], ...] = ()
    running: Mapping[int, RunningTrial] = field(default_factory=lambda: MappingProxyType({}))
    parked: Mapping[int, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    recent: tuple[FinishedTrial, ...] = ()
    n_events: int = 0

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the current run began (to ``now`` while it runs, else to its end)."""
        if self.run_started is None:
            return 0.0
        end = now if now is not None and self.active else self.last_time
        return max(0.0, (end if end is not None else self.run_started) - self.run_started)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at this run's pace so far, when it has a trial budget."""
        if not self.active or self.total is None:
            return None
        finished = self.done - self.done_at_start
        if finished <= 0:
            return None
        return self.elapsed(now) / finished * max(0, self.total - self.done)


def _better(direction: str, a: float, b: float | None) -> bool:
    return b is None or (a < b if direction == "minimize" else a > b)


def fold(events: Iterable[Event], state: ViewState | None = None) -> ViewState:
    """The view state after ``events``, starting from ``state`` (empty if None).

    Pure: ``state`` is not changed. It copies the state once per call, not per event, so a
    view can fold the events of a redraw interval in one go.
    """
    s = state if state is not None else ViewState()
    d = {f.name: getattr(s, f.name) for f in fields(s)}
    running: dict[int, RunningTrial] = dict(s.running)
    parked: dict[int, Mapping[str, Any]] = dict(s.parked)
    recent, by_trial, by_time = list(s.recent), list(s.best_by_trial), list(s.best_by_time)
    n = 0
    for event in events:
        n += 1
        t = d["last_time"] = event.time
        if isinstance(event, TrialAsked):
            running[event.number] = RunningTrial(event.number, event.params)
        elif isinstance(event, TrialStarted):
            old = running.get(event.number)
            if old is not None:
                running[event.number] = replace(old, worker=event.worker, started=t)
        elif isinstance(event, (TrialCompleted, TrialFailed, TrialPruned)):
            old = running.pop(event.number, None)
            item = _finished(d, event, old)
            recent.insert(0, item)
            del recent[RECENT:]
            if item.value is not None and _better(d["direction"], item.value, d["best_value"]):
                first = d["first_started"]
                d["best_value"], d["best_number"] = item.value, event.number
                d["best_params"] = MappingProxyType(dict(old.params) if old else {})
                by_trial.append((d["done"], item.value))
                by_time.append((t - (t if first is None else first), item.value))
        elif isinstance(event, TrialInterrupted):
            old = running.pop(event.number, None)
            if old is not None:
                parked[event.number] = old.params
                d["interrupted"] += 1
        elif isinstance(event, TrialRetried):
            if event.number in parked:  # re-run after an interruption
                running[event.number] = RunningTrial(event.number, parked.pop(event.number))
                d["interrupted"] -= 1
            elif event.number in running:  # its worker was lost: it starts again
                running[event.number] = RunningTrial(event.number, running[event.number].params)
        elif isinstance(event, RunStarted):
            budget = event.n_trials
            d.update(
                total=None if budget is None else d["done"] + d["interrupted"] + budget,
                done_at_start=d["done"],
                run_started=t,
                active=True,
                reason=None,
            )
            if d["first_started"] is None:
                d["first_started"] = t
        elif isinstance(event, RunFinished):
            d["active"], d["reason"] = False, event.reason
        elif isinstance(event, StudyCreated):
            d["objective"], d["direction"] = event.objective, event.direction
    d.update(
        running=MappingProxyType(running),
        parked=MappingProxyType(parked),
        recent=tuple(recent),
        best_by_trial=tuple(by_trial),
        best_by_time=tuple(by_time),
        n_events=s.n_events + n,
    )
    return ViewState(**d)


def reduce(state: ViewState, event: Event) -> ViewState:
    """The view state after one event. Pure: ``state`` is not changed."""
    return fold((event,), state)


def _finished(
    d: dict[str, Any], event: TrialCompleted | TrialFailed | TrialPruned, old: RunningTrial | None
) -> FinishedTrial:
    """Count a finished trial in ``d``; describe it for the list of recent ones."""
    d["done"] += 1
    started = old.started if old is not None else None
    duration = None if started is None else event.time - started
    if isinstance(event, TrialCompleted):
        d["complete"] += 1
        raw = event.values.get(d["objective"])
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw)
        value = float(raw) if ok and raw is not None else None
        return FinishedTrial(event.number, "complete", value, duration)
    if isinstance(event, TrialFailed):
        d["failed"] += 1
        detail = f"{event.failure}: {event.reason}"
        return FinishedTrial(event.number, "failed", None, duration, detail)
    d["pruned"] += 1
    detail = "" if event.step is None else f"at step {event.step}"
    return FinishedTrial(event.number, "pruned", None, duration, detail)
