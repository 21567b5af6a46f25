"""The scheduler plug-in point: a decision on each report of a running trial.

A scheduler is pure: it is told what happened (a trial started, reported, finished), in the
order the study's journal recorded it, and answers with decisions. It does no I/O and reads
no clock. Its state is therefore a fold of the study's events: a run builds a fresh copy of
the scheduler the study was given and replays the journal into it, so a study loaded after
a crash goes on with exactly the rungs it had.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asynchpo._checks import short

if TYPE_CHECKING:
    from asynchpo.space import Space


#: What the sampler's model expects of some trials at the full resource, lower is better.
Forecast = Callable[[Sequence[int]], Sequence[float] | None]


class Decision(str, enum.Enum):
    """What becomes of a running trial after one of its reports."""

    CONTINUE = "continue"  #: let it run on
    STOP = "stop"  #: stop it for good: its next report raises ``asynchpo.Pruned``
    PAUSE = "pause"  #: stop it for now: it may be resumed later (see ``BaseScheduler.resume``)


@dataclass(frozen=True)
class Progress:
    """One report of a running trial, as a scheduler sees it.

    Attributes:
        number: The trial.
        params: Its parameters.
        step: The report's step.
        resource: How far the trial got: the step, or the reported metric the scheduler's
            ``resource`` names.
        loss: The study's objective metric in this report, oriented so that lower is better
            (a maximized metric is negated); None when the report does not hold it.
        metrics: Everything the report holds.
    """

    number: int
    params: Mapping[str, Any]
    step: int
    resource: float
    loss: float | None
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class Proposal:
    """A new trial a scheduler wants started: these parameters, from the latest checkpoint
    of trial ``parent`` (None: from scratch)."""

    params: Mapping[str, Any]
    parent: int | None = None


class BaseScheduler(ABC):
    """Decides, on each report of a running trial, whether it goes on.

    Subclasses implement :meth:`on_report`; :meth:`on_study`, :meth:`on_start`,
    :meth:`on_finish`, :meth:`resume` and :meth:`propose` do nothing unless overridden. A
    scheduler must not read a clock, files or random state it was not seeded with: the
    same calls must give the same decisions.

    Attributes:
        resource: What measures a trial's progress: ``"step"`` (the report's step) or the
            name of a metric every report holds (e.g. ``"epoch"``).
    """

    resource: str = "step"
    #: Whether :meth:`on_report` may answer ``PAUSE`` (the backend then must resume trials).
    pauses: bool = False

    #: Whether its trials must save checkpoints (``asynchpo.checkpoint``).
    needs_checkpoints: bool = False

    def on_study(self, space: Space) -> None:  # noqa: B027
        """The study's search space, told before anything else."""

    def on_start(  # noqa: B027
        self, number: int, params: Mapping[str, Any], parent: int | None = None
    ) -> None:
        """Trial ``number`` was asked for (or resumed after a pause); ``parent`` is the trial
        whose checkpoint it starts from, for a trial started from a :class:`Proposal`."""

    @abstractmethod
    def on_report(self, progress: Progress) -> Decision:
        """The decision on one report of a running trial."""

    def on_finish(self, number: int, loss: float | None) -> None:  # noqa: B027
        """Trial ``number`` ended for good; ``loss`` as in :class:`Progress` (None unless it
        completed)."""

    def resume(
        self, paused: Collection[int], *, idle: bool = False, forecast: Forecast | None = None
    ) -> int | None:
        """Which of the ``paused`` trials to run on next, asked whenever a worker is free
        (before a new trial is asked for); None for none. ``idle`` says no new trial will
        be started (the budget is spent): the worker idles unless a paused trial resumes.
        ``forecast(trials)``, when the sampler has a model, gives what it expects of those
        trials at the full resource (lower is better). It must not change the scheduler's
        state: :meth:`on_start` hears of the resume."""
        return None

    def levels(self) -> list[float] | None:
        """The resources at which it compares trials (its rungs, then the end), increasing;
        None if it has none. A sampler that models results at several resources
        (``GPSampler``) is then given the trials' results there."""
        return None

    def propose(self) -> Proposal | None:
        """A new trial to start instead of asking the sampler, asked whenever a worker is
        free; None for none. It must not change the scheduler's state: :meth:`on_start`
        (with ``parent``) hears when the proposal is started."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resource={self.resource!r})"


def check_resource(resource: Any) -> str:
    """``resource`` if it names a progress measure, else ``ValueError`` naming it."""
    if not isinstance(resource, str) or not resource:
        raise ValueError(
            f"resource must be 'step' or the name of a reported metric, got {short(resource)}"
        )
    return str.__str__(resource)


def check_number(name: str, value: Any, *, above: float | None = None, low: float = 0.0) -> float:
    """``value`` as a finite float ``>= low`` (``> above`` when given), or ``ValueError``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and above is not None:
        ok = value > above
    elif ok:
        ok = value >= low
    if not ok:
        bound = f"> {above:g}" if above is not None else f">= {low:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {short(value)}")
    return float(value)
