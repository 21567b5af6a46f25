"""Events kept in the driver's memory: fast, and gone with the process."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from asynchpo.storage._base import BaseStorage

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

    def append(self, study: str, event: Event) -> None:
        json.dumps(event.to_dict(), allow_nan=False)  # the same values as a file would take
        self._events.setdefault(study, []).append(event)

    def read(self, study: str) -> list[Event]:
        return list(self._events.get(study, ()))

    def studies(self) -> list[str]:
        return list(self._events)

    def exists(self, study: str) -> bool:
        return study in self._events
