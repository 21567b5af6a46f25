"""A hostile study file: every text a view of a study can draw holds markup that runs script
(or loads a URL) if it is ever read as HTML.

Three studies share the file:

- ``LEGAL``: made through the public API, where all of this is allowed: the study's name,
  its objective, parameter and metric names, categorical choices, a failing trial's
  traceback, the error a run ended with; plus a trial left running on a hostile worker
  (two valid records, written directly: only a backend names workers).
- ``FORGED``: records written directly, which the API would refuse: a ``study_created``
  with a hostile ``direction``, and a run that ended with hostile ``reason`` and ``error``.
- ``TYPED``: a valid definition followed by records whose fields have the wrong types: a
  worker that is a number, and a trial whose "number" is markup, with a parameter value far
  out of its range.

A loader may refuse ``FORGED`` or ``TYPED`` (a ``ValueError``) or skip their bad records;
whatever it does, no script may run, and what a view of a loaded study draws must show the
hostile text as text.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import time
import zlib
from pathlib import Path

import asynchpo as ah

MARK = "pwned"  # the URL path a payload loads: /pwned/<tag>


def hostile(tag: str, kind: int = 0) -> str:
    """Markup that calls ``alert(tag)`` (and loads ``/pwned/<tag>``) if drawn as HTML."""
    return [
        f'<img src=/{MARK}/{tag} onerror=alert("{tag}")>',
        f'<script>alert("{tag}")</script>',
        f'"><svg onload=alert("{tag}")>',
        f"'><iframe src=javascript:alert('{tag}')>",
    ][kind % 4]


LEGAL = hostile("name")
FORGED = hostile("forged", 2)
TYPED = hostile("typed", 3)

OBJECTIVE = hostile("obj", 1)
PARAM = hostile("par", 2)
CHOICE_PARAM = hostile("cat", 3)
CHOICE = hostile("choice")
METRIC = hostile("metric", 1)
TRACEBACK = hostile("tb", 2)  # also breaks out of a quoted attribute
RUN_ERROR = hostile("err", 2)
WORKER = hostile("worker", 3)

# what a view of each study must show as text, whenever that study loads
SHOWN = {
    LEGAL: [LEGAL, OBJECTIVE, PARAM, CHOICE_PARAM, CHOICE, TRACEBACK, RUN_ERROR, WORKER],
    FORGED: [
        FORGED,
        hostile("f-obj", 1),
        hostile("f-choice"),
        hostile("f-worker"),
        hostile("f-fail"),
        hostile("f-reason", 3),
        hostile("f-error", 1),
    ],
    TYPED: [TYPED],  # a loader may skip all its other records
}


def build(path: str | Path) -> Path:
    """Write the three studies into ``path`` (an SQLite file) and return it."""
    path = Path(path)
    _legal(path)
    now = time.time()
    _append(
        path,
        FORGED,
        [
            {
                "kind": "study_created",
                "time": now,
                "space": {"x": {"type": "categorical", "choices": [hostile("f-choice")]}},
                "objective": hostile("f-obj", 1),
                "direction": hostile("dir"),
            },
            {"kind": "run_started", "time": now, "run": 0, "n_trials": 3, "holder": "h"},
            _asked(now, 0, {"x": hostile("f-choice")}, run=0),
            {"kind": "trial_started", "time": now, "number": 0, "worker": hostile("f-worker")},
            _asked(now, 1, {"x": hostile("f-choice")}, run=0),
            {"kind": "trial_started", "time": now, "number": 1, "worker": hostile("f-worker")},
            {
                "kind": "trial_completed",
                "time": now + 1,
                "number": 1,
                "values": {hostile("f-obj", 1): 1.0},
            },
            _asked(now, 2, {"x": hostile("f-choice")}, run=0),
            {"kind": "trial_failed", "time": now + 1, "number": 2, "reason": hostile("f-fail")},
            {
                "kind": "run_finished",
                "time": now + 2,
                "run": 0,
                "reason": hostile("f-reason", 3),
                "error": hostile("f-error", 1),
            },
        ],
    )
    _append(
        path,
        TYPED,
        [
            {
                "kind": "study_created",
                "time": now,
                "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
                "objective": "value",
                "direction": "minimize",
            },
            _asked(now, 0, {"x": 0.5}),
            {"kind": "trial_started", "time": now, "number": 0, "worker": 12345},
            {"kind": "trial_completed", "time": now + 1, "number": 0, "values": {"value": 0.5}},
            _asked(now, hostile("t-number"), {"x": 10**18}),
            {
                "kind": "trial_started",
                "time": now,
                "number": hostile("t-number"),
                "worker": hostile("t-worker", 2),
            },
        ],
    )
    return path


def _legal(path: Path) -> None:
    space = ah.Space(
        {
            PARAM: ah.Float(0, 1),
            CHOICE_PARAM: ah.Categorical([CHOICE, None, True, 2**63 - 1, 1e308, "javascript:"]),
        }
    )
    study = ah.Study(
        space,
        objective=OBJECTIVE,
        direction="maximize",
        sampler=ah.RandomSampler(seed=0),
        storage=path,
        name=LEGAL,
    )
    calls = itertools.count()

    def objective(params):
        if next(calls) % 3 == 2:
            raise ValueError(TRACEBACK)
        return {OBJECTIVE: params[PARAM], METRIC: 1.0}

    def broken(study, trial):
        raise RuntimeError(RUN_ERROR)

    study.optimize(objective, n_trials=6, progress=False)
    run = study.start(objective, n_trials=1, callbacks=[broken], progress=False)
    with contextlib.suppress(RuntimeError):  # what the callback raised ends the run
        run.wait(60)
    now, number = time.time(), len(study.trials)
    study.journal.storage.close()
    _append(
        path,
        LEGAL,
        [
            _asked(now, number, {PARAM: 0.5, CHOICE_PARAM: CHOICE}),
            {"kind": "trial_started", "time": now, "number": number, "worker": WORKER},
        ],
    )


def _asked(t: float, number: object, params: dict, run: int | None = None) -> dict:
    return {"kind": "trial_asked", "time": t, "number": number, "params": params, "run": run}


def _append(path: Path, study: str, records: list[dict]) -> None:
    """Rows written as the SQLite storage writes them (``crc``: CRC-32 of the payload)."""
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS events (study TEXT NOT NULL, seq INTEGER NOT NULL, "
                "payload TEXT NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (study, seq))"
            )
            (end,) = con.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE study = ?", (study,)
            ).fetchone()
            for i, record in enumerate(records):
                payload = json.dumps(record)
                con.execute(
                    "INSERT INTO events (study, seq, payload, crc) VALUES (?, ?, ?, ?)",
                    (study, end + i, payload, zlib.crc32(payload.encode())),
                )
    finally:
        con.close()
