"""The study's journal: every change is an event, and the study's state is their fold.

Events are frozen dataclasses of JSON values. :func:`fold` (or :meth:`StudyState.apply`,
one event at a time) turns a sequence of them into a :class:`StudyState`; resume, the
progress views and the exports all read the same events.

Each event is stored as one record, its JSON (:meth:`Event.to_json`), and every storage reads
records back with :func:`decode_record`. Both check every field against its kind's schema,
derived from the dataclass's annotations (the type of each field, the values it allows, the
limits of :mod:`asynchpo._limits`), so a record that could not be read back is never written,
and a record that is not an event is refused with a ``ValueError``, never let in.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from asynchpo._checks import cut
from asynchpo._limits import (
    MAX_CHOICES,
    MAX_DEPTH,
    MAX_INT,
    MAX_PARAMS,
    MAX_RECORD_BYTES,
    MAX_STRING,
    MAX_TEXT,
)
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
    "TrialCheckpointed",
    "TrialForked",
    "TrialPaused",
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
    """Base of all events; ``time`` is the study clock's time (seconds) when it happened.

    Free text (a failure's reason, a run's error) longer than
    :data:`~asynchpo._limits.MAX_TEXT` characters is cut to its last ``MAX_TEXT``
    characters when the event is made: the end of a traceback is what tells.
    """

    kind: ClassVar[str] = ""
    time: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        names = _TEXT_FIELDS.get(type(self))
        if names is None:
            names = tuple(f.name for f in _fields(type(self)) if f.name in _TEXT)
            _TEXT_FIELDS[type(self)] = names
        for name in names:
            text = getattr(self, name)
            if isinstance(text, str) and len(text) > MAX_TEXT:
                object.__setattr__(self, name, text[-MAX_TEXT:])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the event's kind under ``"kind"``."""
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in _fields(type(self))}}

    def to_json(self) -> str:
        """The event's record: strict JSON that :func:`decode_record` reads back.

        Raises:
            ValueError: A field holds what the record of this kind may not (a wrong type, a
                value it does not allow, NaN, text over the limits, a record over
                :data:`~asynchpo._limits.MAX_RECORD_BYTES`), naming the field: nothing that
                could not be read back is ever written.
        """
        data = self.to_dict()
        _check(_schema(type(self)), data)
        payload = json.dumps(data, allow_nan=False, separators=(",", ":"))
        if len(payload) > MAX_RECORD_BYTES:  # ASCII: one byte a character
            raise ValueError(f"{self.kind}: {_too_big(len(payload))}")
        return payload


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from :meth:`Event.to_dict` output, checking every field.

    Raises:
        ValueError: ``data`` is not an event: an unknown kind, an unknown or missing field,
            or a field of the wrong type or with a value its kind does not allow (naming it).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a record is a JSON object, not {_type_name(data)}")
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) and kind else None
    if cls is None:
        raise ValueError(f"unknown event kind {_show(kind)}")
    return cls(**_check(_SCHEMAS.get(cls) or _schema(cls), data))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a record may hold")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # JSON would keep the last of two equal keys: refuse both
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {_show(key)} appears twice in one object")
            seen.add(key)
    return out


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_object)


