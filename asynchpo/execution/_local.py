"""Trials in threads of the driver's own process: the backend when no dask client is given."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from asynchpo._report import context_for, run_trial
from asynchpo.execution._backend import Finished, Job, QueueBackend, Reported, Started


class _DaemonPool:
    """Reused daemon threads: starting a thread per trial stalls a busy driver (``start``
    waits for the new thread to run), and daemon threads let Python exit past a hung trial."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._jobs.put(fn)
        if spawn:
            threading.Thread(target=self._serve, name="asynchpo-trial", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                self._idle += 1


class LocalBackend(QueueBackend):
    """Each attempt runs in a thread of this process.

    Handy for quick studies and for objectives that release the GIL. A trial that overruns
    ``trial_timeout`` is recorded as failed and its thread is abandoned (Python cannot kill a
    thread); use a dask cluster to have hung trials' workers restarted. Threads are pooled
    and reused across trials.
    """

    def __init__(self) -> None:
        self._live: dict[int, object] = {}  # trial -> token of its current submission
        self._decided: dict[int, str] = {}  # trial -> what the scheduler decided about it
        self._lock = threading.Lock()
        self._pool = _DaemonPool()

    def submit(self, job: Job) -> None:
        token = object()  # this submission, and no other: a cancelled one never speaks again

        def live() -> bool:
            with self._lock:
                return self._live.get(job.number) is token

        def send(msg: dict[str, Any]) -> None:
            if live():
                self.post(Reported.from_report(job.number, msg))

        def decide() -> str | None:
            with self._lock:  # a cancelled attempt stops at its next report
                live = self._live.get(job.number) is token
                return self._decided.get(job.number) if live else "stop"

        def work() -> None:
            if live():
                self.post(Started(job.number, job.attempt, "local"))
            ctx = context_for(job, send, decide)
            out = run_trial(job.objective, job.params, job.objective_name, ctx)
            with self._lock:
                if self._live.get(job.number) is not token:
                    return
                del self._live[job.number]
            self.post(Finished.from_run(job.number, job.attempt, out, "local"))

        with self._lock:
            self._live[job.number] = token
            self._decided.pop(job.number, None)
        self._pool.submit(work)

    def decide(self, number: int, decision: str) -> None:
        with self._lock:
            if number in self._live:
                self._decided[number] = decision

    def cancel(self, number: int, hung: bool = False) -> None:
        with self._lock:
            self._live.pop(number, None)
