"""The driver: keeps ``max_concurrent`` trials in flight and records everything that happens.

One coroutine joins a study (which decides) to a backend (which runs). It asks for as many
trials as there are free slots in one ``suggest`` call, submits them, and folds each message
the backend returns into events the moment it arrives.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asynchpo.events import (
    RunFinished,
    RunStarted,
    TrialCompleted,
    TrialFailed,
    TrialInterrupted,
    TrialPruned,
    TrialReported,
    TrialRetried,
    TrialStarted,
)
from asynchpo.execution._backend import Backend, Finished, Job, Message, Reported, Started
from asynchpo.trial import Failure, Trial, TrialState

if TYPE_CHECKING:
    from asynchpo.study import Study

Callback = Callable[["Study", Trial], Any]


@dataclass(frozen=True)
class RunConfig:
    """The settings of one ``optimize`` call, already checked."""

    n_trials: int | None
    timeout: float | None
    max_concurrent: int | None
    trial_timeout: float | None
    max_retries: int
    callbacks: Sequence[Callback] = ()


class Driver:
    """Runs one ``optimize`` call of ``study`` on ``backend``."""

    def __init__(
        self,
        study: Study,
        objective: Callable[[dict[str, Any]], Any],
        backend: Backend,
        config: RunConfig,
    ):
        self.study, self.objective, self.backend, self.config = study, objective, backend, config
        self._stop = False
        self._cancel_running = False
        self._stop_reason = "stopped"
        self._running: dict[int, int] = {}  # trial -> submission attempt
        self._started: dict[int, float] = {}  # trial -> start time of its current execution
        self._to_cancel: set[int] = set()  # trials to stop, asked from other threads
        self.run_id = -1

    def request_stop(self, cancel_running: bool = False, reason: str = "stopped") -> None:
        """Stop asking for trials; with ``cancel_running``, interrupt the running ones too.

        Safe to call from any thread (a callback, a widget, a signal handler).
        """
        self._cancel_running = self._cancel_running or cancel_running
        self._stop_reason = reason
        self._stop = True
        self.backend.wake()

    def request_cancel(self, number: int) -> None:
        """Stop one running trial; it fails as ``cancelled``. Safe from any thread."""
        self._to_cancel.add(number)
        self.backend.wake()

    def _cancel_requested(self) -> None:
        while self._to_cancel:
            number = self._to_cancel.pop()
            if number in self._running:
                self.backend.cancel(number)
                self._finish(
                    number,
                    TrialFailed(
                        time=self.backend.now(),
                        number=number,
                        failure=Failure.CANCELLED.value,
                        reason="stopped by hand while it ran",
                    ),
                )

    def _record(self, event: Any) -> None:
        self.study._record(event)

    def _submit(self, number: int, attempt: int) -> None:
        params = self.study._state.trial(number).params
        self._running[number] = attempt
        self._started.pop(number, None)
        self.backend.submit(
            Job(number, attempt, dict(params), self.objective, self.study.objective)
        )

    async def run(self) -> str:
        """Run until the budget, the timeout, the sampler or a stop ends it; return why."""
        cfg, state, backend = self.config, self.study._state, self.backend
        await backend.open(self.study.name)
        max_concurrent = cfg.max_concurrent or await backend.default_concurrency()
        self.run_id = max(state.runs, default=-1) + 1
        self._record(
            RunStarted(
                time=backend.now(),
                run=self.run_id,
                n_trials=cfg.n_trials,
                max_concurrent=max_concurrent,
                pid=os.getpid(),
                host=socket.gethostname(),
            )
        )
        requeue = deque(state.numbers(TrialState.INTERRUPTED))
        deadline = None if cfg.timeout is None else backend.now() + cfg.timeout
        asked, exhausted, reason = 0, False, "error"
        try:
            while True:
                if deadline is not None and backend.now() >= deadline and not self._stop:
                    self._stop, self._stop_reason = True, "timeout"
                while not self._stop and len(self._running) < max_concurrent:
                    if requeue:
                        number = requeue.popleft()
                        self._record(
                            TrialRetried(
                                time=backend.now(),
                                number=number,
                                attempt=state.trial(number).attempts + 1,
                                reason="re-queued after an interruption",
                            )
                        )
                        self._submit(number, 1)
                        continue
                    want = max_concurrent - len(self._running)
                    if cfg.n_trials is not None:
                        want = min(want, cfg.n_trials - asked)
                    if want <= 0 or exhausted:
                        break
                    numbers = self.study._suggest(want, run=self.run_id)
                    exhausted = len(numbers) < want
                    asked += len(numbers)
                    for number in numbers:
                        self._submit(number, 1)
                if not self._running or (self._stop and self._cancel_running):
                    break
                messages = await backend.wait(self._next_deadline(deadline))
                for msg in messages:
                    self._handle(msg)
                self._cancel_requested()
                self._check_trial_timeouts()
            if self._stop:
                reason = self._stop_reason
            elif exhausted:
                reason = "exhausted"
            else:
                reason = "complete"
        finally:
            for number in list(self._running):
                backend.cancel(number)
                why = self._stop_reason if self._stop else "the driver stopped on an error"
                self._record(TrialInterrupted(time=backend.now(), number=number, reason=why))
            self._running.clear()
            self._record(RunFinished(time=backend.now(), run=self.run_id, reason=reason))
            await backend.close()
        return reason

    def _next_deadline(self, deadline: float | None) -> float | None:
        times = [] if deadline is None or self._stop else [deadline]
        if self.config.trial_timeout is not None and self._started:
            times.append(min(self._started.values()) + self.config.trial_timeout)
        return min(times) if times else None

    def _check_trial_timeouts(self) -> None:
        limit = self.config.trial_timeout
        if limit is None:
            return
        now = self.backend.now()
        for number, t0 in list(self._started.items()):
            if now - t0 >= limit:
                self.backend.cancel(number, hung=True)
                self._finish(
                    number,
                    TrialFailed(
                        time=now,
                        number=number,
                        failure=Failure.TIMEOUT.value,
                        reason=f"ran longer than trial_timeout={limit:g}s",
                    ),
                )

    def _handle(self, msg: Message) -> None:
        if msg.number not in self._running:
            return  # about a trial that is over
        if isinstance(msg, (Started, Finished)) and msg.attempt != self._running[msg.number]:
            return  # from a submission that was replaced
        if isinstance(msg, Started):
            self._on_started(msg.number, msg.worker)
        elif isinstance(msg, Reported):
            self._on_report(msg.number, msg.step, msg.metrics, msg.seq)
        elif isinstance(msg, Finished):
            self._on_finished(msg)

    def _on_started(self, number: int, worker: str | None, at: float | None = None) -> None:
        now, state = self.backend.now(), self.study._state
        if number in self._started:
            # dask ran the task again: the worker of the last execution died
            attempts = state.trial(number).attempts
            lost = state.trial(number).worker
            if attempts >= self.config.max_retries + 1:
                self.backend.cancel(number)
                self._finish(
                    number,
                    TrialFailed(
                        time=now,
                        number=number,
                        failure=Failure.WORKER_LOST.value,
                        reason=f"its worker was lost on all {attempts} attempts (last: {lost})",
                    ),
                )
                return
            self._record(
                TrialRetried(
                    time=now, number=number, attempt=attempts + 1, reason=f"worker {lost} was lost"
                )
            )
        self._started[number] = now
        self._record(
            TrialStarted(
                time=now if at is None else at,
                number=number,
                attempt=state.trial(number).attempts + 1,
                worker=worker,
            )
        )

    def _on_report(self, number: int, step: int, metrics: dict[str, Any], seq: int) -> None:
        if not self.study._state.has_report(number, seq):
            self._record(
                TrialReported(
                    time=self.backend.now(), number=number, step=step, metrics=metrics, seq=seq
                )
            )

    def _on_finished(self, msg: Finished) -> None:
        now, number = self.backend.now(), msg.number
        if number not in self._started:  # a trial too short to announce its start
            at = None if msg.duration is None else now - msg.duration
            self._on_started(number, msg.worker, at)
            if number not in self._running:
                return
        for r in msg.reports:
            self._on_report(number, r["step"], r["metrics"], r["seq"])
        event: Any
        if msg.status == "ok":
            event = TrialCompleted(time=now, number=number, values=msg.values or {})
        elif msg.status == "pruned":
            event = TrialPruned(time=now, number=number, step=msg.step)
        elif msg.status in ("error", "invalid"):
            kind = Failure.ERROR if msg.status == "error" else Failure.INVALID
            event = TrialFailed(
                time=now, number=number, reason=msg.error or msg.status, failure=kind.value
            )
        else:  # lost: the backend gave up on this submission
            attempts = self.study._state.trial(number).attempts
            if attempts < self.config.max_retries + 1:
                self._record(
                    TrialRetried(
                        time=now,
                        number=number,
                        attempt=attempts + 1,
                        reason=f"worker lost: {msg.error}",
                    )
                )
                self._submit(number, msg.attempt + 1)
                return
            event = TrialFailed(
                time=now,
                number=number,
                failure=Failure.WORKER_LOST.value,
                reason=f"its worker was lost on all {attempts} attempts: {msg.error}",
            )
        self._finish(number, event)

    def _finish(self, number: int, event: Any) -> None:
        self._running.pop(number, None)
        self._started.pop(number, None)
        self._record(event)
        trial = self.study._state.trial(number)
        for callback in self.config.callbacks:
            callback(self.study, trial)
