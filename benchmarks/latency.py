"""``suggest`` latency against the number of observations: asynchpo's GPSampler next to
Optuna's GPSampler, in the same run, on Hartmann-6 data.

    python -m benchmarks.latency [--sizes 100 300 1000 3000] [--repeats 15]
        [--optuna-max 1000] [--out FILE.md]

Each size gets a history of uniformly random points; the model is fitted first (not timed),
then each timed call suggests one point with 8 trials running, prefetching off: this is the
cost of computing a suggestion (``benchmarks.idle`` measures what prefetching saves).
Optuna's sampler is asked through ``study.ask()`` on a study holding the same trials (8 of
them running).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import asynchpo as ah
from asynchpo.samplers import History
from benchmarks._emit import emit
from benchmarks.functions import PROBLEMS


def ours(n: int, repeats: int, rng: np.random.Generator) -> list[float]:
    problem = PROBLEMS["hartmann6"]
    space = problem.space()
    X = rng.random((n, 6))
    y = np.array([problem.f(x) for x in X])
    # the computation itself: no prefetch (benchmarks.idle shows what prefetching saves)
    sampler = ah.GPSampler(seed=None, prefetch=False)
    hist = History(space, X, y, np.empty((0, 6)), n)
    sampler.suggest(hist, rng.random((8, 6)), 1)  # starts the first fit: not timed
    if sampler._job is not None:
        sampler._job.result()  # steady state: the fit is done and no refit is due
    sampler.suggest(hist, rng.random((8, 6)), 1)
    times = []
    for _ in range(repeats):
        pending = rng.random((8, 6))
        t0 = time.perf_counter()
        sampler.suggest(hist, pending, 1)
        times.append(time.perf_counter() - t0)
    return times


def optuna_gp(n: int, repeats: int, rng: np.random.Generator) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    problem = PROBLEMS["hartmann6"]
    dists = {name: optuna.distributions.FloatDistribution(0, 1) for name in problem.names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
    for x in rng.random((n, 6)):
        study.add_trial(
            optuna.trial.create_trial(
                params=dict(zip(problem.names, x, strict=True)),
                distributions=dists,
                value=problem.f(x),
            )
        )
    for _ in range(8):
        study.enqueue_trial(dict(zip(problem.names, rng.random(6), strict=True)))
        study.ask(dists)  # running trials
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trial = study.ask(dists)
        times.append(time.perf_counter() - t0)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # keep n observations fixed
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[100, 300, 1000, 3000])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument(
        "--optuna-max",
        type=int,
        default=1000,
        help="largest size to time Optuna at (it grows fast)",
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    lines = [
        "`suggest` latency in ms (median, p95), Hartmann-6, 8 trials running; command: "
        f"`python -m benchmarks.latency --sizes {' '.join(map(str, args.sizes))} "
        f"--repeats {args.repeats}`",
        "",
        "| n | asynchpo GPSampler | Optuna GPSampler | ratio of medians |",
        "|---|---|---|---|",
    ]
    for n in args.sizes:
        a = ours(n, args.repeats, rng)
        o = optuna_gp(n, max(3, args.repeats // 3), rng) if n <= args.optuna_max else None

        def cell(ts: list[float]) -> str:
            return f"{1000 * statistics.median(ts):.1f}, {1000 * np.percentile(ts, 95):.1f}"

        ratio = f"{statistics.median(o) / statistics.median(a):.0f}x" if o else "-"
        lines.append(f"| {n} | {cell(a)} | {cell(o) if o else 'not run'} | {ratio} |")
        print(lines[-1], flush=True)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
