"""asynchpo's default sampler against HEBO 0.3.6 and SMAC3 2.x (``BlackBoxFacade``): final
simple regret on the five public functions, same budget, same simulated asynchronous
workers (exponential durations, mean 1, seeded) as ``benchmarks.regret``.

    python -m benchmarks.peers [--functions branin hartmann6 ...] [--workers 8 32]
        [--seeds 10] [--samplers default hebo smac] [--out FILE.md]

The table gives, per function and worker count, the median [IQR] over seeds of the final
regret (best value among the ``budget`` complete trials minus the optimum) of each sampler
and its median seconds per run; a summary line per worker count says on how many of the
functions run the default sampler's median is at or below both HEBO's and SMAC3's. Runs
are kept in ``benchmarks/.cache/peers-runs.jsonl`` (function, workers, sampler, seed): a
run already there is not run again, so seeds can be added later. Every run must end with
exactly ``budget`` complete trials, or the script stops.

How each sampler is driven
--------------------------
``default``: ``ah.GPSampler(seed=seed)`` through ``benchmarks.regret.run_asynchpo`` (a
``Study`` on ``SimulatedBackend(n_workers=W, seed=seed)``, ``n_trials=budget``), which
handles running trials itself.

``hebo`` and ``smac`` run on the virtual clock of ``benchmarks.regret.run_optuna``: ``W``
trials are asked at time 0; the objective is evaluated when a trial is asked and its
duration drawn from ``np.random.default_rng(seed).exponential(1.0)``; the trial finishing
first is told at its finish time, and one new trial is asked for the worker it freed, until
``budget`` trials have been asked (so at most ``W`` run at once, one suggestion per free
worker, and ``budget`` trials complete).

``hebo``: ``HEBO(DesignSpace().parse([{"type": "num", ...}]), scramble_seed=seed)``, HEBO's
defaults otherwise (GP surrogate, MACE acquisition, NSGA-II, ``rand_sample = 1 + dim`` Sobol
points first). HEBO 0.3.6 has no seed argument but ``scramble_seed`` (its Sobol design);
its GP fit, NSGA-II and choice among the Pareto set draw from the global generators, so
each run starts with ``np.random.seed(seed)`` and ``torch.manual_seed(seed)``. pymoo 0.6.2
(what pip installs) no longer draws from numpy's global generator but from a fresh
``default_rng`` per NSGA-II run, unseeded when HEBO passes no seed, so the script wraps the
``minimize`` that HEBO's ``evolution_optimizer`` calls to pass ``seed=np.random.randint(0,
10_000_000)`` (``_seed_pymoo``): with it two runs of one seed give the same trials. HEBO has no
notion of running trials; they are handled by a Kriging believer on HEBO's own model:
before each ``suggest`` while trials are running and HEBO has at least ``rand_sample``
results (before that it proposes Sobol points, which are distinct anyway), a model is
fitted exactly as ``HEBO.suggest`` fits it (``get_model(opt.model_name, ...,
**opt.model_config)`` on the real results, y divided by its std and power-transformed with
Box-Cox, or Yeo-Johnson when some y <= 0 or Box-Cox leaves std < 0.5; raw y when that fails
too), its predicted mean at the running points is mapped back through the inverse power
transform (the raw-y model's mean when that is not finite), and those fake values are
appended to ``opt.X``/``opt.y`` only for that one ``suggest`` call: the real results are put
back right after it, so a fake never outlives the call and a real value never competes with
a fake one. ``suggest`` also drops candidates equal to a running point. The extra model
fit per suggestion is counted in HEBO's seconds.

``smac``: ``BlackBoxFacade(Scenario(ConfigurationSpace with one Float per dimension,
deterministic=True, n_trials=budget, seed=seed, output_directory=<a temporary dir>),
target_function=<a stub never called>, overwrite=True, logging_level=40)`` with its
defaults otherwise (GP, EI, Sobol initial design of ``min(8 * dim, budget / 4)`` points,
retrain after every configuration); ``ask()`` for each free worker, ``tell(info,
TrialValue(cost=value), save=False)`` at the finish (``save=False`` only skips writing the
run history to the temporary dir). SMAC trains on finished trials only and has no other
notion of running ones: once its initial design is used up and before a result is back it
samples random configurations, and it keeps asked configurations out of later asks. Its
``ask()`` never checks ``n_trials`` (only ``optimize()`` does), so it never stops early;
the script asks exactly ``budget`` times. An ``ask()`` that raises (``StopIteration``,
``ConfigurationSpaceExhaustedException``) or returns a configuration already asked would be
replaced by a uniformly random configuration from the seeded space (told through a
``TrialInfo`` of our own); the count of such replacements is kept in the cache as
``replaced`` and shown in the table if not zero.

Each run starts with ``random``, ``np.random`` and ``torch`` seeded with its seed, and the
script runs with ``PYTHONHASHSEED=0`` (it restarts itself with it when it is not set):
SMAC3's trials depend on the order of sets of strings, so without it two processes give
different SMAC runs for one seed. With both, a run is the same whatever ran before it in
the process, so cached runs and new ones are alike.

Seconds are wall-clock seconds per run. All samplers run on one thread: one torch thread
(``torch.set_num_threads(1)``, which importing HEBO sets anyway) and one BLAS thread
(``threadpoolctl.threadpool_limits(1)`` once numpy, scipy, scikit-learn, HEBO and SMAC are
loaded). On a busy 2-core machine two OpenBLAS threads made a 20-trial SMAC run on Branin
take 44 s against 20 s on one.

Set-up
------
HEBO 0.3.6 declares numpy<1.25 and pymoo==0.6.0, which pip cannot put next to the
project's environment (numpy 2.x), so the peers live in a separate venv, HEBO installed
without its declared dependencies and those it imports added by hand::

    python3.11 -m venv .peers-venv && . .peers-venv/bin/activate   # from the repository root
    pip install torch                  # a CPU wheel is enough
    pip install -e .                   # asynchpo and its dependencies (numpy 2.x, gpytorch)
    pip install hebo==0.3.6 --no-deps
    pip install pandas pymoo gpytorch networkx disjoint-set
    pip install smac                   # SMAC3 2.4.1, ConfigSpace 1.2.2
    PYTHONPATH=. python -m benchmarks.peers

This was tried with numpy 2.4.6, pandas 3.1.1, pymoo 0.6.2, scikit-learn 1.9.1 and
gpytorch 1.15.2. ``from hebo.optimizers.hebo import HEBO`` imports without HEBO's other
declared dependencies, catboost and GPy (its model factory registers catboost only when it
imports and does not import the GPy models; the default ``gp`` model needs neither), and
HEBO's default path runs on numpy 2.x as it is (it uses none of the removed aliases such as
``np.float``), so no numpy shim is needed; ``pip check`` still lists HEBO's declared
requirements as unmet. The one incompatibility that shows, pymoo 0.6.2's seeding, is worked
around in the script (above). SMAC 2.4.1 installs from PyPI as it is (no pyrfr or swig
needed).
"""

