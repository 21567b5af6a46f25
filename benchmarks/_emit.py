"""What every benchmark shares: printing a result table and keeping it in a file, the runs
kept so that a sweep can be resumed, and the commit measured."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def emit(lines: list[str], out: Path | None) -> None:
    """Print ``lines`` and, if ``out`` is given, write them there too."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")


def median_iqr(values: list[float]) -> str:
    """``median [q1, q3]`` of ``values``, as every result table gives them."""
    q1, med, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return f"{med:.3g} [{q1:.2g}, {q3:.2g}]"


def commit() -> str:
    """The commit of the asynchpo being measured (short; ", modified" when its package has
    changes not committed), or "" outside a checkout."""
    import subprocess

    import asynchpo

    git = ["git", "-C", str(Path(asynchpo.__file__).resolve().parent.parent)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "asynchpo"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + (", modified" if dirty else "")


class Runs:
    """A benchmark's runs, kept as JSON lines in ``path`` (one a run) and looked up by the
    values of the record's ``key`` fields: a run already there is not run again, so that
    seeds can be added later and an interrupted sweep resumed."""

    def __init__(
        self,
        path: Path,
        key: tuple[str, ...],
        keep: Callable[[dict[str, Any]], bool] = lambda record: True,
    ):
        self.path, self.fields = Path(path), key
        self.records: dict[tuple[Any, ...], dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                record = json.loads(line)
                if keep(record):
                    self.records[self.key(record)] = record

    def key(self, record: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(record[f] for f in self.fields)

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        return key in self.records

    def __getitem__(self, key: tuple[Any, ...]) -> dict[str, Any]:
        return self.records[key]

    def add(self, record: dict[str, Any]) -> None:
        """Keep ``record`` (in the file at once: an interrupted sweep loses no run)."""
        self.records[self.key(record)] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def rewrite(self) -> None:
        """The file anew, with the records kept only (those ``keep`` refused are gone)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records.values()))