def decode_record(payload: str | bytes) -> Event:
    """The event a stored record holds.

    The record is refused whole if it is over :data:`~asynchpo._limits.MAX_RECORD_BYTES`
    (before it is parsed), not UTF-8, not JSON (NaN and Infinity are not), nested deeper
    than :data:`~asynchpo._limits.MAX_DEPTH`, or not an event of a known kind whose every
    field has its type and an allowed value (see :func:`event_from_dict`).

    Raises:
        ValueError: For anything that is not a valid event, whatever is wrong with it (its
            encoding, its JSON, its size, a field's type or value); never another error.
    """
    try:
        if isinstance(payload, (bytes, bytearray, memoryview)):
            if len(payload) > MAX_RECORD_BYTES:
                raise ValueError(_too_big(len(payload)))
            try:
                payload = bytes(payload).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"the record is not UTF-8 ({exc.reason} at byte {exc.start})"
                ) from None
        elif not isinstance(payload, str):
            raise ValueError(f"a record is text, not {_type_name(payload)}")
        elif len(payload) > MAX_RECORD_BYTES:  # a character is at least a byte
            raise ValueError(_too_big(len(payload)))
        elif not payload.isascii():
            size = len(payload.encode("utf-8", "surrogatepass"))
            if size > MAX_RECORD_BYTES:
                raise ValueError(_too_big(size))
        try:
            data = _DECODER.decode(payload)
        except RecursionError:  # no field nests more than 4 levels: the schema refuses the rest
            raise ValueError(f"the record's JSON nests deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise ValueError(f"the record is not valid JSON ({exc})") from None
        return event_from_dict(data)
    except ValueError:
        raise
    except Exception as exc:  # a hostile record never gets past as anything but ValueError
        raise ValueError(f"{type(exc).__name__}: {cut(str(exc))}") from None


# -- the schema: what each field of each kind of record may hold --------------------------------

#: Which fields say what the event is about: a record without them is refused (the others
#: default, as records written before they existed lack them).
_REQUIRED = frozenset({"time", "number", "run", "space", "params"})
#: Free text, up to MAX_TEXT (cut when the event is made); other strings are names or values.
_TEXT = frozenset({"reason", "error"})
#: The most arguments of one distribution in a space's spec (its type, bounds, log, step...).
_MAX_ARGS = 16
#: A check of one field's value: raises _BadValueError saying what is wrong with it.
_Check = Callable[[Any], None]


class _BadValueError(ValueError):
    """What is wrong with one value (the field is named by the caller)."""


def _show(value: Any) -> str:
    """``value`` as a message shows it: repr (control characters escaped), cut short."""
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:40]) + f"... ({len(value):,} characters)"
    if isinstance(value, (dict, list)) and len(value) > 8:
        return f"a {_type_name(value)} of {len(value):,} items"
    try:
        return cut(repr(value), 80)
    except Exception:  # a repr nested too deeply
        return f"a {_type_name(value)}"


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        tuple: "a list",
        str: "a string",
        bool: "a bool",
        int: "an int",
        float: "a float",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _too_big(n: int) -> str:
    return f"the record is over the {MAX_RECORD_BYTES:,} bytes a record may be ({n:,})"


def _unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogates), as every reader can write it."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(text: Any, limit: int) -> str | None:
    """What is wrong with ``text`` as a string of at most ``limit`` characters, if anything."""
    if not isinstance(text, str):
        return f"must be a string, got {_show(text)}"
    if len(text) > limit:
        return f"must be at most {limit:,} characters, got {len(text):,}"
    if not text.isascii() and not _unicode(text):
        return f"must be valid Unicode, got {_show(text)}"
    return None


