"""The embedded default: one SQLite file (WAL) holding the journals of any number of studies."""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from asynchpo.storage._base import (
    BaseStorage,
    CorruptRecordWarning,
    JournalConflictError,
    Lease,
    Records,
)

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
CREATE TABLE IF NOT EXISTS leases (
    study   TEXT    NOT NULL,
    holder  TEXT    NOT NULL,
    pid     INTEGER NOT NULL,
    host    TEXT    NOT NULL,
    expires REAL    NOT NULL,
    PRIMARY KEY (study, holder)
);
"""


class SQLiteStorage(BaseStorage):
    """A journal in an SQLite file, one row per event, one transaction per batch of events.

    The file uses write-ahead logging with ``synchronous=NORMAL``: an event is durable
    against the driver process being killed as soon as :meth:`append` returns; the log is
    folded back into the file at the end of every run (:meth:`checkpoint`), so the file
    alone holds the study. Each row carries a CRC-32 of its JSON payload; a row that fails
    it (a torn or corrupt record) is reported with a :class:`CorruptRecordWarning` and
    skipped, and all other rows are kept. Runs' leases live in a table of their own, so
    processes sharing the file see each other's runs.

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

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    def append(self, study: str, events: Sequence[Event], at: int) -> None:
        rows = []
        for i, event in enumerate(events):
            payload = event.to_json()
            rows.append((study, at + i, payload, zlib.crc32(payload.encode())))
        if not rows:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                (end,) = self._conn.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE study = ?", (study,)
                ).fetchone()
                if at > end:
                    self._conn.execute("ROLLBACK")
                    raise ValueError(f"at: study {study!r} has {end} records; {at} leaves a gap")
                self._conn.executemany(
                    "INSERT INTO events (study, seq, payload, crc) VALUES (?, ?, ?, ?)", rows
                )
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._conn.execute("ROLLBACK")
                raise JournalConflictError(
                    f"study {study!r} in {self.path}: record {at} was written by another "
                    "writer first"
                ) from exc
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def records(self, study: str, start: int = 0) -> Records:
        from asynchpo.events import decode_record  # events fold into a state that warns

        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, payload, crc FROM events WHERE study = ? AND seq >= ? ORDER BY seq",
                (study, start),
            ).fetchall()
        events: list[Event] = []
        skipped: list[str] = []
        for seq, payload, crc in rows:
            try:
                if not isinstance(payload, str) or zlib.crc32(payload.encode()) != crc:
                    raise ValueError("checksum mismatch")
                events.append(decode_record(payload))
            except (ValueError, TypeError) as exc:
                where = "last record" if seq == rows[-1][0] else "record"
                line = f"{where} {seq} is torn or corrupt ({exc})"
                skipped.append(line)
                warnings.warn(
                    f"{self.path}: study {study!r}: {line}; skipped, the other "
                    f"{len(rows) - 1} records are kept",
                    CorruptRecordWarning,
                    stacklevel=2,
                )
        end = int(rows[-1][0]) + 1 if rows else start
        return Records(events, end, skipped)

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

    # -- leases, shared by every process that opens the file -------------------------------

    def claim(self, study: str, lease: Lease, alive: Callable[[Lease], bool]) -> Lease | None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                rows = self._conn.execute(
                    "SELECT holder, pid, host, expires FROM leases WHERE study = ?", (study,)
                ).fetchall()
                for row in rows:
                    other = Lease(str(row[0]), int(row[1]), str(row[2]), float(row[3]))
                    if other.holder != lease.holder and alive(other):
                        self._conn.execute("ROLLBACK")
                        return other
                self._conn.execute(
                    "INSERT OR REPLACE INTO leases (study, holder, pid, host, expires) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (study, lease.holder, lease.pid, lease.host, lease.expires),
                )
                self._conn.execute("COMMIT")
                return None
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def renew(self, study: str, holder: str, expires: float) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE leases SET expires = ? WHERE study = ? AND holder = ?",
                (expires, study, holder),
            )
            return cur.rowcount > 0

    def release(self, study: str, holder: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM leases WHERE study = ? AND holder = ?", (study, holder))

    def leases(self, study: str) -> list[Lease]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT holder, pid, host, expires FROM leases WHERE study = ?", (study,)
            ).fetchall()
        return [Lease(str(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in rows]

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the database file, so that the file alone
        (copied, mailed, committed) holds every recorded event."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
