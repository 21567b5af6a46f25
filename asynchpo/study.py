"""The study: what a notebook cell talks to. Ask/tell, optimize, resume, best trial."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from asynchpo._checks import find_trial, positive_float, positive_int, short, trial_number
from asynchpo._limits import MAX_STRING
from asynchpo._progress import TextProgress
from asynchpo._report import interpret_result
from asynchpo._run import Run
from asynchpo._sync import launch
from asynchpo.events import (
    Event,
    StudyCreated,
    StudyState,
    TrialCompleted,
    TrialFailed,
    TrialPruned,
)
from asynchpo.execution import Backend, Driver, LocalBackend, RunConfig
from asynchpo.execution._suggest import Suggester
from asynchpo.journal import Journal, StudyInUseError
from asynchpo.samplers import BaseSampler, GPSampler, PortfolioSampler
from asynchpo.schedulers import BaseScheduler
from asynchpo.space import Space
from asynchpo.storage import BaseStorage, get_storage
from asynchpo.trial import Failure, Trial, TrialState
from asynchpo.widgets._env import in_notebook, show

if TYPE_CHECKING:
    import xarray as xr
    from distributed import Client

    from asynchpo.plot import StudyPlots
    from asynchpo.widgets._view import StudyWidget

__all__ = ["Study", "StudyInUseError"]

Objective = Callable[[dict[str, Any]], Any]
Callback = Callable[["Study", Trial], Any]
_DIRECTIONS = ("minimize", "maximize")
P = ParamSpec("P")
R = TypeVar("R")


def _takes_the_arguments_of(
    start: Callable[Concatenate[Study, P], Any],
) -> Callable[[Callable[..., R]], Callable[Concatenate[Study, P], R]]:
    """Give a method :meth:`Study.start`'s signature: its arguments are declared once."""

    def wrap(method: Callable[..., R]) -> Callable[Concatenate[Study, P], R]:
        sig = inspect.signature(start)
        ret = inspect.signature(method).return_annotation
        method.__signature__ = sig.replace(return_annotation=ret)  # type: ignore[attr-defined]
        return method

    return wrap


def _checkpoint_dir(given: str | os.PathLike[str] | None, journal: Journal) -> str:
    """The study's checkpoint folder: ``given``, or one of its own beside its storage."""
    if given is not None:
        if not isinstance(given, (str, os.PathLike)) or not os.fspath(given):
            raise TypeError(f"checkpoint_dir must be a folder or a URL, got {short(given)}")
        where = os.fspath(given)
        # a folder is fixed now: a notebook's %cd, or a worker elsewhere, finds the same one
        return where if "://" in where else os.path.abspath(where)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", journal.name)[:40].strip(".-") or "study"
    folder = f"{slug}-{hashlib.sha1(journal.name.encode()).hexdigest()[:8]}"
    path = getattr(journal.storage, "path", None)
    if isinstance(path, (str, os.PathLike)):
        base = os.path.abspath(f"{os.fspath(path)}-checkpoints")
    else:  # a journal in memory: one folder per storage, whichever Study object opens it,
        # gone with the storage (or when the process exits), as its journal is
        storage = f"{os.getpid()}-{id(journal.storage):x}"
        base = os.path.join(tempfile.gettempdir(), "asynchpo-checkpoints", storage)
        if journal.storage not in _TEMPORARY:
            _TEMPORARY[journal.storage] = weakref.finalize(
                journal.storage, shutil.rmtree, base, ignore_errors=True
            )
    return os.path.join(base, folder)


#: The checkpoint folders of journals in memory, removed with their storage.
_TEMPORARY: weakref.WeakKeyDictionary[BaseStorage, weakref.finalize[Any, Any]] = (
    weakref.WeakKeyDictionary()
)


