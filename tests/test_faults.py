"""Fault injection, seeded and bounded in time: a driver SIGKILLed again and again while its
trials complete, and a study file copied without its side files, truncated or bit-flipped.

After every fault: each trial that the objective saw finish is in the journal, or its loss
is reported (the trial comes back interrupted and runs again); nothing recorded as complete
is ever lost afterwards; ``Study.load`` never crashes (a damaged file is refused with one
clear error that names it, or read with what could not be read reported).

    FAULT_CYCLES=60 python -m pytest tests/test_faults.py   # more kills than the default

The other faults have suites of their own: hostile records of every kind in
``tests/test_hostile_records.py``, damaged logs, indexes and pages and foreign files in
``tests/storage/test_sqlite_file.py``, two processes opening one study in
``tests/test_journal.py``, crashing, hanging and memory-hungry trials in
``tests/execution/test_dask.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import sys
import time
import warnings
from pathlib import Path

import pytest

import asynchpo as ah
from asynchpo.events import RunStarted, TrialCompleted, TrialInterrupted
from asynchpo.storage import CorruptRecordWarning, SQLiteStorage
from asynchpo.storage._sqlite import CHECKPOINT_SECONDS

pytestmark = pytest.mark.slow

CYCLES = int(os.environ.get("FAULT_CYCLES", "24"))
SPACE = ah.Space(x=ah.Float(-5.0, 5.0), y=ah.Float(-5.0, 5.0))
NAME = "faults"


def _objective_logging_to(log: str):
    def objective(p):
        time.sleep(0.005 + 0.02 * random.random())
        value = (p["x"] - 1) ** 2 + p["y"] ** 2
        with open(log, "a") as f:  # what the objective saw finish, on disk before it returns
            f.write(json.dumps(p) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return value

    return objective


def _drive(path: str, log: str, seed: int) -> None:
    """A driver process: open the study (recovering the last one's run) and go on."""
    study = ah.Study(
        SPACE,
        storage=path,
        name=NAME,
        sampler=ah.RandomSampler(seed=seed),
        load_if_exists=True,
    )
    study.optimize(_objective_logging_to(log), n_trials=10_000, max_concurrent=4, progress=False)


@pytest.fixture(scope="module")
def forkserver():
    # children forked from a clean server that has asynchpo imported: a kill cycle costs
    # a fork, not an interpreter start, and no thread of the test process is copied
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["asynchpo", __name__])
    return ctx


def _seen(log: Path) -> list[dict]:
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _exists(path: Path) -> bool:
    if not path.exists():
        return False
    storage = SQLiteStorage(path, read_only=True)
    try:
        return storage.exists(NAME)
    finally:
        storage.close()


def _key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


def test_a_driver_killed_again_and_again_loses_nothing_that_finished(tmp_path, forkserver):
    rng = random.Random(20261202)
    path, log = tmp_path / "runs.db", tmp_path / "seen.jsonl"
    complete: dict[int, tuple] = {}  # trial number -> params, as recorded complete so far
    deadline = time.monotonic() + 120
    for cycle in range(CYCLES):
        assert time.monotonic() < deadline, f"only {cycle} cycles in the time allowed"
        child = forkserver.Process(target=_drive, args=(str(path), str(log), cycle))
        child.start()
        time.sleep(rng.uniform(0.2, 0.8))
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
        if not complete and not _exists(path):
            continue  # killed before it created the study (a slow machine): nothing to check

        study = ah.Study.load(NAME, storage=path)  # recovers the killed run; never crashes
        trials = {t.number: t for t in study.trials}
        assert not study.get_trials(["running"])
        # nothing recorded complete is ever lost or changed
        for number, params in complete.items():
            assert trials[number].state is ah.TrialState.COMPLETE, (cycle, number)
            assert _key(trials[number].params) == params
        complete = {
            n: _key(t.params) for n, t in trials.items() if t.state is ah.TrialState.COMPLETE
        }
        # every trial the objective saw finish is complete, or was reported interrupted
        events = study.storage.read(NAME)
        interrupted = {e.number for e in events if isinstance(e, TrialInterrupted)}
        by_params = {_key(t.params): n for n, t in trials.items()}
        for params in _seen(log):
            number = by_params.get(_key(params))
            assert number is not None, f"cycle {cycle}: a finished trial is not in the journal"
            assert number in complete or number in interrupted, (cycle, number)
        numbers = sorted(trials)
        assert numbers == list(range(len(numbers)))  # no trial number twice, none skipped
        study.storage.close()
    assert len(complete) > 4 * CYCLES  # the study went on between the kills
    # some kills come while a driver is still opening the study: most get to run
    assert len({e.run for e in events if isinstance(e, RunStarted)}) >= CYCLES // 2