from __future__ import annotations

import argparse
import heapq
import logging
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import asynchpo as ah
from benchmarks._emit import Runs, emit, median_iqr
from benchmarks.functions import PROBLEMS, Problem
from benchmarks.regret import Run, regret_at, run_asynchpo

_CACHE = Path("benchmarks/.cache/peers-runs.jsonl")
_NAMES = {"default": "default", "hebo": "HEBO", "smac": "SMAC3"}

# ask(running params) -> (params, token); tell(token, value)
Ask = Callable[[list[dict[str, float]]], tuple[dict[str, float], Any]]
Tell = Callable[[Any, float], None]


def _simulate(problem: Problem, workers: int, seed: int, ask: Ask, tell: Tell) -> Run:
    """``run_optuna``'s virtual clock for any ask/tell optimizer: ``ask`` gets the
    parameters of the trials still running."""
    rng = np.random.default_rng(seed)
    running: list[tuple[float, int, dict[str, float], Any, float]] = []
    asked, out, now = 0, [], 0.0

    def one() -> None:
        nonlocal asked
        params, token = ask([r[2] for r in running])
        value = problem.objective(params)
        heapq.heappush(running, (now + float(rng.exponential(1.0)), asked, params, token, value))
        asked += 1

    while asked < min(workers, problem.budget):
        one()
    while running:
        now, _, _, token, value = heapq.heappop(running)
        tell(token, value)
        out.append((now, value))
        if asked < problem.budget:
            one()
    return out


