"""One attempt of a trial run report by report, in lockstep with a simulation's clock.

The objective runs in a thread of its own, but never at the same time as the simulation:
each ``asynchpo.report`` hands control back and waits until the virtual clock reaches the
next step, with the scheduler's decision on that report. Runs are therefore exactly
reproducible, however many trials are in flight.
"""

from __future__ import annotations

import threading
from typing import Any

from asynchpo._report import context_for, run_trial
from asynchpo.execution._backend import Job

#: How many reports a cancelled attempt may still make, each told to stop, before its
#: thread is left waiting for good (an objective that swallows ``Pruned`` and goes on).
_ABANDON_TRIES = 100


class Stepped:
    """Trial ``job`` run one report at a time: :meth:`advance` runs it to its next report."""

    def __init__(self, job: Job):
        self.job = job
        self.out: dict[str, Any] | None = None  # how it ended, once it has
        self._pending: dict[str, Any] | None = None
        self._decision: str | None = None
        self._go = threading.Semaphore(0)
        self._back = threading.Semaphore(0)
        self._thread: threading.Thread | None = None

    def _main(self) -> None:
        def send(msg: dict[str, Any]) -> None:
            self._pending = msg
            self._back.release()
            self._go.acquire()

        def decide() -> str | None:
            return self._decision

        job = self.job
        ctx = context_for(job, send, decide)
        try:
            self.out = run_trial(job.objective, job.params, job.objective_name, ctx)
        finally:
            self._pending = None
            self._back.release()

    def advance(self, decision: str | None = None) -> dict[str, Any] | None:
        """Go on past the last report (told ``decision`` about it) to the next one, which is
        returned; None once the attempt ended (see :attr:`out`)."""
        if self.out is not None:
            return None
        self._decision = decision
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._main, name=f"asynchpo-sim-trial-{self.job.number}", daemon=True
            )
            self._thread.start()
        else:
            self._go.release()
        self._back.acquire()
        return self._pending

    def abandon(self) -> None:
        """End the attempt: each report it still makes is told to stop."""
        if self._thread is None:
            return
        for _ in range(_ABANDON_TRIES):
            if self.advance("stop") is None:
                return
