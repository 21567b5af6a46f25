"""The one owner of a study's state: its storage, the fold of its events, the lock, trial
numbers, the clock of each run, the subscribers, and the leases that tell a live run from a
dead one.

Every write goes through :meth:`Journal.write`: the events are computed from the state as
this journal knows it, appended at the position it believes is the end, and, if another
writer (another process on the same file) got there first, computed again after reading
what it wrote. Trial numbers are therefore never given twice, whoever writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from asynchpo._checks import cut
from asynchpo._summary import Summary
from asynchpo.events import (
    Event,
    RunFinished,
    RunStarted,
    StudyCreated,
    StudyState,
    TrialAsked,
    TrialCompleted,
    TrialInterrupted,
)
from asynchpo.samplers._base import Fidelity, History
from asynchpo.space import Space
from asynchpo.storage import (
    BaseStorage,
    CorruptRecordWarning,
    JournalConflictError,
    Lease,
    Records,
)

__all__ = ["LEASE_SECONDS", "Journal", "StudyInUseError"]

logger = logging.getLogger("asynchpo")
T = TypeVar("T")

#: A run's lease lasts this long unless renewed; a heartbeat renews it four times as often.
LEASE_SECONDS = 30.0
_MAX_RETRIES = 1000  # appends lost to other writers in a row before giving up
_LISTED = 3  # skipped records a warning names; it counts the others
_RECORD_NUMBER = re.compile(r"\brecord (\d+)\b")


class StudyInUseError(RuntimeError):
    """The study has a live run elsewhere (or this study object is read-only)."""


# -- leases held by this process, and the heartbeat that renews them --------------------------

_held: dict[str, tuple[BaseStorage, str, Callable[[], None]]] = {}  # holder -> where, on loss
_lost: set[str] = set()  # holders whose lease another process took over
_held_lock = threading.Lock()
_claiming: set[str] = set()  # held here, not yet claimed in the storage: nothing to renew
_beat: threading.Thread | None = None
_journals: weakref.WeakSet[Journal] = weakref.WeakSet()  # open here: their own asks are live


_beat_now = threading.Event()  # set: start the next interval now (a lease was taken)


def _heartbeat() -> None:
    while True:
        _beat_now.wait(LEASE_SECONDS / 4)
        _beat_now.clear()
        _renew_all()  # (in a call of its own: nothing it saw stays referenced meanwhile)


def _renew_all() -> None:
    with _held_lock:
        held = [(h, where) for h, where in _held.items() if h not in _claiming]
    for holder, (storage, study, on_lost) in held:
        try:
            if not storage.renew(study, holder, time.time() + LEASE_SECONDS):
                with _held_lock:
                    _lost.add(holder)
                    _held.pop(holder, None)
                logger.warning("asynchpo: study %r: the lease of a live run was lost", study)
                on_lost()
        except Exception as error:  # a closed or unreachable file: the run will see it
            logger.warning("asynchpo: study %r: renewing a lease failed: %r", study, error)


def _hold(
    holder: str, storage: BaseStorage, study: str, on_lost: Callable[[], None] = lambda: None
) -> None:
    global _beat
    with _held_lock:
        _held[holder] = (storage, study, on_lost)
        _claiming.add(holder)  # renewed once claimed (see _claimed)
        _beat_now.set()
        if _beat is None or not _beat.is_alive():
            _beat = threading.Thread(target=_heartbeat, name="asynchpo-lease", daemon=True)
            _beat.start()


def _claimed(holder: str) -> None:
    """The lease ``holder`` is in the storage now: the heartbeat renews it from here on."""
    with _held_lock:
        _claiming.discard(holder)


def _drop(holder: str) -> None:
    with _held_lock:
        _held.pop(holder, None)
        _claiming.discard(holder)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_alive(lease: Lease, now: float | None = None) -> bool:
    """Whether the run holding ``lease`` is alive: its lease is renewed in time, and, on
    this machine, its process runs (in this process: it is still held)."""
    if lease.host == socket.gethostname():
        if lease.pid == os.getpid():
            with _held_lock:
                return lease.holder in _held
        if not _pid_alive(lease.pid):
            return False
    return lease.expires > (time.time() if now is None else now)


def _record_number(line: str) -> int | None:
    """The record a storage's line about a skipped record names, if it names one."""
    found = _RECORD_NUMBER.search(line)
    return None if found is None else int(found.group(1))


