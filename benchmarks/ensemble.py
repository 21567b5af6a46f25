"""The neural ensemble: distance to Hartmann-6's optimum from 300 to 2,300 evaluations
against the number of networks k, next to GPSampler, Optuna's TPE and CMA-ES; and the cost
of a suggestion against the number of results, next to GPSampler.

    python -m benchmarks.ensemble regret [--k 1 3 10 30] [--workers 8 32] [--seeds 10]
        [--budget 2300] [--peers gp optuna-tpe cmaes] [--jobs 2] [--out FILE.md]
    python -m benchmarks.ensemble latency [--sizes 100 1000 3000 10000] [--repeats 30]
        [--out FILE.md]

``regret``: each run is a whole seeded study on simulated asynchronous workers
(exponential durations, mean 1) as in ``benchmarks.regret``; the table gives the median
[IQR] regret at 300, 800, 1,300, 1,800 and 2,300 complete trials, and whether 30 networks
are closer to the optimum than one at every budget. Each run's regret at those budgets is
kept in ``benchmarks/results/ensemble-runs.jsonl`` (one line a run, with the commit it was
made at; part of the repository, as the tables are): a run already there is not run again,
so a long sweep can be interrupted and resumed (a run of 30 networks takes about 4 minutes
on one core; ``--jobs 2`` runs two at once), and seeds can be added later. Delete a
sampler's lines to run it anew after it changed.

``latency``: a history of ``n`` results at uniformly random points (Hartmann-6 values) and
8 running trials; each repeat adds one result and times ``suggest`` for one point, back to
back (and, for ``EnsembleSampler()``, also ``--gap`` seconds apart: a study of 3-second
trials on 64 workers asks every ~50 ms). ``EnsembleSampler()`` (no seed, as a user makes
it) trains in the background between suggestions and never waits for it; the table also
says what share of the steps owed ran. ``EnsembleSampler(seed=0)`` trains
inside each suggestion (reproducible runs): its column is the whole cost of a suggestion.
``GPSampler()`` conditions on at most ``max_points`` results (600).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

import asynchpo as ah
from asynchpo.samplers import History
from benchmarks._emit import Runs, commit, emit, median_iqr
from benchmarks.functions import PROBLEMS
from benchmarks.latency import _settle
from benchmarks.regret import regret_at, run_asynchpo, run_optuna, samplers

_RUNS = Path("benchmarks/results/ensemble-runs.jsonl")
_AT = (300, 800, 1300, 1800, 2300)


def regret(args: argparse.Namespace) -> None:
    problem = replace(PROBLEMS["hartmann6"], budget=args.budget)
    table = samplers()
    makers = {f"ensemble k={k}": ("asynchpo", _ensemble(k)) for k in args.k}
    makers.update({name: table[name] for name in args.peers})
    done = Runs(_RUNS, ("sampler", "workers", "seed", "budget"))
    at = [n for n in _AT if n <= args.budget]
    todo = [
        (name, w, seed)
        for w in args.workers
        for name in makers
        for seed in range(args.seeds)
        if (name, w, seed, args.budget) not in done
    ]

    def keep(record: dict[str, Any]) -> None:
        done.add(record)
        print(
            f"W={record['workers']} {record['sampler']} seed={record['seed']}: "
            f"{record['regret'][str(at[-1])]:.3g} ({record['seconds']:.0f} s)",
            flush=True,
        )

    _JOBS[:] = [(makers[name], name, problem, w, seed, at) for name, w, seed in todo]
    if args.jobs > 1 and _JOBS:
        # forked processes inherit the jobs (the makers are closures: they do not pickle)
        with ProcessPoolExecutor(
            args.jobs, mp_context=get_context("fork"), initializer=_one_thread
        ) as pool:
            for record in pool.map(_run_one, range(len(_JOBS))):
                keep(record)
    else:
        for i in range(len(_JOBS)):
            keep(_run_one(i))
    lines = [
        f"# Hartmann-6: regret against evaluations and k, median [IQR] over {args.seeds} seeds",
        "",
        "Simulated asynchronous workers (exponential durations, mean 1). Command: "
        "`python -m benchmarks.ensemble regret "
        f"--k {' '.join(map(str, args.k))} --workers {' '.join(map(str, args.workers))} "
        f"--seeds {args.seeds} --budget {args.budget} " + " ".join(["--peers", *args.peers]) + "`",
        "",
    ]
    for w in args.workers:
        lines += [
            f"## {w} workers",
            "",
            "| sampler | " + " | ".join(str(n) for n in at) + " |",
            "|---" * (len(at) + 1) + "|",
        ]
        medians: dict[str, list[float]] = {}
        seeds = range(args.seeds)
        for name in makers:
            per_seed = [
                [done[(name, w, seed, args.budget)]["regret"][str(n)] for n in at] for seed in seeds
            ]
            cols = list(zip(*per_seed, strict=True))
            medians[name] = [statistics.median(c) for c in cols]
            lines.append(f"| {name} | " + " | ".join(median_iqr(list(c)) for c in cols) + " |")
        lines.append("")
        lo, hi = f"ensemble k={min(args.k)}", f"ensemble k={max(args.k)}"
        if lo != hi:
            better = all(b < a for a, b in zip(medians[lo], medians[hi], strict=True))
            lines.append(
                f"- {hi} closer to the optimum than {lo} at every budget (medians): "
                f"{'yes' if better else 'no'}"
            )
        for name in makers:
            if name.startswith("ensemble"):
                ends = sorted(done[(name, w, s, args.budget)]["regret"][str(at[-1])] for s in seeds)
                good = [r for r in ends if r <= 1e-2]
                line = (
                    f"- {name} at {at[-1]}: median regret {medians[name][-1]:.3g}; "
                    f"{len(ends) - len(good)} of {len(ends)} runs above 1e-2"
                )
                if good:
                    line += f", the others {good[0]:.2g} to {good[-1]:.2g}"
                lines.append(line)
        lines.append("")
    emit(lines, args.out)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


_JOBS: list[tuple[Any, ...]] = []  # (maker, name, problem, workers, seed, budgets)


def _run_one(i: int) -> dict[str, Any]:
    """The seeded study of job ``i``."""
    (kind, make), name, problem, w, seed, at = _JOBS[i]
    t0 = time.perf_counter()
    runner = run_asynchpo if kind == "asynchpo" else run_optuna
    run = runner(make, problem, w, seed)
    return {
        "sampler": name,
        "workers": w,
        "seed": seed,
        "budget": problem.budget,
        "regret": {str(n): regret_at(run, problem.optimum, n) for n in at},
        "seconds": round(time.perf_counter() - t0, 1),
        "commit": commit(),
    }


def _ensemble(k: int) -> Callable[[int], ah.BaseSampler]:
    return lambda seed: ah.EnsembleSampler(k=k, seed=seed)


def _timed(
    make: Callable[[], ah.BaseSampler], n: int, repeats: int, gap: float
) -> tuple[list[float], ah.BaseSampler]:
    """Seconds per ``suggest`` of the sampler ``make`` builds, ``repeats`` of them, on a
    history of ``n`` random Hartmann-6 results growing by one each time, 8 running;
    ``gap`` seconds between them."""
    problem = PROBLEMS["hartmann6"]
    space, d = problem.space(), problem.dim
    rng = np.random.default_rng(n)
    X = rng.random((n, d))
    history = History(space, X, np.array([problem.f(x) for x in X]), np.empty((0, d)), n + 8)
    pending = rng.random((8, d))
    _settle()  # no fit left running by what was measured before
    sampler = make()
    sampler.suggest(history, pending, 1)  # the first: set-up, not timed
    times = []
    for _ in range(repeats):
        time.sleep(gap)
        x = rng.random((1, d))
        history = History(
            space,
            np.vstack([history.X, x]),
            np.append(history.y, problem.f(x[0])),
            history.X_failed,
            history.n_asked + 1,
        )
        t0 = time.perf_counter()
        sampler.suggest(history, pending, 1)
        times.append(time.perf_counter() - t0)
    return times, sampler


def _rested(sampler: ah.EnsembleSampler) -> int:
    """The steps trained once the training thread has rested for half a second."""
    last = -1
    while sampler.steps_trained != last:
        last = sampler.steps_trained
        time.sleep(0.5)
    return last


def latency(args: argparse.Namespace) -> None:
    gap = args.gap
    lines = [
        "# Suggestion latency against n (ms, median over "
        f"{args.repeats} suggestions, 8 trials running)",
        "",
        f"Command: `python -m benchmarks.ensemble latency --sizes "
        f"{' '.join(map(str, args.sizes))} --repeats {args.repeats} --gap {gap}`",
        "",
        "| n | EnsembleSampler(), back to back | steps that ran | "
        f"EnsembleSampler(), {gap * 1000:g} ms apart | steps that ran | "
        "EnsembleSampler(seed=0) | GPSampler() |",
        "|---|---|---|---|---|---|---|",
    ]
    ms = lambda times: f"{1000 * statistics.median(times):.1f}"  # noqa: E731
    for n in args.sizes:
        cells = []
        for wait in (0.0, gap):
            times, sampler = _timed(ah.EnsembleSampler, n, args.repeats, wait)
            assert isinstance(sampler, ah.EnsembleSampler)
            # counted as they stood at the last suggestion, then let the thread rest
            ran = sampler.steps_trained / (sampler.steps * args.repeats)
            _rested(sampler)
            cells += [ms(times), f"{min(ran, 1.0):.0%}"]
        cells.append(ms(_timed(lambda: ah.EnsembleSampler(seed=0), n, args.repeats, 0.0)[0]))
        cells.append(ms(_timed(lambda: ah.GPSampler(prefetch=False), n, args.repeats, 0.0)[0]))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += [
        "",
        "Median `suggest` for one point on this machine (2 cores); the first suggestion at "
        "each size (set-up) is not timed. Without a seed, the networks train in the "
        "background between suggestions: back to back there is almost no time between them "
        "and most of the steps owed are let go; a study whose trials take any time at all "
        "leaves room for them. With a seed, each suggestion trains first: its column is the "
        "whole cost of a suggestion.",
    ]
    emit(lines, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("regret")
    r.add_argument("--k", type=int, nargs="+", default=[1, 3, 10, 30])
    r.add_argument("--workers", type=int, nargs="+", default=[8, 32])
    r.add_argument("--seeds", type=int, default=10)
    r.add_argument("--budget", type=int, default=2300)
    r.add_argument("--peers", nargs="*", default=["gp", "optuna-tpe", "cmaes"])
    r.add_argument("--jobs", type=int, default=1, help="runs at once, a process each")
    r.add_argument("--out", type=Path, default=None)
    lat = sub.add_parser("latency")
    lat.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000, 10000])
    lat.add_argument("--repeats", type=int, default=30)
    lat.add_argument("--gap", type=float, default=0.05)
    lat.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    regret(args) if args.what == "regret" else latency(args)


if __name__ == "__main__":
    main()
