"""The study: what a notebook cell talks to. Ask/tell, optimize, resume, best trial."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from asynchpo._checks import positive_float, positive_int
from asynchpo._progress import TextProgress
from asynchpo._report import interpret_result
from asynchpo._run import Run
from asynchpo._sync import block_on, launch
from asynchpo.events import (
    Event,
    RunFinished,
    StudyCreated,
    StudyState,
    TrialAsked,
    TrialCompleted,
    TrialFailed,
    TrialInterrupted,
    TrialPruned,
)
from asynchpo.execution import Backend, Driver, LocalBackend, RunConfig
from asynchpo.samplers import BaseSampler, GPSampler, History
from asynchpo.space import Space
from asynchpo.storage import BaseStorage, get_storage
from asynchpo.trial import Failure, Trial, TrialState
from asynchpo.widgets._env import in_notebook, show

if TYPE_CHECKING:
    import xarray as xr
    from distributed import Client

    from asynchpo.plot import StudyPlots
    from asynchpo.widgets._view import StudyWidget

__all__ = ["Study"]

Objective = Callable[[dict[str, Any]], Any]
_DIRECTIONS = ("minimize", "maximize")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Study:
    """A hyperparameter search: its space, its journal of trials, and how to run more.

    Args:
        space: The search space (a :class:`~asynchpo.Space`, or a dict of distributions).
        objective: The name of the metric to optimize. An objective function may return a
            bare number (stored under this name) or a dict of metrics that contains it.
        direction: ``"minimize"`` or ``"maximize"``.
        sampler: Decides the next parameters; a :class:`~asynchpo.GPSampler` if None.
        storage: Where the journal lives: a file path (SQLite, the default for keeping
            results), None (in memory), or a :class:`~asynchpo.storage.BaseStorage`.
        name: The study's name in its storage; a fresh unique name if None.
        load_if_exists: Reopen a study of this name if the storage has one (with the same
            space, objective and direction) instead of raising.

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
        sampler: BaseSampler | None = None,
        storage: str | os.PathLike[str] | BaseStorage | None = None,
        name: str | None = None,
        *,
        load_if_exists: bool = False,
    ):
        if isinstance(space, Mapping) and not isinstance(space, Space):
            space = Space(space)
        if not isinstance(space, Space):
            raise TypeError(f"space must be an asynchpo.Space, got {type(space).__name__}")
        if not isinstance(objective, str) or not objective:
            raise ValueError(
                f"objective must be a metric name (a non-empty str), got {objective!r}"
            )
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
        if name is None:
            name = time.strftime("study-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        self._setup(name, get_storage(storage), sampler)
        if self._storage.exists(name):
            if not load_if_exists:
                raise ValueError(
                    f"name: a study {name!r} already exists in {self._storage!r}; "
                    f"use Study.load({name!r}, storage) or load_if_exists=True"
                )
            self._replay(self._storage.read(name))
            for attr, want in (
                ("space", space),
                ("objective", objective),
                ("direction", direction),
            ):
                have = getattr(self._state, attr)
                if have != want:
                    raise ValueError(
                        f"{attr}: the stored study {name!r} has {have!r}, not {want!r}"
                    )
        else:
            self._record(
                StudyCreated(
                    time=time.time(),
                    space=space.to_spec(),
                    objective=objective,
                    direction=direction,
                )
            )

    def _setup(self, name: str, storage: BaseStorage, sampler: BaseSampler | None) -> None:
        if sampler is None:
            sampler = GPSampler()
        if not isinstance(sampler, BaseSampler):
            raise TypeError(f"sampler must be a BaseSampler, got {type(sampler).__name__}")
        self.name, self._storage, self.sampler = name, storage, sampler
        self._state = StudyState()
        self._lock = threading.RLock()  # events are recorded one at a time, from any thread
        self._listeners: list[Callable[[Event], None]] = []
        self._widget: Any = None
        self._run: Run | None = None
        self._driver: Driver | None = None
        self._clock: Callable[[], float] = time.time

    def _replay(self, events: Iterable[Event]) -> None:
        for event in events:
            self._state.apply(event)
        if self._state.space is None:
            raise ValueError(f"study {self.name!r} has no study_created event in its journal")

    @classmethod
    def load(
        cls,
        name: str,
        storage: str | os.PathLike[str] | BaseStorage,
        sampler: BaseSampler | None = None,
    ) -> Study:
        """Rebuild a study from its journal, to look at it or to go on with it.

        Trials that were running when their driver stopped or died come back as
        ``INTERRUPTED``; the next :meth:`optimize` runs them again first, and, called without
        ``n_trials``, finishes the budget of the run that was cut short.

        Raises:
            ValueError: No study of that name in ``storage``.
            RuntimeError: Another live process on this machine is running the study.
        """
        store = get_storage(storage)
        if not store.exists(name):
            raise ValueError(f"name: no study {name!r} in {store!r}; it has {store.studies()}")
        study = cls.__new__(cls)
        study._setup(name, store, sampler)
        study._replay(store.read(name))
        state, now = study._state, time.time()
        for run, started in state.runs.items():
            if run in state.finished_runs:
                continue
            if (
                started.host == socket.gethostname()
                and started.pid != os.getpid()
                and _pid_alive(started.pid)
            ):
                raise RuntimeError(
                    f"study {name!r} is being run by process {started.pid} on "
                    f"this machine; stop it before loading the study"
                )
            study._record(RunFinished(time=now, run=run, reason="interrupted"))
        for number in state.numbers(TrialState.RUNNING):
            study._record(
                TrialInterrupted(time=now, number=number, reason="its driver stopped while it ran")
            )
        return study

    # -- what a notebook reads --------------------------------------------------------------

    @property
    def space(self) -> Space:
        """The search space."""
        assert self._state.space is not None
        return self._state.space

    @property
    def objective(self) -> str:
        """The name of the metric being optimized."""
        return self._state.objective

    @property
    def direction(self) -> str:
        """``"minimize"`` or ``"maximize"``."""
        return self._state.direction

    @property
    def storage(self) -> BaseStorage:
        """Where the journal lives."""
        return self._storage

    @property
    def trials(self) -> list[Trial]:
        """Every trial, by number."""
        return self._state.trials()

    def get_trials(self, states: Iterable[TrialState | str] | None = None) -> list[Trial]:
        """The trials in the given states (all if None)."""
        if states is None:
            return self._state.trials()
        if isinstance(states, (str, TrialState)):
            states = [states]
        valid = [s.value for s in TrialState]
        wanted = []
        for state in states:
            if state not in valid and not isinstance(state, TrialState):
                raise ValueError(f"states: {state!r} is not one of {valid}")
            wanted.append(TrialState(state))
        return self._state.trials(wanted)

    @property
    def best_trial(self) -> Trial:
        """The complete trial with the best objective value (``ValueError`` if none yet)."""
        if self._state.best_number is None:
            raise ValueError(f"study {self.name!r} has no complete trial yet")
        return self._state.trial(self._state.best_number)

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
        c = self._state.counts
        best = ""
        if self._state.best_number is not None:
            best = f", best {self.objective}={self.best_value:.6g}"
        return (
            f"<Study {self.name!r} {self.direction} {self.objective}: "
            f"{c[TrialState.COMPLETE]} complete, {c[TrialState.RUNNING]} running, "
            f"{c[TrialState.FAILED]} failed{best}>"
        )

    # -- recording ----------------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        """Make ``event`` durable, fold it in, and tell the sampler and any listeners."""
        with self._lock:
            self._storage.append(self.name, event)
            self._state.apply(event)
            if isinstance(event, (TrialCompleted, TrialFailed)):
                trial = self._state.trial(event.number)
                y = None if trial.value is None else self._state.sign() * trial.value
                self.sampler.observe(self.space.encode(trial.params), y)
            for listener in self._listeners:
                listener(event)

    def _suggest(self, n: int, run: int | None) -> list[int]:
        """Ask the sampler for up to ``n`` trials; record them and return their numbers."""
        state, space = self._state, self.space
        X, y, X_failed, pending = state.observations()
        history = History(space, X, y, X_failed, state.n_trials)
        U = np.asarray(self.sampler.suggest(history, pending, n), dtype=float)
        if U.ndim != 2 or U.shape[1] != space.dim or len(U) > n or not np.isfinite(U).all():
            raise RuntimeError(
                f"{type(self.sampler).__name__}.suggest returned an array of "
                f"shape {U.shape}; want at most {n} finite rows of {space.dim}"
            )
        numbers = []
        for params in space.decode_many(U):
            number = state.n_trials
            self._record(TrialAsked(time=self._clock(), number=number, params=params, run=run))
            numbers.append(number)
        return numbers

    # -- ask and tell ---------------------------------------------------------------------------

    def ask(self) -> Trial:
        """A new trial with the sampler's next parameters, counted as running until told."""
        numbers = self._suggest(1, run=None)
        if not numbers:
            raise RuntimeError(f"{type(self.sampler).__name__} has no more points to give")
        return self._state.trial(numbers[0])

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

        ``value`` is a number or a dict of metrics, as an objective returns. A NaN, an
        infinite or a non-numeric value is recorded as a failed trial (``Failure.INVALID``).

        Returns:
            The finished trial.
        """
        number = trial.number if isinstance(trial, Trial) else trial
        if not isinstance(number, int) or number not in range(self._state.n_trials):
            raise ValueError(f"trial: no trial {number!r} in study {self.name!r}")
        if self._state.trial(number).state.finished:
            raise ValueError(
                f"trial: trial {number} is already {self._state.trial(number).state.value}"
            )
        given = sum([value is not None, error is not None, bool(pruned)])
        if given != 1:
            raise ValueError("tell: give exactly one of value, error= or pruned=True")
        now = self._clock()
        event: Event
        if pruned:
            reports = self._state.trial(number).reports
            event = TrialPruned(time=now, number=number, step=reports[-1].step if reports else None)
        elif error is not None:
            event = TrialFailed(
                time=now, number=number, reason=str(error), failure=Failure.ERROR.value
            )
        else:
            values, why = interpret_result(value, self.objective)
            if values is None:
                event = TrialFailed(
                    time=now, number=number, reason=str(why), failure=Failure.INVALID.value
                )
            else:
                event = TrialCompleted(time=now, number=number, values=values)
        self._record(event)
        return self._state.trial(number)

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
        number, now = self._state.n_trials, time.time()
        self._record(TrialAsked(time=now, number=number, params=checked, run=None))
        self._record(TrialCompleted(time=now, number=number, values=values))
        return self._state.trial(number)

    # -- optimize -------------------------------------------------------------------------------

    def _resume_budget(self) -> int:
        """New trials still owed by the last run, when ``optimize`` gets no budget."""
        state = self._state
        if state.runs:
            last = state.runs[max(state.runs)]
            if last.n_trials is not None:
                asked = sum(1 for t in state.trials() if state.run_of(t.number) == last.run)
                owed = last.n_trials - asked
                if owed > 0 or state.counts[TrialState.INTERRUPTED]:
                    return max(owed, 0)
        raise ValueError(
            "n_trials: give n_trials or timeout (the study has no unfinished budget to resume)"
        )

    def _make_run(
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
        callbacks: Sequence[Callable[[Study, Trial], Any]] | None,
        progress: bool | None,
        adapt: bool = False,
    ) -> Driver:
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        if progress not in (None, True, False):
            raise ValueError(f"progress must be True, False or None, got {progress!r}")
        n_trials = positive_int("n_trials", n_trials, allow_none=True)
        timeout = positive_float("timeout", timeout, allow_none=True)
        if n_trials is None and timeout is None:
            n_trials = self._resume_budget()
        config = RunConfig(
            n_trials=n_trials,
            timeout=timeout,
            max_concurrent=positive_int("max_concurrent", max_concurrent, allow_none=True),
            trial_timeout=positive_float("trial_timeout", trial_timeout, allow_none=True),
            max_retries=positive_int("max_retries", max_retries, minimum=0),
            callbacks=tuple(callbacks or ()),
        )
        for cb in config.callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks: {cb!r} is not callable")
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
        if self._driver is not None:
            raise RuntimeError(f"study {self.name!r} is already running an optimize call")
        return Driver(self, objective, backend, config)

    async def _drive(self, driver: Driver, progress: bool | None) -> str:
        bar = None
        if (progress or (progress is None and _isatty())) and not in_notebook():
            total = driver.config.n_trials
            if total is not None:
                total += self._state.counts[TrialState.INTERRUPTED]
            bar = TextProgress(self, total)
            self._listeners.append(bar)
        self._driver, self._clock = driver, driver.backend.now
        try:
            return await driver.run()
        finally:
            self._driver, self._clock = None, time.time
            if bar is not None:
                self._listeners.remove(bar)
                bar.close()

    def optimize(
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
        callbacks: Sequence[Callable[[Study, Trial], Any]] | None = None,
        progress: bool | None = None,
        adapt: bool = False,
    ) -> None:
        """Run trials until the budget is spent, the time is up, or the study is stopped.

        Every argument is checked before any trial runs. Trials left ``INTERRUPTED`` by an
        earlier run are run again first.

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
                (``Failure.WORKER_LOST``).
            resources: dask worker resources each trial needs, e.g. ``{"GPU": 1}``.
            callbacks: ``callback(study, trial)`` after each finished trial; may call
                :meth:`stop`.
            progress: Show a text progress line (default: when stderr is a terminal).
            adapt: Grow the client's cluster (e.g. a dask-jobqueue ``SLURMCluster``) with the
                trials waiting to run, never past ``max_concurrent`` workers (required), and
                give the workers back when the run ends.
        """
        driver = self._make_run(
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
        view = None
        if progress is not False and in_notebook():
            view = self.widget()
            show(view)
        try:
            block_on(
                lambda: self._drive(driver, progress),
                driver.backend.loop,
                lambda: driver.request_stop(cancel_running=True, reason="KeyboardInterrupt"),
            )
        finally:
            if view is not None:
                view.flush()  # the end, sent before the cell returns

    async def optimize_async(
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
        callbacks: Sequence[Callable[[Study, Trial], Any]] | None = None,
        progress: bool | None = None,
        adapt: bool = False,
    ) -> None:
        """:meth:`optimize` as a coroutine, for asynchronous code and asynchronous clients.

        Takes the same arguments. With a dask client, await it on the client's event loop.
        """
        driver = self._make_run(
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
        await self._drive(driver, progress)

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
        callbacks: Sequence[Callable[[Study, Trial], Any]] | None = None,
        progress: bool | None = None,
        adapt: bool = False,
    ) -> Run:
        """:meth:`optimize` in the background: returns a :class:`~asynchpo.Run` at once.

        Takes the same arguments, checked before it returns. The run goes on in a thread
        of its own (or on the dask client's event loop), so the notebook stays free: read
        ``study.best_params``, plot, or start another study meanwhile. Displayed in a
        notebook, the run (or the study) shows the live view. ``run.wait()`` or
        ``await run`` gives its end and raises what it raised.
        """
        driver = self._make_run(
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
        self._driver = driver  # taken now: a second start raises until this one ends
        future = launch(lambda: self._drive(driver, progress), driver.backend.loop)
        run = Run(self, driver, future)
        self._run = run
        return run

    def widget(self) -> StudyWidget:
        """The study's live view for a notebook (one per study: displaying it again, even
        after the notebook is reopened, shows the same live view)."""
        if self._widget is None:
            from asynchpo.widgets._view import StudyWidget

            self._widget = StudyWidget(self)
        widget: StudyWidget = self._widget
        return widget

    def _ipython_display_(self) -> None:
        if in_notebook():
            show(self.widget())
        else:
            print(repr(self))

    def to_xarray(self) -> xr.Dataset:
        """The trials as an ``xarray.Dataset``: a ``trial`` dimension (parameters with their
        distribution in ``attrs``, metrics, state, worker, times) and a ``step`` dimension for
        the reported learning curves. Save it with ``to_netcdf`` or ``to_zarr``; rebuild the
        study with :meth:`from_xarray`. Needs ``asynchpo[results]``."""
        from asynchpo.results import to_xarray

        return to_xarray(self)

    @classmethod
    def from_xarray(
        cls,
        ds: xr.Dataset,
        storage: str | os.PathLike[str] | BaseStorage | None = None,
        name: str | None = None,
        sampler: BaseSampler | None = None,
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
        if self._driver is not None:
            self._driver.request_stop(cancel_running=cancel_running)


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