def _positions(records: Records, start: int) -> Sequence[int] | None:
    """The record number of each of ``records.events``, where it can be told: the records
    from ``start`` to ``records.end``, less the skipped ones their lines name."""
    if not records.skipped:
        n = len(records.events)
        return range(start, start + n) if start + n == records.end else None
    bad = {_record_number(line) for line in records.skipped}
    if None in bad or len(bad) != len(records.skipped):
        return None
    if len(records.events) + len(bad) != records.end - start:
        return None
    return [seq for seq in range(start, records.end) if seq not in bad]


def _tally(kept: int, skipped: Sequence[str], what: str) -> str:
    """``"kept 998 of 1,000 records; skipped 2: record 17 ...; record 40 ..."``: a few
    skipped records named, the others counted."""
    named = "; ".join(cut(line) for line in skipped[:_LISTED])
    more = f"; and {len(skipped) - _LISTED:,} more" if len(skipped) > _LISTED else ""
    return (
        f"kept {kept:,} of {kept + len(skipped):,} {what}; skipped {len(skipped):,}: {named}{more}"
    )


class Journal:
    """A study's journal: the only writer of its events and the keeper of their fold.

    Open one with :meth:`open`. Reads (:meth:`query`, :meth:`snapshot`, :meth:`summary`)
    and writes (:meth:`write` and the helpers built on it) are safe from any thread.

    Args:
        storage: Where the events live.
        name: The study's name there.
        read_only: Refuse every write (a study with a live run elsewhere, opened to look).

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(0, 1)), name="j", sampler=ah.RandomSampler(seed=0))
        >>> journal = study.journal
        >>> journal.ask([{"x": 0.25}, {"x": 0.75}], run=None)
        [0, 1]
        >>> journal.query(lambda state: state.n_trials), journal.summary().running.keys()
        (2, dict_keys([0, 1]))
    """

    def __init__(self, storage: BaseStorage, name: str, *, read_only: bool = False):
        self.storage, self.name, self.read_only = storage, name, read_only
        self._state = StudyState()
        self._end = 0  # where the next record goes
        self._lock = threading.RLock()
        self._subscribers: list[Callable[[Event], None]] = []
        self._clock: Callable[[], float] = time.time
        self._run: tuple[int, str] | None = None  # (run, lease holder) while a run goes on
        self._asked_here: set[int] = set()  # trials this journal asked outside runs
        #: A line for each record skipped: one that could not be read back, or one that does
        #: not fit the study (see :meth:`StudyState.apply`), in the order of the records.
        self.skipped: list[str] = []
        #: How many records were read (or written) and folded in.
        self.kept = 0
        _journals.add(self)

    def __repr__(self) -> str:
        mode = ", read-only" if self.read_only else ""
        return f"<Journal of study {self.name!r} in {self.storage!r}{mode}>"

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        storage: BaseStorage,
        name: str,
        *,
        create: StudyCreated | None = None,
        exist_ok: bool = False,
        read_only: bool = False,
    ) -> Journal:
        """Open study ``name``: the one path for new, reopened and recovered studies.

        With ``create``, a study that does not exist yet is created with that definition;
        one that exists is reopened only with ``exist_ok`` and the same definition. Unless
        ``read_only``, the runs whose driver died (their lease expired) are recovered: their
        running trials are marked interrupted, to be run again.

        Raises:
            ValueError: No such study (without ``create``), or it exists and ``exist_ok`` is
                False, or its definition differs from ``create``'s (naming what differs).
            StudyInUseError: A live run elsewhere holds the study (open it ``read_only``).
        """
        opened = cls(storage, name, read_only=read_only)
        note = opened._catch_up(warn=False)
        if opened._state.n_events == 0 and opened._end == 0:
            if create is None:
                raise ValueError(
                    f"name: no study {name!r} in {storage!r}; it has {storage.studies()}"
                )
            if read_only:
                raise ValueError(f"read_only: there is no study {name!r} to look at")
            try:
                opened._append([create])
                return opened
            except JournalConflictError:  # created elsewhere at the same moment
                note = opened._catch_up(warn=False)
                if not exist_ok:
                    raise ValueError(
                        f"name: a study {name!r} was just created in {storage!r} by another "
                        "writer; use load_if_exists=True to share it"
                    ) from None
        elif create is not None and not exist_ok:
            raise ValueError(
                f"name: a study {name!r} already exists in {storage!r}; "
                f"use Study.load({name!r}, storage) or load_if_exists=True"
            )
        state = opened._state
        if state.space is None:
            first = f" ({cut(opened.skipped[0])})" if opened.skipped else ""
            raise ValueError(
                f"study {name!r} in {opened._where()} cannot be loaded: its first record is "
                f"not a readable study_created{first}"
            )
        if note is not None:
            warnings.warn(note, CorruptRecordWarning, stacklevel=3)
        if create is not None:
            for attr, want in (
                ("space", create.space),
                ("objective", create.objective),
                ("direction", create.direction),
            ):
                have = state.space.to_spec() if attr == "space" else getattr(state, attr)
                if have != want:
                    shown = state.space if attr == "space" else have
                    raise ValueError(
                        f"{attr}: the stored study {name!r} has {shown!r}, not {want!r}"
                    )
        if not read_only:
            opened._recover()
        return opened

    def _in_use(self, lease: Lease) -> StudyInUseError:
        with self._lock:
            runs = [r.run for r in self._state.runs.values() if r.holder == lease.holder]
        run = f"run {runs[0]} " if runs else "a run "
        if lease.pid == os.getpid() and lease.host == socket.gethostname():
            where = "in this process, by another Study object of it"
        else:
            where = f"by process {lease.pid} on {lease.host!r}"
        return StudyInUseError(
            f"study {self.name!r} in {self.storage!r} is being run ({run}{where}); "
            f"to look at it meanwhile, open it with Study.load({self.name!r}, storage, "
            "read_only=True); to go on with it, stop that run first"
        )

    def _claim(self, lease: Lease) -> None:
        """Take ``lease``, waiting a little for another opener's recovery to end.

        Raises:
            StudyInUseError: A live run holds the study.
        """
        deadline = time.monotonic() + 10.0
        while True:
            other = self.storage.claim(self.name, lease, lease_alive)
            if other is None:
                _claimed(lease.holder)
                return
            if not other.holder.startswith("recovery-") or time.monotonic() > deadline:
                raise self._in_use(other)
            time.sleep(0.02)  # another process recovers the study: a moment's work

    def _live_asks(self) -> set[int]:
        """Trials asked outside runs by journals of this study still open in this process
        (their ``tell`` may come yet)."""
        key = (getattr(self.storage, "path", id(self.storage)), self.name)
        live: set[int] = set()
        for other in list(_journals):
            if (getattr(other.storage, "path", id(other.storage)), other.name) == key:
                live |= other._asked_here
        return live

    @staticmethod
    def _end_dead(s: StudyState, now: float, unowned: Iterable[int] = ()) -> list[Event]:
        """The events that end every unfinished run of ``s`` (their drivers are dead) and
        interrupt their running trials, each stamped with the run's own clock; then the
        running trials in ``unowned`` (asked outside runs), at ``now``."""
        events: list[Event] = []
        reason = "its driver stopped while it ran"
        for run in s.unfinished_runs():
            t = now
            if run.clock == "virtual":  # where its simulation's clock stood
                last = s.summary().last_time
                t = run.time if last is None else last
            events += [TrialInterrupted(time=t, number=n, reason=reason) for n in s.owned(run.run)]
            events.append(RunFinished(time=t, run=run.run, reason="interrupted"))
        running = set(s.owned(None))
        events += [
            TrialInterrupted(time=now, number=n, reason=reason)
            for n in sorted(unowned)
            if n in running
        ]
        return events

    def _recover(self) -> None:
        """Mark what dead runs (and dead ask/tell loops) left running as interrupted,
        holding a lease while at it."""
        holder = "recovery-" + uuid.uuid4().hex
        lease = Lease(holder, os.getpid(), socket.gethostname(), time.time() + LEASE_SECONDS)
        _hold(holder, self.storage, self.name)
        try:
            self._claim(lease)
            now, live = time.time(), self._live_asks()
            self.write(
                lambda s: self._end_dead(s, now, set(s.owned(None)) - live - self._asked_here)
            )
            for dead in self.storage.leases(self.name):
                if dead.holder != holder and not lease_alive(dead):
                    self.storage.release(self.name, dead.holder)
        finally:
            _drop(holder)
            with contextlib.suppress(Exception):  # the error at hand (if any) is what to see
                self.storage.release(self.name, holder)

    # -- reading --------------------------------------------------------------------------

    def query(self, read: Callable[[StudyState], T]) -> T:
        """``read(state)`` under the lock: no event is folded in while it runs. Copy what
        is kept (trials are frozen snapshots already)."""
        with self._lock:
            return read(self._state)

    @property
    def space(self) -> Space:
        """The study's space (fixed once the study exists)."""
        assert self._state.space is not None, "a journal is opened on an existing study"
        return self._state.space

    def refresh(self) -> None:
        """Fold in what other writers appended since (for a study that is looked at while
        another process runs it)."""
        with self._lock:
            self._catch_up()

    def snapshot(
        self, fidelity: Callable[[list[int]], Fidelity] | None = None
    ) -> tuple[History, np.ndarray]:
        """The sampler's input, copied under the lock: the history, and the running trials'
        points (`p x d`). Later events never change them. ``fidelity(running trials)``, if
        given, adds their results at several resources (made under the same lock, so that
        the two agree)."""
        with self._lock:
            s = self._state
            assert s.space is not None
            X, y, X_failed, pending = s.observations()
            fid = None if fidelity is None else fidelity(s.pending_numbers())
            history = History(s.space, X.copy(), y.copy(), X_failed.copy(), s.n_trials, fid)
            return history, pending.copy()

    def follow(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` for every event recorded so far that the fold kept, in
        the order recorded (read from the storage again), then for each later one, as
        :meth:`subscribe` does: what a fold of its own (a scheduler's) is built from. No
        event falls between the two."""
        with self._lock:
            self._catch_up()  # what others appended too, so the two folds agree
            records = self.storage.records(self.name, 0)
            scratch = StudyState()
            for event in records.events:
                if scratch.apply(event, warn=False) is None:
                    listener(event)
            self._subscribers.append(listener)

    def summary(self) -> Summary:
        """What the views draw, now (a read-only journal first reads what its run wrote)."""
        with self._lock:
            if self.read_only:
                self._catch_up()
            return self._state.summary(self.name)

    def subscribe(self, listener: Callable[[Event], None]) -> Summary:
        """Call ``listener(event)`` after each event is folded in (under the lock: it must
        be quick, e.g. queue it); returns the summary up to now, so that a view that comes
        late starts from a consistent state and misses nothing."""
        with self._lock:
            self._subscribers.append(listener)
            return self._state.summary(self.name)

    def unsubscribe(self, listener: Callable[[Event], None]) -> None:
        """Stop calling ``listener``."""
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(listener)

    def now(self) -> float:
        """The clock: the current run's (real or virtual) while one goes on, else real."""
        return self._clock()

    @property
    def lease_lost(self) -> bool:
        """Whether the current run's lease expired and another process took the study
        over (the run must stop: two runs never drive one study)."""
        if self._run is None:
            return False
        with _held_lock:
            return self._run[1] in _lost

    def check_free(self) -> None:
        """Raise :class:`StudyInUseError` now if a live run elsewhere holds the study (a
        run claims the study for good when it starts)."""
        if self.read_only:
            self.write(lambda _: [])  # raises the read-only error
        with self._lock:  # a run of this journal that is starting counts as ours
            leases, run = self.storage.leases(self.name), self._run
        for lease in leases:
            ours = run is not None and lease.holder == run[1]
            if lease_alive(lease) and not lease.holder.startswith("recovery-") and not ours:
                raise self._in_use(lease)

    @property
    def run(self) -> int | None:
        """The run this journal is driving now, if any."""
        return None if self._run is None else self._run[0]

    # -- writing --------------------------------------------------------------------------

    def _where(self) -> str:
        return str(getattr(self.storage, "path", None) or repr(self.storage))

    def _catch_up(self, *, warn: bool = True) -> str | None:
        """Fold in the records appended since; returns (and warns, unless not ``warn``) one
        line on what was skipped among them, if anything was.

        Raises:
            ValueError: The study's definition cannot be read (it cannot be loaded).
        """
        start = self._end
        records = self.storage.records(self.name, start)
        self._end = max(self._end, records.end)
        positions = _positions(records, start)
        skipped = [(_record_number(line), line) for line in records.skipped]
        kept = 0
        for i, event in enumerate(records.events):
            try:
                why = self._fold(event, warn=False)
            except ValueError as error:  # its definition: nothing can be folded without it
                raise ValueError(
                    f"study {self.name!r} in {self._where()} cannot be loaded: {error}"
                ) from None
            if why is None:
                kept += 1
            else:
                seq = None if positions is None else positions[i]
                skipped.append((seq, f"record {'?' if seq is None else seq}: {why}"))
        if not skipped:
            return None
        skipped.sort(key=lambda item: (item[0] is None, item[0] or 0))  # record order
        lines = [line for _, line in skipped]
        self.skipped.extend(lines)
        what = "records" if start == 0 else f"records from record {start} on"
        note = f"study {self.name!r} in {self._where()}: {_tally(kept, lines, what)}"
        if warn:
            warnings.warn(note, CorruptRecordWarning, stacklevel=3)
        return note

    def skipped_note(self) -> str:
        """One line on what reading the study kept and skipped (empty if nothing was
        skipped): ``"kept 998 of 1,000 records; skipped 2: record 17 ...; record 40 ..."``."""
        return _tally(self.kept, self.skipped, "records") if self.skipped else ""

    def _fold(self, event: Event, *, warn: bool = True) -> str | None:
        why = self._state.apply(event, warn=warn)
        if why is not None:
            return why
        self.kept += 1
        for listener in list(self._subscribers):
            try:
                listener(event)
            except Exception as error:  # a view's fault never stops the study
                logger.warning("asynchpo: a listener of study %r failed: %r", self.name, error)
        return None

    def _append(self, events: Sequence[Event]) -> None:
        self.storage.append(self.name, events, self._end)
        at, self._end = self._end, self._end + len(events)
        for i, event in enumerate(events):
            why = self._fold(event)
            if why is not None:  # it was written: reading the study back will skip it too
                self.skipped.append(f"record {at + i}: {why}")

    def write(self, make: Callable[[StudyState], Sequence[Event]]) -> list[Event]:
        """Append the events ``make(state)`` gives, in one transaction, and fold them in.

        ``make`` sees the state with every event recorded so far, from every writer; if
        another writer appends first, it is called again on the newer state, so what it
        computes from the state (trial numbers, which trials are running) stays true.

        Raises:
            StudyInUseError: This journal is read-only.
        """
        self._writable()
        with self._lock:
            for _ in range(_MAX_RETRIES):
                events = list(make(self._state))
                if not events:
                    return []
                try:
                    self._append(events)
                    return events
                except JournalConflictError:
                    self._catch_up()
            raise JournalConflictError(
                f"study {self.name!r}: {_MAX_RETRIES} appends in a row lost to other writers"
            )

    def _writable(self) -> None:
        if self.read_only:
            raise StudyInUseError(
                f"study {self.name!r} was opened read-only (to look at it while another "
                "run holds it); open it again without read_only=True once that run ended"
            )

    def record(self, *events: Event) -> None:
        """Append ``events`` as they are (one transaction)."""
        self.write(lambda _: events)

    def ask(
        self,
        params: Sequence[Mapping[str, Any]],
        run: int | None,
        before: Sequence[Event] = (),
        after: Callable[[list[int]], Sequence[Event]] | None = None,
    ) -> list[int]:
        """New trials with these parameters, numbered and recorded atomically; ``before``
        (events that ask no trial, such as a round's results) goes in the same transaction,
        ahead of them, and ``after(numbers)`` (what more there is to say of them) behind."""
        if any(isinstance(e, TrialAsked) for e in before):
            raise ValueError("before: trials are asked by ask itself, not passed to it")

        def asked(s: StudyState) -> list[Event]:
            if run is not None and run != self.run:
                raise RuntimeError(f"study {self.name!r}: run {run} has ended; no new trials")
            t, n0 = self.now(), s.n_trials
            return [
                *before,
                *(
                    TrialAsked(time=t, number=n0 + i, params=dict(p), run=run)
                    for i, p in enumerate(params)
                ),
                *(after([n0 + i for i in range(len(params))]) if after is not None else ()),
            ]

        with self._lock:
            numbers = [e.number for e in self.write(asked) if isinstance(e, TrialAsked)]
            if run is None:
                self._asked_here.update(numbers)
            return numbers

    def add(self, params: Mapping[str, Any], values: Mapping[str, Any]) -> int:
        """A finished trial known from elsewhere, numbered and recorded atomically."""

        def added(s: StudyState) -> list[Event]:
            t, n = self.now(), s.n_trials
            return [
                TrialAsked(time=t, number=n, params=dict(params), run=None),
                TrialCompleted(time=t, number=n, values=dict(values)),
            ]

        (asked, _) = self.write(added)
        assert isinstance(asked, TrialAsked)
        return asked.number

    # -- runs -----------------------------------------------------------------------------

    def begin_run(
        self,
        *,
        n_trials: int | None,
        max_concurrent: int,
        clock: Callable[[], float],
        virtual: bool,
        on_lost: Callable[[], None] = lambda: None,
    ) -> int:
        """Start a run: take the study's lease (renewed by a heartbeat until
        :meth:`end_run`; ``on_lost`` is called, from the heartbeat's thread, if another
        process takes it over), and record the run with the clock its events carry.

        Raises:
            StudyInUseError: Another live run holds the study.
            RuntimeError: This journal drives a run already.
        """
        self._writable()
        holder = uuid.uuid4().hex
        lease = Lease(holder, os.getpid(), socket.gethostname(), time.time() + LEASE_SECONDS)
        with self._lock:
            if self._run is not None:
                raise RuntimeError(f"study {self.name!r} is already running an optimize call")
            _hold(holder, self.storage, self.name, on_lost)
            try:
                self._claim(lease)
                # runs whose driver died since this journal was opened
                now = time.time()
                self.write(lambda s: self._end_dead(s, now))
                (started,) = self.write(
                    lambda s: [
                        RunStarted(
                            time=clock(),
                            run=max(s.runs, default=-1) + 1,
                            n_trials=n_trials,
                            max_concurrent=max_concurrent,
                            pid=os.getpid(),
                            host=socket.gethostname(),
                            holder=holder,
                            clock="virtual" if virtual else "wall",
                        )
                    ]
                )
            except BaseException:
                _drop(holder)
                with contextlib.suppress(Exception):  # the error at hand is what to see
                    self.storage.release(self.name, holder)
                raise
            assert isinstance(started, RunStarted)
            self._run, self._clock = (started.run, holder), clock
            return started.run

    def end_run(self, reason: str, *, error: str | None = None, interrupted: str = "") -> None:
        """End the current run: its trials still running are interrupted (``interrupted``
        says why), the end is recorded, the lease given back, and the file made whole."""
        with self._lock:
            assert self._run is not None, "no run to end"
            run, holder = self._run
            why = interrupted or "the run ended while it ran"
            try:
                self.write(
                    lambda s: [
                        *(
                            TrialInterrupted(time=self.now(), number=n, reason=why)
                            for n in s.owned(run)
                        ),
                        RunFinished(time=self.now(), run=run, reason=reason, error=error),
                    ]
                )
            finally:
                self._run, self._clock = None, time.time
                _drop(holder)
                with _held_lock:
                    _lost.discard(holder)
                with contextlib.suppress(Exception):  # a closed file keeps what it has
                    self.storage.release(self.name, holder)
                    self.storage.checkpoint()
