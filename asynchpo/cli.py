"""The ``asynchpo`` command: run the demo study, list studies, show a study's trials."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from asynchpo._progress import progress_line
from asynchpo.journal import Journal
from asynchpo.storage import CorruptRecordWarning, SQLiteStorage
from asynchpo.trial import Trial, TrialState
from asynchpo.widgets._text import printable

_DESCRIPTION = """\
asynchronous hyperparameter optimization on dask

  asynchpo demo                    run a real study: an SVM on scikit-learn's digits,
                                   on a local dask cluster, saved to asynchpo-demo.db
  asynchpo studies runs.db         list the studies in a file, with counts and best values
  asynchpo show runs.db NAME       the trials of one study, as a table
"""


_RECORD = re.compile(r"\brecord \d+\b")  # a warning about one record


def _open(path: str) -> SQLiteStorage:
    import os

    if not os.path.exists(path):
        raise SystemExit(f"asynchpo: no such file: {path}")
    return SQLiteStorage(path, read_only=True)  # a look writes nothing in or beside the file


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else printable(str(value))


def cmd_demo(args: argparse.Namespace) -> int:
    from distributed import Client, LocalCluster

    from asynchpo import demo
    from asynchpo.samplers import GPSampler
    from asynchpo.study import Study

    study = Study(
        demo.space(),
        objective="error",
        direction="minimize",
        sampler=GPSampler(seed=args.seed),
        storage=args.storage,
        name=args.name,
        load_if_exists=True,
    )
    print(f"study {study.name!r} in {args.storage}: {len(study.trials)} trials so far")
    print(f"starting a local dask cluster: {args.workers} worker processes ...", flush=True)
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        print(f"dask dashboard: {client.dashboard_link}")
        study.optimize(
            demo.objective,
            n_trials=args.trials,
            client=client,
            max_concurrent=args.max_concurrent,
            progress=True,
        )
    best = study.best_trial
    print(f"best trial #{best.number}: error={best.value:.4f} with {json.dumps(best.params)}")
    print(f"see every trial: asynchpo show {args.storage} {study.name} --sort value")
    print(
        "in a notebook: study = ah.Study.load("
        f"{study.name!r}, storage={str(args.storage)!r}); then study.widget() for the live "
        "view, study.plot.history(), study.plot.slice() and study.plot.importance()"
    )
    return 0


def _say(line: str) -> None:
    """One line on stderr, as a study file cannot make it otherwise."""
    print(f"asynchpo: {printable(line)}", file=sys.stderr)


def _skipped(file: str, name: str, journal: Journal) -> None:
    if journal.skipped:
        _say(f"{file}: study {name!r}: {journal.skipped_note()}")


def _refused(file: str, error: BaseException) -> str:
    """What went wrong reading ``file``, in one line that names it."""
    text = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    if isinstance(error, sqlite3.DatabaseError):
        text = f"not a study file that can be read ({error})"
    return text if file in text else f"{file}: {text}"


def cmd_studies(args: argparse.Namespace) -> int:
    storage = _open(args.file)
    names = storage.studies()
    if not names:
        print(f"{args.file}: no studies")
        return 0
    rows = [
        (
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
        )
    ]
    failed = 0
    for name in names:
        try:
            journal = Journal.open(storage, name, read_only=True)
        except ValueError as error:  # a study that cannot be loaded: the others still show
            _say(_refused(args.file, error))
            failed += 1
            continue
        _skipped(args.file, name, journal)
        s = journal.summary()
        rows.append(
            (
                printable(name),
                str(s.n_trials),
                str(s.complete),
                str(len(s.running)),
                str(s.failed),
                str(s.pruned),
                str(s.paused),
                str(s.steps),
                f"{printable(s.objective)} ({printable(s.direction[:3])})",
                _fmt(s.best_value),
            )
        )
    if len(rows) > 1:
        _table(rows)
    return 1 if failed else 0


def cmd_show(args: argparse.Namespace) -> int:
    storage = _open(args.file)
    if not storage.exists(args.name):
        _say(f"no study {args.name!r} in {args.file}; it has {storage.studies()}")
        return 2
    journal = Journal.open(storage, args.name, read_only=True)
    _skipped(args.file, args.name, journal)
    wanted = [TrialState(s) for s in args.state] if args.state else None
    trials: list[Trial] = journal.query(lambda s: s.trials(wanted))
    summary = journal.summary()
    if args.sort == "value":
        sign = 1.0 if summary.direction == "minimize" else -1.0
        trials.sort(key=lambda t: (t.value is None, sign * t.value if t.value is not None else 0))
    if args.limit:
        trials = trials[: args.limit]
    names = list(journal.space.names)
    print(printable(progress_line(summary)))
    header = ("#", "state", _fmt(summary.objective), *map(_fmt, names))
    rows = [(*header, "step", "duration", "worker", "reason")]
    for t in trials:
        reason = _reason(t.error or "")
        rows.append(
            (
                str(t.number),
                t.state.value,
                _fmt(t.value),
                *(_fmt(t.params[n]) if n in t.params else "" for n in names),
                _fmt(t.reports[-1].step) if t.reports else "",
                _fmt(t.duration),
                _fmt(t.worker or ""),
                _fmt(reason[:60]),
            )
        )
    _table(rows)
    return 0


def _reason(error: str) -> str:
    """The line of a failed trial's error that says what happened: in a traceback, the
    exception's first line (its type and message) after the last frame; else the first."""
    # (an exception group draws its members' tracebacks behind "| " and "+-" margins)
    lines = [
        re.sub(r"^(?:\s*[|+]-*)+ ?", "", line) if line.lstrip()[:1] in ("|", "+") else line
        for line in error.strip().splitlines()
        if line.strip()
    ]
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    if not frames:
        return lines[0].strip() if lines else ""
    i = frames[-1] + 1
    while i < len(lines) and lines[i].startswith("    "):  # the frame's code and carets
        i += 1
    return lines[i].strip() if i < len(lines) else lines[-1].strip()


