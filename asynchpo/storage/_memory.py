"""Events kept in the driver's memory: fast, and gone with the process."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from asynchpo.storage._base import BaseStorage, JournalConflictError, Records

if TYPE_CHECKING:
    from asynchpo.events import Event


class InMemoryStorage(BaseStorage):
    """A journal in a dict. Events are checked to be JSON on append, as on disk.

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
        for event in events:
            event.to_json()  # the same values as a file would take
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
            journal.extend(events)

    def records(self, study: str, start: int = 0) -> Records:
        with self._lock:
            journal = self._events.get(study, [])
            return Records(list(journal[start:]), len(journal))

    def studies(self) -> list[str]:
        with self._lock:
            return [name for name, journal in self._events.items() if journal]

    def exists(self, study: str) -> bool:
        return bool(self._events.get(study))
