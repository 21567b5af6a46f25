"""The embedded default: one SQLite file (WAL) holding the journals of any number of studies."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sqlite3
import struct
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asynchpo._checks import positive_float
from asynchpo._limits import MAX_RECORD_BYTES
from asynchpo.storage._base import (
    BaseStorage,
    CorruptRecordWarning,
    ForeignFileError,
    JournalConflictError,
    Lease,
    Records,
    UnfoldedLogWarning,
)

if TYPE_CHECKING:
    from asynchpo.events import Event

#: ``PRAGMA application_id`` of every study file: the bytes ``ahpo``. A file with another
#: application id belongs to another program and is never changed.
APPLICATION_ID = 0x6168706F
#: ``PRAGMA user_version`` of the files this version writes (the layout of its tables).
SCHEMA_VERSION = 1
#: The most seconds between folds of the write-ahead log into the file while it is being
#: written: a write that comes later than this after the last fold folds the log in, and
#: a timer folds in, this long after the last fold, a write that nothing wrote after.
CHECKPOINT_SECONDS = 2.0
#: The most seconds a write waits for another connection's lock on the file.
BUSY_SECONDS = 30.0
#: The most seconds the fold at the end of a run waits for another connection's reading.
FOLD_WAIT_SECONDS = 0.2

_COLUMNS = {
    "events": ("study", "seq", "payload", "crc"),
    "leases": ("study", "holder", "pid", "host", "expires"),
}
_SCHEMA = {
    "events": """CREATE TABLE IF NOT EXISTS {temp}events (
        study   TEXT    NOT NULL,
        seq     INTEGER NOT NULL,
        payload TEXT    NOT NULL,
        crc     INTEGER NOT NULL,
        PRIMARY KEY (study, seq)
    )""",
    "leases": """CREATE TABLE IF NOT EXISTS {temp}leases (
        study   TEXT    NOT NULL,
        holder  TEXT    NOT NULL,
        pid     INTEGER NOT NULL,
        host    TEXT    NOT NULL,
        expires REAL    NOT NULL,
        PRIMARY KEY (study, holder)
    )""",
}
_HEADER = b"SQLite format 3\x00"
_WAL_MAGIC = (0x377F0682, 0x377F0683)


class SQLiteStorage(BaseStorage):
    """A journal in an SQLite file, one row per event, one transaction per batch of events.

    The file uses write-ahead logging with ``synchronous=NORMAL``: an event is durable
    against the driver process being killed as soon as :meth:`append` returns. The log is
    folded back into the file at the end of every run (:meth:`checkpoint`) and by any write
    (a batch of events, a run's lease renewal) that comes more than ``checkpoint_every``
    seconds after the last fold: the file alone (copied, mailed, committed, even while a run
    goes on or after it was killed) lacks at most the records of the last
    ``checkpoint_every`` seconds: a write not folded in at once starts a timer that folds it
    in by then, even if nothing more is written. Where another connection holds a read
    transaction (a database browser), the log cannot be folded in whole: the end of a run
    waits for it only briefly and says so with an :class:`UnfoldedLogWarning`.

    Opening checks the file: it must be a study file (marked with :data:`APPLICATION_ID`;
    files of earlier versions, which hold exactly this storage's tables, are marked then),
    and anything else is refused with a :class:`ForeignFileError` before anything in it
    changes. A write-ahead log damaged in the middle (whose later transactions SQLite would
    drop unsaid) is reported with a :class:`CorruptRecordWarning` and a copy of it kept
    beside it; a file that fails SQLite's integrity check is reported the same way, read
    without trusting its indexes (a damaged page loses only the rows on it, and says how
    many), and not written to. A file that may not be written here (a read-only file or
    directory) is opened read-only. Either way :attr:`read_only` is set, and every write
    raises a :class:`PermissionError` that names the file and why.

    Opened with ``read_only=True`` (to look: ``asynchpo studies``, ``Study.load(...,
    read_only=True)``), nothing is written in or beside the file: a file of an earlier
    version is read as it is, unmarked, a damaged log is reported but not copied, and no
    log is made where there is none.

    Each row carries a CRC-32 of its JSON payload; a row that fails it, is larger than
    :data:`asynchpo._limits.MAX_RECORD_BYTES` (never fetched), or is not a valid event is
    reported with a :class:`CorruptRecordWarning` and skipped, and all other rows are kept.
    Runs' leases live in a table of their own, so processes sharing the file see each
    other's runs.

    Args:
        path: The database file; ``"sqlite:///runs.db"`` is accepted too.
        synchronous: SQLite's ``synchronous`` pragma; ``"FULL"`` survives power loss too.
        checkpoint_every: The most seconds between folds of the log into the file while
            events are written (:data:`CHECKPOINT_SECONDS`).
        read_only: Look only: write nothing in or beside the file (which must exist).

    Raises:
        ValueError: An empty path, or a bad ``synchronous``, ``checkpoint_every`` or
            ``read_only``.
        FileNotFoundError: The file's directory does not exist (or, ``read_only``, the
            file).
        NotADirectoryError: What should be its directory is a file.
        IsADirectoryError: The path is a directory.
        PermissionError: The file may not be read, or created where its directory may not be
            written.
        ForeignFileError: The file is not a study file (see above).

    Example:
        >>> import tempfile, os
        >>> storage = SQLiteStorage(os.path.join(tempfile.mkdtemp(), "runs.db"))
        >>> storage.studies()
        []
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        synchronous: str = "NORMAL",
        checkpoint_every: float = CHECKPOINT_SECONDS,
        *,
        read_only: bool = False,
    ):
        path = os.fspath(path)
        if path.startswith("sqlite:///"):
            path = path[len("sqlite:///") :]
        if not path.strip():
            raise ValueError(f"path: an empty path ({path!r}) names no file; give a file path")
        if path == ":memory:":
            raise ValueError(
                "path: ':memory:' keeps nothing once closed; use InMemoryStorage (storage=None)"
            )
        if not isinstance(synchronous, str) or synchronous.upper() not in (
            "OFF",
            "NORMAL",
            "FULL",
            "EXTRA",
        ):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        checkpoint_every = positive_float("checkpoint_every", checkpoint_every)
        if read_only not in (True, False):
            raise ValueError(f"read_only must be True or False, got {read_only!r}")
        self.path = path
        self.read_only = read_only
        self._look = read_only  # asked to look only: nothing is written in or beside the file
        self._why_read_only = "it was opened to look only (read_only=True)" if read_only else ""
        self._stamp: tuple[int, int, int] | None = None  # the file as an immutable view saw it
        self._kind = ""
        self._scan = ""  # " NOT INDEXED" once the file's indexes are found damaged
        self._snapshot: str | None = None  # a private copy read in place of the file
        self._lost = 0  # rows on damaged pages, once said
        self._every = float(checkpoint_every)
        self._folded = time.monotonic()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None  # a fold due for writes not yet folded
        self._closed = False
        self._ends: dict[str, int] = {}  # where this connection's last append to a study ended
        self._said_unfolded = False  # a log a reader kept from folding in, said once
        self._conn = self._open(synchronous.upper())

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    # -- opening: check the path, recognise the file, then connect -------------------------

    def _open(self, synchronous: str) -> sqlite3.Connection:
        path = self.path
        if self._look and not os.path.lexists(path):
            raise FileNotFoundError(f"cannot open {path} to look at it: there is no such file")
        kind, writable = _inspect(path)
        self._kind = kind
        if not writable and not self._look:
            parent = os.path.dirname(os.path.abspath(path))
            self.read_only = True
            self._why_read_only = (
                "the file may not be written here"
                if not os.access(path, os.W_OK)
                else f"its directory {parent} may not be written here"
            )
        try:
            if self._look:
                conn = self._connect_look()
            elif self.read_only:
                conn = self._connect_read_only()
            else:
                mode = "rwc" if kind == "new" else "rw"
                conn = _connect(f"{Path(path).absolute().as_uri()}?mode={mode}")
            try:
                self._check_log(conn)
                self._prepare(conn, kind)
                conn.execute(f"PRAGMA synchronous={synchronous}")
                self._check_integrity(conn)
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            self._drop_snapshot()
            raise type(exc)(f"cannot open {path}: {exc}") from exc
        return conn

    def _prepare(self, conn: sqlite3.Connection, kind: str) -> None:
        """Mark a new file, or one of an earlier version, and make the tables it lacks (for
        this connection alone where the file is only read)."""
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if self.read_only:  # no study in it yet: the missing tables read as empty
            for name in _SCHEMA.keys() - present:
                conn.execute(_SCHEMA[name].format(temp="temp."))
            return
        if kind != "ours" or not _SCHEMA.keys() <= present:
            conn.execute("BEGIN IMMEDIATE")
            if kind != "ours":
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            for create in _SCHEMA.values():
                conn.execute(create.format(temp=""))
            conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # after the mark: a new file's header has it

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that never writes the file: read-only, or immutable where SQLite
        cannot keep its shared-memory file beside it, or a private copy (with its log) where
        a log holds records that only SQLite's recovery can read."""
        path = self.path
        uri = Path(path).absolute().as_uri()
        try:
            conn = _connect(f"{uri}?mode=ro")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            pass
        if _log_size(path) == 0:
            return _connect(f"{uri}?mode=ro&immutable=1")
        self._snapshot = tempfile.mkdtemp(prefix="asynchpo-")
        copy = os.path.join(self._snapshot, "study.db")
        shutil.copyfile(path, copy)
        shutil.copyfile(path + "-wal", copy + "-wal")
        return _connect(f"{Path(copy).as_uri()}?mode=rw")

    def _connect_look(self) -> sqlite3.Connection:
        """A connection that writes nothing in or beside the file: read-only where a log and
        its shared memory are there already (a run going on, or one killed), immutable where
        there is no log (SQLite would make one; :meth:`_follow` reopens once the file
        changes), or a private copy where a log has no shared memory beside it."""
        path = self.path
        uri = Path(path).absolute().as_uri()
        self._stamp = None
        if _log_size(path) == 0:
            self._stamp = _stamp(path)
            return _connect(f"{uri}?mode=ro&immutable=1")
        if os.path.exists(path + "-shm"):
            return _connect(f"{uri}?mode=ro")
        self._drop_snapshot()
        self._snapshot = tempfile.mkdtemp(prefix="asynchpo-")
        copy = os.path.join(self._snapshot, "study.db")
        shutil.copyfile(path, copy)
        shutil.copyfile(path + "-wal", copy + "-wal")
        return _connect(f"{Path(copy).as_uri()}?mode=rw")

    def _follow(self) -> None:
        """(Under the lock.) Reopen an immutable view of a file that has changed since."""
        if self._stamp is None or _stamp(self.path) == self._stamp:
            return
        conn = self._connect_look()
        try:
            self._prepare(conn, self._kind)
        except BaseException:
            conn.close()
            raise
        self._conn.close()
        self._conn = conn

    def _check_log(self, conn: sqlite3.Connection) -> None:
        """Warn if the write-ahead log is damaged before transactions that are intact (SQLite
        stops reading a log at its first bad frame, so those are dropped); keep a copy of it.

        Runs under the write lock (or a read transaction, read-only), so no writer changes
        the log meanwhile."""
        wal = self.path + "-wal"
        if _log_size(self.path) == 0:
            return
        conn.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            (page_size,) = conn.execute("PRAGMA page_size").fetchone()
            found = _log_damage(wal, int(page_size))
            if found is None:
                return
            frame, frames, lost = found
            kept = ""
            if not self.read_only:
                copy = _kept_copy(wal)
                kept = f"; the log as it was is kept in {copy}"
            warnings.warn(
                f"{wal}: frame {frame} of {frames} of this write-ahead log is damaged; SQLite "
                f"stops reading the log there, so the {lost} intact transaction(s) after it "
                f"(records appended, leases taken) are lost from {self.path}{kept}",
                CorruptRecordWarning,
                stacklevel=4,
            )
        finally:
            conn.execute("COMMIT")

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        try:
            found = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
        if found == ["ok"]:
            return
        self._damaged(" / ".join(" ".join(line.split()) for line in found[:3]))

    def _damaged(self, message: str) -> None:
        """From now on read every table whole (no damaged index hides a row), write nothing."""
        self._scan = " NOT INDEXED"
        self.read_only = True
        self._why_read_only = (
            f"SQLite finds the file damaged ({message}); where only an index is damaged, "
            "a copy of it mended with sqlite3 copy.db REINDEX can be written again"
        )
        warnings.warn(
            f"{self.path}: SQLite finds the file damaged: {message}; its records are read "
            "without its indexes, and nothing more is written to it",
            CorruptRecordWarning,
            stacklevel=5,
        )

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError(
                f"{self.path} is open read-only: {self._why_read_only}; nothing was written "
                "(to look at a study in it, load it with read_only=True)"
            )

    def _fold_if_due(self) -> None:
        """After a write (under the lock): fold the log into the file if the last fold is
        older than ``checkpoint_every``, else make sure a fold comes by then even if nothing
        more is written (a timer, one at a time; PASSIVE: it waits for no reader, and costs a
        sync of the file)."""
        now = time.monotonic()
        if now - self._folded >= self._every:
            self._fold(now)
        elif self._timer is None:
            timer = threading.Timer(self._folded + self._every - now, self._fold_later)
            timer.daemon = True
            self._timer = timer
            timer.start()

    def _fold(self, now: float) -> None:
        self._folded = now
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _fold_later(self) -> None:
        """The timer's fold of writes that nothing wrote after."""
        with self._lock:
            if self._closed or self._timer is not threading.current_thread():
                return
            self._timer = None
            self._folded = time.monotonic()
            with contextlib.suppress(sqlite3.Error):  # the next write or open folds it
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- the journal -----------------------------------------------------------------------

    def append(self, study: str, events: Sequence[Event], at: int) -> None:
        rows = []
        for i, event in enumerate(events):
            payload = event.to_json()
            rows.append((study, at + i, payload, zlib.crc32(payload.encode())))
        if not rows:
            return
        self._writable()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                if self._ends.get(study) != at:  # else a record another wrote there conflicts
                    (end,) = self._conn.execute(
                        "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE study = ?", (study,)
                    ).fetchone()
                    if at > end:
                        self._conn.execute("ROLLBACK")
                        raise ValueError(
                            f"at: study {study!r} has {end} records; {at} leaves a gap"
                        )
                self._conn.executemany(
                    "INSERT INTO events (study, seq, payload, crc) VALUES (?, ?, ?, ?)", rows
                )
                self._conn.execute("COMMIT")
                self._ends[study] = at + len(rows)
            except sqlite3.IntegrityError as exc:
                self._ends.pop(study, None)
                self._conn.execute("ROLLBACK")
                raise JournalConflictError(
                    f"study {study!r} in {self.path}: record {at} was written by another "
                    "writer first"
                ) from exc
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._fold_if_due()

    def records(self, study: str, start: int = 0) -> Records:
        from asynchpo.events import decode_record  # events fold into a state that warns

        # the payload as stored bytes, never fetched when larger than a record may be
        rows = self._select(
            "seq, crc, size, CASE WHEN size <= ? THEN CAST(payload AS BLOB) END",
            "study = ? AND seq >= ?",
            (MAX_RECORD_BYTES, study, start),
        )
        numbered = sorted((r for r in rows if type(r[1]) is int), key=lambda r: int(r[1]))
        rows = numbered + [r for r in rows if type(r[1]) is not int]
        last = numbered[-1][1] if numbered else None
        events: list[Event] = []
        skipped: list[str] = []
        for _, seq, crc, size, payload in rows:
            try:
                if type(seq) is not int:
                    raise ValueError(f"its position is {seq!r}, not a whole number")
                if payload is None:
                    raise ValueError(
                        f"it holds {size} bytes, more than the {MAX_RECORD_BYTES} a record may"
                    )
                if zlib.crc32(payload) != crc:
                    raise ValueError("checksum mismatch")
                events.append(decode_record(payload))
            except (ValueError, TypeError) as exc:
                where = "last record" if seq == last else "record"
                line = f"{where} {seq} is torn or corrupt ({exc})"
                skipped.append(line)  # said once, by whoever reads them (read, the journal)
        end = last + 1 if last is not None else start
        return Records(events, end, skipped)

    def _select(self, columns: str, where: str, params: Sequence[Any]) -> list[Any]:
        """``rowid, <columns>`` of the rows of events ``where`` holds, unordered; ``size``
        and ``payload`` may be named in ``columns``.

        Damage found on the way makes the file damaged (:meth:`_damaged`) and the table is
        read again whole, without its indexes. Where a damaged page stops that reading, the
        rows after it are looked up one by one, so only the rows on damaged pages are lost
        (and said)."""
        inner = (
            "SELECT rowid AS rid, seq, crc, study, payload, length(CAST(payload AS BLOB)) "
            f"AS size FROM events{self._scan} WHERE {where}"
        )
        sql = f"SELECT rid, {columns} FROM ({inner})"
        with self._lock:
            self._follow()
            rows, error = _fetch(self._conn, sql, params)
        if not error:
            return rows
        if not self._scan:
            self._damaged(error)
            return self._select(columns, where, params)
        lost = 0
        with self._lock:
            top, _ = _fetch(self._conn, "SELECT max(rowid) FROM events", ())
            after = max((r[0] for r in rows), default=0) + 1
            for rid in range(after, (top[0][0] or 0) + 1 if top else after):
                got, bad = _fetch(self._conn, sql + " WHERE rid = ?", (*params, rid))
                rows += got
                lost += bool(bad)
        if lost != self._lost:
            self._lost = lost
            warnings.warn(
                f"{self.path}: {lost} rows of its events sit on damaged pages and cannot be "
                f"read ({error}); every other row is read",
                CorruptRecordWarning,
                stacklevel=3,
            )
        return rows

    def studies(self) -> list[str]:
        first: dict[str, int] = {}
        for rid, name in sorted(self._select("study", "1", ())):
            first.setdefault(name, rid)
        return list(first)

    def exists(self, study: str) -> bool:
        return bool(self._select("1", "study = ?", (study,)))

    # -- leases, shared by every process that opens the file -------------------------------

    def claim(self, study: str, lease: Lease, alive: Callable[[Lease], bool]) -> Lease | None:
        self._writable()
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
                self._fold_if_due()
                return None
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def renew(self, study: str, holder: str, expires: float) -> bool:
        self._writable()
        with self._lock:
            cur = self._conn.execute(
                "UPDATE leases SET expires = ? WHERE study = ? AND holder = ?",
                (expires, study, holder),
            )
            self._fold_if_due()  # a run's heartbeat: records of a quiet spell reach the file
            return cur.rowcount > 0

    def release(self, study: str, holder: str) -> None:
        self._writable()
        with self._lock:
            self._conn.execute("DELETE FROM leases WHERE study = ? AND holder = ?", (study, holder))
            self._fold_if_due()

    def leases(self, study: str) -> list[Lease]:
        with self._lock:
            self._follow()
            rows = self._conn.execute(
                f"SELECT holder, pid, host, expires FROM leases{self._scan} WHERE study = ?",
                (study,),
            ).fetchall()
        return [Lease(str(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in rows]

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the database file, so that the file alone
        (copied, mailed, committed) holds every recorded event."""
        if self.read_only:
            return
        with self._lock:
            self._fold(time.monotonic())  # what no reader holds back, folded at once
            # then the whole log, waiting only briefly for a reader (a DB browser's open
            # transaction would otherwise hold the end of a run for the whole busy timeout)
            self._conn.execute(f"PRAGMA busy_timeout={int(FOLD_WAIT_SECONDS * 1000)}")
            try:
                row = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
            # busy alone is no loss: every page may be in the file though the log stays
            _, log, done = (int(v) for v in row)
            whole = log >= 0 and done >= log
            if whole or self._said_unfolded:
                self._said_unfolded = not whole
                return
            self._said_unfolded = True
        left = f"{log - done} of its {log} pages" if log >= 0 and done >= 0 else "some of it"
        warnings.warn(
            f"{self.path}: its write-ahead log {self.path}-wal could not be folded into it "
            f"({left} still only in the log): another connection holds a read transaction "
            f"on the file (a database browser?). {self.path} alone is not whole until that "
            "reader lets go: copy it together with its -wal, or let the log fold in at the "
            "next open or write",
            UnfoldedLogWarning,
            stacklevel=2,
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._conn.close()
        self._drop_snapshot()

    def _drop_snapshot(self) -> None:
        if self._snapshot is not None:
            shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = None


# -- helpers: the path, the file's mark, the log -------------------------------------------


def _connect(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(
        uri, uri=True, check_same_thread=False, isolation_level=None, timeout=BUSY_SECONDS
    )


def _log_size(path: str) -> int:
    try:
        return os.path.getsize(path + "-wal")
    except OSError:
        return 0


def _inspect(path: str) -> tuple[str, bool]:
    """What is at ``path``, ``("new" | "empty" | "earlier" | "ours", writable)``, without
    changing anything there.

    Raises:
        FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError: The path
            cannot hold a study file (each names the path and why).
        ForeignFileError: The file is not a study file of this version.
    """
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot open {path}: it is a directory, not a study file")
    if not os.path.lexists(path):
        if not os.path.exists(parent):
            raise FileNotFoundError(f"cannot create {path}: there is no directory {parent}")
        if not os.path.isdir(parent):
            raise NotADirectoryError(f"cannot create {path}: {parent} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot create {path}: its directory {parent} is read-only")
        return "new", True
    if os.path.exists(path) and not os.path.isfile(path):  # a pipe, a device: never opened
        raise ForeignFileError(f"cannot open {path}: it is not a regular file, so not a study file")
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise type(exc)(f"cannot read {path}: {exc.strerror or exc}") from exc
    writable = os.access(path, os.W_OK) and os.access(parent, os.W_OK | os.X_OK)
    if not header:
        return "empty", writable
    if len(header) < 100 or not header.startswith(_HEADER):
        raise ForeignFileError(
            f"cannot open {path}: it is not an SQLite file, so not a study file; "
            "nothing in it was changed"
        )
    (version,) = struct.unpack(">I", header[60:64])
    (app_id,) = struct.unpack(">I", header[68:72])
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise ForeignFileError(
                f"cannot open {path}: it was written by a newer asynchpo (schema {version}; "
                f"this one knows up to {SCHEMA_VERSION}): upgrade asynchpo to open it"
            )
        return "ours", writable
    if app_id == 0 and version == 0:  # no program's mark: an earlier study file, or not
        try:
            kind = _earlier(path)
        except sqlite3.Error as exc:
            raise type(exc)(f"cannot open {path}: SQLite cannot read it ({exc})") from exc
        if kind is not None:
            return kind, writable
    raise ForeignFileError(
        f"cannot open {path}: it is another program's SQLite file ({_describe(path, app_id)}), "
        "not a study file; nothing in it was changed"
    )


def _probe(path: str) -> sqlite3.Connection:
    """A connection that changes nothing (immutable where there is no log to read)."""
    uri = Path(path).absolute().as_uri()
    if _log_size(path) == 0:
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
    return sqlite3.connect(f"{uri}?mode=ro", uri=True)


def _earlier(path: str) -> str | None:
    """``"earlier"`` for a study file of an earlier version (exactly this storage's tables),
    ``"ours"`` for one marked in a log not yet folded in, ``"empty"`` for a database with
    nothing in it, else None."""
    conn = _probe(path)
    try:
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        if app_id == APPLICATION_ID:
            return "ours"
        objects = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE substr(name, 1, 7) != 'sqlite_'"
        ).fetchall()
        if not objects:
            return "empty"
        if any(kind != "table" or name not in _COLUMNS for kind, name in objects):
            return None
        for _, name in objects:
            columns = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({name})"))
            if columns != _COLUMNS[name]:
                return None
        return "earlier"
    finally:
        conn.close()


def _describe(path: str, app_id: int) -> str:
    if app_id:
        return f"application id {app_id:#010x}"
    try:
        conn = _probe(path)
        try:
            names = [
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND substr(name, 1, 7) != 'sqlite_' ORDER BY name"
                )
            ]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"SQLite cannot read it: {exc}"
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"tables {shown}" if names else "it has a version mark but no tables"


def _stamp(path: str) -> tuple[int, int, int]:
    """What changes when a file or its log is written: its time, its size, its log's size."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, _log_size(path))


def _kept_copy(wal: str) -> str:
    """A copy of a damaged log beside it, ``<log>.damaged`` (``.1``, ``.2``, ... when those
    hold other bytes); the copy already there where one holds these bytes."""
    with open(wal, "rb") as f:
        data = f.read()
    name, n = wal + ".damaged", 0
    while os.path.lexists(name):
        with contextlib.suppress(OSError), open(name, "rb") as f:
            if f.read() == data:
                return name
        n += 1
        name = f"{wal}.damaged.{n}"
    with open(name, "xb") as f:
        f.write(data)
    return name


def _fetch(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> tuple[list[Any], str]:
    """The rows of ``sql``, and SQLite's message where damage in the file ended the reading."""
    rows: list[Any] = []
    try:
        for row in conn.execute(sql, params):  # row by row: keep all read before damage
            rows.append(row)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (11, 26):  # CORRUPT, NOTADB
            raise
        return rows, str(exc)
    return rows, ""


def _checksum(data: bytes, big: bool, s0: int, s1: int) -> tuple[int, int]:
    """SQLite's write-ahead log checksum of ``data`` (a multiple of 8 bytes), continued."""
    words = struct.unpack(f"{'>' if big else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


@functools.lru_cache(maxsize=4)
def _steps(n: int) -> tuple[Any, tuple[int, int, int, int]]:
    """The checksum over ``n`` word pairs as a linear map modulo 2**32.

    One step takes ``s = (s0, s1)`` to ``M s + (a, a + b)`` with ``M = [[1, 1], [1, 2]]``,
    so ``n`` steps give ``M**n s + sum_i M**(n-1-i) (a_i, a_i + b_i)``, and the sum is the
    frame's words (`2n`) times a `2n x 2` matrix. Returns that matrix and ``M**n``.
    """
    import numpy as np

    low = 0xFFFFFFFF
    powers = [(1, 0, 0, 1)]
    for _ in range(n):
        p, q, r, t = powers[-1]  # M @ [[p, q], [r, t]], modulo 2**32
        powers.append(((p + r) & low, (q + t) & low, (p + 2 * r) & low, (q + 2 * t) & low))
    rows = []
    for p, q, r, t in powers[n - 1 :: -1]:  # (a_i, b_i) add M**(n-1-i) (a_i, a_i + b_i)
        rows += [((p + q) & low, (r + t) & low), (q, t)]
    return np.array(rows, dtype=np.uint64), powers[n]


def _frame_sums(frames: Any, big: bool) -> Any:
    """What each frame's own bytes add to its checksum (`frames x (24 + page)` bytes in,
    `frames x 2` out): its checksum is ``M**n`` times the previous one, plus this."""
    import numpy as np

    body = np.concatenate([frames[:, :8], frames[:, 24:]], axis=1)
    words = body.view(">u4" if big else "<u4").astype(np.uint64)
    matrix, _ = _steps(words.shape[1] // 2)
    return (words @ matrix) & np.uint64(0xFFFFFFFF)  # uint64 wraps modulo 2**64: still exact


def _log_damage(wal: str, page_size: int) -> tuple[int, int, int] | None:
    """Where a write-ahead log is damaged before intact frames: ``(first bad frame, frames,
    transactions lost)``, the header counting as frame 0; None when SQLite reads every intact
    transaction in it (a torn last write, or frames of an older pass over the log, are not
    damage).

    SQLite reads frames in order while each has the header's salts and a checksum that
    continues the previous frame's, and stops at the first that does not. A frame after that
    point whose checksum continues its predecessor's stored one is intact, and lost.
    """
    import numpy as np

    with open(wal, "rb") as f:
        head = f.read(32)
        if len(head) < 32:
            return None
        magic, version, size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", head)
        if size >= 512 and size <= 65536 and size & (size - 1) == 0:
            page_size = size
        big = bool(magic & 1)
        good = magic in _WAL_MAGIC and version == 3007000
        good = good and _checksum(head[:24], big, 0, 0) == (c1, c2)
        broken = None if good else 0
        _, (m00, m01, m10, m11) = _steps((8 + page_size) // 8)
        prev = (c1, c2)
        frames = lost = after = 0
        while count := len(chunk := f.read(256 * (24 + page_size))) // (24 + page_size):
            block = np.frombuffer(chunk, np.uint8, count * (24 + page_size)).reshape(count, -1)
            heads = block[:, :24].copy().view(">u4")
            ours = (heads[:, 2] == salt1) & (heads[:, 3] == salt2)  # this pass over the log
            sums = np.zeros((count, 2), np.uint64)
            sums[ours] = _frame_sums(block[ours], big)
            for (_, commit, _, _, f1, f2), mine, (add0, add1) in zip(
                heads.tolist(), ours.tolist(), sums.tolist(), strict=True
            ):
                frames += 1
                intact = mine and (
                    (m00 * prev[0] + m01 * prev[1] + add0) % 2**32 == f1
                    and (m10 * prev[0] + m11 * prev[1] + add1) % 2**32 == f2
                )
                if broken is None:
                    if not intact:
                        broken, lost = frames, int(mine and commit != 0)
                elif intact:
                    after += 1
                    lost += commit != 0
                prev = (f1, f2)
    if broken is None or after == 0 or lost == 0:
        return None
    return broken, frames, lost
