"""Events kept in the driver's memory: fast, and gone with the process."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from asynchpo.storage._base import BaseStorage, JournalConflictError, Records

if TYPE_CHECKING:
    from asynchpo.events import Event


class InMemoryStorage(BaseStorage):
    """A journal in a dict. Each event is kept as the record a file would hold, read back
    when the journal is read: what a file would refuse is refused here too (``ValueError``,
    nothing written), and what is read is what a file would give back.

    Example:
        >>> storage = InMemoryStorage()
        >>> storage.studies()
        []
    """

    def __init__(self) -> None:
        self._events: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "InMemoryStorage()"

    def append(self, study: str, events: Sequence[Event], at: int) -> None:
        kept = [event.to_json() for event in events]  # as a file keeps them
        with self._lock:
            journal = self._events.setdefault(study, [])
            if at > len(journal):
                raise ValueError(
                    f"at: study {study!r} has {len(journal)} records; {at} leaves a gap"
                )
            if at != len(journal):
                raise JournalConflictError(
                    f"study {study!r} has {len(journal)} records, not {at}: another writer "
                    "appended first"
                )
            journal.extend(kept)

    def records(self, study: str, start: int = 0) -> Records:
        from asynchpo.events import decode_record  # events import this package

        with self._lock:
            journal = self._events.get(study, [])
            kept, total = journal[start:], len(journal)
        return Records([decode_record(record) for record in kept], total)

    def studies(self) -> list[str]:
        with self._lock:
            return [name for name, journal in self._events.items() if journal]

    def exists(self, study: str) -> bool:
        return bool(self._events.get(study))
