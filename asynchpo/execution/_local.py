"""Trials in threads of the driver's own process: the backend when no dask client is given."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asynchpo._report import TrialContext, run_trial
from asynchpo.execution._backend import Backend, Finished, Job, Message, Reported, Started


class LocalBackend(Backend):
    """Each attempt runs in its own daemon thread of this process.

    Handy for quick studies and for objectives that release the GIL. A trial that overruns
    ``trial_timeout`` is recorded as failed and its thread is abandoned (Python cannot kill a
    thread); use a dask cluster to have hung trials' workers restarted.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Message | None] | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._cancelled: set[tuple[int, int]] = set()
        self._attempts: dict[int, int] = {}
        self._lock = threading.Lock()

    async def open(self, study_name: str) -> None:
        self._queue = asyncio.Queue()
        self._aloop = asyncio.get_running_loop()

    def _post(self, msg: Message | None) -> None:
        assert self._aloop is not None and self._queue is not None
        if not self._aloop.is_closed():
            self._aloop.call_soon_threadsafe(self._queue.put_nowait, msg)

    def submit(self, job: Job) -> None:
        def send(msg: dict[str, Any]) -> None:
            self._post(Reported(job.number, msg["step"], msg["metrics"], msg["seq"]))

        def work() -> None:
            self._post(Started(job.number, job.attempt, "local"))
            ctx = TrialContext(job.number, job.attempt, send)
            out = run_trial(job.objective, job.params, job.objective_name, ctx)
            with self._lock:
                if (job.number, job.attempt) in self._cancelled:
                    return
            self._post(
                Finished(
                    job.number,
                    job.attempt,
                    out["status"],
                    out["values"],
                    out["error"],
                    out["step"],
                    "local",
                    out["reports"],
                )
            )

        self._attempts[job.number] = job.attempt
        threading.Thread(target=work, name=f"asynchpo-trial-{job.number}", daemon=True).start()

    async def wait(self, deadline: float | None) -> list[Message]:
        assert self._queue is not None
        timeout = None if deadline is None else max(0.0, deadline - self.now())
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        out = [first]
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return [m for m in out if m is not None]

    def cancel(self, number: int, hung: bool = False) -> None:
        with self._lock:
            self._cancelled.add((number, self._attempts.get(number, 0)))

    def wake(self) -> None:
        if self._aloop is not None:
            self._post(None)