# -- HEBO --------------------------------------------------------------------------------


def run_hebo(problem: Problem, workers: int, seed: int) -> tuple[Run, dict[str, int]]:
    import gpytorch
    import pandas as pd
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO

    _seed_pymoo()
    np.random.seed(seed)
    torch.manual_seed(seed)
    space = DesignSpace().parse(
        [
            {"name": n, "type": "num", "lb": float(lo), "ub": float(hi)}
            for n, (lo, hi) in zip(problem.names, problem.bounds, strict=True)
        ]
    )
    opt = HEBO(space, scramble_seed=seed)
    stats = {"believer_calls": 0}

    def ask(pending: list[dict[str, float]]) -> tuple[dict[str, float], Any]:
        X, y = opt.X, opt.y
        if pending and len(y) >= opt.rand_sample:
            fake_x = pd.DataFrame(pending, columns=problem.names)
            fake_y = _hebo_believer(opt, fake_x)
            opt.X = pd.concat([X, fake_x], axis=0, ignore_index=True)
            opt.y = np.vstack([y, fake_y])
            stats["believer_calls"] += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = opt.suggest(n_suggestions=1)
        finally:
            opt.X, opt.y = X, y  # the fake values go with the call
        row = rec.iloc[[0]][problem.names].astype(float).reset_index(drop=True)
        return {n: float(row[n].iloc[0]) for n in problem.names}, row

    def tell(row: Any, value: float) -> None:
        opt.observe_new_data(row, np.array([[value]]))

    # HEBO's GP predictions set gpytorch's global Cholesky jitter and leave it set: put it
    # back for the samplers that run after HEBO in this process
    jitter = gpytorch.settings.cholesky_jitter
    saved = (jitter._global_float_value, jitter._global_double_value, jitter._global_half_value)
    try:
        run = _simulate(problem, workers, seed, ask, tell)
    finally:
        jitter._global_float_value, jitter._global_double_value, jitter._global_half_value = saved
    return run, stats


