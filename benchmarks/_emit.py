"""Printing a result table and keeping it in a file: the last step of every benchmark."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path | None) -> None:
    """Print ``lines`` and, if ``out`` is given, write them there too."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")