def cmd_extensions(args: argparse.Namespace) -> int:
    from asynchpo import extensions

    found = extensions.describe()
    if not found:
        print("no extension is installed (pip install ./extensions/<name>)")
        return 0
    _table([("group", "name", "package"), *found])
    return 0


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(
        prog="asynchpo",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = sub.add_parser(
        "demo",
        help="run a real study on a local dask cluster",
        description="Tune an SVM on scikit-learn's digits with a local dask "
        "cluster; every trial is saved, and re-running goes on "
        "with the same study.",
    )
    d.add_argument("--trials", type=int, default=60, help="new trials to run (default 60)")
    d.add_argument("--workers", type=int, default=2, help="dask worker processes (default 2)")
    d.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="trials in flight at once (default: one per worker thread)",
    )
    d.add_argument(
        "--storage", default="asynchpo-demo.db", help="SQLite file (default asynchpo-demo.db)"
    )
    d.add_argument("--name", default="demo", help="study name (default demo)")
    d.add_argument("--seed", type=int, default=None, help="sampler seed")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "studies",
        help="list the studies in a file",
        description="List the studies in an SQLite file, with trial counts and best values.",
    )
    s.add_argument("file", help="the SQLite file")
    s.set_defaults(func=cmd_studies)

    w = sub.add_parser(
        "show",
        help="show one study's trials",
        description="Show the trials of one study as a table.",
    )
    w.add_argument("file", help="the SQLite file")
    w.add_argument("name", help="the study's name")
    w.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in TrialState],
        help="only trials in this state (repeatable)",
    )
    w.add_argument(
        "--sort",
        choices=["number", "value"],
        default="number",
        help="order of the rows (default number)",
    )
    w.add_argument("--limit", type=int, default=None, help="show at most this many rows")
    w.set_defaults(func=cmd_show)

    e = sub.add_parser(
        "extensions",
        help="list the installed extensions",
        description="List what installed packages plug into asynchpo (entry points), "
        'e.g. the samplers that Study(sampler="<name>") accepts.',
    )
    e.set_defaults(func=cmd_extensions)
    return p


def _quiet_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush at exit does
    not fail again on the closed pipe (as Python's documentation on SIGPIPE advises)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file (tests, notebooks)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asynchpo`` command.

    Reading a file (``studies``, ``show``) never ends in a traceback: whatever is wrong
    with the file is one line on stderr that names it, and the exit status is 1; the
    records it skipped are said once per study.
    """
    from asynchpo.journal import StudyInUseError

    args = parser().parse_args(argv)
    reading = args.command in ("studies", "show")
    with warnings.catch_warnings(record=reading) as caught:
        warnings.simplefilter("always")
        try:
            result: int = args.func(args)
        except BrokenPipeError:  # the reader left (``| head``): nothing is wrong with the file
            if not reading:
                raise
            _quiet_stdout()
            return 1
        except StudyInUseError as error:
            _say(str(error))
            return 1
        except Exception as error:
            if not reading:
                raise
            _say(_refused(args.file, error))
            return 1
        finally:
            for warning in caught or ():
                text = str(warning.message)
                if issubclass(warning.category, CorruptRecordWarning) and _RECORD.search(text):
                    continue  # a skipped record: each study's line says it
                _say(f"warning: {text}")
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
