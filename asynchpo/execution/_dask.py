"""Trials as dask futures on any ``distributed`` cluster.

The driver runs on the client's own event loop: completions arrive through
``distributed.as_completed``, and a trial's start and its intermediate reports travel from the
worker through dask's event messaging (``Worker.log_event`` -> ``Client.subscribe_topic``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from dask.utils import format_bytes
from distributed import Adaptive, Client, as_completed, get_worker
from distributed.scheduler import KilledWorker

from asynchpo._checks import positive_int
from asynchpo._report import context_for, run_trial
from asynchpo.execution._backend import Finished, Job, Message, QueueBackend, Reported, Started

logger = logging.getLogger(__name__)


#: A trial still running this long after it started tells the driver so; a shorter one does
#: not, since a message just before its result would hold the result back by dask's batching
#: interval. Its result carries the worker and the duration instead.
START_NOTICE_DELAY = 0.05

#: On each worker: what the study's scheduler decided about the trials running there, by
#: task key, set from the driver by dask's ``Client.run`` (a message to the worker; no
#: storage is polled). Bounded: a decision broadcast to every worker stays only where its
#: trial did not run.
_DECISIONS: collections.OrderedDict[str, str] = collections.OrderedDict()
_MAX_DECISIONS = 10_000


class _Notices:
    """Announces, on each worker process, the trials still running ``START_NOTICE_DELAY``
    after they began: one thread of its own that wakes every half delay while trials run,
    so a trial costs two dict updates and no wake-up of the worker's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[str, tuple[float, Callable[[], None]]] = {}
        self._pending = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, key: str, announce: Callable[[], None]) -> None:
        with self._lock:
            self._due[key] = (time.monotonic() + START_NOTICE_DELAY, announce)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="asynchpo-notices", daemon=True
                )
                self._thread.start()
        self._pending.set()

    def remove(self, key: str) -> None:
        with self._lock:
            self._due.pop(key, None)

    def _run(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(START_NOTICE_DELAY / 2)
            now = time.monotonic()
            with self._lock:
                due = [k for k, (at, _) in self._due.items() if at <= now]
                calls = [self._due.pop(k)[1] for k in due]
                if not self._due:
                    self._pending.clear()
            for call in calls:
                with contextlib.suppress(Exception):  # a closing worker: nothing to tell
                    call()


_NOTICES = _Notices()


def _set_decision(key: str, decision: str) -> None:
    """Executed on a worker by ``Client.run``: trial ``key``'s next report raises."""
    _DECISIONS[key] = decision
    while len(_DECISIONS) > _MAX_DECISIONS:
        _DECISIONS.popitem(last=False)


class Outcome:
    """How an attempt ended (:func:`asynchpo._report.run_trial`'s dict), as one object: dask
    pickles it in one piece, where it would serialize a dict's items one by one."""

    __slots__ = ("out",)

    def __init__(self, out: dict[str, Any]):
        self.out = out

    def __reduce__(self) -> tuple[Any, ...]:
        return (Outcome, (self.out,))


def _dask_trial(job: Job, topic: str, key: str = "") -> Outcome:
    """Executed on a worker: run the trial, announce it if it lasts, stream its reports,
    and stop it at a report once the study's scheduler decided so."""
    worker = get_worker()

    def send(msg: dict[str, Any]) -> None:
        worker.log_event(topic, {"kind": "report", **msg})

    def announce() -> None:
        msg = {"number": job.number, "attempt": job.attempt, "worker": worker.address}
        worker.log_event(topic, {"kind": "started", **msg})

    _NOTICES.add(key, announce)
    try:
        ctx = context_for(job, send, lambda: _DECISIONS.get(key))
        out = run_trial(job.objective, job.params, job.objective_name, ctx)
    finally:
        _NOTICES.remove(key)
        _DECISIONS.pop(key, None)
    out["worker"] = worker.address
    return Outcome(out)


def _names(cluster: Any, name: Any) -> set[Any]:
    """The worker names a cluster's job ``name`` runs (several for a job of processes)."""
    spec = cluster.worker_spec.get(name) or {}
    if "group" in spec:
        return {str(name) + suffix for suffix in spec["group"]}
    return {name}


async def _mend(cluster: Any, every: float = 1.0) -> None:
    """Keep a ``SpecCluster`` (a dask-jobqueue cluster, a LocalCluster) at the size it was
    asked for while a study runs: a job whose workers all left and stayed away (its walltime
    was reached, it was ``scancel``-ed, its node died) is closed and submitted anew.

    dask itself forgets such a job only after ``distributed.deploy.lost-worker-timeout``,
    and only when its workers' names are the job's own (one process per job), and then does
    not replace it: a study whose jobs all reach their walltime together would wait forever.
    """
    import dask
    from dask.utils import parse_timedelta

    grace = parse_timedelta(dask.config.get("distributed.deploy.lost-worker-timeout"))
    seen: set[Any] = set()
    gone_since: dict[Any, float] = {}
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every)
        try:
            alive = {w.get("name") for w in cluster.scheduler_info.get("workers", {}).values()}
            lost = []
            for name in list(cluster.workers):
                if _names(cluster, name) & alive:
                    seen.add(name)
                    gone_since.pop(name, None)
                elif name in seen:  # it had workers, and has none now
                    since = gone_since.setdefault(name, loop.time())
                    if loop.time() - since >= grace:
                        lost.append(name)
            for name in lost:
                job = cluster.workers.pop(name, None)
                seen.discard(name)
                gone_since.pop(name, None)
                logger.warning("asynchpo: worker job %s is gone; submitting a new one", name)
                if job is not None:
                    with contextlib.suppress(Exception):  # its job is over anyway
                        await job.close()
            if set(cluster.worker_spec) - set(cluster.workers):
                await cluster._correct_state()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # mending is a service: never let it end the study
            logger.warning("asynchpo: replacing lost worker jobs failed: %r", error)


