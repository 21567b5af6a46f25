"""The study's journal: every change is an event, and the study's state is their fold.

Events are frozen dataclasses of JSON values. :func:`fold` (or :meth:`StudyState.apply`,
one event at a time) turns a sequence of them into a :class:`StudyState`; resume, the
progress views and the exports all read the same events.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from asynchpo._summary import Summary, Tracker
from asynchpo.space import Space
from asynchpo.storage._base import CorruptRecordWarning
from asynchpo.trial import Failure, Report, Trial, TrialState

__all__ = [
    "Event",
    "RunFinished",
    "RunStarted",
    "StudyCreated",
    "StudyState",
    "TrialAsked",
    "TrialCompleted",
    "TrialFailed",
    "TrialInterrupted",
    "TrialPruned",
    "TrialReported",
    "TrialRetried",
    "TrialStarted",
    "decode_record",
    "event_from_dict",
    "fold",
]

_KINDS: dict[str, type[Event]] = {}
_FIELDS: dict[type, tuple[dataclasses.Field[Any], ...]] = {}


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    if cls not in _FIELDS:
        _FIELDS[cls] = dataclasses.fields(cls)
    return _FIELDS[cls]


@dataclass(frozen=True)
class Event:
    """Base of all events; ``time`` is the study clock's time (seconds) when it happened."""

    kind: ClassVar[str] = ""
    time: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the event's kind under ``"kind"``."""
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in _fields(type(self))}}

    def to_json(self) -> str:
        """Strict JSON (no NaN): raises ``ValueError`` for anything JSON cannot hold."""
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from :meth:`Event.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    return _KINDS[kind](**data)


def decode_record(payload: str | bytes) -> Event:
    """The event a stored record holds.

    Raises:
        ValueError: For anything that is not a valid event, whatever is wrong with it (its
            encoding, its JSON, its size, a field's type or value); never another error.
    """
    try:
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8")
        if not isinstance(payload, str):
            raise ValueError(f"a record is text, not {type(payload).__name__}")
        return event_from_dict(json.loads(payload))
    except ValueError:
        raise
    except (TypeError, KeyError, RecursionError, AttributeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class StudyCreated(Event):
    """The study's definition: its space, which metric is the objective, and its direction."""

    kind: ClassVar[str] = "study_created"
    space: dict[str, Any] = field(default_factory=dict)
    objective: str = "value"
    direction: str = "minimize"


@dataclass(frozen=True)
class RunStarted(Event):
    """An ``optimize`` call began; ``n_trials`` is its budget of new trials (None: unbounded).

    ``holder`` names the run's lease in the storage (held while it runs); ``clock`` is the
    clock every event of the run is stamped with: ``"wall"`` (seconds since the epoch) or
    ``"virtual"`` (a simulation's seconds).
    """

    kind: ClassVar[str] = "run_started"
    run: int = 0
    n_trials: int | None = None
    max_concurrent: int = 1
    pid: int = 0
    host: str = ""
    holder: str = ""
    clock: str = "wall"


@dataclass(frozen=True)
class RunFinished(Event):
    """An ``optimize`` call ended, and why (``error``: what it raised, if it did)."""

    kind: ClassVar[str] = "run_finished"
    run: int = 0
    reason: str = ""
    error: str | None = None


@dataclass(frozen=True)
class TrialAsked(Event):
    """A new trial with its parameters; ``run`` is None outside ``optimize``."""

    kind: ClassVar[str] = "trial_asked"
    number: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    run: int | None = None


@dataclass(frozen=True)
class TrialStarted(Event):
    """An attempt of a trial began executing on ``worker``."""

    kind: ClassVar[str] = "trial_started"
    number: int = 0
    attempt: int = 1
    worker: str | None = None


@dataclass(frozen=True)
class TrialReported(Event):
    """An intermediate result from ``asynchpo.report``; ``seq`` orders a trial's reports."""

    kind: ClassVar[str] = "trial_reported"
    number: int = 0
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True)
class TrialCompleted(Event):
    """The objective returned; ``values`` holds every metric, the objective's among them."""

    kind: ClassVar[str] = "trial_completed"
    number: int = 0
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialFailed(Event):
    """The trial failed for good; ``failure`` is a :class:`~asynchpo.trial.Failure` value."""

    kind: ClassVar[str] = "trial_failed"
    number: int = 0
    reason: str = ""
    failure: str = Failure.ERROR.value


@dataclass(frozen=True)
class TrialPruned(Event):
    """The trial was stopped early (``asynchpo.Pruned``) after its report at ``step``."""

    kind: ClassVar[str] = "trial_pruned"
    number: int = 0
    step: int | None = None


@dataclass(frozen=True)
class TrialInterrupted(Event):
    """The trial's driver stopped or died while it ran; it holds no result."""

    kind: ClassVar[str] = "trial_interrupted"
    number: int = 0
    reason: str = ""


@dataclass(frozen=True)
class TrialRetried(Event):
    """The trial runs again, as attempt ``attempt`` of run ``run``: its worker was lost
    (``cause="worker_lost"``) or it was interrupted (``cause="interrupted"``)."""

    kind: ClassVar[str] = "trial_retried"
    number: int = 0
    attempt: int = 2
    reason: str = ""
    run: int | None = None
    cause: str = ""

    @property
    def lost_worker(self) -> bool:
        """Whether a lost worker caused it (journals before ``cause`` say it in ``reason``)."""
        if self.cause:
            return self.cause == "worker_lost"
        return not self.reason.startswith("re-queued")


class _Rows:
    """Rows keyed by trial number, in one growing array: O(1) add and remove."""

    def __init__(self, dim: int):
        self._data = np.empty((16, dim))
        self._keys: list[int] = []
        self._where: dict[int, int] = {}

    def add(self, key: int, row: np.ndarray) -> None:
        if key in self._where:
            self._data[self._where[key]] = row
            return
        n = len(self._keys)
        if n == len(self._data):
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[n] = row
        self._where[key] = n
        self._keys.append(key)

    def remove(self, key: int) -> None:
        i = self._where.pop(key, None)
        if i is None:
            return
        last = self._keys.pop()
        if last != key:
            self._data[i] = self._data[len(self._keys)]
            self._keys[i] = last
            self._where[last] = i

    def array(self) -> np.ndarray:
        """A read-only view of the rows, shape `n x d`."""
        view = self._data[: len(self._keys)]
        view.flags.writeable = False
        return view


@dataclass
class _Record:
    number: int
    params: dict[str, Any]
    asked_at: float
    run: int | None  # the run that asked it
    owner: int | None  # the run it last ran under (its asker, or the run that re-ran it)
    state: TrialState = TrialState.RUNNING
    values: dict[str, Any] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    report_seqs: set[int] = field(default_factory=set)
    worker: str | None = None
    attempts: int = 0
    lost: int = 0  # attempts that ended with their worker lost
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    failure: Failure | None = None
    snapshot: Trial | None = None


class StudyState:
    """The fold of a study's events: its trials, runs, counts, best trial, and the
    :class:`~asynchpo._summary.Summary` that every view draws.

    Kept up to date one event at a time by :meth:`apply`, in O(1) per event, so that a study
    of tens of thousands of trials costs nothing extra per trial.
    """

    def __init__(self) -> None:
        self.space: Space | None = None
        self.objective = "value"
        self.direction = "minimize"
        self.created_at: float | None = None
        self.runs: dict[int, RunStarted] = {}
        self.finished_runs: dict[int, str] = {}
        self.counts: dict[TrialState, int] = dict.fromkeys(TrialState, 0)
        self.best_number: int | None = None
        self._best_y = math.inf
        self.n_events = 0
        self._records: dict[int, _Record] = {}
        self._X: _Rows | None = None
        self._y = np.empty(16)  # the complete trials' minimized values, in X's order
        self._n_y = 0
        self._failed: _Rows | None = None
        self._pending: _Rows | None = None
        self._track = Tracker()

    # -- reading --------------------------------------------------------------------------

    @property
    def n_trials(self) -> int:
        """How many trials were ever asked."""
        return len(self._records)

    def trial(self, number: int) -> Trial:
        """A frozen snapshot of trial ``number``."""
        rec = self._records[number]
        if rec.snapshot is None:
            value = rec.values.get(self.objective) if rec.state is TrialState.COMPLETE else None
            rec.snapshot = Trial(
                number=rec.number,
                params=dict(rec.params),
                state=rec.state,
                values=dict(rec.values),
                value=value,
                reports=tuple(rec.reports),
                worker=rec.worker,
                attempts=rec.attempts,
                asked_at=rec.asked_at,
                started_at=rec.started_at,
                finished_at=rec.finished_at,
                error=rec.error,
                failure=rec.failure,
            )
        return rec.snapshot

    def trials(self, states: Iterable[TrialState] | None = None) -> list[Trial]:
        """Snapshots of all trials (or those in ``states``), by number."""
        wanted = set(states) if states is not None else None
        return [
            self.trial(n) for n, r in self._records.items() if wanted is None or r.state in wanted
        ]

    def has_report(self, number: int, seq: int) -> bool:
        """Whether trial ``number``'s report ``seq`` is already recorded."""
        rec = self._records.get(number)
        return rec is not None and seq in rec.report_seqs

    def numbers(self, state: TrialState) -> list[int]:
        """The numbers of the trials now in ``state``."""
        return [n for n, r in self._records.items() if r.state is state]

    def owned(self, run: int | None, state: TrialState = TrialState.RUNNING) -> list[int]:
        """The trials in ``state`` that run ``run`` asked or last ran (None: trials asked
        outside any run)."""
        return [n for n, r in self._records.items() if r.state is state and r.owner == run]

    def run_of(self, number: int) -> int | None:
        """The run whose sampler asked trial ``number``."""
        return self._records[number].run

    def lost_workers(self, number: int) -> int:
        """How many attempts of trial ``number`` ended with their worker lost."""
        return self._records[number].lost

    def unfinished_runs(self) -> list[RunStarted]:
        """The runs that started and have no end recorded (running, or their driver died)."""
        return [r for n, r in self.runs.items() if n not in self.finished_runs]

    def sign(self) -> float:
        """+1 to minimize, -1 to maximize: ``sign() * value`` is always minimized."""
        return 1.0 if self.direction == "minimize" else -1.0

    def observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Unit-cube arrays ``(X, y, X_failed, X_pending)``; ``y`` oriented to minimize.

        ``X`` is `n x d` (complete trials), ``y`` `n`, ``X_failed`` `f x d`, ``X_pending``
        `p x d` (running trials). The arrays are read-only views, valid until the next event:
        copy them (as the journal's snapshot does) to keep them.
        """
        assert self._X is not None and self._failed is not None and self._pending is not None
        y = self._y[: self._n_y]
        y.flags.writeable = False
        return self._X.array(), y, self._failed.array(), self._pending.array()

    def summary(self, name: str = "") -> Summary:
        """What the views draw, now: a frozen copy (cheap: the trials in flight, the recent
        ones and the improvements of the best value)."""
        c, t = self.counts, self._track
        done = c[TrialState.COMPLETE] + c[TrialState.FAILED] + c[TrialState.PRUNED]
        best = None if self.best_number is None else self.trial(self.best_number).value
        return Summary(
            name=name,
            objective=self.objective,
            direction=self.direction,
            n_trials=self.n_trials,
            done=done,
            complete=c[TrialState.COMPLETE],
            failed=c[TrialState.FAILED],
            pruned=c[TrialState.PRUNED],
            interrupted=c[TrialState.INTERRUPTED],
            best_value=best,
            best_number=self.best_number,
            best_params=t.best_params,
            best_by_trial=tuple(t.best_by_trial),
            best_by_time=tuple(t.best_by_time),
            running=MappingProxyType(dict(t.running)),
            recent=tuple(t.recent),
            n_events=self.n_events,
            **t.run,
        )

    # -- folding --------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event in. Events about unknown trials are skipped with a warning."""
        self.n_events += 1
        handler = getattr(self, "_on_" + event.kind, None)
        if handler is None:
            raise ValueError(f"no fold rule for event kind {event.kind!r}")
        self._track.tick(event.time)
        if isinstance(event, (StudyCreated, RunStarted, RunFinished, TrialAsked)):
            handler(event)
            return
        number = getattr(event, "number", None)
        rec = self._records.get(number) if number is not None else None
        if rec is None:
            warnings.warn(
                f"journal event {event.kind} is about unknown trial {number}; skipped", stacklevel=2
            )
            return
        rec.snapshot = None
        handler(event, rec)

    def _on_study_created(self, e: StudyCreated) -> None:
        self.space = Space.from_spec(e.space)
        self.objective, self.direction, self.created_at = e.objective, e.direction, e.time
        d = self.space.dim
        self._X, self._failed, self._pending = _Rows(d), _Rows(d), _Rows(d)

    def _on_run_started(self, e: RunStarted) -> None:
        self.runs[e.run] = e
        c = self.counts
        done = c[TrialState.COMPLETE] + c[TrialState.FAILED] + c[TrialState.PRUNED]
        total = None if e.n_trials is None else done + c[TrialState.INTERRUPTED] + e.n_trials
        self._track.run_started(e.time, total, done, e.clock)

    def _on_run_finished(self, e: RunFinished) -> None:
        self.finished_runs[e.run] = e.reason
        self._track.run_finished(e.time, e.reason, e.error)

    def _on_trial_asked(self, e: TrialAsked) -> None:
        if self.space is None:
            raise ValueError("journal has trial events before its study_created event")
        if e.number in self._records:
            warnings.warn(f"journal asks trial {e.number} a second time; skipped", stacklevel=3)
            return
        rec = _Record(
            number=e.number, params=dict(e.params), asked_at=e.time, run=e.run, owner=e.run
        )
        self._records[e.number] = rec
        self.counts[TrialState.RUNNING] += 1
        assert self._pending is not None
        self._pending.add(e.number, self.space.encode(rec.params))
        self._track.asked(e.number, rec.params)

    def _move(self, rec: _Record, state: TrialState) -> None:
        self.counts[rec.state] -= 1
        self.counts[state] += 1
        rec.state = state
        assert self._pending is not None
        if state is TrialState.RUNNING:
            assert self.space is not None
            self._pending.add(rec.number, self.space.encode(rec.params))
            self._track.asked(rec.number, rec.params)
        else:
            self._pending.remove(rec.number)
            if state is TrialState.INTERRUPTED:
                self._track.left(rec.number)

    def _done(self, rec: _Record, e: Event, value: float | None, detail: str, best: bool) -> None:
        c = self.counts
        done = c[TrialState.COMPLETE] + c[TrialState.FAILED] + c[TrialState.PRUNED]
        self._track.finished(
            rec.number, rec.state.value, value, e.time, detail, rec.params, best, done
        )

    def _on_trial_started(self, e: TrialStarted, rec: _Record) -> None:
        rec.attempts += 1
        rec.started_at, rec.worker = e.time, e.worker
        self._track.started(rec.number, e.worker, e.time)

    def _on_trial_reported(self, e: TrialReported, rec: _Record) -> None:
        if e.seq in rec.report_seqs:
            return
        rec.report_seqs.add(e.seq)
        rec.reports.append(Report(step=e.step, metrics=dict(e.metrics), time=e.time))

    def _on_trial_completed(self, e: TrialCompleted, rec: _Record) -> None:
        if rec.state.finished:
            return
        raw = e.values.get(self.objective)
        if (
            isinstance(raw, bool)
            or not isinstance(raw, (int, float))
            or not math.isfinite(float(raw))
        ):
            warnings.warn(
                f"journal: trial {rec.number} completed with {self.objective!r} = {raw!r}, "
                "not a finite number; the record is skipped",
                CorruptRecordWarning,
                stacklevel=3,
            )
            return
        rec.values, rec.finished_at, rec.error, rec.failure = dict(e.values), e.time, None, None
        self._move(rec, TrialState.COMPLETE)
        assert self.space is not None and self._X is not None
        value = float(e.values[self.objective])
        y = self.sign() * value
        self._X.add(rec.number, self.space.encode(rec.params))
        if self._n_y == len(self._y):
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._y[self._n_y] = y
        self._n_y += 1
        best = self.best_number is None or y < self._best_y
        if best:
            self.best_number, self._best_y = rec.number, y
        self._done(rec, e, value, "", best)

    def _on_trial_failed(self, e: TrialFailed, rec: _Record) -> None:
        if rec.state.finished:
            return
        rec.finished_at, rec.error, rec.failure = e.time, e.reason, Failure(e.failure)
        self._move(rec, TrialState.FAILED)
        assert self.space is not None and self._failed is not None
        self._failed.add(rec.number, self.space.encode(rec.params))
        if e.failure == Failure.WORKER_LOST.value:
            rec.lost += 1
        self._done(rec, e, None, f"{e.failure}: {e.reason}", False)

    def _on_trial_pruned(self, e: TrialPruned, rec: _Record) -> None:
        if rec.state.finished:
            return
        rec.finished_at = e.time
        self._move(rec, TrialState.PRUNED)
        self._done(rec, e, None, "" if e.step is None else f"at step {e.step}", False)

    def _on_trial_interrupted(self, e: TrialInterrupted, rec: _Record) -> None:
        if rec.state is not TrialState.RUNNING:
            return
        rec.error = e.reason
        self._move(rec, TrialState.INTERRUPTED)

    def _on_trial_retried(self, e: TrialRetried, rec: _Record) -> None:
        if rec.state.finished:
            return
        rec.error, rec.started_at = e.reason, None
        if e.run is not None:
            rec.owner = e.run
        if e.lost_worker:
            rec.lost += 1
        if rec.state is not TrialState.RUNNING:
            self._move(rec, TrialState.RUNNING)
        else:  # its worker was lost: it starts again
            self._track.asked(rec.number, rec.params)


def fold(events: Iterable[Event]) -> StudyState:
    """The state a sequence of events leads to."""
    state = StudyState()
    for event in events:
        state.apply(event)
    return state
