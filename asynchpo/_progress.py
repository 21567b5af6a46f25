"""A one-line text progress view of a running study, for terminals."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from asynchpo._summary import Summary
from asynchpo.widgets._text import number, plain, real

if TYPE_CHECKING:
    from asynchpo.events import Event
    from asynchpo.journal import Journal


def progress_line(s: Summary, now: float | None = None) -> str:
    """``name: 12/50 done | 4 running | 1 failed | best loss=0.123 | 8s``, from a summary.

    Whatever the study holds, the line is short printable text (control characters are
    written as escapes: a study file never drives the terminal), and drawing it never raises.
    """
    total = "" if s.total is None else f"/{plain(s.total)}"
    parts = [f"{plain(s.name)}: {plain(s.done)}{total} done", f"{plain(len(s.running))} running"]
    counts = (
        (s.failed, "failed"),
        (s.pruned, "pruned"),
        (s.paused, "paused"),
        (s.interrupted, "interrupted"),
    )
    for count, what in counts:
        if real(count):
            parts.append(f"{plain(count)} {what}")
    if s.best_value is not None:
        parts.append(f"best {plain(s.objective, 60)}={number(s.best_value, '.6g')}")
    try:
        elapsed = real(s.elapsed(now))
    except Exception:  # a hostile study's times
        elapsed = None
    parts.append("-" if elapsed is None else f"{elapsed:.0f}s")
    if real(s.steps):
        parts.append(f"{plain(s.steps)} steps")
    return " | ".join(parts)


class TextProgress:
    """Redraws the study's :func:`progress_line` in place, from the journal's summary.

    The journal calls its listener after each event; the line is redrawn from there at most
    every ``interval`` seconds, and once more when closed.
    """

    def __init__(self, journal: Journal, stream: IO[str] | None = None, interval: float = 0.2):
        self.journal = journal
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._last = 0.0
        self._width = 0
        self._lock = threading.Lock()
        journal.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.draw()  # the writer holds the journal's lock, which lets it read the summary

    def line(self) -> str:
        """The text of the progress line now."""
        return progress_line(self.journal.summary(), time.time())

    def draw(self) -> None:
        text = self.line()  # the journal's lock first, never inside the bar's own
        with self._lock:
            pad = max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()

    def close(self, *exc: Any) -> None:
        self.journal.unsubscribe(self._on_event)
        self.draw()
        self.stream.write("\n")
        self.stream.flush()
