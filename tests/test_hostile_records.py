"""Nothing lost, nothing let in: a study file with hostile records in it still loads.

Every good record is kept; each bad one is skipped with a warning that counts what was kept
and what was not; only a bad study definition makes a study unloadable, with one
``ValueError`` that names the study; and ``asynchpo show`` answers in one line, never with
a traceback.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import asynchpo as ah
from asynchpo._limits import MAX_RECORD_BYTES, MAX_STRING, MAX_TEXT
from asynchpo.cli import main
from asynchpo.events import Event, TrialStarted, decode_record
from asynchpo.storage import BaseStorage, CorruptRecordWarning, InMemoryStorage, Records

SPACE = ah.Space(x=ah.Float(0.0, 1.0), n=ah.Int(1, 4), act=ah.Categorical(["relu", "tanh"]))
GOOD = [
    {"x": 0.1, "n": 1, "act": "relu"},
    {"x": 0.2, "n": 2, "act": "tanh"},
    {"x": 0.3, "n": 3, "act": "relu"},
    {"x": 0.4, "n": 4, "act": "tanh"},
]
N_GOOD = 9  # the study_created record, then an ask and a completion for each trial
AT = 5  # where a hostile record goes: after trial 1, before trial 2


def rec(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# a record the decoder refuses, or one that decodes but does not fit the study
HOSTILE: dict[str, str | bytes] = {
    "invalid UTF-8 (a blob)": b'{"kind":"trial_started","time":1.0,"number":1,"worker":"\xff\xfe"}',
    "deeply nested JSON": '{"kind":"trial_reported","time":1.0,"number":1,"step":0,"seq":7,'
    '"metrics":{"a":' + nested(100_000) + "}}",
    "JSON nested past the limit": '{"kind":"trial_reported","time":1.0,"number":1,"step":0,'
    '"seq":7,"metrics":{"a":' + nested(40) + "}}",
    "empty params": rec(kind="trial_asked", time=1.0, number=4, params={}),
    "a string where a number belongs": rec(kind="trial_started", time="soon", number=1),
    "a string where an int belongs": rec(kind="trial_started", time=1.0, number="1"),
    "a bool where an int belongs": rec(kind="trial_started", time=1.0, number=True),
    "a float where an int belongs": rec(kind="trial_started", time=1.0, number=1.0),
    "an unknown failure kind": rec(
        kind="trial_failed", time=1.0, number=1, reason="x", failure="meltdown"
    ),
    "an unknown clock": rec(kind="run_started", time=1.0, run=0, clock="sundial"),
    "an unknown retry cause": rec(kind="trial_retried", time=1.0, number=1, cause="gremlins"),
    "attempt 0": rec(kind="trial_started", time=1.0, number=1, attempt=0),
    "an unknown event kind": rec(kind="trial_exploded", time=1.0, number=1),
    "no kind": rec(time=1.0, number=1),
    "an unknown field": rec(kind="trial_started", time=1.0, number=1, evil=1),
    "a missing trial number": rec(kind="trial_completed", time=1.0, values={"loss": -1.0}),
    "a missing time": rec(kind="trial_started", number=1),
    "a key twice (the last would win)": '{"kind":"trial_started","time":1.0,"number":2,"number":1}',
    "NaN in JSON": '{"kind":"trial_started","time":NaN,"number":1}',
    "Infinity in JSON": '{"kind":"trial_reported","time":1.0,"number":1,"step":0,"seq":7,'
    '"metrics":{"loss":Infinity}}',
    "a number too large for a float": '{"kind":"trial_started","time":1e999,"number":1}',
    "an int too large": rec(kind="trial_started", time=1.0, number=10**30),
    "a negative trial number": rec(kind="trial_asked", time=1.0, number=-1, params=GOOD[0]),
    "a record over MAX_RECORD_BYTES": rec(
        kind="trial_failed", time=1.0, number=1, reason="x" * MAX_RECORD_BYTES
    ),
    "a name over MAX_STRING": rec(kind="trial_started", time=1.0, number=1, worker="w" * 10**5),
    "a text over MAX_TEXT": rec(
        kind="trial_interrupted", time=1.0, number=1, reason="r" * (MAX_TEXT + 1)
    ),
    "a lone surrogate": '{"kind":"trial_started","time":1.0,"number":1,"worker":"\\ud800"}',
    "a second study_created with a direction of <img src=x onerror=alert(1)>": rec(
        kind="study_created",
        time=0.0,
        space=SPACE.to_spec(),
        objective="loss",
        direction="<img src=x onerror=alert(1)>",
    ),
    "a second study_created": rec(
        kind="study_created", time=0.0, space=SPACE.to_spec(), objective="loss"
    ),
    "params outside the space": rec(
        kind="trial_asked", time=1.0, number=4, params={"x": 2.0, "n": 1, "act": "relu"}
    ),
    "params missing a name": rec(kind="trial_asked", time=1.0, number=4, params={"x": 0.5}),
    "params with an extra name": rec(
        kind="trial_asked", time=1.0, number=4, params={**GOOD[0], "y": 1}
    ),
    "a categorical value not among the choices": rec(
        kind="trial_asked", time=1.0, number=4, params={**GOOD[0], "act": "<script>"}
    ),
    "a list in params": rec(kind="trial_asked", time=1.0, number=4, params={**GOOD[0], "x": [0.5]}),
    "a list where a dict belongs": rec(kind="trial_completed", time=1.0, number=1, values=[1]),
    "a trial asked twice": rec(kind="trial_asked", time=1.0, number=0, params=GOOD[1]),
    "a report for a trial that does not exist": rec(
        kind="trial_reported", time=1.0, number=99, step=0, metrics={"loss": 1.0}, seq=0
    ),
    "a completion for a trial that does not exist": rec(
        kind="trial_completed", time=1.0, number=99, values={"loss": 0.0}
    ),
    "an objective value that is not a number": rec(
        kind="trial_completed", time=1.0, number=99, values={"loss": "low"}
    ),
    "not an object": "[1, 2, 3]",
    "not JSON": '{"kind": "trial_started", "time": 1.0, "numb',
    "empty": "",
}


# -- building study files --------------------------------------------------------------------


def study_file(tmp_path: Path) -> Path:
    """A study written by the real code: 4 complete trials in 9 records."""
    path = tmp_path / "runs.db"
    study = ah.Study(SPACE, objective="loss", storage=path, name="s")
    for i, params in enumerate(GOOD):
        study.add_trial(params, {"loss": float(i), "note": f"trial {i}"})
    study.storage.close()
    return path


def insert(path: Path, at: int, payload: str | bytes, *, as_text: bool = False) -> None:
    """Write ``payload`` as record ``at`` of study ``s``, with a valid checksum, moving the
    later records one on."""
    raw = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass")
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(
                "UPDATE events SET seq = seq + 1000000 WHERE study = 's' AND seq >= ?", (at,)
            )
            conn.execute(
                "UPDATE events SET seq = seq - 999999 WHERE study = 's' AND seq >= 1000000"
            )
            value = "CAST(? AS TEXT)" if as_text else "?"
            conn.execute(
                f"INSERT INTO events (study, seq, payload, crc) VALUES (?, ?, {value}, ?)",
                ("s", at, payload, zlib.crc32(raw)),
            )
    finally:
        conn.close()


def replace(path: Path, seq: int, payload: str) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(
                "UPDATE events SET payload = ?, crc = ? WHERE study = 's' AND seq = ?",
                (payload, zlib.crc32(payload.encode()), seq),
            )
    finally:
        conn.close()


def payloads(path: Path) -> list[str | bytes]:
    conn = sqlite3.connect(path)
    try:
        return [p for (p,) in conn.execute("SELECT payload FROM events ORDER BY seq")]
    finally:
        conn.close()


def seen(study: ah.Study) -> list[tuple[Any, ...]]:
    """Everything a trial holds."""
    return [
        (t.number, dict(t.params), t.state, dict(t.values), t.attempts, t.worker, t.error)
        for t in study.trials
    ]


class RawStorage(BaseStorage):
    """A storage that keeps records as the payloads a file holds and decodes them on read,
    as every storage does: one that a test can fill with anything."""

    def __init__(self, records: Sequence[str | bytes]):
        self.payloads = list(records)

    def __repr__(self) -> str:
        return "RawStorage()"

    def append(self, study: str, events: Sequence[Event], at: int) -> None:
        assert at == len(self.payloads)
        self.payloads += [e.to_json() for e in events]

    def records(self, study: str, start: int = 0) -> Records:
        events, skipped = [], []
        for seq, payload in enumerate(self.payloads[start:], start):
            try:
                events.append(decode_record(payload))
            except ValueError as exc:
                skipped.append(f"record {seq} is corrupt ({exc})")
        return Records(events, len(self.payloads), skipped)

    def studies(self) -> list[str]:
        return ["s"] if self.payloads else []


@pytest.fixture
def clean(tmp_path):
    """The file, and what its trials hold when nothing hostile is in it."""
    path = study_file(tmp_path)
    shutil.copy(path, tmp_path / "clean.db")
    baseline = ah.Study.load("s", storage=tmp_path / "clean.db")
    assert baseline.journal.kept == N_GOOD and baseline.journal.skipped == []
    return path, seen(baseline)


# -- one hostile record among good ones ------------------------------------------------------


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_record_is_skipped_and_counted_and_every_good_one_kept(clean, kind):
    path, want = clean
    insert(path, AT, HOSTILE[kind])
    with pytest.warns(CorruptRecordWarning) as caught:
        study = ah.Study.load("s", storage=path)
    assert seen(study) == want
    assert study.journal.kept == N_GOOD
    assert len(study.journal.skipped) == 1 and study.journal.skipped[0].startswith(f"record {AT}")
    notes = [str(w.message) for w in caught if "records; skipped" in str(w.message)]
    assert len(notes) == 1, notes
    assert f"study 's' in {path}: kept 9 of 10 records; skipped 1: record {AT}" in notes[0]


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_the_same_through_any_storage(clean, kind):
    path, want = clean
    raw = payloads(path)
    raw.insert(AT, HOSTILE[kind])
    storage = RawStorage(raw)
    with pytest.warns(CorruptRecordWarning) as caught:
        study = ah.Study.load("s", storage=storage)
    assert seen(study) == want
    assert study.journal.kept == N_GOOD and len(study.journal.skipped) == 1
    # said once, with the count
    assert len(caught) == 1
    assert "study 's' in RawStorage(): kept 9 of 10 records; skipped 1: record 5" in str(
        caught[0].message
    )
    # the study goes on, and never gives a number twice
    trial = study.ask()
    assert trial.number in (4, 5) and trial.params.keys() == set(SPACE.names)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, trial.number]


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_the_decoder_raises_only_value_error(kind):
    payload = HOSTILE[kind]
    try:
        event = decode_record(payload)
    except ValueError:
        return
    # what decodes is sound: it is written back exactly as it reads
    assert decode_record(event.to_json()) == event


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_show_says_what_was_skipped_in_one_line(clean, kind, capsys):
    path, _ = clean
    insert(path, AT, HOSTILE[kind])
    assert main(["show", str(path), "s"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert len(out.splitlines()) == 3 + len(GOOD)  # the progress line, the table
    lines = err.splitlines()
    assert len(lines) == 1 and "kept 9 of 10 records; skipped 1: record 5" in lines[0]
    assert str(path) in lines[0]
    assert all(c.isprintable() for c in out.replace("\n", "") + err.replace("\n", ""))
    assert main(["studies", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[2].split()[:3] == ["s", "4", "4"]
    assert len(err.splitlines()) == 1 and "skipped 1" in err


def test_invalid_utf8_stored_as_text_is_skipped(clean):
    path, want = clean
    insert(
        path, AT, b'{"kind":"trial_started","time":1.0,"number":1,"worker":"\xff"}', as_text=True
    )
    with pytest.warns(CorruptRecordWarning) as caught:
        study = ah.Study.load("s", storage=path)
    assert seen(study) == want
    assert any("kept 9 of 10 records; skipped 1: record 5" in str(w.message) for w in caught)


def test_many_hostile_records_at_once_are_listed_a_few_and_counted(clean, capsys):
    path, want = clean
    for payload in reversed(HOSTILE.values()):
        insert(path, AT, payload)
    total = N_GOOD + len(HOSTILE)
    with pytest.warns(CorruptRecordWarning) as caught:
        study = ah.Study.load("s", storage=path)
    assert seen(study) == want
    assert study.journal.kept == N_GOOD and len(study.journal.skipped) == len(HOSTILE)
    (note,) = [str(w.message) for w in caught if "records; skipped" in str(w.message)]
    assert f"kept 9 of {total} records; skipped {len(HOSTILE)}: record 5" in note
    assert f"and {len(HOSTILE) - 3} more" in note
    assert len(note) < 2000
    assert main(["show", str(path), "s"]) == 0
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"skipped {len(HOSTILE)}" in err


def test_events_about_a_skipped_trial_are_skipped_too_and_its_number_stays_taken(clean):
    path, want = clean
    insert(path, AT, HOSTILE["params outside the space"])
    insert(path, AT + 1, rec(kind="trial_started", time=1.0, number=4, worker="w"))
    insert(path, AT + 2, rec(kind="trial_completed", time=2.0, number=4, values={"loss": -9.0}))
    with pytest.warns(CorruptRecordWarning) as caught:
        study = ah.Study.load("s", storage=path)
    assert seen(study) == want and study.best_value == 0.0
    (note,) = [str(w.message) for w in caught if "records; skipped" in str(w.message)]
    assert "kept 9 of 12 records; skipped 3: record 5: trial_asked of trial 4: " in note
    assert "record 6: trial_started of trial 4, whose trial_asked was skipped" in note
    trial = study.ask()
    assert trial.number == 5  # 4 was given to the skipped record
    study.tell(trial, 0.5)
    with pytest.warns(CorruptRecordWarning, match="kept 11 of 14 records; skipped 3"):
        again = ah.Study.load("s", storage=path)
    assert [t.number for t in again.trials] == [0, 1, 2, 3, 5]


# -- a bad study definition: the one documented error ----------------------------------------


def created(**change: Any) -> str:
    fields: dict[str, Any] = {
        "kind": "study_created",
        "time": 0.0,
        "space": SPACE.to_spec(),
        "objective": "loss",
        "direction": "minimize",
    }
    fields.update(change)
    return json.dumps(fields)


BAD_CREATED = {
    "a direction of <img src=x onerror=alert(1)>": (
        created(direction="<img src=x onerror=alert(1)>"),
        "direction",
    ),
    "an objective that is not a string": (created(objective=5), "objective"),
    "an empty space": (created(space={}), "space"),
    "a space that is not an object": (created(space="x"), "space"),
    "an unknown distribution": (created(space={"x": {"type": "gaussian"}}), "gaussian"),
    "low above high": (
        created(space={"x": {"type": "float", "low": 1.0, "high": 0.0, "log": False}}),
        "low",
    ),
    "an unknown argument": (
        created(space={"x": {"type": "int", "low": 0, "high": 3, "evil": 1}}),
        "evil",
    ),
    "choices that are not a list": (
        created(space={"x": {"type": "categorical", "choices": "abc"}}),
        "choices",
    ),
    "no kind": (created(kind="study_exploded"), "study_exploded"),
    "not JSON": ("{", "JSON"),
    "a trial_asked first": (rec(kind="trial_asked", time=0.0, number=0, params=GOOD[0]), "first"),
}


@pytest.mark.parametrize("kind", list(BAD_CREATED))
def test_a_bad_study_definition_is_one_clear_error(clean, kind, capsys):
    path, _ = clean
    payload, what = BAD_CREATED[kind]
    replace(path, 0, payload)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptRecordWarning)
        with pytest.raises(ValueError, match="study 's'") as raised:
            ah.Study.load("s", storage=path)
    message = str(raised.value)
    assert what in message and "Traceback" not in message and len(message) < 2000
    assert "\n" not in message
    assert main(["show", str(path), "s"]) != 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "study 's'" in lines[0]
    assert "<img" not in out  # never shown as it came
    assert main(["studies", str(path)]) != 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and len(err.splitlines()) == 1 and "study 's'" in err


def test_a_file_that_is_not_a_study_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "notes.db"
    path.write_bytes(b"\x00\xff" * 5000)
    for argv in (["show", str(path), "s"], ["studies", str(path)]):
        assert main(argv) != 0
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err and len(err.splitlines()) == 1 and str(path) in err


# -- the in-memory storage behaves like a file ------------------------------------------------


def test_the_in_memory_storage_refuses_what_a_file_could_not_give_back():
    study = ah.Study(SPACE, objective="loss", name="m")
    study.add_trial(GOOD[0], 1.0)
    storage = study.storage
    assert isinstance(storage, InMemoryStorage)
    before = storage.read("m")
    bad = TrialStarted(time=1.0, number=True)
    with pytest.raises(ValueError, match="number"):
        storage.append("m", [bad], len(before))
    with pytest.raises(ValueError, match="worker"):
        storage.append("m", [TrialStarted(time=1.0, number=0, worker="w" * (MAX_STRING + 1))], 3)
    assert storage.read("m") == before


def test_a_huge_traceback_is_cut_to_its_end_and_the_study_loads(tmp_path):
    path = tmp_path / "runs.db"
    study = ah.Study(SPACE, objective="loss", storage=path, name="s")
    trace = "Traceback (most recent call last):\n" + "  frame\n" * 10**6 + "MemoryError: boom"
    failed = study.tell(study.ask(), error=trace)
    assert failed.error is not None and len(failed.error) == MAX_TEXT
    assert failed.error.endswith("MemoryError: boom")
    again = ah.Study.load("s", storage=path)
    assert again.trials[0].error == failed.error and again.journal.skipped == []
