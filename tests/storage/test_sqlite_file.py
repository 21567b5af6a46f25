"""The study file: one file that holds the study, is checked on open, and is never another
program's."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import asynchpo as ah
from asynchpo._limits import MAX_RECORD_BYTES
from asynchpo.events import TrialAsked, fold
from asynchpo.storage import (
    CorruptRecordWarning,
    ForeignFileError,
    SQLiteStorage,
    UnfoldedLogWarning,
    get_storage,
)
from asynchpo.storage._sqlite import APPLICATION_ID, SCHEMA_VERSION

SPACE = ah.Space(x=ah.Float(0, 1))


def _study(storage: Any, name: str = "s", n: int = 6) -> SQLiteStorage:
    study = ah.Study(SPACE, storage=storage, name=name, sampler=ah.RandomSampler(seed=0))
    for _ in range(n):
        study.tell(study.ask(), 0.5)
    return study.storage  # type: ignore[return-value]


def _study_file(path: Path, n: int = 6) -> Path:
    _study(path, n=n).close()
    return path


def _pragma(path: Path, name: str) -> Any:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- never another program's file ----------------------------------------------------------


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(tmp_path, journal):
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA journal_mode={journal}")
        conn.execute("CREATE TABLE people (name TEXT)")
        conn.execute("INSERT INTO people VALUES ('ada')")
        conn.commit()
    before = _listing(tmp_path)
    for open_it in (SQLiteStorage, lambda p: ah.Study(SPACE, storage=p, name="s")):
        with pytest.raises(ForeignFileError, match="another program's SQLite file") as got:
            open_it(path)
        assert str(path) in str(got.value) and "people" in str(got.value)
    assert _listing(tmp_path) == before  # not a byte changed, no table, no log beside it


def test_a_file_with_another_application_id_or_a_newer_schema_is_refused(tmp_path):
    other = tmp_path / "map.gpkg"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("PRAGMA application_id = 1196444487")  # GeoPackage's
        conn.commit()
    before = other.read_bytes()
    with pytest.raises(ForeignFileError, match="application id 0x47504b47"):
        SQLiteStorage(other)
    assert other.read_bytes() == before
    named = tmp_path / "named.db"  # a table whose name starts like SQLite's own
    with closing(sqlite3.connect(named)) as conn:
        conn.execute("CREATE TABLE sqlitebrowser (x)")
        conn.commit()
    with pytest.raises(ForeignFileError, match="sqlitebrowser"):
        SQLiteStorage(named)
    newer = _study_file(tmp_path / "newer.db")
    with closing(sqlite3.connect(newer)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
    with pytest.raises(ForeignFileError, match="newer asynchpo"):
        SQLiteStorage(newer)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    for name, data in (("notes.txt", b"my notes\n" * 50), ("tiny", b"hi")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ForeignFileError, match=f"{path}: it is not an SQLite file"):
            get_storage(path)
        assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "tiny"]


def test_study_files_are_marked_and_files_of_earlier_versions_recognised(tmp_path):
    new = _study_file(tmp_path / "new.db")
    assert _pragma(new, "application_id") == APPLICATION_ID
    assert _pragma(new, "user_version") == SCHEMA_VERSION
    # a file of an earlier version: exactly the events table (and maybe leases), no mark
    old = tmp_path / "old.db"
    shutil.copy(new, old)
    with closing(sqlite3.connect(old)) as conn:
        conn.execute("PRAGMA application_id = 0")
        conn.execute("PRAGMA user_version = 0")
        conn.execute("DROP TABLE leases")
        conn.commit()
    storage = SQLiteStorage(old)
    assert fold(storage.read("s")).best_number is not None
    storage.close()
    assert _pragma(old, "application_id") == APPLICATION_ID
    assert _pragma(old, "user_version") == SCHEMA_VERSION
    # an empty SQLite file is taken as a new one
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    _study_file(empty)
    assert _pragma(empty, "application_id") == APPLICATION_ID


# -- paths that cannot hold a study --------------------------------------------------------


def test_each_path_that_cannot_hold_a_study_says_why(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    cases = [
        (tmp_path / "no" / "such" / "runs.db", FileNotFoundError, "there is no directory"),
        (tmp_path, IsADirectoryError, "is a directory"),
        (tmp_path / "file.txt" / "runs.db", NotADirectoryError, "is not a directory"),
    ]
    for path, error, why in cases:
        with pytest.raises(error, match=why) as got:
            ah.Study(SPACE, storage=path, name="s")
        assert str(path) in str(got.value)
    for empty in ("", "   ", "sqlite:///"):
        with pytest.raises(ValueError, match="storage"):
            get_storage(empty)
        with pytest.raises(ValueError, match="storage"):
            ah.Study(SPACE, storage=empty)
    with pytest.raises(ValueError, match="path"):
        SQLiteStorage("")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (a test's own tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="asynchpo-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in (folder, *folder.rglob("*")):
            path.chmod(0o755)
        shutil.rmtree(folder)


def _where_nothing_is_writable(look: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``look()`` run by a user for whom the test's read-only files are read-only: this user,
    or (as root, whom permissions do not stop) the unprivileged ``nobody`` in a fork."""
    if os.geteuid() != 0:
        return look()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 0
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            result = json.dumps(look())
        except BaseException as exc:
            result, code = json.dumps({"error": f"{type(exc).__name__}: {exc}"}), 1
        with os.fdopen(write, "w") as out:
            out.write(result)
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as got:
        text = got.read()
    os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(text)
    assert "error" not in result, result["error"]
    return result


