"""Trials: one evaluation of the objective at one parameter set, as the study last saw it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Failure", "Report", "Trial", "TrialState"]


class TrialState(str, enum.Enum):
    """Where a trial stands.

    ``RUNNING`` covers queued and executing; ``INTERRUPTED`` is a trial that was running when
    its driver stopped or died: it holds no result and the next ``optimize`` runs it again.
    ``PAUSED`` is a trial the study's scheduler paused at a rung; it may resume later.
    """

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"
    INTERRUPTED = "interrupted"
    PAUSED = "paused"

    @property
    def finished(self) -> bool:
        """True for states that end a trial for good."""
        return self in (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)


class Failure(str, enum.Enum):
    """Why a ``FAILED`` trial failed: the objective's fault, or the infrastructure's."""

    ERROR = "error"  #: the objective raised
    INVALID = "invalid"  #: it returned NaN, inf, or something that is not a result
    TIMEOUT = "timeout"  #: it ran past ``trial_timeout``
    WORKER_LOST = "worker_lost"  #: its worker died on every allowed attempt
    CANCELLED = "cancelled"  #: stopped by hand while it ran (``Run.stop_trial``, the widget)


@dataclass(frozen=True)
class Report:
    """One intermediate result sent by ``asynchpo.report`` from inside the objective."""

    step: int
    metrics: Mapping[str, Any]
    time: float


@dataclass(frozen=True)
class Trial:
    """A snapshot of one trial.

    Attributes:
        number: Position in the study, from 0.
        params: The parameter set, by name.
        state: See :class:`TrialState`.
        values: Every metric the objective returned (the objective's own among them).
        value: The objective's value, or None until the trial is complete.
        reports: Intermediate reports, in the order they were made.
        worker: Address of the worker that ran the last attempt, if known.
        attempts: How many times the trial was started (more than 1 after a lost worker).
        asked_at, started_at, finished_at: Clock times (seconds), None until they happen.
        error: Why it failed or was interrupted, as text.
        failure: For failed trials, the kind of failure.
        parent: The trial whose checkpoint it started from (population based training), if
            any.
    """

    number: int
    params: Mapping[str, Any]
    state: TrialState
    values: Mapping[str, Any] = field(default_factory=dict)
    value: float | None = None
    reports: tuple[Report, ...] = ()
    worker: str | None = None
    attempts: int = 0
    asked_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    failure: Failure | None = None
    parent: int | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, once both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at