class TrialAdaptive(Adaptive):
    """dask's adaptive scaling, sized by trials: one worker per trial in flight.

    dask's default target is the workers needed to clear the queued work within a few
    seconds, judged by expected task times; a study keeps only ``max_concurrent`` trials
    queued, each as long as it takes, and wants one worker for each of them.
    """

    def __init__(self, *args: Any, demand: Callable[[], int], **kwargs: Any):
        self._demand = demand
        super().__init__(*args, **kwargs)

    async def target(self) -> int:
        return self._demand()


class DaskBackend(QueueBackend):
    """Runs each attempt of a trial as ``client.submit(..., pure=False)``.

    Futures get readable keys (``asynchpo-<study>-trial-<number>-<attempt>-<run>``, the study
    name reduced to its letters), so the dask dashboard groups them by study. A worker that
    dies mid-trial makes dask run the task again elsewhere (up to its
    ``distributed.scheduler.allowed-failures``); the driver sees the second start and counts it
    against its own ``max_retries``.

    Args:
        client: A connected ``distributed.Client`` (synchronous or asynchronous).
        resources: Worker resources each trial needs, e.g. ``{"GPU": 1}``.
        restart_hung_workers: When a trial overruns ``trial_timeout``, restart the worker that
            runs it (through its nanny): Python cannot stop a running thread otherwise.
        adapt: Grow the client's cluster (``client.cluster``, e.g. a dask-jobqueue
            ``SLURMCluster``) with the trials waiting to run, up to ``adapt`` workers, through
            dask's own ``cluster.adapt``; at the end of the run, stop adapting and give every
            worker back (``cluster.scale(0)``). A cluster that fails while closing (a worker
            job killed from outside can leave dask-jobqueue asserting) is logged, not raised.

    With a cluster object (``Client(cluster)``, a dask-jobqueue cluster or a LocalCluster),
    a worker job that ends while the study runs (its walltime, ``scancel``) is replaced.
    """

    def __init__(
        self,
        client: Client,
        resources: Mapping[str, float] | None = None,
        restart_hung_workers: bool = True,
        adapt: int | None = None,
    ):
        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        self.client = client
        self.resources = dict(resources) if resources else None
        self.restart_hung_workers = restart_hung_workers
        self.adapt: int | None = positive_int("adapt", adapt, allow_none=True)
        self._adaptive: Any = None
        if adapt is not None and getattr(client, "cluster", None) is None:
            raise ValueError(
                "adapt: the client has no cluster object to scale; "
                "make it from one, e.g. Client(SLURMCluster(...))"
            )
        assert client.loop is not None, "the client is closed"
        self.loop = client.loop.asyncio_loop  # type: ignore[attr-defined]
        self._futures: dict[str, tuple[int, int]] = {}  # key -> (trial, attempt)
        self._by_number: dict[int, Any] = {}
        self._worker_of: dict[int, str] = {}
        self._pump: asyncio.Task[None] | None = None
        self._mender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._held: dict[int, list[Message]] = {}  # a trial's messages while its loss is explained

    async def default_concurrency(self) -> int:
        if self.adapt is not None:
            return self.adapt
        nthreads: dict[str, int] = await self.client.nthreads(asynchronous=True)
        return max(1, sum(nthreads.values()))

    async def open(self, study_name: str) -> None:
        await super().open(study_name)
        run = uuid.uuid4().hex[:8]
        self._topic = f"asynchpo-{run}"
        # dask's dashboard names a task group by the key's leading alphabetic words
        words = re.findall(r"[A-Za-z]+", study_name)
        self._prefix = "-".join(["asynchpo", *(words or ["study"])])
        self._run = run
        self._ac = as_completed(with_results=True, raise_errors=False, loop=self.client.loop)
        self.client.subscribe_topic(self._topic, self._on_event)
        if self.adapt is not None:
            cluster: Any = self.client.cluster
            self._adaptive = cluster.adapt(
                Adaptive=TrialAdaptive,
                minimum=0,
                maximum=self.adapt,
                demand=lambda: len(self._by_number),
            )
        cluster = getattr(self.client, "cluster", None)
        if all(hasattr(cluster, a) for a in ("worker_spec", "workers", "_correct_state")):
            self._mender = asyncio.ensure_future(_mend(cluster))

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        assert self._queue is not None
        number = msg.get("number")
        if number not in self._by_number:
            return  # a late message from an attempt that is over
        if msg.get("kind") == "started":
            before = self._worker_of.get(number)
            self._worker_of[number] = msg["worker"]
            started = Started(number, msg["attempt"], msg["worker"])
            if before is not None and before != msg["worker"]:  # dask ran it again elsewhere
                self._explain(started, before)
            else:
                self._put(started)
        elif msg.get("kind") == "report":
            self._put(Reported.from_report(number, msg))

    def _put(self, msg: Message) -> None:
        assert self._queue is not None
        held = self._held.get(msg.number)
        if held is not None:
            held.append(msg)
        else:
            self._queue.put_nowait(msg)

    def _explain(self, msg: Started | Finished, worker: str | None) -> None:
        """Pass ``msg`` on once dask said why ``worker`` went away, holding the trial's later
        messages back meanwhile so that they keep their order."""
        self._held.setdefault(msg.number, [])
        self._spawn(self._explained(msg, worker))

    async def _explained(self, msg: Started | Finished, worker: str | None) -> None:
        try:
            cause = await self._loss_cause(worker)
            if cause and isinstance(msg, Started):
                msg = dataclasses.replace(msg, lost=cause)
            elif cause and isinstance(msg, Finished):
                msg = dataclasses.replace(msg, error=f"{cause}; {msg.error}")
        finally:
            held = self._held.pop(msg.number, [])
            for m in [msg, *held]:
                self._put(m)

    async def _loss_cause(self, worker: str | None) -> str:
        """Why dask lost ``worker``, where its nanny said so (its memory limit); else ""."""
        scheduler = self.client.scheduler
        if worker is None or scheduler is None:
            return ""
        try:
            events = await scheduler.events(topic="worker-restart-memory")
        except Exception:  # the explanation is a courtesy: the loss is recorded either way
            return ""
        for _, event in reversed(events):
            if isinstance(event, dict) and event.get("worker") == worker:
                rss = event.get("rss")
                used = f" ({format_bytes(rss)} in use)" if isinstance(rss, int) else ""
                return f"it went past its memory limit{used} and its nanny restarted it"
        return ""

    def submit(self, job: Job) -> None:
        key = f"{self._prefix}-trial-{job.number}-{job.attempt}-{self._run}"
        future = self.client.submit(
            _dask_trial, job, self._topic, key, key=key, pure=False, resources=self.resources
        )
        self._futures[key] = (job.number, job.attempt)
        self._by_number[job.number] = future
        self._ac.add(future)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        async for future, result in self._ac:
            self._done(future, result)

    def _done(self, future: Any, result: Any) -> None:
        info = self._futures.pop(future.key, None)
        if info is None:
            return  # cancelled by us
        number, attempt = info
        self._by_number.pop(number, None)
        worker = self._worker_of.pop(number, None)
        if future.status == "finished":
            out = result.out  # (an Outcome: what _dask_trial returns)
            msg = Finished.from_run(number, attempt, out, out.get("worker", worker))
        elif future.status == "error":
            exc = result[1] if isinstance(result, tuple) else result
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, KilledWorker):
                last = getattr(exc.last_worker, "address", worker)
                self._explain(Finished(number, attempt, "lost", error=error, worker=last), last)
                return
            msg = Finished(number, attempt, "error", error=error, worker=worker)
        else:  # cancelled by the cluster (a restart, a closed client): the work was lost
            msg = Finished(number, attempt, "lost", error=f"future {future.status}", worker=worker)
        self._put(msg)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def decide(self, number: int, decision: str) -> None:
        future = self._by_number.get(number)
        if future is None:
            return
        worker = self._worker_of.get(number)  # unknown before it announced itself: tell all
        self._spawn(
            self.client.run(
                _set_decision,
                future.key,
                decision,
                workers=None if worker is None else [worker],
                on_error="ignore",
                asynchronous=True,
            )
        )

    def cancel(self, number: int, hung: bool = False) -> None:
        future = self._by_number.pop(number, None)
        worker = self._worker_of.pop(number, None)
        if future is None:
            return
        self._futures.pop(future.key, None)
        self._spawn(self.client.cancel([future], asynchronous=True, reason="asynchpo"))
        if hung and worker is not None and self.restart_hung_workers:
            logger.warning("restarting worker %s, which runs hung trial %d", worker, number)
            restart = self.client.restart_workers  # synchronous only: run it off the loop
            self._spawn(
                asyncio.get_running_loop().run_in_executor(
                    None, lambda: restart([worker], 60, False)
                )
            )

    async def close(self) -> None:
        for number in list(self._by_number):
            self.cancel(number)
        self.client.unsubscribe_topic(self._topic)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
        if self._mender is not None:
            self._mender.cancel()
            self._mender = None
        if self._adaptive is not None:
            self._give_back()

    def _give_back(self) -> None:
        """Stop adapting and release every worker: the study's run is over."""
        cluster: Any = self.client.cluster
        adaptive, self._adaptive = self._adaptive, None
        try:
            adaptive.stop()
            cluster.scale(0)
        except Exception as error:  # the study's results are safe; say so and go on
            logger.warning("asynchpo: giving the cluster's workers back failed: %r", error)

    def check_objective(self, objective: Callable[[dict[str, Any]], Any]) -> None:
        """Refuse, before any trial is asked, an objective dask cannot send to its workers.

        It is serialized as dask serializes each trial's task (pickle, else cloudpickle, with
        dask's own serializers), so that one closing over a lock, a generator or an open
        connection is named here, not after trials were asked.
        """
        import threading

        from distributed.protocol import pickle as dask_pickle

        me = threading.get_ident()

        def not_here(record: logging.LogRecord) -> bool:  # raised below, not logged too
            return record.thread != me

        log = logging.getLogger(dask_pickle.__name__)
        log.addFilter(not_here)
        try:
            dask_pickle.dumps(objective)
        except Exception as exc:
            name = getattr(objective, "__qualname__", None) or type(objective).__name__
            raise TypeError(
                f"objective: dask cannot send {name!r} to its workers ({type(exc).__name__}: "
                f"{exc}); create what it uses that cannot be pickled (a lock, a generator, an "
                "open file or connection) inside the function"
            ) from exc
        finally:
            log.removeFilter(not_here)