def _look(path: Path) -> Callable[[], dict[str, Any]]:
    def look() -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            storage = SQLiteStorage(path)
            seen: dict[str, Any] = {
                "read_only": storage.read_only,
                "studies": storage.studies(),
                "complete": len(
                    ah.Study.load("s", storage=storage, read_only=True).get_trials(["complete"])
                ),
            }
            try:
                storage.append("s", [TrialAsked(time=1.0, number=99, params={"x": 0.5})], 99)
            except PermissionError as exc:
                seen["write"] = str(exc)
            storage.checkpoint()  # nothing to fold in a file that is only read
            storage.close()
        seen["warnings"] = [str(w.message) for w in warned]
        return seen

    return look


def test_a_study_in_a_read_only_directory_is_read_and_never_written(shared_dir):
    path = _study_file(shared_dir / "runs.db")
    # and one left by a killed run: its last records only in the log beside it
    killed = shared_dir / "killed"
    killed.mkdir()
    storage = SQLiteStorage(shared_dir / "live.db", checkpoint_every=3600)
    storage._conn.execute("PRAGMA wal_autocheckpoint=0")
    _study(storage)
    shutil.copy(shared_dir / "live.db", killed / "runs.db")
    shutil.copy(str(shared_dir / "live.db") + "-wal", str(killed / "runs.db") + "-wal")
    storage.close()
    for folder, study_file in ((shared_dir, path), (killed, killed / "runs.db")):
        before = _listing(folder)
        folder.chmod(0o555)
        seen = _where_nothing_is_writable(_look(study_file))
        folder.chmod(0o755)
        assert seen["read_only"] and seen["studies"] == ["s"] and seen["complete"] == 6
        assert str(study_file) in seen["write"] and "is open read-only" in seen["write"]
        assert "may not be written" in seen["write"] and seen["warnings"] == []
        assert _listing(folder) == before


def test_a_read_only_study_file_is_read_and_never_written(shared_dir):
    path = _study_file(shared_dir / "runs.db")
    path.chmod(0o444)
    before = path.read_bytes()
    seen = _where_nothing_is_writable(_look(path))
    assert seen["read_only"] and seen["complete"] == 6
    assert "the file may not be written" in seen["write"]
    assert path.read_bytes() == before


def test_a_new_file_in_a_read_only_directory_is_refused_naming_it(shared_dir):
    shared_dir.chmod(0o555)

    def create() -> dict[str, Any]:
        try:
            SQLiteStorage(shared_dir / "runs.db")
        except PermissionError as exc:
            return {"refused": str(exc)}
        return {}

    seen = _where_nothing_is_writable(create)
    assert seen["refused"].startswith(f"cannot create {shared_dir / 'runs.db'}")


