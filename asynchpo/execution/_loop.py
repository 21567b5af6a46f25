"""The driver: keeps ``max_concurrent`` trials in flight and records everything that happens.

One coroutine joins a journal and a sampler (which decide) to a backend (which runs). It
asks for as many trials as there are free slots in one ``suggest`` call, computed off the
event loop, submits them, and turns the messages the backend returns into events the moment
they arrive: one transaction per round of messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asynchpo import _checkpoint
from asynchpo.events import (
    Event,
    TrialCheckpointed,
    TrialCompleted,
    TrialFailed,
    TrialForked,
    TrialPaused,
    TrialPruned,
    TrialReported,
    TrialRetried,
    TrialStarted,
)
from asynchpo.execution._backend import Backend, Finished, Job, Message, Reported, Started
from asynchpo.execution._schedule import SchedulerWarning, Scheduling
from asynchpo.journal import StudyInUseError
from asynchpo.schedulers import BaseScheduler, Decision
from asynchpo.trial import Failure, Trial, TrialState

if TYPE_CHECKING:
    from asynchpo.execution._suggest import Suggester
    from asynchpo.journal import Journal

Callback = Callable[[Trial], Any]

#: A trial the scheduler stopped or paused is cancelled if it has not ended this long (or
#: three times the time between its last two reports, if longer) after the decision.
DECISION_GRACE = 2.0


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
    """Runs one ``optimize`` call: trials from ``suggester`` (a sampler over ``journal``),
    run on ``backend``, every outcome recorded in ``journal``."""

    def __init__(
        self,
        journal: Journal,
        suggester: Suggester,
        objective: Callable[[dict[str, Any]], Any],
        objective_name: str,
        backend: Backend,
        config: RunConfig,
        scheduler: BaseScheduler | None = None,
        checkpoints: str | None = None,
    ):
        self.journal, self.suggester, self.objective = journal, suggester, objective
        self.scheduler, self.checkpoints = scheduler, checkpoints
        self.scheduling: Scheduling | None = None  # the run's copy, made when it begins
        self.objective_name, self.backend, self.config = objective_name, backend, config
        self._stop = False
        self._cancel_running = False
        self._stop_reason = "stopped"
        self._running: dict[int, int] = {}  # trial -> submission attempt
        self._started: dict[int, float] = {}  # trial -> start time of its current execution
        self._to_cancel: set[int] = set()  # trials to stop, asked from other threads
        self._batch: list[Event] = []  # events of one round, recorded together
        self._done: list[int] = []  # trials finished in this round, for the callbacks
        self._attempts: dict[int, int] = {}  # trial -> executions started, all runs
        self._worker: dict[int, str | None] = {}  # trial -> worker of its last execution
        self._seqs: dict[int, set[int]] = {}  # trial -> reports recorded by this driver
        self._submission: dict[int, int] = {}  # trial -> its latest submission's attempt
        self._heard: dict[int, float] = {}  # trial -> when its last report (or start) came
        self._gap: dict[int, float] = {}  # trial -> the time between its last two reports
        self._deciding: dict[int, tuple[Decision, float, int | None]] = {}  # (what, by, step)
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

    def _cancelled(self, number: int) -> TrialFailed:
        return TrialFailed(
            time=self.backend.now(),
            number=number,
            failure=Failure.CANCELLED.value,
            reason="stopped by hand while it ran",
        )

    def _cancel_requested(self) -> None:
        # a trial asked but not submitted yet (its suggestion is still being handed over)
        # stays in the set: it is cancelled when it would be submitted
        for number in list(self._to_cancel):
            if number in self._running:
                self._to_cancel.discard(number)
                self.backend.cancel(number)
                self._finish(number, self._cancelled(number))

    def _record(self, event: Event) -> None:
        self._batch.append(event)

    def _act(self) -> None:
        """Pass on what the scheduler decided about the reports just recorded."""
        scheduling = self.scheduling
        if scheduling is None:
            return
        if scheduling.error is not None:
            raise scheduling.error
        decisions, scheduling.decisions = scheduling.decisions, []
        now = self.backend.now()
        for number, decision, step in decisions:
            if number in self._running and number not in self._deciding:
                grace = max(DECISION_GRACE, 3 * self._gap.get(number, 0.0))
                self._deciding[number] = (decision, now + grace, step)
                self.backend.decide(number, decision.value)

    def _flush(self) -> None:
        """Record this round's events in one transaction, then run the callbacks."""
        batch, self._batch = self._batch, []
        if batch:
            self.journal.record(*batch)
        self._act()
        done, self._done = self._done, []
        for number in done:
            trial = self._trial(number)
            for callback in self.config.callbacks:
                callback(trial)

    def _suggest_with_results(self, want: int) -> list[int]:
        """New trials from a cheap sampler, here and now, recorded in one transaction with
        this round's events. A cheap sampler's suggestions do not depend on those (they only
        move points from running to finished); the run has no callback waiting to see them
        first."""
        batch, self._batch = self._batch, []
        try:
            numbers = self.suggester.suggest(want, self.run_id, before=batch)
        except BaseException:
            self._batch = batch + self._batch  # recorded on the way out
            raise
        self._done.clear()  # no callback to run
        self._act()
        return numbers

    def _trial(self, number: int) -> Trial:
        return self.journal.query(lambda s: s.trial(number))

    def _attempts_of(self, number: int) -> int:
        return self.journal.query(lambda s: s.trial(number).attempts)

    def _submit(self, number: int, attempt: int) -> None:
        if number in self._to_cancel:  # stopped by hand before it could start
            self._to_cancel.discard(number)
            self._finish(number, self._cancelled(number))
            return
        trial, seq, restore = self.journal.query(
            lambda s: (s.trial(number), s.next_seq(number), s.checkpoint_of(number))
        )
        self._attempts[number] = trial.attempts
        self._running[number] = self._submission[number] = attempt
        self._started.pop(number, None)
        self._heard[number] = self.backend.now()
        job = Job(
            number,
            attempt,
            dict(trial.params),
            self.objective,
            self.objective_name,
            first_seq=seq,
            checkpoints=self.checkpoints,
            restore=restore,
        )
        self.backend.submit(job)

    async def _start_proposals(self, max_concurrent: int, left: int | None) -> int:
        """Start the new trials the scheduler proposes (copies of better trials), at most
        ``left``; how many were started."""
        assert self.scheduling is not None
        name = type(self.scheduling.scheduler).__name__
        started = 0
        while len(self._running) < max_concurrent and (left is None or started < left):
            proposal = self.scheduling.propose()
            if proposal is None:
                break
            try:
                params = self.journal.space.check(proposal.params)
            except ValueError as exc:
                raise ValueError(f"{name}.propose: {exc}") from None
            after = None
            if proposal.parent is not None:
                after = await self._fork(proposal.parent, name)
                if after is None:
                    break
            self._flush()
            (number,) = self.journal.ask([params], self.run_id, after=after)
            self._act()
            started += 1
            self._submit(number, 1)
        return started

    async def _fork(self, parent: int, name: str) -> Callable[[list[int]], list[Event]] | None:
        """What says that the trial asked starts from a copy of ``parent``'s latest
        checkpoint, made now (the parent, training on, deletes its own older ones); None
        when that one is gone already (the next report names a newer one: try then). The
        copy is made in a thread: a large file on a shared file system does not hold up
        the event loop that dask's messaging runs on."""
        saved = self.journal.query(
            lambda s: s.checkpoint_of(parent) if s.has_trial(parent) else None
        )
        if saved is None:
            raise ValueError(
                f"checkpoint: {name} copies trial {parent}, which saved no checkpoint; call "
                "asynchpo.checkpoint(state) in the objective before each asynchpo.report(...), "
                "and start from asynchpo.restore()"
            )
        if self.checkpoints is None:
            raise ValueError(f"checkpoint_dir: {name} copies checkpoints; the study has no folder")
        try:
            mine = await asyncio.to_thread(
                _checkpoint.copy, self.checkpoints, saved["name"], saved["sha256"], parent
            )
        except _checkpoint.CheckpointError:
            return None
        now = self.backend.now()
        return lambda numbers: [TrialForked(time=now, number=numbers[0], parent=parent, **mine)]

    def _end_as_decided(self, number: int) -> bool:
        """End interrupted trial ``number`` as the scheduler had decided before (stopped:
        pruned; paused: paused) rather than run it again; whether it was."""
        decision = None if self.scheduling is None else self.scheduling.decided(number)
        if decision is None or decision is Decision.CONTINUE:
            return False
        reports = self.journal.query(lambda s: s.trial(number).reports)
        step = reports[-1].step if reports else None
        now = self.backend.now()
        self._record(
            TrialPaused(time=now, number=number, step=step)
            if decision is Decision.PAUSE
            else TrialPruned(time=now, number=number, step=step)
        )
        return True

    def _resume_paused(self, max_concurrent: int, idle: bool) -> None:
        """Fill free slots with the paused trials the scheduler wants to go on; ``idle``:
        no new trial will be asked for them."""
        assert self.scheduling is not None
        if self._batch and self.scheduling.scheduler.pauses:
            self._flush()  # the pauses of this round first
        while len(self._running) < max_concurrent:
            number = self.scheduling.resume(idle)
            if number is None:
                return
            self._record(
                TrialRetried(
                    time=self.backend.now(),
                    number=number,
                    attempt=self._attempts_of(number) + 1,
                    reason="resumed by the scheduler",
                    run=self.run_id,
                    cause="resumed",
                )
            )
            self._flush()  # heard by the scheduler: it is paused no more
            self._submit(number, self._submission.get(number, 0) + 1)

    async def run(self) -> str:
        """Run until the budget, the timeout, the sampler or a stop ends it; return why."""
        cfg, journal, backend = self.config, self.journal, self.backend
        virtual = backend.virtual
        await backend.open(journal.name)
        try:
            max_concurrent = cfg.max_concurrent or await backend.default_concurrency()
            self.run_id = journal.begin_run(
                n_trials=cfg.n_trials,
                max_concurrent=max_concurrent,
                clock=backend.now,
                virtual=virtual,
                on_lost=backend.wake,
            )
            paused = journal.query(lambda s: s.counts[TrialState.PAUSED])
            if paused and not (self.scheduler is not None and self.scheduler.pauses):
                warnings.warn(
                    f"study {journal.name!r}: {paused} trial(s) are paused, and "
                    + (
                        "the study has no scheduler"
                        if self.scheduler is None
                        else f"{type(self.scheduler).__name__} does not resume paused trials"
                    )
                    + "; they stay paused (load it with the scheduler that paused them)",
                    SchedulerWarning,
                    stacklevel=2,
                )
            if self.scheduler is not None:
                self.scheduling = Scheduling(self.scheduler, journal)
                if self.scheduling.levels and self.suggester.sampler.multi_fidelity:
                    self.suggester.fidelity = self.scheduling.fidelity
                    self.scheduling.forecaster = self.suggester.sampler.forecast
        except BaseException as exc:
            if self.run_id >= 0:
                journal.end_run("error", error=f"the scheduler could not replay the study: {exc}")
            await backend.close()
            raise
        asked, exhausted, reason = 0, False, "error"
        error: str | None = None
        asking: asyncio.Future[list[int]] | None = None
        asking_want = 0
        try:
            requeue = deque(journal.query(lambda s: s.numbers(TrialState.INTERRUPTED)))
            cheap = self.suggester.sampler.cheap
            merge = cheap and not cfg.callbacks  # a round's results go with its new trials
            deadline = None if cfg.timeout is None else backend.now() + cfg.timeout
            while True:
                if journal.lease_lost:
                    raise StudyInUseError(
                        f"study {journal.name!r}: this run's lease expired (the process was "
                        "held up for longer than it lasts) and another run took the study "
                        "over; this run stops"
                    )
                if deadline is not None and backend.now() >= deadline and not self._stop:
                    self._stop, self._stop_reason = True, "timeout"
                while not self._stop and len(self._running) < max_concurrent and requeue:
                    number = requeue.popleft()
                    if self._end_as_decided(number):
                        continue
                    self._record(
                        TrialRetried(
                            time=backend.now(),
                            number=number,
                            attempt=self._attempts_of(number) + 1,
                            reason="re-queued after an interruption",
                            run=self.run_id,
                            cause="interrupted",
                        )
                    )
                    self._submit(number, 1)
                if self.scheduling is not None and not self._stop:
                    spent = exhausted or (cfg.n_trials is not None and asked >= cfg.n_trials)
                    self._resume_paused(max_concurrent, idle=spent and asking is None)
                    left = None if cfg.n_trials is None else cfg.n_trials - asked
                    if asking is None and (left is None or left > 0):
                        asked += await self._start_proposals(max_concurrent, left)
                want = max_concurrent - len(self._running)
                if cfg.n_trials is not None:
                    want = min(want, cfg.n_trials - asked)
                asks = asking is None and not self._stop and not exhausted and want > 0
                if not (asks and merge):
                    self._flush()  # results first: the sampler and the callbacks see them
                    asks = asks and not self._stop  # a callback may have stopped the run
                if asks:
                    if virtual or cheap:
                        # a simulation's clock stands still while it suggests, and a cheap
                        # sampler answers at once: no loop to keep free meanwhile
                        asking_want = want
                        if merge:
                            numbers = self._suggest_with_results(want)
                        else:
                            numbers = self.suggester.suggest(want, self.run_id)
                    else:  # computed in a thread: the loop goes on carrying messages
                        asking = asyncio.ensure_future(
                            self.suggester.suggest_async(want, self.run_id)
                        )
                        asking.add_done_callback(lambda _: backend.wake())
                        asking_want, numbers = want, None
                elif asking is not None and asking.done():
                    numbers, asking = asking.result(), None
                else:
                    numbers = None
                if numbers is not None:
                    exhausted = len(numbers) < asking_want
                    asked += len(numbers)
                    if not self._stop:  # else they are interrupted, to run next time
                        for number in numbers:
                            self._submit(number, 1)
                    continue
                if (not self._running and asking is None) or (self._stop and self._cancel_running):
                    break
                messages = await backend.wait(self._next_deadline(deadline))
                for msg in messages:
                    self._handle(msg)
                self._cancel_requested()
                self._check_trial_timeouts()  # recorded at the top, with any new trials
            if self._stop:
                reason = self._stop_reason
            elif exhausted:
                reason = "exhausted"
            else:
                reason = "complete"
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if asking is not None:  # its trials are recorded: wait, so they are interrupted
                with contextlib.suppress(BaseException):
                    await asyncio.wait([asking])
            for number in list(self._running):
                backend.cancel(number)
            self._running.clear()
            unrecorded: BaseException | None = None
            raising = error is not None  # an exception is on its way out already
            try:
                self._flush()
            except BaseException as exc:  # raised below, once the run's end is recorded
                unrecorded, reason = exc, "error"
                error = error or f"{type(exc).__name__}: {exc}"
            why = self._stop_reason if self._stop else "the driver stopped on an error"
            try:
                journal.end_run(reason, error=error, interrupted=why)
            finally:
                if self.scheduling is not None:
                    self.scheduling.close()
                    self.suggester.fidelity = None
                await backend.close()
            if unrecorded is not None and not raising:
                raise unrecorded
        return reason

    def _next_deadline(self, deadline: float | None) -> float | None:
        times = [] if deadline is None or self._stop else [deadline]
        if self.config.trial_timeout is not None and self._started:
            times.append(min(self._started.values()) + self.config.trial_timeout)
        times.extend(by for _, by, _ in self._deciding.values())
        return min(times) if times else None

    def _check_trial_timeouts(self) -> None:
        now = self.backend.now()
        for number, (decision, by, step) in list(self._deciding.items()):
            if now >= by and number in self._running:  # it stopped reporting: cancelled
                self.backend.cancel(number, hung=True)  # (a worker it holds is freed)
                ended: Event = (
                    TrialPaused(time=now, number=number, step=step)
                    if decision is Decision.PAUSE
                    else TrialPruned(time=now, number=number, step=step)
                )
                self._finish(number, ended)
        limit = self.config.trial_timeout
        if limit is None:
            return
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
            self._on_started(msg.number, msg.worker, lost=msg.lost)
        elif isinstance(msg, Reported):
            self._on_report(msg.number, msg.step, msg.metrics, msg.seq, msg.checkpoint)
        elif isinstance(msg, Finished):
            self._on_finished(msg)

    def _on_started(
        self, number: int, worker: str | None, at: float | None = None, lost: str = ""
    ) -> None:
        now = self.backend.now()
        if number in self._started:
            # dask ran the task again: the worker of the last execution died
            self._flush()
            losses = self._losses(number)
            why = f"; {lost}" if lost else ""
            lost = f"{self._worker.get(number)}"
            if losses >= self.config.max_retries:
                self.backend.cancel(number)
                self._finish(
                    number,
                    TrialFailed(
                        time=now,
                        number=number,
                        failure=Failure.WORKER_LOST.value,
                        reason=f"its worker was lost on all {losses + 1} attempts "
                        f"(last: {lost}{why})",
                    ),
                )
                return
            self._retry_lost(number, now, f"worker {lost} was lost{why}")
        self._started[number] = now
        self._attempts[number] += 1
        self._worker[number] = worker
        self._record(
            TrialStarted(
                time=now if at is None else at,
                number=number,
                attempt=self._attempts[number],
                worker=worker,
            )
        )

    def _retry_lost(self, number: int, now: float, reason: str) -> None:
        """Record that trial ``number`` runs again because its worker was lost."""
        self._record(
            TrialRetried(
                time=now,
                number=number,
                attempt=self._attempts[number] + 1,
                reason=reason,
                run=self.run_id,
                cause="worker_lost",
            )
        )

    def _losses(self, number: int) -> int:
        return self.journal.query(lambda s: s.lost_workers(number))

    def _on_checkpoint(self, number: int, saved: dict[str, Any] | None) -> None:
        if saved is not None:
            self._record(
                TrialCheckpointed(
                    time=self.backend.now(),
                    number=number,
                    seq=saved["seq"],
                    name=saved["name"],
                    sha256=saved["sha256"],
                )
            )

    def _on_report(
        self,
        number: int,
        step: int,
        metrics: dict[str, Any],
        seq: int,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        seen = self._seqs.setdefault(number, set())
        if seq in seen or self.journal.query(lambda s: s.has_report(number, seq)):
            return
        seen.add(seq)
        self._on_checkpoint(number, checkpoint)
        now = self.backend.now()
        self._record(TrialReported(time=now, number=number, step=step, metrics=metrics, seq=seq))
        self._gap[number] = now - self._heard.get(number, now)
        self._heard[number] = now

    def _on_finished(self, msg: Finished) -> None:
        now, number = self.backend.now(), msg.number
        if number not in self._started:  # a trial too short to announce its start
            at = None if msg.duration is None else now - msg.duration
            self._on_started(number, msg.worker, at)
            if number not in self._running:
                return
        for r in msg.reports:
            self._on_report(number, r["step"], r["metrics"], r["seq"], r.get("checkpoint"))
        self._on_checkpoint(number, msg.checkpoint)
        event: Event
        if msg.status == "ok":
            event = TrialCompleted(time=now, number=number, values=msg.values or {})
        elif msg.status == "pruned":
            event = TrialPruned(time=now, number=number, step=msg.step)
        elif msg.status == "paused":
            event = TrialPaused(time=now, number=number, step=msg.step)
        elif msg.status in ("error", "invalid"):
            kind = Failure.ERROR if msg.status == "error" else Failure.INVALID
            event = TrialFailed(
                time=now, number=number, reason=msg.error or msg.status, failure=kind.value
            )
        else:  # lost: the backend gave up on this submission
            self._flush()
            losses = self._losses(number)
            if losses < self.config.max_retries:
                self._retry_lost(number, now, f"worker lost: {msg.error}")
                self._flush()
                self._submit(number, msg.attempt + 1)
                return
            event = TrialFailed(
                time=now,
                number=number,
                failure=Failure.WORKER_LOST.value,
                reason=f"its worker was lost on all {losses + 1} attempts: {msg.error}",
            )
        self._finish(number, event)

    def _finish(self, number: int, event: Event) -> None:
        self._running.pop(number, None)
        self._started.pop(number, None)
        self._seqs.pop(number, None)
        self._heard.pop(number, None)
        self._gap.pop(number, None)
        self._deciding.pop(number, None)
        self._record(event)
        self._done.append(number)
