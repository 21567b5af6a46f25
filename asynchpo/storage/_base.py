"""The storage plug-in point: an append-only journal of events per named study, and leases."""

from __future__ import annotations

import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asynchpo.events import Event


class CorruptRecordWarning(UserWarning):
    """A journal record could not be read back; the records before it are kept."""


class UnfoldedLogWarning(UserWarning):
    """A study file's write-ahead log could not be folded into it whole (another connection
    holds a read transaction): the file alone lacks what is still only in the log."""


class JournalConflictError(RuntimeError):
    """Another writer appended to the same study first; read the new records and retry."""


class ForeignFileError(ValueError):
    """A file that is not a study file of this version (not SQLite, another program's
    database, or a newer schema): refused before anything in it is changed."""


@dataclass(frozen=True)
class Records:
    """What :meth:`BaseStorage.records` read: the events, where the next record goes, and a
    line for each record that could not be read back (skipped)."""

    events: list[Event]
    end: int
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Lease:
    """A run's claim on a study: who holds it, and until when (wall-clock seconds) unless
    renewed."""

    holder: str
    pid: int
    host: str
    expires: float


class BaseStorage(ABC):
    """Where a study's events live. Any number of readers and writers: a writer appends at
    the position it believes is the end, and gets :class:`JournalConflictError` when another
    writer got there first.

    Subclasses implement three methods. ``append`` must make the events durable before it
    returns (one transaction for all of them), so that a writer killed at any moment loses
    nothing it has already recorded, and leaves no half of a batch.

    Leases (which run holds a study) are kept in this process by default; a storage that
    several processes share (a file) overrides :meth:`claim`, :meth:`renew`,
    :meth:`release` and :meth:`leases`.

    A storage that can only be read (a file where it may not be written) sets
    :attr:`read_only` and refuses every write with a :class:`PermissionError` naming why.
    """

    #: Whether every write is refused (the records can still be read).
    read_only: bool = False

    @abstractmethod
    def append(self, study: str, events: Sequence[Event], at: int) -> None:
        """Record ``events`` as records ``at``, ``at + 1``, ... of ``study`` in one
        transaction (creating the study if new).

        Raises:
            JournalConflictError: The study already has a record ``at``; nothing is written.
            ValueError: An event holds what JSON cannot (nothing is written).
        """

    @abstractmethod
    def records(self, study: str, start: int = 0) -> Records:
        """The events of ``study`` from record ``start`` on, in order.

        A record that cannot be read back is skipped, with a line naming it in
        ``Records.skipped`` (the reader says it: :meth:`read` and the journal warn once, with
        the count); every other record is returned. A warning about the file itself (a
        damaged log or page) is the storage's own to give.
        """

    @abstractmethod
    def studies(self) -> list[str]:
        """The names of the studies stored here, oldest first."""

    def read(self, study: str) -> list[Event]:
        """All events of ``study`` in order (empty if there is no such study); records that
        could not be read back are skipped, with one :class:`CorruptRecordWarning` that
        counts them and names the first few."""
        records = self.records(study)
        if records.skipped:
            n = len(records.skipped)
            first = "; ".join(records.skipped[:3]) + (f"; and {n - 3} more" if n > 3 else "")
            warnings.warn(
                f"{self!r}: study {study!r}: kept {len(records.events)} records, skipped {n} "
                f"that could not be read back: {first}",
                CorruptRecordWarning,
                stacklevel=2,
            )
        return records.events

    def exists(self, study: str) -> bool:
        """Whether ``study`` has any event here."""
        return study in self.studies()

    # -- leases: in this process unless overridden -------------------------------------------

    _lease_lock = threading.Lock()

    def _lease_table(self) -> dict[str, dict[str, Lease]]:
        table: dict[str, dict[str, Lease]] | None = getattr(self, "_leases_here", None)
        if table is None:
            table = {}
            self._leases_here = table
        return table

    def claim(self, study: str, lease: Lease, alive: Callable[[Lease], bool]) -> Lease | None:
        """Take ``lease`` on ``study`` unless another holder's lease is ``alive``: atomically.

        Returns:
            None once claimed; else the live lease that stands in the way (nothing changed).
        """
        with self._lease_lock:
            held = self._lease_table().setdefault(study, {})
            for other in held.values():
                if other.holder != lease.holder and alive(other):
                    return other
            held[lease.holder] = lease
            return None

    def renew(self, study: str, holder: str, expires: float) -> bool:
        """Move ``holder``'s lease on ``study`` to expire at ``expires``; False if it is gone."""
        with self._lease_lock:
            held = self._lease_table().get(study, {})
            if holder not in held:
                return False
            old = held[holder]
            held[holder] = Lease(old.holder, old.pid, old.host, expires)
            return True

    def release(self, study: str, holder: str) -> None:
        """Drop ``holder``'s lease on ``study``, if any."""
        with self._lease_lock:
            self._lease_table().get(study, {}).pop(holder, None)

    def leases(self, study: str) -> list[Lease]:
        """The leases on ``study``, live or expired."""
        with self._lease_lock:
            return list(self._lease_table().get(study, {}).values())

    def checkpoint(self) -> None:  # noqa: B027 - a hook: nothing to fold back by default
        """Make the stored file whole on its own (a file storage folds its side files in)."""

    def close(self) -> None:  # noqa: B027 - a hook: nothing to release by default
        """Release files or connections."""

    def __enter__(self) -> BaseStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
