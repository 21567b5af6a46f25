"""The backend plug-in point: who runs trials (submit, wait, cancel), separate from who decides."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    """One attempt of one trial, as handed to a backend."""

    number: int
    attempt: int
    params: dict[str, Any]
    objective: Callable[[dict[str, Any]], Any]
    objective_name: str
    first_seq: int = 0  # the seq of its first report (a resumed trial goes on counting)
    checkpoints: str | None = None  # the study's checkpoint folder
    restore: dict[str, str] | None = None  # the checkpoint it starts from: name, sha256


@dataclass(frozen=True)
class Started:
    """An attempt began executing on ``worker``; ``lost`` says why the worker of its last
    execution went away, when the backend knows (a rerun after a worker died)."""

    number: int
    attempt: int
    worker: str | None
    lost: str = ""


@dataclass(frozen=True)
class Reported:
    """An intermediate report arrived while the trial runs."""

    number: int
    step: int
    metrics: dict[str, Any]
    seq: int
    checkpoint: dict[str, Any] | None = None  # saved just before it: name, sha256, seq

    @classmethod
    def from_report(cls, number: int, msg: dict[str, Any]) -> Reported:
        """From a report as :func:`asynchpo.report` made it."""
        return cls(number, msg["step"], msg["metrics"], msg["seq"], msg.get("checkpoint"))


@dataclass(frozen=True)
class Finished:
    """An attempt ended.

    ``status`` is ``"ok"``, ``"invalid"``, ``"error"``, ``"pruned"``, ``"paused"`` (from the
    trial itself) or ``"lost"`` (its worker died and the backend gave up on it).
    ``duration`` is how long the attempt ran as measured where it ran, if known.
    """

    number: int
    attempt: int
    status: str
    values: dict[str, Any] | None = None
    error: str | None = None
    step: int | None = None
    worker: str | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    duration: float | None = None
    checkpoint: dict[str, Any] | None = None  # saved after its last report

    @classmethod
    def from_run(
        cls, number: int, attempt: int, out: dict[str, Any], worker: str | None
    ) -> Finished:
        """From what :func:`asynchpo._report.run_trial` returned."""
        return cls(
            number,
            attempt,
            out["status"],
            out["values"],
            out["error"],
            out["step"],
            worker,
            out["reports"],
            out["end"] - out["start"],
            out.get("checkpoint"),
        )


Message = Started | Reported | Finished


class Backend(ABC):
    """Runs trials and says what happened to them; it never decides what to run.

    ``submit`` hands over a job, ``wait`` returns what happened since the last call (waiting
    until something does, or until the clock reaches ``deadline``), and ``cancel`` drops a
    job. ``now`` is the clock every event of a run is stamped with: real time, or the
    virtual time of a simulation.
    """

    #: Loop to run the driver on (the dask client's), or None for a fresh one.
    loop: Any = None
    #: Whether ``now`` is a simulation's clock, which stands still while the driver thinks
    #: (a suggestion is then awaited before the clock moves on, so runs are reproducible).
    virtual: bool = False

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start (or queue) one attempt of a trial."""

    @abstractmethod
    async def wait(self, deadline: float | None) -> list[Message]:
        """What happened since the last call; empty if ``deadline`` came first or on ``wake``."""

    @abstractmethod
    def cancel(self, number: int, hung: bool = False) -> None:
        """Stop waiting for trial ``number`` and free its slot, as far as the backend can.

        ``hung`` says the trial overran its timeout: a backend that can free the stuck worker
        (by restarting it) should.
        """

    def now(self) -> float:
        """The run's clock, in seconds."""
        import time

        return time.time()

    async def default_concurrency(self) -> int:
        """How many trials to keep in flight when the user does not say."""
        return 1

    def decide(self, number: int, decision: str) -> None:  # noqa: B027 - optional
        """Tell running trial ``number`` what the study's scheduler decided, ``"stop"`` or
        ``"pause"``: its next ``asynchpo.report`` raises ``Pruned`` (or ``Paused``). A backend
        that cannot reach its trials ignores it: the driver cancels a trial that does not end
        soon after."""

    def check_scheduler(self, scheduler: Any) -> None:  # noqa: B027 - optional
        """Raise ``ValueError`` if this backend cannot run trials under ``scheduler``.
        ``Study.start`` calls it before any trial is asked."""

    def wake(self) -> None:  # noqa: B027 - optional: backends whose wait can block override it
        """Make a pending ``wait`` return soon; safe to call from any thread."""

    def check_objective(self, objective: Callable[[dict[str, Any]], Any]) -> None:  # noqa: B027
        """Raise ``TypeError`` naming ``objective`` if this backend cannot run it (e.g. dask
        cannot send it to its workers). ``Study.start`` calls it before any trial is asked.
        Optional: it does nothing by default."""

    async def open(self, study_name: str) -> None:  # noqa: B027 - optional hook
        """Called once before the first submit of a run."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Called once at the end of a run, after every trial is finished or cancelled."""


class QueueBackend(Backend):
    """A backend whose messages arrive in an asyncio queue, from any thread (see ``post``)."""

    _queue: asyncio.Queue[Message | None] | None = None
    _aloop: asyncio.AbstractEventLoop | None = None

    async def open(self, study_name: str) -> None:
        self._queue = asyncio.Queue()
        self._aloop = asyncio.get_running_loop()

    def post(self, msg: Message | None) -> None:
        """Queue ``msg`` for ``wait``; None only wakes it. Safe from any thread."""
        if self._aloop is None or self._queue is None:
            return
        # a message may come after the run's loop is gone (an abandoned, timed-out trial)
        with contextlib.suppress(RuntimeError):
            self._aloop.call_soon_threadsafe(self._queue.put_nowait, msg)

    async def wait(self, deadline: float | None) -> list[Message]:
        assert self._queue is not None, "open() was not called"
        timeout = None if deadline is None else max(0.0, deadline - self.now())
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            return []
        out = [first]
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return [m for m in out if m is not None]

    def wake(self) -> None:
        self.post(None)
