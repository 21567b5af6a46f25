"""Trials in threads of the driver's own process: the backend when no dask client is given."""

from __future__ import annotations

import threading
from typing import Any

from asynchpo._report import TrialContext, run_trial
from asynchpo.execution._backend import Finished, Job, QueueBackend, Reported, Started


class LocalBackend(QueueBackend):
    """Each attempt runs in its own daemon thread of this process.

    Handy for quick studies and for objectives that release the GIL. A trial that overruns
    ``trial_timeout`` is recorded as failed and its thread is abandoned (Python cannot kill a
    thread); use a dask cluster to have hung trials' workers restarted.
    """

    def __init__(self) -> None:
        self._cancelled: set[tuple[int, int]] = set()
        self._attempts: dict[int, int] = {}
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        def send(msg: dict[str, Any]) -> None:
            self.post(Reported(job.number, msg["step"], msg["metrics"], msg["seq"]))

        def work() -> None:
            self.post(Started(job.number, job.attempt, "local"))
            ctx = TrialContext(job.number, job.attempt, send)
            out = run_trial(job.objective, job.params, job.objective_name, ctx)
            with self._lock:
                if (job.number, job.attempt) in self._cancelled:
                    return
            self.post(Finished.from_run(job.number, job.attempt, out, "local"))

        self._attempts[job.number] = job.attempt
        threading.Thread(target=work, name=f"asynchpo-trial-{job.number}", daemon=True).start()

    def cancel(self, number: int, hung: bool = False) -> None:
        with self._lock:
            self._cancelled.add((number, self._attempts.get(number, 0)))
