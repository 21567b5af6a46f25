"""Multi-fidelity methods of asynchpo and of its peers (Optuna, Syne Tune, Ray Tune) on the same
learning curves, the same budget of epochs and the same simulated asynchronous workers.

    python -m benchmarks.mf_compare [--functions table hartmann [table-synthetic]]
        [--workers 8 32] [--seeds 20] [--budget 100] [--methods ...] [--jobs 2] [--cache FILE]
        [--out DIR]

Objectives: ``benchmarks.mf_table`` (``table``: the MLP-on-digits learning-curve table,
nearest recorded configuration; ``hartmann``: a multi-fidelity Hartmann-6; and, if asked for,
``table-synthetic``: the harder table of the same MLP on a synthetic classification with
3,000 validation rows). Budget: ``--budget`` full-length trials'
worth of epochs (``budget * 27``), the same for every method. Every method runs on ``W``
workers of a virtual clock on which each epoch of a configuration takes its recorded mean
epoch time: asynchpo on its own ``SimulatedBackend(step_duration=...)``; the peers through
their ask/tell (or scheduler) interfaces on the small event-driven simulator below, which
frees a worker when its trial ends or is stopped and asks for a new trial at once. On a
table, each recorded configuration runs at most once in a run (``Catalog``; ``--repeats``
lets a point be answered by the nearest configuration again, repeats and all).

Measured for each run, against the epochs consumed (all workers together, in the virtual
order of their reports) and against virtual time: the best validation error of the trials
that reached the last epoch, and the best of any report. Written: ``DIR/mf_compare.md``
(median and IQR over seeds of the final regret, the epochs needed to reach full-budget
GPSampler's median final regret, and the regret at equal virtual time) and
``DIR/mf_compare.html`` (median regret against epochs and against virtual time; matplotlib
SVG, offline). Each run is kept in ``--cache`` (JSON lines, default under the temporary
folder); a run already there is not run again.

Run it in an environment that has the peers too (``pip install -e ".[bench]" syne-tune
"ray[tune]"``); a method whose library is missing is skipped, and the table says so.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import heapq
import io
import json
import math
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import asynchpo as ah
from asynchpo.samplers import BaseSampler, Fidelity, History
from benchmarks._emit import Runs, commit
from benchmarks.mf_table import BENCHMARKS, TABLES, Benchmark, Catalog

#: the functions run when ``--functions`` is not given
DEFAULT_FUNCTIONS = ["table", "hartmann"]

# -- asynchpo ---------------------------------------------------------------------------------


def _ah(sampler: str, scheduler: str) -> Callable[[int, int], tuple[Any, Any]]:
    def make(seed: int, R: int) -> tuple[Any, Any]:
        s = ah.GPSampler(seed=seed) if sampler == "gp" else ah.RandomSampler(seed=seed)
        sched = {
            "asha": lambda: ah.ASHA(R),
            "promotion": lambda: ah.ASHA(R, mode="promotion"),
            "hyperband": lambda: ah.Hyperband(R, seed=seed),
            "median": lambda: ah.MedianStopping(),
            "none": lambda: None,
        }[scheduler]()
        return s, sched

    return make


Trace = list[tuple[float, float, bool, int]]  # (virtual time, value, last epoch?, trial) per epoch


class OnCatalog(BaseSampler):
    """A sampler whose every point is replaced by the nearest configuration of the table not
    taken yet (:class:`~benchmarks.mf_table.Catalog`): the study records, and the sampler
    then sees, the configuration that ran."""

    multi_fidelity = True  # the inner sampler is given what it would be given alone

    def __init__(self, inner: BaseSampler, catalog: Catalog):
        self.inner, self.catalog = inner, catalog

    def forecast(self, X: np.ndarray, fidelity: Fidelity | None = None) -> np.ndarray | None:
        return self.inner.forecast(X, fidelity)

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        if not self.inner.multi_fidelity:
            history = dataclasses.replace(history, fidelity=None)
        U = self.inner.suggest(history, pending, n)
        unit = self.catalog.table.unit
        return np.array([unit[self.catalog.take(u)] for u in U]).reshape(len(U), U.shape[1])


def catalog_of(bench: Benchmark, once: bool) -> Catalog | None:
    """A fresh catalog of ``bench``'s table for one run, if it has one and ``once``."""
    table = bench.info.get("table")
    return Catalog(table) if once and table is not None else None


