"""Where studies are kept: an append-only event journal per study."""

from __future__ import annotations

import os
from typing import Any

from asynchpo.storage._base import (
    BaseStorage,
    CorruptRecordWarning,
    JournalConflictError,
    Lease,
    Records,
)
from asynchpo.storage._memory import InMemoryStorage
from asynchpo.storage._sqlite import SQLiteStorage

__all__ = [
    "BaseStorage",
    "CorruptRecordWarning",
    "InMemoryStorage",
    "JournalConflictError",
    "Lease",
    "Records",
    "SQLiteStorage",
    "get_storage",
]


def get_storage(storage: Any) -> BaseStorage:
    """A storage from what a user passes: None (in memory), a path, or a storage object."""
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, BaseStorage):
        return storage
    if isinstance(storage, (str, os.PathLike)):
        return SQLiteStorage(storage)
    raise TypeError(
        f"storage must be None, a file path or a BaseStorage, got {type(storage).__name__}"
    )
