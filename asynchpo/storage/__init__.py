"""Where studies are kept: an append-only event journal per study."""

from __future__ import annotations

import os
from typing import Any

from asynchpo.storage._base import (
    BaseStorage,
    CorruptRecordWarning,
    ForeignFileError,
    JournalConflictError,
    Lease,
    Records,
    UnfoldedLogWarning,
)
from asynchpo.storage._memory import InMemoryStorage
from asynchpo.storage._sqlite import SQLiteStorage

__all__ = [
    "BaseStorage",
    "CorruptRecordWarning",
    "ForeignFileError",
    "InMemoryStorage",
    "JournalConflictError",
    "Lease",
    "Records",
    "SQLiteStorage",
    "UnfoldedLogWarning",
    "get_storage",
]


def get_storage(storage: Any, *, read_only: bool = False) -> BaseStorage:
    """A storage from what a user passes: None (in memory), a path, or a storage object.

    A path is opened with ``read_only`` (:class:`SQLiteStorage`: to look only, writing
    nothing in or beside the file); a storage object is returned as it is.

    Raises:
        ValueError: An empty path (it would keep nothing).
        TypeError: Anything else.
        OSError, ForeignFileError: The path cannot hold a study file (see
            :class:`SQLiteStorage`).
    """
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, BaseStorage):
        return storage
    if isinstance(storage, (str, os.PathLike)):
        if not os.fspath(storage).removeprefix("sqlite:///").strip():
            raise ValueError(
                f"storage: {storage!r} names no file; give a file path such as 'runs.db', "
                "or None to keep the study in memory"
            )
        return SQLiteStorage(storage, read_only=read_only)
    raise TypeError(
        f"storage must be None, a file path or a BaseStorage, got {type(storage).__name__}"
    )
