"""Suggestion latency as a user gets it: ``Study.ask`` right after a ``tell``, 8 trials
running, the history growing by one per ask; asynchpo's GPSampler next to Optuna's
GPSampler, in the same run, on Hartmann-6 data.

    python -m benchmarks.latency [--sizes 100 300 1000] [--repeats K] [--seeds none 0]
        [--optuna-max 1000] [--out FILE.md]

For each size ``n``, a study (in memory) is warm-started with ``n`` complete trials at
uniformly random points (``Study.add_trial``, Hartmann-6 values), then 8 trials are asked
and kept running (not timed: the first ask conditions the GP on all ``n`` and starts the
first hyperparameter fit, as resuming a study does). Then, ``K`` times (default
``n / 4 + 40``): the oldest running trial is told its value, and the ``Study.ask`` that
refills its slot is timed, so that the history grows by one per ask exactly as in a study
with 8 workers whose trials take no time (the worst case: no idle time between asks for
the fits to use). Prefetching is off: each timed ask computes its suggestion
(``benchmarks.idle`` measures what prefetching saves). Hyperparameter refits run as they
would, in the fitting process, on the same cores, and are swapped in as they land; with a
seed, at fixed points of the history, the first of them within the default window, so
that a wait for a late fit shows in the max column. What is timed goes through the public
API only (between sizes, the set-up waits for the fitting process to be idle).

Optuna's GPSampler is timed the same way: ``tell`` then ``ask`` on a study warm-started
with the same kind of data, 8 trials running (fewer repeats: it refits on every ask).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import asynchpo as ah
from benchmarks._emit import emit
from benchmarks.functions import PROBLEMS

RUNNING = 8


def _settle() -> None:
    """Wait for the fitting process to finish what earlier sizes left it, so that every
    measurement starts with idle cores (a fit still running would be charged to it), and
    have it fit once: its first fit pays for gpytorch's warm-up, once per process, which a
    study pays at its first fit, at the end of its design, not at n = 100."""
    from asynchpo.samplers._gp import _fit
    from asynchpo.surrogate._child import child

    rng = np.random.default_rng(0)
    # no fitting process (fits in threads): nothing is queued there to wait for
    with contextlib.suppress(Exception):
        child().submit(_fit, rng.random((10, 2)), rng.random(10), None).result(timeout=600)


def window(n: int, repeats: int | None) -> int:
    """Timed asks at size ``n``: by default long enough to reach the point where a seeded
    run adopts its first fit (``n / 4`` trials after it was launched)."""
    return repeats if repeats is not None else n // 4 + 40


def ours(n: int, repeats: int, seed: int | None, rng: np.random.Generator) -> list[float]:
    """Seconds per ``Study.ask`` after a ``tell``, ``repeats`` of them."""
    problem = PROBLEMS["hartmann6"]
    space = problem.space()
    _settle()
    study = ah.Study(space, sampler=ah.GPSampler(prefetch=False, seed=seed))
    for x in rng.random((n, problem.dim)):
        study.add_trial(dict(zip(problem.names, x, strict=True)), problem.f(x))
    running = [study.ask() for _ in range(RUNNING)]  # not timed: conditions on all n
    times = []
    for _ in range(repeats):
        trial = running.pop(0)
        study.tell(trial, problem.objective(trial.params))
        t0 = time.perf_counter()
        running.append(study.ask())
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
    for x in rng.random((n, problem.dim)):
        study.add_trial(
            optuna.trial.create_trial(
                params=dict(zip(problem.names, x, strict=True)),
                distributions=dists,
                value=problem.f(x),
            )
        )
    running = [study.ask(dists) for _ in range(RUNNING)]
    times = []
    for _ in range(repeats):
        trial = running.pop(0)
        study.tell(trial, problem.objective(trial.params))
        t0 = time.perf_counter()
        running.append(study.ask(dists))
        times.append(time.perf_counter() - t0)
    return times


def _seed(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[100, 300, 1000])
    p.add_argument(
        "--repeats", type=int, default=None, help="timed asks per size (default: n / 4 + 40)"
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=_seed,
        default=[None, 0],
        help="GPSampler seeds to time ('none': unseeded)",
    )
    p.add_argument(
        "--optuna-max",
        type=int,
        default=1000,
        help="largest size to time Optuna at (it grows fast; 0: never)",
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    seeds = " ".join("none" if s is None else str(s) for s in args.seeds)
    head = [f"asynchpo seed={s}" for s in args.seeds]
    repeats = "" if args.repeats is None else f" --repeats {args.repeats}"
    lines = [
        f"`Study.ask` after a `tell` in ms (median, p90, max), Hartmann-6, {RUNNING} trials "
        "running, the history growing by one per ask from n, prefetch off; command: "
        f"`python -m benchmarks.latency --sizes {' '.join(map(str, args.sizes))}{repeats} "
        f"--seeds {seeds} --optuna-max {args.optuna_max}`",
        "",
        "| n | " + " | ".join(head) + " | Optuna GPSampler | Optuna / asynchpo (medians) |",
        "|---|" + "---|" * len(head) + "---|---|",
    ]

    def cell(ts: list[float]) -> str:
        ms = 1000 * np.asarray(ts)
        return f"{np.median(ms):.1f}, {np.percentile(ms, 90):.1f}, {ms.max():.0f}"

    for n in args.sizes:
        k = window(n, args.repeats)
        ts = [ours(n, k, seed, rng) for seed in args.seeds]
        o = optuna_gp(n, min(8, max(3, k // 8)), rng) if n <= args.optuna_max else None
        ratio = f"{statistics.median(o) / statistics.median(ts[0]):.0f}x" if o else "-"
        cells = " | ".join(cell(t) for t in ts)
        lines.append(f"| {n} | {cells} | {cell(o) if o else 'not run'} | {ratio} |")
        print(lines[-1], flush=True)
    _settle()
    emit(lines, args.out)


if __name__ == "__main__":
    main()
