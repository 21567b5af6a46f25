from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

import asynchpo as ah
from asynchpo.storage import (
    CorruptRecordWarning,
    InMemoryStorage,
    SQLiteStorage,
    get_storage,
)
from asynchpo.testing import StorageContract


class TestInMemory(StorageContract):
    def make(self, path):
        return InMemoryStorage()


class TestSQLite(StorageContract):
    persistent = True

    def make(self, path):
        return SQLiteStorage(path / "runs.db")


def _study_file(tmp_path: Path, n: int = 6) -> Path:
    path = tmp_path / "runs.db"
    study = ah.Study(
        ah.Space(x=ah.Float(0, 1)), storage=path, name="s", sampler=ah.RandomSampler(seed=0)
    )
    for _ in range(n):
        study.tell(study.ask(), 0.5)
    study.storage.close()
    return path


def test_uses_wal_and_takes_urls(tmp_path):
    storage = get_storage(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(storage, SQLiteStorage)
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(TypeError, match="storage must be None, a file path or a BaseStorage"):
        get_storage(42)
    with pytest.raises(ValueError, match="synchronous must be"):
        SQLiteStorage(tmp_path / "b.db", synchronous="sometimes")


def test_a_corrupt_last_record_is_reported_and_the_rest_kept(tmp_path):
    path = _study_file(tmp_path)
    with sqlite3.connect(path) as conn:
        (last,) = conn.execute("SELECT MAX(seq) FROM events").fetchone()
        conn.execute("UPDATE events SET payload = substr(payload, 1, 20) WHERE seq = ?", (last,))
    with pytest.warns(CorruptRecordWarning, match=f"last record {last} is torn or corrupt"):
        study = ah.Study.load("s", storage=path)
    # the torn record was the last trial's completion: that trial comes back interrupted
    states = [t.state for t in study.trials]
    assert states == [ah.TrialState.COMPLETE] * 5 + [ah.TrialState.INTERRUPTED]


def test_a_corrupt_middle_record_is_skipped_and_later_ones_kept(tmp_path):
    path = _study_file(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET crc = crc + 1 WHERE seq = 4")
    with pytest.warns(CorruptRecordWarning, match="record 4 is torn or corrupt"):
        events = SQLiteStorage(path).read("s")
    assert len(events) == 12  # 13 records less the bad one


def test_a_torn_wal_frame_loses_only_the_unfinished_write(tmp_path):
    path = tmp_path / "runs.db"
    storage = SQLiteStorage(path)
    storage._conn.execute("PRAGMA wal_autocheckpoint=0")
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), storage=storage, name="s")
    for _ in range(4):
        study.tell(study.ask(), 0.5)
    # copy the database as a crash would leave it: the last WAL frame cut in half
    crash = tmp_path / "crash"
    crash.mkdir()
    shutil.copy(path, crash / "runs.db")
    wal = Path(str(path) + "-wal").read_bytes()
    Path(str(crash / "runs.db") + "-wal").write_bytes(wal[: len(wal) - 2000])
    recovered = ah.Study.load("s", storage=crash / "runs.db")
    complete = recovered.get_trials(["complete"])
    assert len(complete) == 3 and len(recovered.trials) in (3, 4)


def test_many_studies_in_one_file(tmp_path):
    path = tmp_path / "runs.db"
    for name in ("a", "b"):
        study = ah.Study(ah.Space(x=ah.Float(0, 1)), storage=path, name=name)
        study.add_trial({"x": 0.5}, 1.0 if name == "a" else 2.0)
    storage = SQLiteStorage(path)
    assert storage.studies() == ["a", "b"]
    assert ah.Study.load("b", storage).best_value == 2.0


def test_the_file_alone_holds_a_finished_run(tmp_path):
    path = tmp_path / "runs.db"
    study = ah.Study(ah.Space(x=ah.Float(0, 1)), storage=path, name="s")
    study.optimize(lambda p: p["x"], n_trials=30, max_concurrent=2, progress=False)
    # copied alone, as a user mails or commits it, while the study is still open
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(path, copy / "runs.db")
    assert len(ah.Study.load("s", storage=copy / "runs.db").get_trials(["complete"])) == 30