# -- damage: in the file, in its log, in a record ------------------------------------------


def test_a_damaged_index_hides_no_record(tmp_path):
    path = tmp_path / "runs.db"
    storage = _study(path, name="mlp", n=10)
    stored = storage.read("mlp")
    storage.checkpoint()
    storage.close()
    with closing(sqlite3.connect(path)) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_events_1'"
        ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    # one index entry of the middle of the study gets a flipped bit in its study's name: a
    # lookup by study ends there, and every later record would be hidden
    data = bytearray(path.read_bytes())
    page = slice((root - 1) * page_size, root * page_size)
    assert data[page][0] == 0x0A  # an index leaf page: the whole index
    entries = [i for i in range(page_size) if data[page][i : i + 3] == b"mlp"]
    assert len(entries) == len(stored)
    data[page.start + entries[len(entries) // 2] + 2] ^= 0x01  # "mlp" -> "mlq"
    path.write_bytes(bytes(data))

    with pytest.warns(CorruptRecordWarning, match="SQLite finds the file damaged") as got:
        again = SQLiteStorage(path)
    message = str(got[0].message)
    assert message.startswith(str(path)) and "sqlite_autoindex_events_1" in message
    assert again.read("mlp") == stored and again.studies() == ["mlp"]
    with pytest.raises(PermissionError, match="REINDEX"):
        again.append("mlp", [TrialAsked(time=1.0, number=10, params={"x": 0.5})], len(stored))
    again.close()
    # what the message says to do gives a whole file
    shutil.copy(path, tmp_path / "copy.db")
    with closing(sqlite3.connect(tmp_path / "copy.db")) as conn:
        conn.execute("REINDEX")
    repaired = SQLiteStorage(tmp_path / "copy.db")
    assert repaired.read("mlp") == stored and not repaired.read_only


def test_a_damaged_page_of_the_table_loses_only_its_own_rows(tmp_path):
    path = tmp_path / "runs.db"
    storage = _study(path, n=40)
    stored = storage.read("s")
    storage.checkpoint()
    storage.close()
    with closing(sqlite3.connect(path)) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        leaves = conn.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name = 'events' AND pagetype = 'leaf' "
            "ORDER BY pageno"
        ).fetchall()
    assert len(leaves) >= 3
    page, cells = leaves[1]
    data = bytearray(path.read_bytes())
    data[(page - 1) * page_size] = 0  # no page type: SQLite cannot read the page
    path.write_bytes(bytes(data))
    with pytest.warns(CorruptRecordWarning) as got:
        storage = SQLiteStorage(path)
        records = storage.records("s")
    said = [str(w.message) for w in got]
    assert any("SQLite finds the file damaged" in line for line in said)
    assert any(f"{cells} rows of its events sit on damaged pages" in line for line in said)
    assert len(records.events) == len(stored) - cells and records.end == len(stored)
    assert records.events == [e for e in stored if e in records.events]
    assert storage.studies() == ["s"] and storage.exists("s")


def _frames(wal: bytes, page_size: int) -> list[int]:
    """The offsets of a write-ahead log's frames."""
    return list(range(32, len(wal) - page_size - 23, page_size + 24))


def _crash_with_a_damaged_log(tmp_path: Path) -> Path:
    """A study file as a killed writer left it, its log holding a flipped bit in the third
    frame's page; returns the file (``crash/runs.db``, its log beside it)."""
    path = tmp_path / "runs.db"
    storage = SQLiteStorage(path, checkpoint_every=3600)
    storage._conn.execute("PRAGMA wal_autocheckpoint=0")
    _study(storage)
    (page_size,) = storage._conn.execute("PRAGMA page_size").fetchone()
    crash = tmp_path / "crash"
    crash.mkdir()
    shutil.copy(path, crash / "runs.db")
    wal = bytearray(Path(str(path) + "-wal").read_bytes())
    storage.close()
    frames = _frames(bytes(wal), page_size)
    assert len(frames) > 10
    wal[frames[2] + 24 + 200] ^= 0x04
    Path(str(crash / "runs.db") + "-wal").write_bytes(bytes(wal))
    return crash / "runs.db"


def test_a_damaged_log_is_reported_with_what_it_loses(tmp_path):
    crashed = _crash_with_a_damaged_log(tmp_path)
    crash, damaged = crashed.parent, Path(str(crashed) + "-wal")
    wal = damaged.read_bytes()
    with pytest.warns(CorruptRecordWarning, match=r"frame 3 of \d+ .* is damaged") as got:
        recovered = SQLiteStorage(crash / "runs.db")
    message = str(got[0].message)
    assert message.startswith(str(damaged)) and "transaction(s) after it" in message
    assert "are lost" in message and f"kept in {damaged}.damaged" in message
    assert Path(f"{damaged}.damaged").read_bytes() == wal
    recovered.close()


@pytest.mark.parametrize("page_size", [512, 4096, 65536])
@pytest.mark.parametrize("big", [True, False])
def test_the_log_checksum_over_many_frames_at_once_is_sqlites(page_size, big):
    import numpy as np

    from asynchpo.storage._sqlite import _checksum, _frame_sums, _steps

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 24 + page_size), dtype=np.uint8)
    sums = _frame_sums(frames, big).tolist()
    _, (m00, m01, m10, m11) = _steps((8 + page_size) // 8)
    for frame, (add0, add1) in zip(frames, sums, strict=True):
        prev = tuple(int(v) for v in rng.integers(0, 2**32, size=2))
        body = bytes(frame[:8]) + bytes(frame[24:])
        assert _checksum(body, big, *prev) == (
            (m00 * prev[0] + m01 * prev[1] + add0) % 2**32,
            (m10 * prev[0] + m11 * prev[1] + add1) % 2**32,
        )


def test_a_torn_last_write_of_the_log_is_no_damage(tmp_path):
    path = tmp_path / "runs.db"
    storage = SQLiteStorage(path, checkpoint_every=3600)
    storage._conn.execute("PRAGMA wal_autocheckpoint=0")
    _study(storage, n=3)
    crash = tmp_path / "crash"
    crash.mkdir()
    shutil.copy(path, crash / "runs.db")
    wal = Path(str(path) + "-wal").read_bytes()
    storage.close()
    Path(str(crash / "runs.db") + "-wal").write_bytes(wal[:-1000])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SQLiteStorage(crash / "runs.db").studies() == ["s"]


class _Watched:
    """A connection that notes the largest value any query fetched."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn, self.largest = conn, 0

    def execute(self, *args: Any) -> _Watched:
        self.cursor = self.conn.execute(*args)
        return self

    def _seen(self, rows: list[Any]) -> list[Any]:
        for row in rows:
            for value in row:
                if isinstance(value, (str, bytes)):
                    self.largest = max(self.largest, len(value))
        return rows

    def fetchall(self) -> list[Any]:
        return self._seen(self.cursor.fetchall())

    def fetchmany(self, n: int) -> list[Any]:
        return self._seen(self.cursor.fetchmany(n))

    def __iter__(self) -> Iterator[Any]:
        for row in self.cursor:
            yield from self._seen([row])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_a_record_of_any_bytes_or_size_is_skipped_and_the_rest_read(tmp_path):
    path = _study_file(tmp_path / "runs.db")
    not_utf8 = b'{"kind": "trial_asked", "time": 1.0, "number": 0, "params": {"x": "\xff"}}'
    too_large = b'{"kind": "trial_asked", "pad": "' + b"x" * MAX_RECORD_BYTES + b'"}'
    with closing(sqlite3.connect(path)) as conn:
        for seq, payload in ((3, not_utf8), (5, too_large)):
            conn.execute(
                "UPDATE events SET payload = CAST(? AS TEXT), crc = ? WHERE seq = ?",
                (payload, zlib.crc32(payload), seq),
            )
        conn.commit()
    storage = SQLiteStorage(path)
    watched = storage._conn = _Watched(storage._conn)  # type: ignore[assignment]
    records = storage.records("s")  # the lines say it; whoever reads them warns
    assert len(records.events) == 13 - 2 and records.end == 13
    assert [line.split(" (")[0] for line in records.skipped] == [
        "record 3 is torn or corrupt",
        "record 5 is torn or corrupt",
    ]
    assert f"{len(too_large)} bytes" in records.skipped[1]
    assert watched.largest < MAX_RECORD_BYTES  # the large one was never fetched
    with pytest.warns(CorruptRecordWarning) as got:
        assert len(storage.read("s")) == 11
    assert len(got) == 1 and "kept 11 records, skipped 2" in str(got[0].message)


# -- the file alone: what a copy holds after the writer was killed -------------------------

WRITER = textwrap.dedent("""
    import sys, time
    import asynchpo as ah
    from asynchpo.storage import SQLiteStorage

    storage = SQLiteStorage(sys.argv[1], checkpoint_every=float(sys.argv[2]))
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), storage=storage, name="s",
                     sampler=ah.RandomSampler(seed=0))
    while True:
        trial = study.ask()
        study.tell(trial, 0.5)
        print(trial.number, time.time(), flush=True)
        time.sleep(0.05)