class Study:
    """A hyperparameter search: its space, its journal of trials, and how to run more.

    A thin face over the study's :class:`~asynchpo.journal.Journal` (which owns its
    events, state, trial numbers and runs), its sampler, and its live view.

    Args:
        space: The search space (a :class:`~asynchpo.Space`, or a dict of distributions).
        objective: The name of the metric to optimize. An objective function may return a
            bare number (stored under this name) or a dict of metrics that contains it.
        direction: ``"minimize"`` or ``"maximize"``.
        sampler: Decides the next parameters; a :class:`~asynchpo.GPSampler` if None;
            ``"auto"``: the default :class:`~asynchpo.PortfolioSampler` (several methods,
            a bandit choosing among them); another name: a sampler an installed extension
            registered under that name (:mod:`asynchpo.extensions`).
        storage: Where the journal lives: a file path (SQLite, the default for keeping
            results), None (in memory), or a :class:`~asynchpo.storage.BaseStorage`.
        name: The study's name in its storage; a fresh unique name if None.
        scheduler: Decides, on each report of a running trial (``asynchpo.report``),
            whether it goes on, stops or pauses: :class:`~asynchpo.MedianStopping`,
            :class:`~asynchpo.ASHA`, :class:`~asynchpo.Hyperband`; None runs every trial to
            its end.
        checkpoint_dir: Where trials' checkpoints (``asynchpo.checkpoint``) are written: a
            folder, or a URL ``fsspec`` opens; every worker must reach it (on a cluster of
            several machines, a shared file system). None: beside an SQLite storage's file
            (``<file>-checkpoints/``), else in the temporary folder.
        load_if_exists: Reopen a study of this name if the storage has one (with the same
            space, objective and direction) instead of raising; as :meth:`load` does, runs
            whose driver died are recovered (their running trials come back interrupted).

    Raises:
        StudyInUseError: With ``load_if_exists``, the study has a live run elsewhere.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(-5, 5)), sampler=ah.RandomSampler(seed=0))
        >>> study.optimize(lambda p: (p["x"] - 1) ** 2, n_trials=30, progress=False)
        >>> round(study.best_params["x"]) == 1
        True
    """

    def __init__(
        self,
        space: Space | Mapping[str, Any],
        objective: str = "value",
        direction: str = "minimize",
        sampler: BaseSampler | str | None = None,
        storage: str | os.PathLike[str] | BaseStorage | None = None,
        name: str | None = None,
        *,
        scheduler: BaseScheduler | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        load_if_exists: bool = False,
    ):
        if isinstance(space, Mapping) and not isinstance(space, Space):
            space = Space(space)
        if not isinstance(space, Space):
            raise TypeError(f"space must be an asynchpo.Space, got {type(space).__name__}")
        if not isinstance(objective, str) or not objective or len(objective) > MAX_STRING:
            raise ValueError(
                f"objective must be a metric name (a non-empty str of at most {MAX_STRING} "
                f"characters), got {short(objective)}"
            )
        if not isinstance(direction, str) or direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {short(direction)}")
        if name is None:
            name = time.strftime("study-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
        if not isinstance(name, str) or not name or len(name) > MAX_STRING:
            raise ValueError(
                f"name must be a non-empty str of at most {MAX_STRING} characters, "
                f"got {short(name)}"
            )
        sampler = self._check_sampler(sampler)
        scheduler = self._check_scheduler(scheduler)
        created = StudyCreated(
            time=time.time(),
            space=space.to_spec(),
            objective=str.__str__(objective),
            direction=str.__str__(direction),
        )
        try:
            created.to_json()  # the record every later open reads: refused whole if too big
        except ValueError as exc:
            raise ValueError(f"space: the study's description is not one record ({exc})") from None
        name = str.__str__(name)
        journal = Journal.open(get_storage(storage), name, create=created, exist_ok=load_if_exists)
        self._setup(journal, sampler, scheduler, checkpoint_dir)

    @staticmethod
    def _check_scheduler(scheduler: BaseScheduler | None) -> BaseScheduler | None:
        if scheduler is not None and not isinstance(scheduler, BaseScheduler):
            raise TypeError(
                f"scheduler must be an asynchpo scheduler (a BaseScheduler), got "
                f"{type(scheduler).__name__}"
            )
        return scheduler

    @staticmethod
    def _check_sampler(sampler: BaseSampler | str | None) -> BaseSampler:
        if sampler is None:
            return GPSampler()
        if isinstance(sampler, str):
            if sampler != "auto":
                from asynchpo import extensions

                return extensions.sampler(sampler)
            return PortfolioSampler()
        if not isinstance(sampler, BaseSampler):
            raise TypeError(f"sampler must be a BaseSampler, got {type(sampler).__name__}")
        return sampler

    def _setup(
        self,
        journal: Journal,
        sampler: BaseSampler,
        scheduler: BaseScheduler | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name, self.sampler, self.scheduler = journal.name, sampler, scheduler
        #: Where trials' checkpoints go (see ``checkpoint_dir``).
        self.checkpoint_dir = _checkpoint_dir(checkpoint_dir, journal)
        self._checkpoint_dir_given = checkpoint_dir is not None
        self._journal = journal
        self._suggester = Suggester(journal, sampler)
        self._widget: StudyWidget | None = None
        self._driver: Driver | None = None

    @classmethod
    def load(
        cls,
        name: str,
        storage: str | os.PathLike[str] | BaseStorage,
        sampler: BaseSampler | str | None = None,
        *,
        scheduler: BaseScheduler | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        read_only: bool = False,
    ) -> Study:
        """Rebuild a study from its journal, to look at it or to go on with it.

        Trials that were running when their driver stopped or died come back as
        ``INTERRUPTED``; the next :meth:`optimize` runs them again first, and, called without
        ``n_trials``, finishes the budget of the run that was cut short.

        Args:
            scheduler: The study's scheduler, as given to :class:`Study`: its state is
                rebuilt from the journal, so it goes on deciding as it did.
            checkpoint_dir: As for :class:`Study`: where its trials' checkpoints are.
            read_only: Look only: no recovery and no writes, so that a study that another
                run (another process, or another study object here) is driving can be
                watched; its reads follow what that run records.

        Raises:
            ValueError: No study of that name in ``storage``.
            StudyInUseError: Another live run drives the study (and ``read_only`` is False):
                it is never taken over by accident.
        """
        if read_only not in (True, False):
            raise ValueError(f"read_only must be True or False, got {read_only!r}")
        sampler = cls._check_sampler(sampler)
        scheduler = cls._check_scheduler(scheduler)
        journal = Journal.open(get_storage(storage, read_only=read_only), name, read_only=read_only)
        study = cls.__new__(cls)
        study._setup(journal, sampler, scheduler, checkpoint_dir)
        return study

    # -- what a notebook reads --------------------------------------------------------------

    @property
    def journal(self) -> Journal:
        """The study's journal: its events, their fold, its runs."""
        return self._journal

    @property
    def read_only(self) -> bool:
        """Whether this study object only looks (see :meth:`load`)."""
        return self._journal.read_only

    def _read(self, read: Callable[[StudyState], R]) -> R:
        if self._journal.read_only:
            self._journal.refresh()
        return self._journal.query(read)

    @property
    def space(self) -> Space:
        """The search space."""
        return self._journal.space

    @property
    def objective(self) -> str:
        """The name of the metric being optimized."""
        return self._journal.query(lambda s: s.objective)

    @property
    def direction(self) -> str:
        """``"minimize"`` or ``"maximize"``."""
        return self._journal.query(lambda s: s.direction)

    @property
    def storage(self) -> BaseStorage:
        """Where the journal lives."""
        return self._journal.storage

    @property
    def trials(self) -> list[Trial]:
        """Every trial, by number."""
        return self._read(lambda s: s.trials())

    def get_trials(self, states: Iterable[TrialState | str] | None = None) -> list[Trial]:
        """The trials in the given states (all if None)."""
        if states is None:
            return self.trials
        if isinstance(states, (str, TrialState)):
            states = [states]
        valid = [s.value for s in TrialState]
        wanted = []
        for state in states:
            if state not in valid and not isinstance(state, TrialState):
                raise ValueError(f"states: {state!r} is not one of {valid}")
            wanted.append(TrialState(state))
        return self._read(lambda s: s.trials(wanted))

    @property
    def best_trial(self) -> Trial:
        """The complete trial with the best objective value (``ValueError`` if none yet)."""
        best = self._read(lambda s: None if s.best_number is None else s.trial(s.best_number))
        if best is None:
            raise ValueError(f"study {self.name!r} has no complete trial yet")
        return best

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of :attr:`best_trial`."""
        return dict(self.best_trial.params)

    @property
    def best_value(self) -> float:
        """The objective value of :attr:`best_trial`."""
        value = self.best_trial.value
        assert value is not None
        return value

    def __repr__(self) -> str:
        s = self._journal.summary()
        best = "" if s.best_value is None else f", best {s.objective!r}={s.best_value:.6g}"
        return (
            f"<Study {self.name!r} {s.direction} {s.objective!r}: "
            f"{s.complete} complete, {len(s.running)} running, {s.failed} failed{best}>"
        )

    # -- ask and tell ---------------------------------------------------------------------------

    def ask(self) -> Trial:
        """A new trial with the sampler's next parameters, counted as running until told.

        Safe to call from several threads, and while a run goes on: every trial gets a
        number of its own."""
        numbers = self._suggester.suggest(1, run=None)
        if not numbers:
            raise RuntimeError(f"{type(self.sampler).__name__} has no more points to give")
        return self._journal.query(lambda s: s.trial(numbers[0]))

    def tell(
        self,
        trial: Trial | int,
        value: Any = None,
        *,
        error: str | None = None,
        pruned: bool = False,
    ) -> Trial:
        """Record how an asked trial ended: its result, or ``error=`` why it failed, or
        ``pruned=True``.

        ``trial`` is a trial of this study (one of another study is refused) or its number
        (an integer of any kind, NumPy's too). ``value`` is a number or a dict of metrics, as
        an objective returns. A NaN, an infinite, a bool or a non-numeric value is recorded
        as a failed trial (``Failure.INVALID``).

        Returns:
            The finished trial.
        """
        number = trial_number("trial", trial)
        given = sum([value is not None, error is not None, bool(pruned)])
        if given != 1:
            raise ValueError("tell: give exactly one of value, error= or pruned=True")
        values, why = (None, None) if value is None else interpret_result(value, self.objective)
        journal = self._journal

        def told(s: StudyState) -> list[Event]:
            find_trial(s, self.name, "trial", trial)
            if s.trial(number).state.finished:
                raise ValueError(f"trial: trial {number} is already {s.trial(number).state.value}")
            now = journal.now()
            if pruned:
                reports = s.trial(number).reports
                return [
                    TrialPruned(time=now, number=number, step=reports[-1].step if reports else None)
                ]
            if error is not None:
                return [
                    TrialFailed(
                        time=now, number=number, reason=str(error), failure=Failure.ERROR.value
                    )
                ]
            if values is None:
                return [
                    TrialFailed(
                        time=now, number=number, reason=str(why), failure=Failure.INVALID.value
                    )
                ]
            return [TrialCompleted(time=now, number=number, values=values)]

        journal.write(told)
        return journal.query(lambda s: s.trial(number))

    def add_trial(self, params: Mapping[str, Any], value: Any) -> Trial:
        """Add a finished trial known from elsewhere (a previous search, a baseline).

        Raises:
            ValueError: ``params`` do not fit the space, or ``value`` is not a valid result;
                the message names the parameter or the metric.
        """
        checked = self.space.check(params)
        values, why = interpret_result(value, self.objective)
        if values is None:
            raise ValueError(f"value: {why}")
        number = self._journal.add(checked, values)
        return self._journal.query(lambda s: s.trial(number))

    # -- optimize -------------------------------------------------------------------------------

    def _resume_budget(self) -> int:
        """New trials still owed by the last run, when ``optimize`` gets no budget (none,
        when only its interrupted or paused trials are left to run on)."""

        def owed(state: StudyState) -> int | None:
            if state.runs:
                last = state.runs[max(state.runs)]
                if last.n_trials is not None:
                    asked = sum(1 for t in state.trials() if state.run_of(t.number) == last.run)
                    left = last.n_trials - asked
                    waiting = sum(state.counts[s] for s in self._resumed_states())
                    if left > 0 or waiting:
                        return max(left, 0)
            return None

        left = self._journal.query(owed)
        if left is None:
            raise ValueError(
                "n_trials: give n_trials or timeout (the study has no unfinished budget to resume)"
            )
        return left

    def start(
        self,
        objective: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        *,
        client: Client | None = None,
        backend: Backend | None = None,
        max_concurrent: int | None = None,
        trial_timeout: float | None = None,
        max_retries: int = 2,
        resources: Mapping[str, float] | None = None,
        callbacks: Callback | Iterable[Callback] | None = None,
        progress: bool | None = None,
        adapt: bool = False,
    ) -> Run:
        """Run trials in the background until the budget is spent, the time is up, or the
        study is stopped: returns a :class:`~asynchpo.Run` at once.

        Every argument is checked before it returns, and before any trial runs. Trials left
        ``INTERRUPTED`` by an earlier run are run again first. The run goes on in a thread
        of its own (or on the dask client's event loop), so the notebook stays free: read
        ``study.best_params``, plot, or start another study meanwhile. Displayed in a
        notebook, the run (or the study) shows the live view. ``run.wait()`` or
        ``await run`` gives its end and raises what it raised. :meth:`optimize` is
        ``start(...).wait()`` and :meth:`optimize_async` awaits the same run: all three
        take these arguments.

        Args:
            objective: ``objective(params) -> float | dict``; runs on a worker.
            n_trials: How many new trials to run. If neither this nor ``timeout`` is given,
                the budget the last run left unfinished (after :meth:`load`).
            timeout: Stop asking for new trials after this many seconds (of the run's clock);
                trials already running finish.
            client: A ``distributed.Client``: trials run as dask futures on its cluster.
            backend: Another backend, e.g. :class:`~asynchpo.SimulatedBackend`. With neither
                ``client`` nor ``backend``, trials run in threads of this process.
            max_concurrent: Trials in flight at once; by default the cluster's thread count
                (or the simulated workers).
            trial_timeout: Seconds one trial may run; past it, the trial fails
                (``Failure.TIMEOUT``) and, on dask, its worker is restarted.
            max_retries: Times a trial whose worker died is run again before it fails
                (``Failure.WORKER_LOST``); interruptions of the driver do not count.
            resources: dask worker resources each trial needs, e.g. ``{"GPU": 1}``.
            callbacks: ``callback(study, trial)`` after each finished trial (one callable,
                or a list of them); may call :meth:`stop`.
            progress: Show a text progress line (default: when stderr is a terminal).
            adapt: Grow the client's cluster (e.g. a dask-jobqueue ``SLURMCluster``) with the
                trials waiting to run, never past ``max_concurrent`` workers (required), and
                give the workers back when the run ends.

        Raises:
            StudyInUseError: Another live run drives the study, or it was opened read-only.
        """
        driver = self._make_driver(
            objective,
            n_trials,
            timeout,
            client,
            backend,
            max_concurrent,
            trial_timeout,
            max_retries,
            resources,
            callbacks,
            progress,
            adapt,
        )
        return self._launch(driver, progress)

    def _make_driver(
        self,
        objective: Objective,
        n_trials: int | None,
        timeout: float | None,
        client: Client | None,
        backend: Backend | None,
        max_concurrent: int | None,
        trial_timeout: float | None,
        max_retries: int,
        resources: Mapping[str, float] | None,
        callbacks: Callback | Iterable[Callback] | None,
        progress: bool | None,
        adapt: bool,
    ) -> Driver:
        if self._driver is not None:
            raise RuntimeError(f"study {self.name!r} is already running an optimize call")
        self._journal.check_free()  # a live run elsewhere, or read-only: say so at once
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        if progress not in (None, True, False):
            raise ValueError(f"progress must be True, False or None, got {progress!r}")
        n_trials = positive_int("n_trials", n_trials, allow_none=True)
        timeout = positive_float("timeout", timeout, allow_none=True)
        if n_trials is None and timeout is None:
            n_trials = self._resume_budget()
        hooks = _callbacks(callbacks)
        config = RunConfig(
            n_trials=n_trials,
            timeout=timeout,
            max_concurrent=positive_int("max_concurrent", max_concurrent, allow_none=True),
            trial_timeout=positive_float("trial_timeout", trial_timeout, allow_none=True),
            max_retries=positive_int("max_retries", max_retries, minimum=0),
            callbacks=tuple(functools.partial(cb, self) for cb in hooks),
        )
        if client is not None and backend is not None:
            raise ValueError("client, backend: give one of them, not both")
        if resources is not None:
            if client is None:
                raise ValueError("resources: worker resources need a dask client")
            if not isinstance(resources, Mapping) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and v > 0
                for k, v in resources.items()
            ):
                raise ValueError(f"resources must map names to amounts > 0, got {resources!r}")
        if adapt not in (True, False):
            raise ValueError(f"adapt must be True or False, got {adapt!r}")
        if adapt and (client is None or config.max_concurrent is None):
            raise ValueError(
                "adapt: needs client= (made from a cluster object) and max_concurrent= "
                "(the most workers to ask the cluster for)"
            )
        if client is not None:
            from asynchpo.execution._dask import DaskBackend

            backend = DaskBackend(
                client, resources=resources, adapt=config.max_concurrent if adapt else None
            )
        elif backend is None:
            backend = LocalBackend()
        elif not isinstance(backend, Backend):
            raise TypeError(f"backend must be an asynchpo Backend, got {type(backend).__name__}")
        backend.check_objective(objective)  # before any trial is asked
        if self.scheduler is not None:
            backend.check_scheduler(self.scheduler)
            if self.scheduler.needs_checkpoints:
                from asynchpo._checkpoint import check_writable

                check_writable(self.checkpoint_dir)
        self._check_checkpoints_found()
        if self._driver is not None:
            raise RuntimeError(f"study {self.name!r} is already running an optimize call")
        return Driver(
            self._journal,
            self._suggester,
            objective,
            self.objective,
            backend,
            config,
            self.scheduler,
            self.checkpoint_dir,
        )

    def _resumed_states(self) -> tuple[TrialState, ...]:
        """The states of the trials a run goes on with before new ones: interrupted, and
        paused when the scheduler resumes paused trials."""
        if self.scheduler is not None and self.scheduler.pauses:
            return (TrialState.INTERRUPTED, TrialState.PAUSED)
        return (TrialState.INTERRUPTED,)

    def _check_checkpoints_found(self) -> None:
        """Before a run: the trials it would resume from their checkpoints (interrupted;
        paused, with a scheduler that resumes them) must find some of them under the default
        ``checkpoint_dir``, not fail one by one because the study ran with another folder.
        A folder given explicitly is taken at its word (its files may be gone for good)."""
        if self._checkpoint_dir_given:
            return

        def waiting(s: Any) -> dict[int, str]:
            out = {}
            for state in self._resumed_states():
                for number in s.numbers(state):
                    cp = s.checkpoint_of(number)
                    if cp is not None and cp.get("name"):
                        out[number] = cp["name"]
            return out

        found = self._journal.query(waiting)
        if found:
            from asynchpo._checkpoint import check_found

            check_found(self.checkpoint_dir, found)

    def _launch(self, driver: Driver, progress: bool | None, *, same_loop: bool = False) -> Run:
        bar = None
        if (progress or (progress is None and _isatty())) and not in_notebook():
            bar = TextProgress(self._journal)
        self._driver = driver  # taken now: a second start raises until this one ends

        async def drive() -> str:
            try:
                return await driver.run()
            finally:
                self._driver = None
                if bar is not None:
                    bar.close()

        try:
            future = launch(drive, driver.backend.loop, same_loop=same_loop)
        except BaseException:
            self._driver = None
            if bar is not None:
                bar.close()
            raise
        return Run(
            self.name,
            driver,
            future,
            on_end=self._view_end,
            on_wait=self._view_flush,
            display=self._ipython_display_,
        )

    def _view_end(self) -> None:
        if self._widget is not None:
            self._widget.draw()  # the end, at once

    def _view_flush(self) -> None:
        if self._widget is not None:
            self._widget.flush()  # the end, sent from the waiting cell

    @_takes_the_arguments_of(start)
    def optimize(self, *args: Any, **kwargs: Any) -> None:
        """:meth:`start`, then wait for the run's end: run trials until the budget is spent,
        the time is up, or the study is stopped. Takes :meth:`start`'s arguments.

        In a notebook it shows the live view. Ctrl-C (interrupting the kernel) stops the
        run: running trials are recorded as interrupted, and the next ``optimize`` runs
        them again.
        """
        options = _start_arguments(self, args, kwargs)
        run = self._launch(self._make_driver(**options), options["progress"])
        if options["progress"] is not False and in_notebook():
            show(self.widget())
        try:
            run.wait()
        except KeyboardInterrupt:
            run.stop(cancel_running=True, reason="KeyboardInterrupt")
            with contextlib.suppress(BaseException):  # the interrupt is what the caller sees
                run.wait(timeout=60)
            raise

    @_takes_the_arguments_of(start)
    async def optimize_async(self, *args: Any, **kwargs: Any) -> None:
        """:meth:`optimize` as a coroutine, for asynchronous code and asynchronous clients:
        awaits the run :meth:`start` makes. Takes the same arguments. With a dask client,
        await it on the client's event loop."""
        options = _start_arguments(self, args, kwargs)
        await self._launch(self._make_driver(**options), options["progress"], same_loop=True)

    def widget(self) -> StudyWidget:
        """The study's live view for a notebook (one per study: displaying it again, even
        after the notebook is reopened, shows the same live view)."""
        if self._widget is None:
            from asynchpo.widgets._view import StudyWidget

            self._widget = StudyWidget(self)
        return self._widget

    def _ipython_display_(self) -> None:
        if in_notebook():
            show(self.widget())
        else:
            print(repr(self))

    def to_xarray(self) -> xr.Dataset:
        """The trials as an ``xarray.Dataset``: a ``trial`` dimension (``param_<name>`` for
        each parameter, its distribution in ``attrs``; ``metric_<name>`` for each metric;
        state, worker, times) and a ``report`` dimension for the reported learning curves,
        one row per report (``report_trial``, ``report_step``, ``report_time``,
        ``curve_<name>``). Save it with ``to_netcdf`` or ``to_zarr``; rebuild the study with
        :meth:`from_xarray`. Needs ``asynchpo[results]``."""
        from asynchpo.results import to_xarray

        return to_xarray(self)

    @classmethod
    def from_xarray(
        cls,
        ds: xr.Dataset,
        storage: str | os.PathLike[str] | BaseStorage | None = None,
        name: str | None = None,
        sampler: BaseSampler | str | None = None,
    ) -> Study:
        """A study rebuilt from :meth:`to_xarray`'s Dataset (e.g. read back from netCDF),
        ready to look at or to go on with. Trials running when it was saved come back
        ``INTERRUPTED``."""
        from asynchpo.results import from_xarray

        return from_xarray(ds, storage=get_storage(storage), name=name, sampler=sampler)

    @property
    def plot(self) -> StudyPlots:
        """Plots of the study (hvplot): ``study.plot.history()``, ``.slice()``,
        ``.parallel_coordinates()``, ``.learning_curves()``, ``.importance()``."""
        from asynchpo.plot import StudyPlots

        return StudyPlots(self)

    def stop(self, cancel_running: bool = False) -> None:
        """Stop the running ``optimize``: no new trials; running ones finish, or with
        ``cancel_running`` are interrupted (and re-run by the next ``optimize``)."""
        driver = self._driver
        if driver is not None:
            driver.request_stop(cancel_running=cancel_running)

    def stop_trial(self, trial: Trial | int) -> None:
        """Stop one running trial of the running ``optimize``; it is recorded as failed
        (``cancelled``). Returns at once.

        Raises:
            ValueError: The study has no such trial (``trial`` is a number, or a trial of
                this study).
        """
        number = self._read(lambda s: find_trial(s, self.name, "trial", trial))
        driver = self._driver
        if driver is not None:
            driver.request_cancel(number)


def _callbacks(callbacks: Any) -> tuple[Callback, ...]:
    """``callbacks`` as a tuple of callables, or ``TypeError`` naming ``callbacks``."""
    if callbacks is None:
        return ()
    if callable(callbacks):
        return (callbacks,)
    if isinstance(callbacks, (str, bytes, Mapping)) or not isinstance(callbacks, Iterable):
        raise TypeError(
            f"callbacks must be a callable or a list of callables, got {short(callbacks)}"
        )
    hooks = tuple(callbacks)
    for cb in hooks:
        if not callable(cb):
            raise TypeError(f"callbacks: {short(cb)} is not callable")
    return hooks


def _start_arguments(study: Study, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``start``'s arguments by name, defaults filled in (a wrong one raises TypeError)."""
    bound = inspect.signature(Study.start).bind(study, *args, **kwargs)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "self"}


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