def run_asynchpo(
    method: str, bench: Benchmark, W: int, epochs: int, seed: int, catalog: Catalog | None
) -> Trace:
    sampler, scheduler = ASYNCHPO[method](seed, bench.max_resource)
    if catalog is not None:
        sampler = OnCatalog(sampler, catalog)
    folder = tempfile.mkdtemp(prefix="asynchpo-mf-")
    try:
        study = ah.Study(
            bench.space,
            objective="value",
            sampler=sampler,
            scheduler=scheduler,
            checkpoint_dir=folder,
        )
        issued = [0]

        def objective(params: dict[str, Any]) -> float:
            return bench.objective(params, on_report=_count(issued))

        def stop(study: ah.Study, trial: Any) -> None:
            # each running trial has at most one report issued that the clock has not reached
            if issued[0] >= epochs + W:
                study.stop(cancel_running=True)

        if scheduler is None:
            n_trials, callbacks = math.ceil(epochs / bench.max_resource), None
        else:
            n_trials, callbacks = epochs, [stop]
        study.optimize(
            objective,
            n_trials=n_trials,
            backend=bench.backend(n_workers=W, seed=seed),
            callbacks=callbacks,
            progress=False,
        )
        R = bench.max_resource
        reports = sorted(
            (r.time, t.number, r.step, float(r.metrics["value"]))
            for t in study.trials
            for r in t.reports
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [(t, v, step == R, n) for t, n, step, v in reports[:epochs]]


def _count(issued: list[int]) -> Callable[[], None]:
    def tick() -> None:
        issued[0] += 1

    return tick


ASYNCHPO: dict[str, Callable[[int, int], tuple[Any, Any]]] = {
    "ah-asha-random": _ah("random", "asha"),
    "ah-asha-gp": _ah("gp", "asha"),
    "ah-hyperband-random": _ah("random", "hyperband"),
    "ah-hyperband-gp": _ah("gp", "hyperband"),
    "ah-asha-promotion-random": _ah("random", "promotion"),
    "ah-asha-promotion-gp": _ah("gp", "promotion"),
    "ah-median-random": _ah("random", "median"),
    "ah-gp-full": _ah("gp", "none"),
}
REFERENCE = "ah-gp-full"

# -- the peers: an event-driven simulator of W workers ----------------------------------------


class Policy:
    """A peer's loop in three calls: ``ask() -> (handle, params)``; ``report(handle, epoch,
    value) -> go on?``; ``complete(handle, value)`` after the last epoch."""

    def ask(self) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    def report(self, handle: Any, epoch: int, value: float) -> bool:
        raise NotImplementedError

    def complete(self, handle: Any, value: float) -> None:
        pass

    def ask_from(self, catalog: Catalog) -> tuple[Any, dict[str, Any]]:
        """``ask``, the point replaced by the configuration ``catalog`` gives for it; the
        peer must be told so where it learns from the points (this default does not: right
        for random configurations only)."""
        handle, params = self.ask()
        return handle, catalog.snap(params)


def simulate(
    policy: Policy, bench: Benchmark, W: int, epochs: int, catalog: Catalog | None = None
) -> Trace:
    """``W`` workers: each epoch of a trial takes ``bench.epoch_seconds(params)``; the policy
    hears of each epoch when the clock reaches its end and decides there; a worker whose
    trial ended or was stopped asks for a new one at once."""
    R = bench.max_resource
    heap: list[tuple[float, int, int]] = []  # (time the epoch ends, order, trial)
    live: dict[int, tuple[Any, np.ndarray, float, int]] = {}  # trial -> (handle, curve, d, epoch)
    order = 0
    trace: Trace = []

    def start(now: float) -> None:
        nonlocal order
        handle, params = policy.ask() if catalog is None else policy.ask_from(catalog)
        d = bench.epoch_seconds(params)
        live[order] = (handle, bench.curve(params), d, 1)
        heapq.heappush(heap, (now + d, order, order))
        order += 1

    for _ in range(W):
        start(0.0)
    while heap and len(trace) < epochs:
        now, _, n = heapq.heappop(heap)
        handle, curve, d, e = live[n]
        v = float(curve[e - 1])
        trace.append((now, v, e == R, n))
        go = policy.report(handle, e, v)
        if e == R or not go:
            if e == R and go:
                policy.complete(handle, v)
            del live[n]
            if len(trace) < epochs:
                start(now)
        else:
            live[n] = (handle, curve, d, e + 1)
            heapq.heappush(heap, (now + d, order, n))
            order += 1
    return trace


class OptunaPolicy(Policy):
    def __init__(self, bench: Benchmark, sampler: Any, pruner: Any):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.study = optuna.create_study(sampler=sampler, pruner=pruner)
        D = optuna.distributions
        self.dists = {
            n: (
                D.IntDistribution(d.low, d.high, log=d.log)
                if isinstance(d, ah.Int)
                else D.FloatDistribution(d.low, d.high, log=d.log)
            )
            for n, d in bench.space.items()
        }

    def ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask(self.dists)
        return trial, dict(trial.params)

    def ask_from(self, catalog: Catalog) -> tuple[Any, dict[str, Any]]:
        # the sampled trial is told as failed (TPE learns from complete, pruned and, as
        # constant liar, running trials only) and the configuration enqueued and asked
        trial = self.study.ask(self.dists)
        params = catalog.snap(dict(trial.params))
        self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
        self.study.enqueue_trial(params)
        trial = self.study.ask(self.dists)
        return trial, dict(trial.params)

    def report(self, trial: Any, epoch: int, value: float) -> bool:
        trial.report(value, epoch)
        if trial.should_prune():
            self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
            return False
        return True

    def complete(self, trial: Any, value: float) -> None:
        self.study.tell(trial, value)


def _optuna(pruner: str) -> Callable[[Benchmark, int], Policy]:
    def make(bench: Benchmark, seed: int) -> Policy:
        import optuna

        R = bench.max_resource
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental options
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
        p = optuna.pruners
        pr = {
            "median": lambda: p.MedianPruner(),
            "sha": lambda: p.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
            "hyperband": lambda: p.HyperbandPruner(
                min_resource=1, max_resource=R, reduction_factor=3
            ),
        }[pruner]()
        return OptunaPolicy(bench, sampler, pr)

    return make


class SynePolicy(Policy):
    def __init__(self, scheduler: Any):
        from syne_tune.backend.trial_status import Trial

        self.scheduler, self.Trial, self.n = scheduler, Trial, 0

    def ask(self, catalog: Catalog | None = None) -> tuple[Any, dict[str, Any]]:
        import datetime

        suggestion = self.scheduler.suggest()
        # its searchers learn from the trial's config (``on_trial_result(trial, ...)``)
        config = suggestion.config if catalog is None else catalog.snap(dict(suggestion.config))
        trial = self.Trial(trial_id=self.n, config=config, creation_time=datetime.datetime.now())
        self.n += 1
        self.scheduler.on_trial_add(trial)
        return trial, dict(trial.config)

    def ask_from(self, catalog: Catalog) -> tuple[Any, dict[str, Any]]:
        return self.ask(catalog)

    def report(self, trial: Any, epoch: int, value: float) -> bool:
        from syne_tune.optimizer.scheduler import SchedulerDecision

        self.last = {"value": value, "epoch": epoch}
        decision = self.scheduler.on_trial_result(trial, self.last)
        if decision == SchedulerDecision.STOP:  # as syne_tune.Tuner does, at max_t too
            self.scheduler.on_trial_remove(trial)
            return False
        return True

    def complete(self, trial: Any, value: float) -> None:
        self.scheduler.on_trial_complete(trial, {"value": value, "epoch": self.last["epoch"]})


def syne_space(space: ah.Space) -> dict[str, Any]:
    from syne_tune import config_space as cs

    out = {}
    for n, d in space.items():
        if isinstance(d, ah.Int):
            out[n] = cs.lograndint(d.low, d.high) if d.log else cs.randint(d.low, d.high)
        else:
            out[n] = cs.loguniform(d.low, d.high) if d.log else cs.uniform(d.low, d.high)
    return out


def _syne(kind: str) -> Callable[[Benchmark, int], Policy]:
    def make(bench: Benchmark, seed: int) -> Policy:
        from syne_tune.optimizer import baselines as b

        np.random.seed(seed)  # its brackets are drawn with numpy's global generator
        space, R = syne_space(bench.space), bench.max_resource
        common = dict(metric="value", time_attr="epoch", max_t=R, do_minimize=True)
        if kind == "msr":
            from syne_tune.optimizer.schedulers.median_stopping_rule import MedianStoppingRule

            inner = b.RandomSearch(space, metrics=["value"], do_minimize=True, random_seed=seed)
            return SynePolicy(MedianStoppingRule(inner, time_attr="epoch", metric="value"))
        cls = {"asha": b.ASHA, "hyperband": b.ASHA, "bohb": b.BOHB}[kind]
        brackets = 3 if kind == "hyperband" else 1
        return SynePolicy(
            cls(
                space,
                random_seed=seed,
                grace_period=1,
                reduction_factor=3,
                brackets=brackets,
                **common,
            )
        )

    return make


class Syne013Policy(Policy):
    """Syne Tune 0.13's ``HyperbandScheduler`` family (MOBSTER, Hyper-Tune), driven as its
    ``Tuner`` drives it: ``suggest(trial_id)``, ``on_trial_add``, ``on_trial_result``;
    ``on_trial_remove`` once it says stop (at ``max_t`` too)."""

    def __init__(self, scheduler: Any):
        from syne_tune.backend.trial_status import Trial

        self.scheduler, self.Trial, self.n = scheduler, Trial, 0

    def ask(self, catalog: Catalog | None = None) -> tuple[Any, dict[str, Any]]:
        import datetime

        suggestion = self.scheduler.suggest(trial_id=self.n)
        assert suggestion is not None and suggestion.spawn_new_trial_id
        config = dict(suggestion.config)
        trial = self.Trial(
            trial_id=self.n,
            config=config if catalog is None else catalog.snap(config),
            creation_time=datetime.datetime.now(),
        )
        self.n += 1
        self.scheduler.on_trial_add(trial=trial)
        return trial, dict(trial.config)

    def ask_from(self, catalog: Catalog) -> tuple[Any, dict[str, Any]]:
        return self.ask(catalog)

    def report(self, trial: Any, epoch: int, value: float) -> bool:
        from syne_tune.optimizer.scheduler import SchedulerDecision

        self.last = {"value": value, "epoch": epoch}
        decision = self.scheduler.on_trial_result(trial=trial, result=dict(self.last))
        if decision == SchedulerDecision.STOP:
            self.scheduler.on_trial_remove(trial=trial)
            return False
        return True

    def complete(self, trial: Any, value: float) -> None:
        self.scheduler.on_trial_complete(trial, dict(self.last))


def _syne013(kind: str) -> Callable[[Benchmark, int], Policy]:
    def make(bench: Benchmark, seed: int) -> Policy:
        import logging

        from syne_tune.optimizer import baselines as b

        logging.getLogger("syne_tune").setLevel(logging.ERROR)
        np.random.seed(seed)
        cls = {"mobster": b.MOBSTER, "hypertune": b.HyperTune}[kind]
        return Syne013Policy(
            cls(
                syne_space(bench.space),
                metric="value",
                resource_attr="epoch",
                mode="min",
                max_t=bench.max_resource,
                grace_period=1,
                reduction_factor=3,
                brackets=1 if kind == "mobster" else 3,
                type="stopping",
                random_seed=seed,
                search_options={"debug_log": False},
            )
        )

    return make


class RayPolicy(Policy):
    """Ray Tune's ``AsyncHyperBandScheduler`` on its own (no Ray runtime); configurations
    drawn uniformly at random, as Ray Tune's default searcher (random variants) does."""

    def __init__(self, bench: Benchmark, seed: int):
        from types import SimpleNamespace

        from ray.tune.schedulers import AsyncHyperBandScheduler

        np.random.seed(seed)  # its brackets are drawn with numpy's global generator
        self.sched = AsyncHyperBandScheduler(
            time_attr="epoch",
            metric="value",
            mode="min",
            max_t=bench.max_resource,
            grace_period=1,
            reduction_factor=3,
            brackets=1,
        )
        self.rng, self.space, self.n = np.random.default_rng(seed), bench.space, 0
        self.NS = SimpleNamespace

    def ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.NS(trial_id=f"t{self.n}")
        self.n += 1
        self.sched.on_trial_add(None, trial)
        return trial, self.space.sample(self.rng)[0]

    def report(self, trial: Any, epoch: int, value: float) -> bool:
        from ray.tune.schedulers import TrialScheduler

        if self.sched.on_trial_result(None, trial, {"value": value, "epoch": epoch}) == (
            TrialScheduler.STOP
        ):
            self.sched.on_trial_remove(None, trial)
            return False
        return True


PEERS: dict[str, tuple[str, Callable[[Benchmark, int], Policy]]] = {
    "optuna-tpe-median": ("optuna", _optuna("median")),
    "optuna-tpe-sha": ("optuna", _optuna("sha")),
    "optuna-tpe-hyperband": ("optuna", _optuna("hyperband")),
    "syne-asha": ("syne_tune", _syne("asha")),
    "syne-hyperband": ("syne_tune", _syne("hyperband")),
    "syne-bohb": ("syne_tune", _syne("bohb")),
    "syne-msr": ("syne_tune", _syne("msr")),
    "syne013-mobster": ("syne_tune==0.13", _syne013("mobster")),
    "syne013-hypertune": ("syne_tune==0.13", _syne013("hypertune")),
    "ray-asha": ("ray", lambda bench, seed: RayPolicy(bench, seed)),
}
METHODS = [*ASYNCHPO, *PEERS]
DESCRIBE = {
    "ah-asha-random": "`Study(sampler=RandomSampler(seed=s), scheduler=ASHA(27))`",
    "ah-asha-gp": "`Study(sampler=GPSampler(seed=s), scheduler=ASHA(27))`",
    "ah-hyperband-random": "`RandomSampler`, `Hyperband(27, seed=s)`",
    "ah-hyperband-gp": "`GPSampler`, `Hyperband(27, seed=s)`",
    "ah-asha-promotion-random": '`RandomSampler`, `ASHA(27, mode="promotion")`',
    "ah-asha-promotion-gp": '`GPSampler`, `ASHA(27, mode="promotion")`',
    "ah-median-random": "`RandomSampler`, `MedianStopping()`",
    "ah-gp-full": "`GPSampler`, `scheduler=None`: every trial runs 27 epochs (the reference)",
    "optuna-tpe-median": "`TPESampler(multivariate, constant_liar)`, `MedianPruner()`",
    "optuna-tpe-sha": "TPE, `SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)`",
    "optuna-tpe-hyperband": "TPE, `HyperbandPruner(1, 27, reduction_factor=3)`",
    "syne-asha": "`baselines.ASHA(grace_period=1, reduction_factor=3)` (stopping)",
    "syne-hyperband": "`baselines.ASHA(..., brackets=3)` (asynchronous Hyperband)",
    "syne-bohb": "`baselines.BOHB(grace_period=1, reduction_factor=3)` (ASHA + KDE)",
    "syne-msr": "`MedianStoppingRule(RandomSearch(...))`",
    "syne013-mobster": "Syne Tune 0.13 `baselines.MOBSTER(grace_period=1, reduction_factor=3, "
    'type="stopping")` (GP multi-task searcher; an environment of its own: 0.13 needs '
    "numpy < 1.27)",
    "syne013-hypertune": 'Syne Tune 0.13 `baselines.HyperTune(..., brackets=3, type="stopping")`'
    " (an environment of its own)",
    "ray-asha": "`AsyncHyperBandScheduler(grace_period=1, reduction_factor=3)`, random configs",
}


def available(method: str) -> str | None:
    """None if ``method`` can run here, else why not."""
    if method in ASYNCHPO:
        return None
    module, _, want = PEERS[method][0].partition("==")
    try:
        mod = __import__(module)
    except Exception as exc:  # not installed, or broken on this Python
        return f"{module} does not import: {type(exc).__name__}: {exc}"
    have = getattr(mod, "__version__", "")
    if module == "syne_tune" and (have.startswith("0.13") != (want == "0.13")):
        why = f"needs syne-tune {want or '>= 0.14'}, this environment has {have}"
        if want == "0.13":  # MOBSTER and Hyper-Tune left Syne Tune with 0.14
            why += (
                "; run it from an environment of its own (numpy < 1.27, "
                "`syne-tune[gpsearchers]==0.13.0`) with the same `--cache`"
            )
        return why
    return None


# -- one run, and what is kept of it ----------------------------------------------------------


def summarize(trace: Trace, optimum: float) -> dict[str, Any]:
    """The improvements only: ``(epochs consumed, time, best final, best any)`` whenever
    either best changes (``inf`` before any)."""
    bf = ba = math.inf
    points = []
    for n, (t, v, final, _) in enumerate(trace, 1):
        nbf = min(bf, v) if final else bf
        nba = min(ba, v)
        if nbf < bf or nba < ba or n == 1:
            points.append((n, t, nbf - optimum, nba - optimum))
        bf, ba = nbf, nba
    return {
        "points": points,
        "epochs": len(trace),
        "t_end": trace[-1][0] if trace else 0.0,
        "final_regret": bf - optimum,
        "any_regret": ba - optimum,
        "trials": len({x[3] for x in trace}),
        "complete": sum(x[2] for x in trace),
    }


_BENCH: dict[str, Benchmark] = {}


def data_id(fname: str, once: bool = True) -> str:
    """What a cached run of ``fname`` was made from: the table file's SHA-256 (its first
    12 digits), and ``+once`` when each configuration ran at most once, so that runs on
    another table, or with repeats, are not taken for these."""
    if fname not in TABLES or not TABLES[fname].exists():
        return ""
    import hashlib

    digest = hashlib.sha256(TABLES[fname].read_bytes()).hexdigest()[:12]
    return digest + ("+once" if once else "")


def resolution_note(fname: str) -> str:
    """The error of one validation sample of the table behind ``fname``."""

    z = np.load(TABLES[fname])
    meta = json.loads(str(z["meta"]))
    n_valid = int(meta["n_valid"])
    runs = len(z["error_runs"]) if "error_runs" in z.files else 1
    note = f"On `{fname}` ({TABLES[fname].name}), one validation "
    if meta.get("dataset", "digits") == "digits":
        note += f"image is 1/{n_valid} = {1 / n_valid:.3g} of error"
        if runs == 1:
            return note + ", so most differences between methods there are of one to three images"
        return note + (
            f"; the table's error is the mean of {runs} training runs of each configuration "
            f"(`benchmarks.mf_record --merge-repeats`), so it moves in steps of "
            f"1/{runs * n_valid} = {1 / (runs * n_valid):.2g}"
        )
    return note + f"sample is 1/{n_valid} = {1 / n_valid:.2g} of error"


def starters_note(fname: str, top: int = 3) -> str:
    """Where the table's best final configurations rank after the first epoch: a stop at a
    rung by the raw value there ends a slow starter however well it would have ended."""
    error = np.load(TABLES[fname])["error"].astype(float)
    first = np.argsort(np.argsort(error[:, 0]))  # rank after one epoch, 0 the best
    best = np.argsort(error[:, -1], kind="stable")[:top]
    ranks = ", ".join(str(int(first[i]) + 1) for i in best)
    return (
        f"The {top} best final errors of `{fname}` rank {ranks} of {len(error)} after one "
        f"epoch, where a stop by the value at a first rung of reduction factor 3 keeps the "
        f"best {len(error) // 3} of a random population (fewer once the population is good)"
    )


def run_one(key: tuple[str, int, str, int], epochs: int, once: bool = True) -> dict[str, Any]:
    fname, W, method, seed = key
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    bench = _BENCH.get(fname)
    if bench is None:
        bench = _BENCH[fname] = BENCHMARKS[fname]()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        catalog = catalog_of(bench, once)
        if method in ASYNCHPO:
            trace = run_asynchpo(method, bench, W, epochs, seed, catalog)
        else:
            trace = simulate(PEERS[method][1](bench, seed), bench, W, epochs, catalog)
    out = summarize(trace, bench.optimum)
    out.update(
        function=fname,
        workers=W,
        method=method,
        seed=seed,
        budget_epochs=epochs,
        seconds=time.perf_counter() - t0,
        data=data_id(fname, once),
    )
    return out


def _init_worker() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


# -- reading the runs -------------------------------------------------------------------------


#: regrets closer than this are equal (float32 rounding; a table's errors move in steps of
#: 1/(runs * validation samples), 5.6e-4 on digits)
_TIE = 1e-6


def best_at(points: list, n: float, col: int, by: int = 0) -> float:
    """The best (column ``col``: 2 final, 3 any) once ``n`` epochs (``by=0``) or ``n``
    virtual seconds (``by=1``) are spent."""
    best = math.inf
    for p in points:
        if p[by] > n:
            break
        best = p[col]
    return best


def epochs_to(points: list, target: float) -> float:
    for p in points:
        if p[2] <= target + 1e-12:
            return p[0]
    return math.inf


def _q(vals: list[float]) -> tuple[float, float, float]:
    a = np.array(vals, float)
    q1, med, q3 = np.percentile(a, [25, 50, 75], method="lower" if np.isinf(a).any() else "linear")
    return float(q1), float(med), float(q3)


def _f(x: float, digits: str = ".3g") -> str:
    return "-" if not math.isfinite(x) else format(x, digits)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, skipped: dict[str, str]) -> None:
    epochs_budget = args.budget * 27
    lines = [
        "# Multi-fidelity methods on a learning-curve table and a multi-fidelity Hartmann-6",
        "",
        f"Command (in an environment with the peers installed): `{args.command}`",
        "",
        f"Budget: {args.budget} full-length trials' worth, {epochs_budget} epochs (all workers "
        "together), the same simulated asynchronous workers for every method; each epoch takes "
        "its configuration's recorded mean epoch time of virtual time (Hartmann: `0.5 + x5`). "
        "Regret: best validation error (Hartmann: value) of the trials that reached the last "
        "epoch, minus the best final error in the table (Hartmann: its minimum, -3.32237). "
        "Median [IQR] over seeds. "
        + (
            "On a table, each recorded configuration runs at most once in a run: a method's "
            "point is replaced by the nearest configuration not yet taken, and the method is "
            "told that configuration ran (`benchmarks.mf_table.Catalog`; Optuna: the sampled "
            "trial told as failed and the configuration enqueued)."
            if not args.repeats
            else "On a table, a point is answered by the nearest configuration, repeats "
            "allowed (`--repeats`)."
        ),
        "",
        "- *final*: regret once the budget is spent; *any report*: the same of the best value "
        "any report had (on the table it can lie below 0: an epoch before the last may beat "
        "the table's best final error);",
        f"- *epochs to ref*: epochs consumed until the regret first reached `{REFERENCE}`'s "
        "median final regret (median over seeds; `-` where the median run never did);",
        "- *equal time*: regret at the virtual time by which the fastest method (by median) "
        "had spent its budget: that time is given in the heading of each group;",
        "- *s/run*: median wall-clock seconds of one run of the benchmark itself (this "
        "machine, 1 thread).",
        "",
    ]
    if skipped:
        lines += ["Skipped: " + "; ".join(f"`{m}` ({why})" for m, why in skipped.items()), ""]
    tables = [f for f in dict.fromkeys(r["function"] for r in runs) if f in TABLES]
    lines += [
        "Notes: "
        + "".join(resolution_note(f) + ". " + starters_note(f) + ". " for f in tables)
        + "The tables' epoch times are "
        "wall-clock seconds measured on a 2-core machine that other processes shared (they "
        "are up to ~3x a configuration's CPU seconds, see `benchmarks/mf_record.py`), so "
        "the virtual clock carries that noise. Under `ASHA` and `Hyperband`, asynchpo's "
        "`GPSampler` models every rung's results (one GP over configuration and resource); "
        "under `MedianStopping` and without a scheduler, the complete trials'. The runs were "
        "made with the asynchpo commit given below: asynchpo changes fast, re-run "
        "asynchpo's methods (`--fresh ah-...`) after it does.",
        "",
    ]
    groups = sorted(
        {(r["function"], r["workers"]) for r in runs},
        key=lambda k: (list(BENCHMARKS).index(k[0]), k[1]),
    )
    for fname, W in groups:
        g = [r for r in runs if r["function"] == fname and r["workers"] == W]
        methods = [m for m in METHODS if any(r["method"] == m for r in g)]
        by = {m: [r for r in g if r["method"] == m] for m in methods}
        t_eq = min(float(np.median([r["t_end"] for r in by[m]])) for m in methods)
        ref = by.get(REFERENCE)
        target = _q([r["final_regret"] for r in ref])[1] if ref else math.nan
        n_seeds = sorted({len(v) for v in by.values()})
        lines += [
            f"## {fname}, {W} workers ({'/'.join(map(str, n_seeds))} seeds; equal time "
            f"{t_eq:.4g} virtual s; reference regret {_f(target, '.4g')})",
            "",
            "| method | final | any report | epochs to ref | equal time | trials | s/run |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in methods:
            rs = by[m]
            fin = _q([r["final_regret"] for r in rs])
            anyr = _q([r["any_regret"] for r in rs])
            e2r = _q([epochs_to(r["points"], target) for r in rs]) if ref else (math.nan,) * 3
            eqt = _q([best_at(r["points"], t_eq, 2, by=1) for r in rs])
            trials = np.median([r.get("trials", math.nan) for r in rs])
            secs = np.median([r["seconds"] for r in rs])
            lines.append(
                f"| {m} | {_f(fin[1], '.4f')} [{_f(fin[0], '.3f')}, {_f(fin[2], '.3f')}] "
                f"| {_f(anyr[1], '.4f')} [{_f(anyr[0], '.3f')}, {_f(anyr[2], '.3f')}] "
                f"| {_f(e2r[1], '.0f')} "
                f"| {_f(eqt[1], '.4f')} [{_f(eqt[0], '.3f')}, {_f(eqt[2], '.3f')}] "
                f"| {_f(trials, '.0f')} | {secs:.1f} |"
            )
        lines += [*verdicts(by, target, t_eq, epochs_budget), ""]
    lines += ["## Methods", ""] + [
        f"- `{m}`: {DESCRIBE[m]}" for m in METHODS if any(r["method"] == m for r in runs)
    ]
    versions = _versions()
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mf_compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        figure(runs, groups, args.out / "mf_compare.html", args.command)
    except ImportError as exc:  # the environment that runs syne-tune 0.13 has no matplotlib
        print(f"no figure: {exc}")


#: Syne Tune's model-based multi-fidelity methods, as this benchmark runs them
MODEL_BASED_PEERS = ("syne-bohb", "syne013-mobster", "syne013-hypertune")


def verdicts(
    by: dict[str, list[dict[str, Any]]], target: float, t_eq: float, epochs_budget: int
) -> list[str]:
    """The done-when lines of one group: each of asynchpo's ASHA variants with the GP
    (stopping, promotion) against the full-budget reference (a third of its epochs) and, at
    equal virtual time, against the peers' methods. Beside each median at equal time, the
    mean over seeds: on a table the medians often tie at one configuration most runs find."""

    def at_eq(m: str) -> list[float]:
        return [best_at(r["points"], t_eq, 2, by=1) for r in by[m]]

    def med(m: str) -> float:
        return _q(at_eq(m))[1]

    def both(m: str) -> str:
        return f"`{m}` {med(m):.6f} (mean {float(np.mean(at_eq(m))):.6f})"

    out = []
    for ours in ("ah-asha-gp", "ah-asha-promotion-gp"):
        if ours not in by:
            continue
        if REFERENCE in by:
            e = _q([epochs_to(r["points"], target) for r in by[ours]])[1]
            third = epochs_budget / 3
            out.append(
                f"- `{ours}` reaches `{REFERENCE}`'s final regret ({_f(target, '.4g')}) after "
                f"{_f(e, '.0f')} epochs (median), at most a third of the budget ({third:.0f}): "
                + ("holds" if e <= third else "fails")
            )
        mine = med(ours)
        for peer in ("optuna-tpe-hyperband", "syne-asha"):
            if peer in by:
                # equal but for rounding (a table's errors are float32) is a tie, not lower
                verdict = "holds" if mine < med(peer) - _TIE else "fails"
                out.append(f"- at equal time, {both(ours)} lower than {both(peer)}: {verdict}")
        ran = [m for m in MODEL_BASED_PEERS if m in by]
        if ran:
            best = min(ran, key=med)
            verdict = "holds" if mine <= med(best) + _TIE else "fails"
            out.append(
                f"- at equal time, {both(ours)} at most the best model-based Syne Tune "
                f"method run here ({both(best)}; run: {', '.join(ran)}): {verdict}"
            )
    return ["", "Verdicts:", "", *out] if out else []


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("asynchpo", "numpy", "torch", "optuna", "syne-tune", "ray"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    head = commit()
    if head:
        out["asynchpo"] = f"{out.get('asynchpo', '')} (commit {head})"
    return out


def figure(runs: list[dict[str, Any]], groups: list, html: Path, command: str) -> None:
    """Median regret (trials at the last epoch) against epochs and against virtual time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(groups), 2, figsize=(13, 4.2 * len(groups) + 1.2), squeeze=False)
    cmap = plt.get_cmap("tab20")
    for row, (fname, W) in enumerate(groups):
        g = [r for r in runs if r["function"] == fname and r["workers"] == W]
        methods = [m for m in METHODS if any(r["method"] == m for r in g)]
        floor = 1e-4 if fname in TABLES else 1e-3
        # time: up to the latest of the methods' median ends (a few runs on slow
        # configurations end much later)
        t_max = max(float(np.median([r["t_end"] for r in g if r["method"] == m])) for m in methods)
        grids = (np.linspace(1, max(r["epochs"] for r in g), 300), np.linspace(0, t_max, 300))
        for col, (by, grid, label) in enumerate(
            zip((0, 1), grids, ("epochs consumed", "virtual time (s)"), strict=True)
        ):
            ax = axes[row][col]
            for i, m in enumerate(methods):
                rs = [r for r in g if r["method"] == m]
                med = [np.median([best_at(r["points"], x, 2, by) for r in rs]) for x in grid]
                style = "-" if m.startswith("ah-") else "--"
                ax.plot(
                    grid,
                    np.clip(med, floor, None),
                    style,
                    color=cmap(i % 20),
                    label=m,
                    lw=2.2 if m == REFERENCE else 1.4,
                )
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel(f"median regret (clipped at {floor:g})")
            ax.set_title(f"{fname}, {W} workers")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    html.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>mf_compare</title></head>"
        "<body><h1>Multi-fidelity methods: median regret</h1>"
        f"<p>Command: <code>{command}</code>. Solid: asynchpo; dashed: peers. A curve is "
        "missing (or flat at the top) until half of its runs had a trial at the last epoch."
        f"</p>{svg}</body></html>\n"
    )


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--functions", nargs="+", default=DEFAULT_FUNCTIONS, choices=list(BENCHMARKS))
    p.add_argument("--workers", nargs="+", type=int, default=[8, 32])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budget", type=int, default=100, help="full-length trials' worth of epochs")
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--jobs", type=int, default=1, help="processes")
    p.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "asynchpo-mf-compare" / "runs.jsonl",
    )
    p.add_argument("--fresh", nargs="*", default=[], help="methods whose cached runs to drop")
    p.add_argument(
        "--repeats",
        action="store_true",
        help="on a table, let a method run a configuration again (by default each recorded "
        "configuration runs at most once in a run: see benchmarks.mf_table.Catalog)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()
    args.command = "python -m benchmarks.mf_compare " + " ".join(sys.argv[1:])
    epochs = args.budget * 27
    unavailable = {m: why for m in args.methods if (why := available(m))}
    once = not args.repeats
    ids = {f: data_id(f, once) for f in BENCHMARKS}
    cache = Runs(
        args.cache,
        ("function", "workers", "method", "seed", "budget_epochs"),
        # runs of a method asked to run anew, or made on another table, are dropped
        keep=lambda r: r["method"] not in args.fresh and r.get("data", "") == ids[r["function"]],
    )
    cache.rewrite()
    keys = [
        (f, W, m, s)
        for f in args.functions
        for W in args.workers
        for s in range(args.seeds)
        for m in args.methods
    ]
    # a method that cannot run here still reports the runs the cache has of it (made with
    # another environment: syne-tune 0.13 needs one of its own)
    skipped = {
        m: why
        for m, why in unavailable.items()
        if any((*k, epochs) not in cache for k in keys if k[2] == m)
    }
    for m, why in skipped.items():
        print(f"skipping {m}: {why}", flush=True)
    keys = [k for k in keys if k[2] not in skipped]
    todo = [k for k in keys if (*k, epochs) not in cache and k[2] not in unavailable]
    print(f"{len(keys) - len(todo)} runs cached, {len(todo)} to run", flush=True)
    t0 = time.perf_counter()

    def done(r: dict) -> None:
        cache.add(r)
        print(
            f"{r['function']:8s} W={r['workers']:<3d} {r['method']:26s} seed={r['seed']:<3d} "
            f"final regret {r['final_regret']:.4g}  ({r['seconds']:.1f}s; "
            f"{time.perf_counter() - t0:.0f}s in all)",
            flush=True,
        )

    if args.jobs > 1 and todo:
        with ProcessPoolExecutor(args.jobs, initializer=_init_worker) as pool:
            futures = [pool.submit(run_one, k, epochs, once) for k in todo]
            for fut in futures:
                done(fut.result())
    else:
        for k in todo:
            done(run_one(k, epochs, once))
    runs = [cache[(*k, epochs)] for k in keys]
    report(runs, args, skipped)


if __name__ == "__main__":
    main()
