"""A one-line text progress view of a running study, for terminals."""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

from asynchpo.events import (
    Event,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialInterrupted,
    TrialPruned,
    TrialRetried,
)

if TYPE_CHECKING:
    from asynchpo.study import Study


class TextProgress:
    """Redraws ``name: 12/50 done | 4 running | 1 failed | best loss=0.123 | 8s`` in place.

    It folds the run's events into counts (no I/O per event) and redraws at most every
    ``interval`` seconds, and once more when closed.
    """

    def __init__(
        self, study: Study, total: int | None, stream: IO[str] | None = None, interval: float = 0.2
    ):
        self.study, self.total = study, total
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.counts = {"done": 0, "running": 0, "failed": 0, "pruned": 0}
        self._t0 = time.monotonic()
        self._last = 0.0
        self._width = 0

    def __call__(self, event: Event) -> None:
        c = self.counts
        if isinstance(event, (TrialAsked, TrialRetried)):
            c["running"] += 1
        elif isinstance(event, (TrialCompleted, TrialFailed, TrialPruned, TrialInterrupted)):
            c["running"] = max(0, c["running"] - 1)
            if not isinstance(event, TrialInterrupted):
                c["done"] += 1
            if isinstance(event, TrialFailed):
                c["failed"] += 1
            elif isinstance(event, TrialPruned):
                c["pruned"] += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.draw()

    def line(self) -> str:
        """The text of the progress line now."""
        c, study = self.counts, self.study
        total = "" if self.total is None else f"/{self.total}"
        parts = [f"{study.name}: {c['done']}{total} done", f"{c['running']} running"]
        if c["failed"]:
            parts.append(f"{c['failed']} failed")
        if c["pruned"]:
            parts.append(f"{c['pruned']} pruned")
        best = study._state.best_number
        if best is not None:
            parts.append(f"best {study.objective}={study._state.trial(best).value:.6g}")
        parts.append(f"{time.monotonic() - self._t0:.0f}s")
        return " | ".join(parts)

    def draw(self) -> None:
        text = self.line()
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self, *exc: Any) -> None:
        self.draw()
        self.stream.write("\n")
        self.stream.flush()