def _scalar(value: Any) -> str | None:
    """What is wrong with ``value`` as a JSON scalar a record holds, if anything (a NumPy
    float or a str enum is written as what it is a kind of, and passes as that)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number, got {value!r}"
    if isinstance(value, str):
        return _string(value, MAX_STRING)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -MAX_INT <= value < MAX_INT else "must be an integer that fits in 64 bits"
    return f"must be a string, number, bool or null, got {_show(value)}"


def _finite(value: Any) -> None:
    if type(value) is float or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        try:
            if math.isfinite(value):
                return
        except OverflowError:  # an int too large for a float
            pass
    raise _BadValueError(f"must be a finite number, got {_show(value)}")


def _integer(low: int) -> _Check:
    def check(value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            if low <= value < MAX_INT:
                return
            if value < low and low > -MAX_INT:
                raise _BadValueError(f"must be an integer >= {low}, got {_show(value)}")
            raise _BadValueError(f"must be an integer that fits in 64 bits, got {_show(value)}")
        raise _BadValueError(f"must be an integer, got {_show(value)}")

    return check


def _text(limit: int) -> _Check:
    def check(value: Any) -> None:
        wrong = _string(value, limit)
        if wrong is not None:
            raise _BadValueError(wrong)

    return check


def _one_of(*allowed: str) -> _Check:
    def check(value: Any) -> None:
        if not (isinstance(value, str) and value in allowed):
            raise _BadValueError(
                f"must be one of {', '.join(map(repr, allowed))}; got {_show(value)}"
            )

    return check


def _names_to(value: Any, item: Callable[[Any], str | None], limit: int = MAX_PARAMS) -> None:
    """``value`` is an object of at most ``limit`` names (strings) to what ``item`` allows."""
    if not isinstance(value, dict):
        raise _BadValueError(f"must be an object of names to values, got {_show(value)}")
    if len(value) > limit:
        raise _BadValueError(f"must have at most {limit:,} names, got {len(value):,}")
    for name, v in value.items():
        if (
            type(name) is not str
            or len(name) > MAX_STRING
            or not (name.isascii() or _unicode(name))
        ):
            wrong = _string(name, MAX_STRING) if isinstance(name, str) else "is not a string"
            raise _BadValueError(f"name {_show(name)} {wrong}")
        wrong = item(v)
        if wrong is not None:
            raise _BadValueError(f"{_show(name)} {wrong}")


def _scalars(value: Any) -> None:
    """Parameters, metrics: names to JSON scalars."""
    _names_to(value, _scalar)


def _values(value: Any) -> str | None:
    """A list of scalars, as a condition holds for a parent."""
    if not isinstance(value, (list, tuple)):
        return f"must be a list, got {_show(value)}"
    return _spec_value(value)


def _spec_value(value: Any) -> str | None:
    """A distribution's argument: a scalar, a list of them (a categorical's choices), or
    names to such lists (a condition, ``when``)."""
    if isinstance(value, dict):
        try:
            _names_to(value, _values, limit=_MAX_ARGS)
        except _BadValueError as bad:
            return str(bad)
        return None
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_CHOICES:
            return f"must have at most {MAX_CHOICES:,} items, got {len(value):,}"
        for i, v in enumerate(value):
            wrong = _scalar(v)
            if wrong is not None:
                return f"item {i} {wrong}"
        return None
    return _scalar(value)


def _distribution(value: Any) -> str | None:
    try:
        _names_to(value, _spec_value, limit=_MAX_ARGS)
    except _BadValueError as bad:
        return str(bad)
    return None


def _sha256(value: Any) -> None:
    """A SHA-256 digest: 64 lower-case hexadecimal digits; or empty, for no checkpoint (a
    copy imported from another study, whose checkpoint stayed there)."""
    ok = isinstance(value, str) and (value == "" or len(value) == 64)
    if not (ok and set(value) <= set("0123456789abcdef")):
        raise _BadValueError(f"must be 64 hexadecimal digits, got {_show(value)}")


def _space(value: Any) -> None:
    """A space's spec (:meth:`~asynchpo.space.Space.to_spec`): names to distributions."""
    _names_to(value, _distribution)


#: Checks by field name (a name means the same in every kind of event); a field not named
#: here is checked by its annotated type.
_BY_NAME: dict[str, _Check] = {
    "number": _integer(0),
    "run": _integer(0),
    "parent": _integer(0),
    "seq": _integer(0),
    "pid": _integer(0),
    "n_trials": _integer(0),
    "attempt": _integer(1),
    "max_concurrent": _integer(1),
    "direction": _one_of("minimize", "maximize"),
    "clock": _one_of("wall", "virtual"),
    "cause": _one_of("", "worker_lost", "interrupted", "resumed"),
    "sha256": _sha256,
    "failure": _one_of(*(f.value for f in Failure)),
    "reason": _text(MAX_TEXT),
    "error": _text(MAX_TEXT),
    "params": _scalars,
    "metrics": _scalars,
    "values": _scalars,
    "space": _space,
}
_BY_TYPE: dict[type, _Check] = {
    float: _finite,
    int: _integer(-MAX_INT),
    str: _text(MAX_STRING),
}


