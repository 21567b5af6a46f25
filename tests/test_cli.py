from __future__ import annotations

import shutil
import sqlite3
import subprocess
import zlib
from contextlib import closing

import pytest

import asynchpo as ah
from asynchpo.cli import main


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "runs.db"
    space = ah.Space(lr=ah.Float(1e-4, 1e-1, log=True), act=ah.Categorical(["relu", "tanh"]))
    study = ah.Study(space, objective="loss", storage=path, name="mlp")
    study.add_trial({"lr": 1e-3, "act": "relu"}, 0.5)
    study.add_trial({"lr": 1e-2, "act": "tanh"}, {"loss": 0.25, "acc": 0.9})
    study.tell(study.ask(), error="CUDA out of memory")
    study.ask()
    other = ah.Study(space, direction="maximize", storage=path, name="other")
    other.add_trial({"lr": 1e-3, "act": "relu"}, 3.0)
    return path


def test_studies_lists_counts_and_best(db, capsys):
    assert main(["studies", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "study",
        "trials",
        "complete",
        "running",
        "failed",
        "pruned",
        "paused",
        "steps",
        "objective",
        "best",
    ]
    assert lines[2].split() == ["mlp", "4", "2", "1", "1", "0", "0", "0", "loss", "(min)", "0.25"]
    assert lines[3].split() == ["other", "1", "1", "0", "0", "0", "0", "0", "value", "(max)", "3"]


def test_studies_counts_what_a_scheduler_stopped_and_the_training_done(tmp_path, capsys):
    def curve(params):
        for epoch in range(1, 10):
            ah.report(epoch, value=params["x"] + 1 / epoch)
        return params["x"]

    path = tmp_path / "asha.db"
    study = ah.Study(
        ah.Space(x=ah.Float(0.0, 1.0)),
        sampler=ah.RandomSampler(seed=0),
        scheduler=ah.ASHA(max_resource=9, mode="promotion"),
        storage=path,
        name="asha",
    )
    backend = ah.SimulatedBackend(n_workers=4, step_duration=1.0, seed=0)
    study.optimize(curve, n_trials=12, backend=backend, progress=False)
    s = study.journal.summary()
    assert s.pruned + s.paused > 0 and s.steps == sum(len(t.reports) for t in study.trials)
    assert main(["studies", str(path)]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[:8] == [
        "asha",
        "12",
        str(s.complete),
        "0",
        str(s.failed),
        str(s.pruned),
        str(s.paused),
        str(s.steps),
    ]


def test_show_sorts_and_filters(db, capsys):
    assert main(["show", str(db), "mlp", "--sort", "value"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the line the progress view draws, from the same summary, then the table
    assert lines[0].startswith("mlp: 3 done | 1 running | 1 failed | best loss=0.25")
    rows = lines[3:]
    assert [r.split()[0] for r in rows] == ["1", "0", "2", "3"]
    assert "CUDA out of memory" in rows[2]
    assert main(["show", str(db), "mlp", "--state", "failed"]) == 0
    rows = capsys.readouterr().out.splitlines()[3:]
    assert len(rows) == 1 and rows[0].split()[:2] == ["2", "failed"]


def test_the_reason_of_a_failure_is_its_exception_line(tmp_path, capsys):
    def fails(params):
        raise ValueError("bad x\nsecond line")

    study = ah.Study(ah.Space(x=ah.Float(0, 1)), storage=tmp_path / "f.db", name="f")
    study.optimize(fails, n_trials=1, progress=False)
    assert main(["show", str(tmp_path / "f.db"), "f"]) == 0
    row = capsys.readouterr().out.splitlines()[3]
    assert row.endswith("ValueError: bad x"), row
    study.tell(study.ask(), error="CUDA out of memory\nat step 3")  # not a traceback
    assert main(["show", str(tmp_path / "f.db"), "f"]) == 0
    assert capsys.readouterr().out.splitlines()[4].endswith("CUDA out of memory")


def test_a_reader_that_leaves_early_is_not_a_bad_file(db, capsys, monkeypatch):
    class Closed:  # what `asynchpo show ... | head` writes to once head has left
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["show", str(db), "mlp"]) == 1
    assert capsys.readouterr().err == ""  # not "asynchpo: runs.db: BrokenPipeError ..."


def test_looking_changes_nothing_and_escapes_control_characters(db, capsys):
    study = ah.Study.load("mlp", storage=db)
    study.tell(study.get_trials(["interrupted"])[0], error="\x1b]0;owned\x07\x1b[2J boom")
    storage = ah.SQLiteStorage(db)
    before = {n: storage.records(n).end for n in storage.studies()}
    assert main(["show", str(db), "mlp"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J boom" in out
    assert main(["studies", str(db)]) == 0
    capsys.readouterr()
    # looking runs no recovery and writes nothing: no record, no lease
    assert {n: storage.records(n).end for n in storage.studies()} == before
    assert not storage.leases("mlp") and not storage.leases("other")


def test_helpful_errors(db, tmp_path, capsys):
    assert main(["show", str(db), "nope"]) == 2
    err = capsys.readouterr().err
    assert "no study 'nope'" in err and "['mlp', 'other']" in err
    with pytest.raises(SystemExit, match="no such file"):
        main(["studies", str(tmp_path / "missing.db")])
    with pytest.raises(SystemExit):
        main(["show", str(db), "mlp", "--state", "finished"])


def test_help_reads_well():
    exe = shutil.which("asynchpo")
    assert exe, "the asynchpo console script is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("demo", "studies", "show"):
        assert f"asynchpo {command}" in out


@pytest.mark.slow
def test_demo_runs_a_real_study_and_resumes(tmp_path):
    exe = shutil.which("asynchpo")
    db = tmp_path / "demo.db"
    args = [exe, "demo", "--trials", "6", "--workers", "1", "--storage", str(db), "--seed", "0"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "best trial #" in first.stdout and "error=" in first.stdout
    assert "demo: 6/6 done" in first.stderr
    assert f"asynchpo show {db} demo --sort value" in first.stdout
    assert "study.widget()" in first.stdout and "study.plot.history()" in first.stdout
    second = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert second.returncode == 0 and "6 trials so far" in second.stdout
    with sqlite3.connect(db) as conn:
        kinds = [
            k
            for (k,) in conn.execute(
                "SELECT json_extract(payload, '$.kind') FROM events WHERE study = 'demo'"
            )
        ]
    assert kinds.count("trial_completed") == 12
    study = ah.Study.load("demo", storage=db)
    assert all(len(t.reports) == 3 for t in study.trials)  # one report per fold
    assert 0.0 <= study.best_value < 0.2


def test_the_demo_space_holds_the_best_svm_well_inside_its_bounds():
    pytest.importorskip("sklearn")
    from asynchpo import demo

    space = demo.space()
    best = {"C": 2.0, "gamma": 0.15, "kernel": "rbf", "shrinking": True}
    assert demo.objective(best)["error"] < 0.012
    for name, moved in (("C", 1e3), ("gamma", 1e-2), ("gamma", 1.0)):
        # a step of ten toward either bound is worse, and the bounds are further still
        assert demo.objective({**best, name: moved})["error"] > demo.objective(best)["error"]
    for name in ("C", "gamma"):
        lo, hi = space[name].low, space[name].high
        assert lo * 10 < best[name] < hi / 10, (name, lo, hi)


def test_a_study_that_cannot_be_loaded_is_one_line_and_the_others_still_show(db, capsys):
    with sqlite3.connect(db) as conn:
        payload = (
            '{"kind":"study_created","time":0,"space":{"lr":{"type":"float","low":1,"high":0}},'
            '"objective":"loss","direction":"minimize"}'
        )
        conn.execute(
            "UPDATE events SET payload = ?, crc = ? WHERE study = 'mlp' AND seq = 0",
            (payload, zlib.crc32(payload.encode())),
        )
    conn.close()
    assert main(["studies", str(db)]) == 1
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["other"]
    (line,) = err.splitlines()
    assert line.startswith(f"asynchpo: study 'mlp' in {db} cannot be loaded: study_created: ")
    assert main(["show", str(db), "mlp"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert main(["show", str(db), "other"]) == 0


def test_a_skipped_record_is_said_once_and_the_table_still_shows(db, capsys):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET crc = crc + 1 WHERE study = 'mlp' AND seq = 1")
    conn.close()
    assert main(["show", str(db), "mlp"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("mlp: 2 done")  # trial 0 went with its record
    (line,) = err.splitlines()
    assert line.startswith(
        f"asynchpo: {db}: study 'mlp': kept 6 of 8 records; skipped 2: record 1 "
    )
    assert line.endswith("; record 2: trial_completed of unknown trial 0")


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_look_at_a_file_of_an_earlier_version_changes_no_byte_of_its_folder(
    db, tmp_path, capsys, journal
):
    folder = tmp_path / "old"
    folder.mkdir()
    old = folder / "runs.db"
    with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(old)) as conn:
        src.backup(conn)
        conn.execute("PRAGMA application_id = 0")  # an earlier version: the tables, no mark
        conn.execute("PRAGMA user_version = 0")
        conn.execute("DROP TABLE leases")
        conn.commit()
        conn.execute(f"PRAGMA journal_mode = {journal}")
    before = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    assert list(before) == ["runs.db"]
    assert main(["studies", str(old)]) == 0
    assert main(["show", str(old), "mlp"]) == 0
    out = capsys.readouterr().out
    assert "mlp" in out and "0.25" in out
    look = ah.Study.load("mlp", storage=old, read_only=True)
    assert len(look.trials) == 4
    look.storage.close()
    assert {p.name: p.read_bytes() for p in sorted(folder.iterdir())} == before