def _seed_pymoo() -> None:
    """HEBO's NSGA-II calls ``pymoo.optimize.minimize`` without a seed. pymoo 0.6.0 (HEBO's
    pin) then draws from numpy's global generator, which the run seeds; pymoo 0.6.2 gives
    the algorithm ``np.random.default_rng(seed)``, fresh entropy for ``seed=None``, and HEBO
    runs no longer repeat. Pass a seed drawn from numpy's global generator."""
    import hebo.acq_optimizers.evolution_optimizer as evolution

    if getattr(evolution.minimize, "seeded", False):
        return
    unseeded = evolution.minimize

    def minimize(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("seed", int(np.random.randint(0, 10_000_000)))
        return unseeded(*args, **kwargs)

    minimize.seeded = True  # type: ignore[attr-defined]
    evolution.minimize = minimize


def _hebo_believer(opt: Any, pending: Any) -> np.ndarray:
    """HEBO's model, fitted as ``HEBO.suggest`` fits it on the real results, and its
    predicted mean at ``pending`` in the objective's units, shape (len(pending), 1)."""
    import torch
    from hebo.models.model_factory import get_model
    from sklearn.preprocessing import PowerTransformer

    X, Xe = opt.space.transform(opt.X)
    y = np.asarray(opt.y, dtype=float)
    Xp, Xpe = opt.space.transform(pending)

    def mean(target: np.ndarray) -> np.ndarray:
        model = get_model(
            opt.model_name,
            opt.space.num_numeric,
            opt.space.num_categorical,
            1,
            **opt.model_config,
        )
        model.fit(X, Xe, torch.FloatTensor(target))
        with torch.no_grad():
            mu, _ = model.predict(Xp, Xpe)
        return mu.double().numpy().reshape(-1, 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        std = float(y.std())
        pt: Any = None
        try:
            methods = ["yeo-johnson"] if y.min() <= 0 else ["box-cox", "yeo-johnson"]
            for method in methods:
                pt = PowerTransformer(method=method)
                yt = pt.fit_transform(y / std)
                if np.isfinite(yt).all() and yt.std() >= 0.5:
                    break
            else:
                raise RuntimeError("power transformation failed")
            fake = pt.inverse_transform(mean(yt)) * std
        except Exception:
            fake = np.full((len(pending), 1), np.nan)
        if not np.isfinite(fake).all():
            fake = mean(y)
    return fake


# -- SMAC3 -------------------------------------------------------------------------------


def run_smac(problem: Problem, workers: int, seed: int) -> tuple[Run, dict[str, int]]:
    from ConfigSpace import Configuration, ConfigurationSpace, Float
    from smac import BlackBoxFacade, Scenario
    from smac.runhistory.dataclasses import TrialInfo, TrialValue

    for name in ("smac", "ConfigSpace", "distributed", "pynisher"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def space(space_seed: int) -> ConfigurationSpace:
        cs = ConfigurationSpace(seed=space_seed)
        bounds = zip(problem.names, problem.bounds, strict=True)
        cs.add([Float(n, (float(lo), float(hi))) for n, (lo, hi) in bounds])
        return cs

    cs, fallback = space(seed), space(seed + 10_000)
    seen: set[tuple[float, ...]] = set()
    stats = {"replaced": 0}

    def stub(config: Configuration, seed: int = 0) -> float:
        raise AssertionError("SMAC is driven through ask/tell")

    with tempfile.TemporaryDirectory(prefix="smac-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scenario = Scenario(
            cs,
            deterministic=True,
            n_trials=problem.budget,
            seed=seed,
            output_directory=Path(tmp),
        )
        smac = BlackBoxFacade(scenario, stub, overwrite=True, logging_level=40)

        def ask(pending: list[dict[str, float]]) -> tuple[dict[str, float], Any]:
            try:
                info = smac.ask()
                key = tuple(float(info.config[n]) for n in problem.names)
            except Exception:
                info, key = None, None
            if info is None or key in seen:
                stats["replaced"] += 1
                config = fallback.sample_configuration()
                info = TrialInfo(config=Configuration(cs, values=dict(config)), seed=seed)
                key = tuple(float(info.config[n]) for n in problem.names)
            seen.add(key)
            return dict(zip(problem.names, key, strict=True)), info

        def tell(info: Any, value: float) -> None:
            smac.tell(info, TrialValue(cost=value), save=False)

        run = _simulate(problem, workers, seed, ask, tell)
    return run, stats


# -- the benchmark -----------------------------------------------------------------------


def run_default(problem: Problem, workers: int, seed: int) -> tuple[Run, dict[str, int]]:
    return run_asynchpo(lambda s: ah.GPSampler(seed=s), problem, workers, seed), {}


RUNNERS: dict[str, Callable[[Problem, int, int], tuple[Run, dict[str, int]]]] = {
    "default": run_default,
    "hebo": run_hebo,
    "smac": run_smac,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--functions", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    p.add_argument("--workers", nargs="+", type=int, default=[8, 32])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--samplers", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/peers.md"))
    args = p.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        # SMAC's trials follow the order of sets of strings: fix Python's hash seed
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "benchmarks.peers", *sys.argv[1:]])

    _one_thread(args.samplers)
    import torch

    cache = Runs(_CACHE, ("function", "workers", "sampler", "seed"))
    for fname in args.functions:
        problem = PROBLEMS[fname]
        for w in args.workers:
            for sname in args.samplers:
                for seed in range(args.seeds):
                    key = (fname, w, sname, seed)
                    if key in cache:
                        continue
                    random.seed(seed)
                    np.random.seed(seed)
                    torch.manual_seed(seed)
                    t0 = time.perf_counter()
                    run, stats = RUNNERS[sname](problem, w, seed)
                    seconds = time.perf_counter() - t0
                    if len(run) != problem.budget:
                        raise RuntimeError(
                            f"{sname} on {fname}, W={w}, seed {seed}: "
                            f"{len(run)} complete trials, budget {problem.budget}"
                        )
                    record = {
                        "function": fname,
                        "workers": w,
                        "sampler": sname,
                        "seed": seed,
                        "seconds": seconds,
                        **stats,
                        "run": run,
                    }
                    cache.add(record)
                    extra = "".join(f" {k}={v}" for k, v in stats.items())
                    print(
                        f"{problem.name:13s} W={w:<3d} {sname:8s} seed={seed} "
                        f"regret={regret_at(run, problem.optimum, len(run)):.4g} "
                        f"({seconds:.1f}s){extra}",
                        flush=True,
                    )
    emit(_table(cache, args), args.out)


def _one_thread(samplers: list[str]) -> None:
    """One torch thread and one BLAS thread, set after every library that loads a BLAS."""
    import scipy.linalg  # noqa: F401
    import torch

    torch.set_num_threads(1)
    if "hebo" in samplers:
        import hebo.optimizers.hebo  # noqa: F401
    if "smac" in samplers:
        import smac  # noqa: F401
    try:
        import sklearn  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError:  # the project's own venv: torch's threads are the ones that count
        return
    threadpool_limits(1)


def _table(cache: Runs, args: argparse.Namespace) -> list[str]:
    names = [_NAMES[s] for s in args.samplers]
    lines = [
        "Final simple regret (best of the budget's complete trials minus the optimum), median "
        f"[IQR] over {args.seeds} seeds, and median seconds per run; simulated asynchronous "
        "workers, exponential durations (mean 1). default: `ah.GPSampler(seed=seed)`; HEBO "
        "0.3.6 with a Kriging believer on its own model for running trials; SMAC3 "
        "`BlackBoxFacade` by ask/tell (trains on finished trials only). Command: "
        "`python -m benchmarks.peers --functions "
        + " ".join(args.functions)
        + f" --workers {' '.join(map(str, args.workers))} --seeds {args.seeds} --samplers "
        + " ".join(args.samplers)
        + "`",
        "",
        "| function | budget | W | " + " | ".join(names) + " | s/run (" + ", ".join(names) + ") |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    medians: dict[tuple[str, int, str], float] = {}
    notes = []
    for w in args.workers:
        for fname in args.functions:
            problem = PROBLEMS[fname]
            cells, secs = [], []
            for sname in args.samplers:
                recs = [cache[(fname, w, sname, s)] for s in range(args.seeds)]
                vals = [regret_at(r["run"], problem.optimum, problem.budget) for r in recs]
                medians[(fname, w, sname)] = float(np.median(vals))
                cells.append(median_iqr(vals))
                secs.append(f"{np.median([r['seconds'] for r in recs]):.0f}")
                replaced = sum(r.get("replaced", 0) for r in recs)
                if replaced:
                    notes.append(
                        f"{_NAMES[sname]}, {problem.name}, W={w}: {replaced} asks replaced by "
                        "random configurations (ask failed or repeated a configuration)"
                    )
            lines.append(
                f"| {problem.name} | {problem.budget} | {w} | "
                + " | ".join(cells)
                + f" | {', '.join(secs)} |"
            )
    peers = [s for s in args.samplers if s != "default"]
    if "default" in args.samplers and peers:
        lines.append("")
        both = " and ".join(_NAMES[s] + "'s" for s in peers)
        for w in args.workers:
            wins = [
                PROBLEMS[f].name
                for f in args.functions
                if all(medians[(f, w, "default")] <= medians[(f, w, s)] for s in peers)
            ]
            lines.append(
                f"- W={w}: the default sampler's median regret is at or below {both} on "
                f"{len(wins)} of {len(args.functions)} functions"
                + (f" ({', '.join(wins)})" if wins else "")
                + "."
            )
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return lines


if __name__ == "__main__":
    main()
