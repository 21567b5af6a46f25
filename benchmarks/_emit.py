"""Printing a result table and keeping it in a file: the last step of every benchmark."""

from __future__ import annotations

from pathlib import Path

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
