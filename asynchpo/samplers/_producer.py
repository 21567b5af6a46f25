"""A thread that computes suggestions ahead of the driver, so that free workers get one at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from asynchpo.samplers._base import History

Compute = Callable[[History, np.ndarray], np.ndarray]


class Producer:
    """Owns the model: every suggestion is computed here, one point at a time, in one thread.

    The driver calls :meth:`request` with the latest history, the running points, how many
    it needs now and how many more to keep ready. Each point is computed with the running
    ones *and* the points already queued counted as pending, so queued points keep apart. A
    point computed from an older history is handed out unless the study has since taken it.

    ``settle=True`` makes a request first wait for the points asked for last time, so that
    the sequence of computations, and the points, depend on the requests alone (runs with a
    seed on the simulated backend are reproducible); with ``settle=False`` a request returns
    as soon as enough points are queued, and a point under way is picked up when done.

    The thread ends after ``idle`` seconds with nothing to do and starts again on demand.
    """

    def __init__(self, compute: Compute, idle: float = 5.0):
        self._compute, self._idle = compute, idle
        self._cond = threading.Condition()
        self._ready: list[np.ndarray] = []
        self._want = 0  # points to keep queued
        self._job: tuple[History, np.ndarray] | None = None
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._as_pending: Callable[[np.ndarray], np.ndarray] = lambda u: u

    def request(
        self,
        history: History,
        pending: np.ndarray,
        n: int,
        extra: int,
        *,
        settle: bool,
        free: Callable[[np.ndarray], bool] = lambda u: True,
        as_pending: Callable[[np.ndarray], np.ndarray] = lambda u: u,
        prepare: Callable[[], None] | None = None,
    ) -> np.ndarray:
        """``n`` points (fewer only if the computation fails), then ``extra`` more queued;
        ``as_pending`` makes a point computed into a row of ``pending`` (a running trial).
        With ``settle``, ``prepare`` is called once nothing is under way, before anything
        is computed for this request (the model is then brought up to date in the
        caller's thread, at the same point of every run)."""
        with self._cond:
            if settle:
                self._wait(lambda: not self._busy and len(self._ready) >= self._want)
                if prepare is not None:
                    prepare()
            self._ready = [u for u in self._ready if free(u)]
            self._job, self._want = (history, pending), n + extra
            self._as_pending = as_pending
            self._start()
            self._wait(lambda: len(self._ready) >= n)
            out, self._ready = self._ready[:n], self._ready[n:]
            if out:
                self._job = (history, np.vstack([pending, *map(as_pending, out)]))
            self._want = extra
            self._cond.notify_all()
            return np.array(out).reshape(len(out), history.space.dim)

    def queued(self) -> list[np.ndarray]:
        """The points queued once those asked for are computed, oldest first."""
        with self._cond:
            self._wait(lambda: not self._busy and len(self._ready) >= self._want)
            return list(self._ready)

    def drain(self) -> None:
        """Wait for the point under way, then drop the queue (before the study changes)."""
        with self._cond:
            self._want = 0
            self._cond.wait_for(lambda: not self._busy)
            self._ready, self._job = [], None

    def _wait(self, done: Callable[[], bool]) -> None:
        self._cond.wait_for(lambda: self._error is not None or done())
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _start(self) -> None:
        self._cond.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="asynchpo-gp", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        def work() -> bool:
            return self._job is not None and len(self._ready) < self._want

        while True:
            with self._cond:
                if not self._cond.wait_for(work, timeout=self._idle):
                    self._thread = None
                    return
                assert self._job is not None
                history, pending = self._job
                queued = [self._as_pending(u) for u in self._ready]
                self._busy = True
            try:
                u = self._compute(history, np.vstack([pending, *queued]))
            except BaseException as error:  # raised in the driver's thread instead
                with self._cond:
                    self._error, self._busy, self._want = error, False, 0
                    self._cond.notify_all()
                continue
            with self._cond:
                self._ready.append(u)
                self._busy = False
                self._cond.notify_all()
