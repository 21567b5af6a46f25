"""Events kept in the driver's memory: fast, and gone with the process."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from asynchpo.storage._base import BaseStorage, JournalConflictError, Records

if TYPE_CHECKING:
    from asynchpo.events import Event


class InMemoryStorage(BaseStorage):
    """A journal in a dict. Each event is written to its record and read back on append, as
    a file would keep it: what a file would refuse is refused here too (``ValueError``,
    nothing written), and what is kept is what a file would give back.

    Example:
        >>> storage = InMemoryStorage()
        >>> storage.studies()
        []
    """

    def __init__(self) -> None:
        self._events: dict[str, list[Event]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "InMemoryStorage()"

    def append(self, study: str, events: Sequence[Event], at: int) -> None:
        from asynchpo.events import decode_record  # events import this package

        kept = [decode_record(event.to_json()) for event in events]  # as a file keeps them
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
        with self._lock:
            journal = self._events.get(study, [])
            return Records(list(journal[start:]), len(journal))

    def studies(self) -> list[str]:
        with self._lock:
            return [name for name, journal in self._events.items() if journal]

    def exists(self, study: str) -> bool:
        return bool(self._events.get(study))
