"""The storage plug-in point: an append-only journal of events per named study."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asynchpo.events import Event


class CorruptRecordWarning(UserWarning):
    """A journal record could not be read back; the records before it are kept."""


class BaseStorage(ABC):
    """Where a study's events live. One writer per study; any number of readers.

    Subclasses implement three methods. ``append`` must make the event durable before it
    returns (one transaction per event), so that a driver killed at any moment loses nothing
    it has already recorded.
    """

    @abstractmethod
    def append(self, study: str, event: Event) -> None:
        """Record ``event`` as the next event of ``study`` (creating the study if new)."""

    @abstractmethod
    def read(self, study: str) -> list[Event]:
        """All events of ``study`` in order (empty if there is no such study).

        A record that cannot be read back is skipped with a :class:`CorruptRecordWarning`
        naming it; every other record is returned.
        """

    @abstractmethod
    def studies(self) -> list[str]:
        """The names of the studies stored here, oldest first."""

    def exists(self, study: str) -> bool:
        """Whether ``study`` has any event here."""
        return study in self.studies()

    def close(self) -> None:  # noqa: B027 - a hook: nothing to release by default
        """Release files or connections."""

    def __enter__(self) -> BaseStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
