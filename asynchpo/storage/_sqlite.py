"""The embedded default: one SQLite file (WAL) holding the journals of any number of studies."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import warnings
import zlib
from typing import TYPE_CHECKING

from asynchpo.events import event_from_dict
from asynchpo.storage._base import BaseStorage, CorruptRecordWarning

if TYPE_CHECKING:
    from asynchpo.events import Event

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    study   TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    payload TEXT    NOT NULL,
    crc     INTEGER NOT NULL,
    PRIMARY KEY (study, seq)
);
"""


class JournalConflictError(RuntimeError):
    """Another process appended to the same study at the same time."""


class SQLiteStorage(BaseStorage):
    """A journal in an SQLite file, one row per event, one transaction per event.

    The file uses write-ahead logging with ``synchronous=NORMAL``: an event is durable
    against the driver process being killed as soon as :meth:`append` returns. Each row
    carries a CRC-32 of its JSON payload; a row that fails it (a torn or corrupt record) is
    reported with a :class:`CorruptRecordWarning` and skipped, and all other rows are kept.

    Args:
        path: The database file; ``"sqlite:///runs.db"`` is accepted too.
        synchronous: SQLite's ``synchronous`` pragma; ``"FULL"`` survives power loss too.

    Example:
        >>> import tempfile, os
        >>> storage = SQLiteStorage(os.path.join(tempfile.mkdtemp(), "runs.db"))
        >>> storage.studies()
        []
    """

    def __init__(self, path: str | os.PathLike[str], synchronous: str = "NORMAL"):
        path = os.fspath(path)
        if path.startswith("sqlite:///"):
            path = path[len("sqlite:///") :]
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._conn.executescript(_SCHEMA)
        self._next: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    def _next_seq(self, study: str) -> int:
        if study not in self._next:
            row = self._conn.execute(
                "SELECT COALESCE(MAX(seq), -1) FROM events WHERE study = ?", (study,)
            ).fetchone()
            self._next[study] = int(row[0]) + 1
        return self._next[study]

    def append(self, study: str, event: Event) -> None:
        payload = event.to_json()
        with self._lock:
            seq = self._next_seq(study)
            try:
                self._conn.execute(
                    "INSERT INTO events (study, seq, payload, crc) VALUES (?, ?, ?, ?)",
                    (study, seq, payload, zlib.crc32(payload.encode())),
                )
            except sqlite3.IntegrityError as exc:
                self._next.pop(study, None)
                raise JournalConflictError(
                    f"study {study!r} in {self.path} was written by another process at the "
                    f"same time (event {seq}); run one driver per study"
                ) from exc
            self._next[study] = seq + 1

    def read(self, study: str) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, payload, crc FROM events WHERE study = ? ORDER BY seq", (study,)
            ).fetchall()
        events: list[Event] = []
        for seq, payload, crc in rows:
            try:
                if not isinstance(payload, str) or zlib.crc32(payload.encode()) != crc:
                    raise ValueError("checksum mismatch")
                events.append(event_from_dict(json.loads(payload)))
            except (ValueError, TypeError) as exc:
                where = "last record" if seq == rows[-1][0] else "record"
                warnings.warn(
                    f"{self.path}: study {study!r}: {where} {seq} is torn or corrupt ({exc}); "
                    f"skipped, the other {len(rows) - 1} records are kept",
                    CorruptRecordWarning,
                    stacklevel=2,
                )
        return events

    def studies(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT study FROM events GROUP BY study ORDER BY MIN(rowid)"
            ).fetchall()
        return [r[0] for r in rows]

    def exists(self, study: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM events WHERE study = ? LIMIT 1", (study,)
            ).fetchone()
        return row is not None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