""")


@pytest.mark.slow
def test_the_file_alone_lacks_at_most_the_last_interval_of_a_killed_writer(tmp_path):
    bound = 0.5
    script, path = tmp_path / "writer.py", tmp_path / "runs.db"
    script.write_text(WRITER)
    here = str(Path(ah.__file__).parent.parent)  # the writer runs this same package
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(bound)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])},
    )
    told: list[tuple[int, float]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            number, at = line.split()
            told.append((int(number), float(at)))
            if told[-1][1] - told[0][1] > 5 * bound:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert told, "the writer wrote nothing"
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(path, copy / "runs.db")  # the file alone, without its log
    state = fold(SQLiteStorage(copy / "runs.db").read("s"))
    complete = {t.number for t in state.trials([ah.TrialState.COMPLETE])}
    last = told[-1][1]
    assert {n for n, at in told if at < last - bound - 0.1} <= complete
    assert len(complete) >= len(told) - 2 * bound / 0.05


QUIET_WRITER = textwrap.dedent("""
    import sys, time
    import asynchpo as ah
    from asynchpo.storage import SQLiteStorage

    storage = SQLiteStorage(sys.argv[1], checkpoint_every=float(sys.argv[2]))
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), storage=storage, name="s",
                     sampler=ah.RandomSampler(seed=0))
    study.tell(study.ask(), 0.5)
    print("told", flush=True)
    time.sleep(600)