@dataclass(frozen=True)
class _Schema:
    kind: str
    fields: tuple[tuple[str, _Check, bool, bool], ...]  # name, check, may be None, required
    names: frozenset[str]


_SCHEMAS: dict[type, _Schema] = {}
_TEXT_FIELDS: dict[type, tuple[str, ...]] = {}


def _schema(cls: type[Event]) -> _Schema:
    """The checks of ``cls``'s fields, derived from their annotations (once per kind)."""
    schema = _SCHEMAS.get(cls)
    if schema is not None:
        return schema
    hints = typing.get_type_hints(cls)
    fields = []
    for f in _fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        if optional:
            (hint,) = [a for a in args if a is not type(None)]
        base = typing.get_origin(hint) or hint
        check = _BY_NAME.get(f.name) or _BY_TYPE.get(base)
        if check is None:
            raise TypeError(f"{cls.__name__}.{f.name}: no check for a field of type {hint}")
        required = f.name in _REQUIRED and not optional
        fields.append((f.name, check, optional, required))
    schema = _Schema(cls.kind, tuple(fields), frozenset(f[0] for f in fields) | {"kind"})
    _SCHEMAS[cls] = schema
    return schema


def _check(schema: _Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments in ``data`` (a record of ``schema``'s kind), or ValueError
    naming the first field that is wrong."""
    args: dict[str, Any] = {}
    for name, check, optional, required in schema.fields:
        if name not in data:
            if required:
                raise ValueError(f"{schema.kind}: the record has no {name!r}")
            continue
        value = data[name]
        if value is not None or not optional:
            try:
                check(value)
            except _BadValueError as bad:
                raise ValueError(f"{schema.kind}: {name} {bad}") from None
        args[name] = value
    if len(args) + 1 != len(data):
        unknown = sorted(_show(k) for k in data if k not in schema.names)
        raise ValueError(f"{schema.kind}: unknown field(s) {', '.join(unknown)}")
    return args


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
class TrialCheckpointed(Event):
    """The trial saved a checkpoint (``asynchpo.checkpoint``) before its report ``seq``:
    the file ``name`` under the study's checkpoint folder, whose bytes hash to ``sha256``."""

    kind: ClassVar[str] = "trial_checkpointed"
    number: int = 0
    seq: int = 0
    name: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class TrialForked(Event):
    """The trial (just asked) starts from trial ``parent``'s checkpoint ``name`` (whose
    bytes hash to ``sha256``): population based training copied a better trial."""

    kind: ClassVar[str] = "trial_forked"
    number: int = 0
    parent: int = 0
    name: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class TrialPaused(Event):
    """The study's scheduler paused the trial after its report at ``step``; it may be
    resumed later (``TrialRetried`` with ``cause="resumed"``), from its checkpoint."""

    kind: ClassVar[str] = "trial_paused"
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
    (``cause="worker_lost"``), it was interrupted (``cause="interrupted"``), or the study's
    scheduler resumed it after a pause (``cause="resumed"``)."""

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

    def keys(self) -> list[int]:
        """The keys, in the order of the rows."""
        return list(self._keys)

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
    checkpoint: dict[str, str] | None = None  # its latest: name, sha256
    parent: int | None = None  # the trial whose checkpoint it started from


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
        self.n_reports = 0  # the steps trials reported, over all trials: training done
        self.n_skipped = 0  # events that did not fit the study
        self._records: dict[int, _Record] = {}
        self._next = 0  # the next trial's number
        self._skipped_asks: set[int] = set()
        self._X: _Rows | None = None
        self._y = np.empty(16)  # the complete trials' minimized values, in X's order
        self._n_y = 0
        self._failed: _Rows | None = None
        self._pending: _Rows | None = None
        self._track = Tracker()

    # -- reading --------------------------------------------------------------------------

    @property
    def n_trials(self) -> int:
        """How many trial numbers were given: the number of the next trial.

        It counts every trial ever asked, and also those whose record was skipped (their
        numbers stay taken, so no number is ever given twice); :meth:`trials` lists the
        trials the study holds.
        """
        return self._next

    def has_trial(self, number: int) -> bool:
        """Whether the study holds trial ``number`` (a number whose record was skipped is
        taken, but holds no trial)."""
        return number in self._records

    def trial(self, number: int) -> Trial:
        """A frozen snapshot of trial ``number`` (``KeyError`` if the study has none)."""
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
                parent=rec.parent,
            )
        return rec.snapshot

    def trials(self, states: Iterable[TrialState] | None = None) -> list[Trial]:
        """Snapshots of all trials (or those in ``states``), by number."""
        wanted = set(states) if states is not None else None
        return [
            self.trial(n) for n, r in self._records.items() if wanted is None or r.state in wanted
        ]

    def checkpoint_of(self, number: int) -> dict[str, str] | None:
        """Trial ``number``'s latest checkpoint (``name`` and ``sha256``), or None."""
        cp = self._records[number].checkpoint
        return None if cp is None else dict(cp)

    def next_seq(self, number: int) -> int:
        """The ``seq`` the next report of trial ``number`` takes."""
        seqs = self._records[number].report_seqs
        return max(seqs) + 1 if seqs else 0

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

    def pending_numbers(self) -> list[int]:
        """The running trials, in the order of the rows of ``observations()``'s pending."""
        assert self._pending is not None
        return self._pending.keys()

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
            n_trials=len(self._records),
            done=done,
            complete=c[TrialState.COMPLETE],
            failed=c[TrialState.FAILED],
            pruned=c[TrialState.PRUNED],
            interrupted=c[TrialState.INTERRUPTED],
            paused=c[TrialState.PAUSED],
            steps=self.n_reports,
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

    def apply(self, event: Event, *, warn: bool = True) -> str | None:
        """Fold one event in.

        An event that does not fit the study changes nothing: one about a trial the study
        does not have (or whose record was skipped), a trial asked twice or with parameters
        its space does not hold, an objective value that is not a finite number, a second
        definition of the study, or anything before the definition. It is skipped, with a
        :class:`~asynchpo.storage.CorruptRecordWarning` unless ``warn`` is False.

        Returns:
            None, or why the event was skipped.

        Raises:
            ValueError: The study's definition (its first ``study_created`` event) holds a
                space that is not one: the study cannot be folded at all.
        """
        self.n_events += 1
        why = self._fold(event)
        if why is not None:
            self.n_skipped += 1
            if warn:
                warnings.warn(f"journal: {why}; skipped", CorruptRecordWarning, stacklevel=2)
        return why

    def _fold(self, event: Event) -> str | None:
        handler = getattr(self, "_on_" + event.kind, None)
        if handler is None:
            return f"{event.kind} events have no fold rule"
        if isinstance(event, StudyCreated):
            if self.space is not None:
                return "a second study_created (a study is defined once)"
            handler(event)
            return None
        if self.space is None:
            return f"{event.kind} before the study's study_created"
        self._track.tick(event.time)
        if isinstance(event, (RunStarted, RunFinished, TrialAsked)):
            why: str | None = handler(event)
            return why
        number = getattr(event, "number", None)
        rec = self._records.get(number) if number is not None else None
        if rec is None:
            if number in self._skipped_asks:
                return f"{event.kind} of trial {number}, whose trial_asked was skipped"
            return f"{event.kind} of unknown trial {number}"
        rec.snapshot = None
        why = handler(event, rec)
        return why

    def _on_study_created(self, e: StudyCreated) -> None:
        try:
            space = Space.from_spec(e.space)
        except Exception as exc:  # whatever a hostile spec makes the space's checks raise
            raise ValueError(
                f"study_created: its space is not a valid space ({type(exc).__name__}: "
                f"{cut(str(exc))})"
            ) from None
        self.space = space
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

    def _on_trial_asked(self, e: TrialAsked) -> str | None:
        assert self.space is not None
        if e.number in self._records:
            return f"trial_asked of trial {e.number}, which was asked already"
        self._next = max(self._next, e.number + 1)  # its number is taken, even if skipped
        try:
            params = self.space.check(e.params)
        except Exception as exc:  # ValueError, or whatever else odd values make a check raise
            self._skipped_asks.add(e.number)
            return f"trial_asked of trial {e.number}: {cut(str(exc))}"
        rec = _Record(number=e.number, params=params, asked_at=e.time, run=e.run, owner=e.run)
        self._records[e.number] = rec
        self.counts[TrialState.RUNNING] += 1
        assert self._pending is not None
        self._pending.add(e.number, self.space.encode(rec.params))
        self._track.asked(e.number, rec.params)
        return None

    def _move(self, rec: _Record, state: TrialState) -> None:
        self.counts[rec.state] -= 1
        self.counts[state] += 1
        rec.state = state
        assert self._pending is not None and self._failed is not None and self.space is not None
        # a pruned or paused trial's point is not worth suggesting again (while paused)
        if state in (TrialState.PRUNED, TrialState.PAUSED):
            self._failed.add(rec.number, self.space.encode(rec.params))
        else:
            self._failed.remove(rec.number)  # (a failed one is added once it is failed)
        if state is TrialState.RUNNING:
            assert self.space is not None
            self._pending.add(rec.number, self.space.encode(rec.params))
            self._track.asked(rec.number, rec.params)
        else:
            self._pending.remove(rec.number)
            if state is TrialState.INTERRUPTED:  # (a paused one is told as it ends)
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
        self.n_reports += 1
        self._track.reported(rec.number, e.step)
        rec.reports.append(Report(step=e.step, metrics=dict(e.metrics), time=e.time))

    def _on_trial_completed(self, e: TrialCompleted, rec: _Record) -> str | None:
        if rec.state.finished:
            return None
        raw = e.values.get(self.objective)
        if (
            isinstance(raw, bool)
            or not isinstance(raw, (int, float))
            or not math.isfinite(float(raw))
        ):
            return (
                f"trial_completed of trial {rec.number}: {cut(repr(self.objective), 80)} = "
                f"{_show(raw)}, not a finite number"
            )
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
        return None

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
        rec.finished_at, rec.error = e.time, None
        self._move(rec, TrialState.PRUNED)
        self._done(rec, e, None, "" if e.step is None else f"at step {e.step}", False)

    def _on_trial_checkpointed(self, e: TrialCheckpointed, rec: _Record) -> str | None:
        if not (e.name and e.sha256):
            return f"trial_checkpointed of trial {rec.number}: no name or digest"
        rec.checkpoint = {"name": e.name, "sha256": e.sha256}
        return None

    def _on_trial_forked(self, e: TrialForked, rec: _Record) -> str | None:
        if e.parent not in self._records or e.parent == rec.number:
            return f"trial_forked of trial {rec.number}: no trial {e.parent} to start from"
        if bool(e.name) != bool(e.sha256):
            return f"trial_forked of trial {rec.number}: a checkpoint name without digest"
        # (no name: an imported copy, whose checkpoint stayed with the study it came from)
        rec.checkpoint = {"name": e.name, "sha256": e.sha256} if e.name else None
        rec.parent = e.parent
        return None

    def _on_trial_paused(self, e: TrialPaused, rec: _Record) -> None:
        if rec.state not in (TrialState.RUNNING, TrialState.INTERRUPTED):
            return
        rec.error = None
        self._move(rec, TrialState.PAUSED)
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
