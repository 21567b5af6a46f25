"""A run's scheduler: a fresh copy of the study's, told every event in the journal's order.

The copy first replays the events recorded so far, then hears each event as the journal
folds it in: its state is the fold of the study's events, so a run that follows a crash
decides exactly as the lost one would have.
"""

from __future__ import annotations

import bisect
import copy
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from asynchpo._checks import short
from asynchpo.events import (
    Event,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialForked,
    TrialInterrupted,
    TrialPaused,
    TrialPruned,
    TrialReported,
    TrialRetried,
)
from asynchpo.samplers import Fidelity
from asynchpo.schedulers import BaseScheduler, Decision, Progress, Proposal

if TYPE_CHECKING:
    from asynchpo.journal import Journal


class SchedulerWarning(UserWarning):
    """A scheduler cannot judge the trials: what it measures is not in their reports."""


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


class Scheduling:
    """Feeds one run's copy of ``scheduler`` with the events of ``journal``; the decisions it
    takes on reports wait in :attr:`decisions` for the driver (the journal tells listeners
    under its lock, which is no place to act)."""

    def __init__(self, scheduler: BaseScheduler, journal: Journal):
        try:
            self.scheduler = copy.deepcopy(scheduler)  # the study's stays as it was given
        except Exception as exc:
            raise TypeError(
                f"scheduler: {type(scheduler).__name__} cannot be copied ({exc}); a run "
                "starts from a copy, fed the study's events (keep no locks, files or "
                "clients in a scheduler)"
            ) from None
        self.objective, self.sign = journal.query(lambda s: (s.objective, s.sign()))
        self.name = journal.name
        self._params: dict[int, dict[str, Any]] = {}
        self._decided: dict[int, Decision] = {}  # stopped or paused, until it starts again
        self.paused: set[int] = set()
        self.missing: str | None = None  # what the reports lacked, once said
        self._said_text = False  # an objective reported as text, said once
        self.decisions: list[tuple[int, Decision, int]] = []  # (trial, decision, step)
        self.error: BaseException | None = None  # the scheduler's own, raised by the driver
        self.journal = journal
        self._asked: int | None = None  # asked just now: forked, if the next event says so
        # results at the scheduler's rungs, for a multi-fidelity sampler (append only)
        self.space = journal.space
        levels = self.scheduler.levels()
        self.levels = [float(v) for v in levels] if levels else []
        lo, hi = (self.levels[0], self.levels[-1]) if self.levels else (1.0, 1.0)
        self._z = [1.0 if hi <= lo else math.log(v / lo) / math.log(hi / lo) for v in self.levels]
        self._reached: dict[int, int] = {}  # trial -> the highest level it has a result at
        self._last: dict[int, float] = {}  # trial -> the resource of its latest report
        self._fid: list[tuple[int, float, float]] = []  # (trial, z, loss)
        self._encoded: dict[int, Any] = {}
        #: The sampler's ``forecast``, for resumes ranked by its model (set by the driver).
        self.forecaster: Callable[[np.ndarray, Fidelity | None], np.ndarray | None] | None = None
        self.scheduler.on_study(journal.space)
        self.replaying = True
        journal.follow(self._hear)
        self.replaying = False
        self.settle()
        self.decisions.clear()  # what was decided before is in the events already

    def close(self) -> None:
        """Stop hearing the journal."""
        self.journal.unsubscribe(self._hear)

    def _hear(self, event: Event) -> None:
        if self.error is not None:
            return
        try:
            self.observe(event)
        except Exception as exc:  # raised by the driver, outside the journal's lock
            self.error = exc
            if self.replaying:
                raise

    def observe(self, event: Event) -> None:
        """Tell the scheduler what ``event`` says; a decision on a report is queued."""
        s = self.scheduler
        asked, self._asked = self._asked, None
        if isinstance(event, TrialForked) and event.number == asked:
            s.on_start(asked, self._params[asked], event.parent)
            return
        if asked is not None:  # a trial of its own, not a copy
            s.on_start(asked, self._params[asked])
        if isinstance(event, TrialAsked):
            self._params[event.number] = dict(event.params)
            self._asked = event.number
        elif isinstance(event, TrialRetried):  # resumed, or run again from its start
            self._decided.pop(event.number, None)
            self.paused.discard(event.number)
            if event.cause == "resumed":
                s.on_start(event.number, self._params.get(event.number, {}))
        elif isinstance(event, TrialPaused):
            self.paused.add(event.number)
        elif isinstance(event, TrialReported):
            decision = self._report(event)
            if decision is not None and decision is not Decision.CONTINUE:
                self.decisions.append((event.number, decision, event.step))
        elif isinstance(event, (TrialCompleted, TrialFailed, TrialPruned)):
            self._decided.pop(event.number, None)
            self.paused.discard(event.number)
            loss = None
            if isinstance(event, TrialCompleted):
                value = _number(event.values.get(self.objective))
                loss = None if value is None else self.sign * value
                if loss is not None and self.levels:
                    # at the level of its last report (the end, for one that reported none)
                    last = self._last.get(event.number)
                    top = len(self.levels) - 1
                    at = (
                        top
                        if last is None
                        else bisect.bisect_right(self.levels, last * (1 + 1e-12)) - 1
                    )
                    if at >= 0:
                        self._reach(event.number, at, loss)
            s.on_finish(event.number, loss)
        elif isinstance(event, TrialInterrupted):
            pass  # a decision on it stands: the next run ends it as decided

    def _reach(self, number: int, level: int, loss: float) -> None:
        """Trial ``number``'s result on reaching level ``level`` (and any it skipped)."""
        reached = self._reached.get(number, -1)
        if level > reached:
            self._reached[number] = level
            self._fid.append((number, self._z[level], loss))

    def _report(self, event: TrialReported) -> Decision | None:
        s = self.scheduler
        if s.resource == "step":
            resource: float | None = float(event.step)
        else:
            resource = _number(event.metrics.get(s.resource))
        value = _number(event.metrics.get(self.objective))
        if resource is not None:
            self._last[event.number] = resource
        if self.levels and resource is not None and value is not None:
            k = bisect.bisect_right(self.levels, resource * (1 + 1e-12)) - 1
            if k >= 0:
                self._reach(event.number, k, self.sign * value)
        if event.number in self._decided:
            return None  # decided already: what it reports on the way out changes nothing
        if resource is None:
            self._say_missing(event, f"resource {s.resource!r}")
            return None
        loss = None if value is None else self.sign * value
        if value is None and self.objective in event.metrics:
            loss = math.inf  # a diverged trial (NaN or inf is kept as None): the worst
            raw = event.metrics[self.objective]
            if raw is not None:  # text (or a bool): not a diverged number, a mistake
                self._say_not_number(event, raw)
        elif value is None:
            self._say_missing(event, f"the objective {self.objective!r}")
        progress = Progress(
            number=event.number,
            params=self._params.get(event.number, {}),
            step=event.step,
            resource=resource,
            loss=loss,
            metrics=dict(event.metrics),
        )
        decision = Decision(s.on_report(progress))
        if decision is Decision.PAUSE and not s.pauses:
            raise RuntimeError(
                f"{type(s).__name__}.on_report paused trial {event.number}, but its pauses "
                "attribute is False"
            )
        if decision is not Decision.CONTINUE:
            self._decided[event.number] = decision
        return decision

    def _say_missing(self, event: TrialReported, what: str) -> None:
        if self.missing is not None or self.replaying:
            return
        names = ", ".join(sorted(map(repr, event.metrics))[:10])
        self.missing = (
            f"study {self.name!r}: {type(self.scheduler).__name__} judges trials by {what}, "
            f"of which trial {event.number}'s report at step {event.step} holds no number "
            f"(it holds {names}); the scheduler leaves such trials running"
        )
        warnings.warn(self.missing, SchedulerWarning, stacklevel=2)

    def _say_not_number(self, event: TrialReported, raw: object) -> None:
        if self.replaying or self._said_text:
            return
        self._said_text = True
        text = (
            f"study {self.name!r}: trial {event.number} reported the objective "
            f"{self.objective!r} as {short(raw)} at step {event.step}, not a number; "
            f"{type(self.scheduler).__name__} takes such a report as the worst"
        )
        warnings.warn(text, SchedulerWarning, stacklevel=2)

    def decided(self, number: int) -> Decision | None:
        """What the scheduler decided about trial ``number``, if it stands."""
        return self._decided.get(number)

    def fidelity(self, running: list[int]) -> Fidelity:
        """The results at the rungs so far, and the rung each of ``running`` heads for
        (called under the journal's lock, like the listener that keeps them)."""
        d = self.space.dim
        rows = [self._x(number) for number, _, _ in self._fid]
        top = len(self.levels) - 1
        heading = [self._z[min(self._reached.get(n, -1) + 1, top)] for n in running]
        return Fidelity(
            X=np.array(rows, dtype=float).reshape(len(rows), d),
            z=np.array([z for _, z, _ in self._fid], dtype=float),
            y=np.array([y for _, _, y in self._fid], dtype=float),
            pending_z=np.array(heading, dtype=float),
        )

    def _x(self, number: int) -> np.ndarray:
        """Trial ``number``'s parameters in the unit cube (encoded once)."""
        x = self._encoded.get(number)
        if x is None:
            x = self._encoded[number] = self.space.encode(self._params[number])
        return x

    def _forecast(self, trials: Sequence[int]) -> list[float] | None:
        """What the sampler's model expects of ``trials`` at the full resource."""
        assert self.forecaster is not None
        rows = [self._x(n) for n in trials if n in self._params]
        if len(rows) != len(trials):
            return None
        X = np.array(rows, dtype=float).reshape(len(rows), self.space.dim)
        out = self.forecaster(X, self.fidelity([]))
        return None if out is None else [float(v) for v in out]

    def settle(self) -> None:
        """Tell the scheduler of a trial asked last, if nothing came after it yet."""
        asked, self._asked = self._asked, None
        if asked is not None:
            self.scheduler.on_start(asked, self._params[asked])

    def propose(self) -> Proposal | None:
        """A new trial the scheduler wants started now, or None."""
        # under the journal's lock, as the listener is: a trial asked from another thread
        # (a suggestion computed off the loop) is told to the scheduler meanwhile
        return self.journal.query(lambda _: self._propose())

    def _propose(self) -> Proposal | None:
        self.settle()
        proposal = self.scheduler.propose()
        if proposal is not None and not isinstance(proposal, Proposal):
            raise RuntimeError(
                f"{type(self.scheduler).__name__}.propose returned {proposal!r}, not a Proposal"
            )
        return proposal

    def resume(self, idle: bool = False) -> int | None:
        """A paused trial the scheduler wants to run on now, or None."""
        return self.journal.query(lambda _: self._resume(idle))

    def _resume(self, idle: bool) -> int | None:
        self.settle()
        if not self.paused:
            return None
        paused = frozenset(self.paused)
        if self.forecaster is not None:
            number = self.scheduler.resume(paused, idle=idle, forecast=self._forecast)
        else:  # a scheduler written before forecasts need not take them
            number = self.scheduler.resume(paused, idle=idle)
        if number is not None and number not in self.paused:
            raise RuntimeError(
                f"{type(self.scheduler).__name__}.resume returned trial {number!r}, which is "
                "not paused"
            )
        return number