""")


@pytest.mark.slow
def test_a_writer_that_goes_quiet_has_its_last_write_in_the_file_alone(tmp_path):
    bound = 1.0
    script, path = tmp_path / "writer.py", tmp_path / "runs.db"
    script.write_text(QUIET_WRITER)
    here = str(Path(ah.__file__).parent.parent)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(bound)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "told"
        time.sleep(2.5 * bound)  # nothing more is written meanwhile
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(path, copy / "runs.db")  # the file alone, without its log
    state = fold(SQLiteStorage(copy / "runs.db").read("s"))
    assert [t.number for t in state.trials([ah.TrialState.COMPLETE])] == [0]


def test_a_write_nothing_follows_is_folded_in_within_the_interval(tmp_path):
    path = tmp_path / "runs.db"
    storage = SQLiteStorage(path, checkpoint_every=0.3)
    assert storage._timer is None  # nothing pending: no thread
    _study(storage, n=1)
    assert storage._timer is not None
    time.sleep(0.8)
    assert storage._timer is None
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    assert len(SQLiteStorage(copy, read_only=True).read("s")) == len(storage.read("s")) > 0
    _study(storage, name="t", n=1)
    timer = storage._timer
    storage.close()  # cancels the fold still due
    assert timer is not None and storage._timer is None
    timer.join(1)
    assert not timer.is_alive()


def test_a_reader_holding_a_transaction_delays_the_end_of_a_run_briefly_and_is_said(tmp_path):
    path = tmp_path / "runs.db"
    study = ah.Study(SPACE, storage=path, name="s", sampler=ah.RandomSampler(seed=0))
    study.tell(study.ask(), 0.5)
    with closing(sqlite3.connect(path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        began = time.monotonic()
        with pytest.warns(UnfoldedLogWarning) as got:
            study.optimize(lambda p: p["x"], n_trials=10)
        assert time.monotonic() - began < 10
        message = str(got[0].message)
        assert len(got) == 1 and message.startswith(f"{path}: ")
        assert "another connection holds a read transaction" in message
        assert f"{path} alone is not whole until that reader lets go" in message
        reader.execute("COMMIT")
    study.storage.checkpoint()  # the reader let go: folded in whole, nothing said
    assert os.path.getsize(f"{path}-wal") == 0


# -- a look writes nothing -----------------------------------------------------------------


def _earlier_file(path: Path) -> Path:
    _study_file(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA application_id = 0")
        conn.execute("PRAGMA user_version = 0")
        conn.execute("DROP TABLE leases")
        conn.commit()
    assert not Path(f"{path}-wal").exists()
    return path


def test_a_look_at_a_file_of_an_earlier_version_changes_nothing_there(tmp_path):
    path = _earlier_file(tmp_path / "old.db")
    before = _listing(tmp_path)
    look = ah.Study.load("s", storage=path, read_only=True)
    assert len(look.get_trials(["complete"])) == 6 and look.read_only
    with pytest.raises(PermissionError, match="read_only=True"):
        look.storage.renew("s", "x", 0.0)
    storage = SQLiteStorage(path, read_only=True)
    assert storage.studies() == ["s"] and storage.leases("s") == []
    storage.close()
    look.storage.close()
    assert _listing(tmp_path) == before
    with pytest.raises(FileNotFoundError, match="no such file"):
        SQLiteStorage(tmp_path / "none.db", read_only=True)
    assert _listing(tmp_path) == before


def test_a_look_follows_a_file_written_after_it_opened(tmp_path):
    path = _study_file(tmp_path / "runs.db", n=2)
    look = SQLiteStorage(path, read_only=True)
    assert len(fold(look.read("s")).trials()) == 2
    study = ah.Study.load("s", storage=path)
    study.tell(study.ask(), 0.5)
    assert len(fold(look.read("s")).trials()) == 3
    study.storage.close()
    assert len(fold(look.read("s")).trials()) == 3


def test_repeated_opens_of_a_damaged_log_keep_one_copy_and_a_look_none(tmp_path):
    crashed = _crash_with_a_damaged_log(tmp_path)
    crash, damaged = crashed.parent, Path(str(crashed) + "-wal")
    wal = damaged.read_bytes()
    with pytest.warns(CorruptRecordWarning, match="is damaged") as got:
        look = SQLiteStorage(crash / "runs.db", read_only=True)
    assert "kept in" not in str(got[0].message)
    assert sorted(p.name for p in crash.iterdir()) == ["runs.db", "runs.db-wal"]
    look.close()
    opened = []
    for _ in range(3):  # each open while the others hold the file finds the log damaged
        with pytest.warns(CorruptRecordWarning, match=f"kept in {damaged}.damaged$"):
            opened.append(SQLiteStorage(crash / "runs.db"))
    assert sorted(p.name for p in crash.glob("*.damaged*")) == ["runs.db-wal.damaged"]
    assert Path(f"{damaged}.damaged").read_bytes() == wal
    with pytest.warns(CorruptRecordWarning, match="is damaged") as got:
        SQLiteStorage(crash / "runs.db", read_only=True).close()  # a look meanwhile
    assert "kept in" not in str(got[0].message)
    assert sorted(p.name for p in crash.glob("*.damaged*")) == ["runs.db-wal.damaged"]
    for storage in opened:
        storage.close()


def test_a_path_that_is_not_a_regular_file_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)  # opening it to read would wait for a writer for ever
    with pytest.raises(ForeignFileError, match="not a regular file"):
        SQLiteStorage(fifo)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"checkpoint_every": "2"}, "checkpoint_every must be a finite number > 0, got '2'"),
        ({"checkpoint_every": 0}, "checkpoint_every must be a finite number > 0, got 0"),
        ({"synchronous": 1}, "synchronous must be OFF, NORMAL, FULL or EXTRA, got 1"),
        ({"read_only": "yes"}, "read_only must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments_are_refused_naming_them(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SQLiteStorage(tmp_path / "runs.db", **kwargs)
    assert not (tmp_path / "runs.db").exists()