def _flip(data: bytearray, rng: random.Random, n: int) -> None:
    for _ in range(n):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)


def _complete_values(study: ah.Study) -> dict[int, float]:
    return {t.number: t.value for t in study.get_trials(["complete"])}


@pytest.fixture(scope="module")
def finished_file(tmp_path_factory):
    """A study file of 300 trials, whole (its log folded in)."""
    path = tmp_path_factory.mktemp("whole") / "runs.db"
    study = ah.Study(SPACE, storage=path, name=NAME, sampler=ah.RandomSampler(seed=3))
    study.optimize(lambda p: (p["x"] - 1) ** 2, n_trials=300, max_concurrent=4, progress=False)
    study.storage.close()
    return path, _complete_values(study)


def _load_or_refuse(path: Path) -> ah.Study | None:
    """Study.load of a damaged file: it loads (whatever it could not read reported), or it
    is refused with one error that names the file; then it is looked at read-only, which
    loads too unless SQLite cannot read the file at all. Anything else fails the test."""
    study = None
    for read_only in (False, True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CorruptRecordWarning)
                study = ah.Study.load(NAME, storage=path, read_only=read_only)
                return study
        except (OSError, ValueError, sqlite3.DatabaseError) as error:  # refused, naming it
            assert str(path) in str(error), repr(error)
    return study


@pytest.mark.parametrize("seed", range(12))
def test_a_truncated_or_bit_flipped_file_never_crashes_load(tmp_path, finished_file, seed):
    source, values = finished_file
    rng = random.Random(seed)
    data = bytearray(source.read_bytes())
    if seed % 3 == 0:
        data = data[: rng.randrange(len(data))]
    else:
        _flip(data, rng, 1 + seed)
    path = tmp_path / "damaged.db"
    path.write_bytes(bytes(data))
    study = _load_or_refuse(path)
    if study is not None:  # what it kept is what was there: nothing made up
        kept = _complete_values(study)
        assert all(values.get(n) == v for n, v in kept.items())


def test_a_file_copied_without_its_log_after_a_kill_keeps_all_but_the_last_moments(
    tmp_path, forkserver
):
    path, log = tmp_path / "runs.db", tmp_path / "seen.jsonl"
    child = forkserver.Process(target=_drive, args=(str(path), str(log), 0))
    child.start()
    time.sleep(6.0)
    killed_at = time.time()
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)  # the .db alone: its -wal and -shm left behind
    whole = {
        e.number: e.time for e in SQLiteStorage(path).read(NAME) if isinstance(e, TrialCompleted)
    }
    study = ah.Study.load(NAME, storage=copy)
    kept = {t.number for t in study.get_trials(["complete"])}
    assert kept <= set(whole)
    older = {n for n, t in whole.items() if t < killed_at - 2 * CHECKPOINT_SECONDS}
    assert older, "the run completed nothing long enough before the kill"
    assert older <= kept, f"{len(older - kept)} trials finished long before the kill are lost"


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("SIGKILL is POSIX", allow_module_level=True)
