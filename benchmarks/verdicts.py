"""Quality verdicts that used to be unit tests: they measure how well, not whether.

    python -m benchmarks.verdicts [--seeds 5] [--trials 60] [--workers 8] [--out FILE.md]

1. GP against random search on Hartmann-6: ``--trials`` trials on ``--workers`` simulated
   asynchronous workers, per seed; simple regret (best found minus the optimum), median
   over the seeds. The old test's verdict: the GP's median regret is below 0.2, and random
   search's above it.
2. The short-lengthscale penalty on Levy-10 (``SHORT_LENGTHSCALE_PENALTY / l**2``, see
   ``asynchpo.surrogate.fit_hyper``): 64 Sobol' points plus 60 around one random point,
   outputs warped; hyperparameters fitted with the penalty and without it. The old test's
   verdict, per seed: without the penalty some input reads as wiggly (least lengthscale
   below 0.15), with it none does, and the penalized fit sees more than twice the noise.

Unit tests keep what must hold whatever the tuning (``tests/surrogate/test_posterior.py``
checks that the fit's objective carries the penalty exactly).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import qmc

import asynchpo as ah
import asynchpo.surrogate._fit as fit_module
from asynchpo.surrogate import Hyper, Warp, fit_hyper
from benchmarks._emit import emit
from benchmarks.functions import PROBLEMS, levy


def regret(sampler: ah.BaseSampler, seed: int, trials: int, workers: int) -> float:
    """Simple regret on Hartmann-6 after ``trials`` trials on ``workers`` simulated workers."""
    problem = PROBLEMS["hartmann6"]
    study = ah.Study(problem.space(), sampler=sampler)
    study.optimize(
        problem.objective,
        n_trials=trials,
        progress=False,
        backend=ah.SimulatedBackend(n_workers=workers, seed=seed),
    )
    return float(study.best_value - problem.optimum)


def levy_fits(seed: int) -> tuple[Hyper, Hyper]:
    """Hyperparameters fitted to Levy-10 data with the penalty, and without it."""
    rng = np.random.default_rng(seed)
    U = np.vstack(
        [
            qmc.Sobol(10, rng=np.random.default_rng(seed)).random(64),
            np.clip(rng.random(10) + rng.normal(0.0, 0.05, (60, 10)), 0.0, 1.0),
        ]
    )
    y = np.array([levy(-10.0 + 20.0 * u) for u in U])
    y = Warp.fit(y)(y)
    penalized = fit_hyper(U, y)
    default = fit_module.SHORT_LENGTHSCALE_PENALTY
    fit_module.SHORT_LENGTHSCALE_PENALTY = 0.0
    try:
        free = fit_hyper(U, y)
    finally:
        fit_module.SHORT_LENGTHSCALE_PENALTY = default
    return penalized, free


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    command = "python -m benchmarks.verdicts " + " ".join(sys.argv[1:])
    seeds = range(args.seeds)

    t0 = time.perf_counter()
    found: dict[str, list[float]] = {"gp": [], "random": []}
    for seed in seeds:
        found["gp"].append(regret(ah.GPSampler(seed=seed), seed, args.trials, args.workers))
        found["random"].append(regret(ah.RandomSampler(seed=seed), seed, args.trials, args.workers))
        print(f"hartmann6 seed {seed}: gp {found['gp'][-1]:.3g}, random {found['random'][-1]:.3g}")
    gp, rnd = (statistics.median(found[k]) for k in ("gp", "random"))
    t1 = time.perf_counter()

    fits = []
    for seed in seeds:
        penalized, free = levy_fits(seed)
        fits.append((seed, penalized, free))
        print(
            f"levy10 seed {seed}: least lengthscale {penalized.lengthscales.min():.3g} "
            f"(free {free.lengthscales.min():.3g}), noise {penalized.noise:.3g} "
            f"(free {free.noise:.3g})"
        )
    t2 = time.perf_counter()

    def holds(ok: bool) -> str:
        return "holds" if ok else "FAILS"

    lines = [
        f"Quality verdicts moved out of the unit tests, {args.seeds} seeds (0-{args.seeds - 1}). "
        f"Command: `{command.strip()}`",
        "",
        f"GP against random search on Hartmann-6: {args.trials} trials, {args.workers} "
        f"simulated workers; simple regret per seed ({t1 - t0:.0f} s in all).",
        "",
        "| sampler | median regret | per seed |",
        "|---|---|---|",
    ]
    for name in ("gp", "random"):
        per = ", ".join(f"{v:.3g}" for v in found[name])
        lines.append(f"| {name} | {statistics.median(found[name]):.3g} | {per} |")
    lines += [
        "",
        f"Verdict `median(gp) < 0.2 < median(random)`: {holds(gp < 0.2 < rnd)}.",
        "",
        "Short-lengthscale penalty on Levy-10 (64 Sobol' points + 60 around one point, warped "
        f"outputs): least fitted lengthscale and noise, with and without the penalty "
        f"({t2 - t1:.0f} s in all).",
        "",
        "| seed | least lengthscale, penalized | without | noise, penalized | without | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for seed, pen, free in fits:
        ok = free.lengthscales.min() < 0.15 < pen.lengthscales.min() and pen.noise > 2 * free.noise
        lines.append(
            f"| {seed} | {pen.lengthscales.min():.3g} | {free.lengthscales.min():.3g} "
            f"| {pen.noise:.3g} | {free.noise:.3g} | {holds(ok)} |"
        )
    columns = [
        [pen.lengthscales.min() for _, pen, _ in fits],
        [free.lengthscales.min() for _, _, free in fits],
        [pen.noise for _, pen, _ in fits],
        [free.noise for _, _, free in fits],
    ]
    med = [statistics.median(c) for c in columns]
    lines += [
        f"| median | {med[0]:.3g} | {med[1]:.3g} | {med[2]:.3g} | {med[3]:.3g} | |",
        "",
        "Verdict per seed: `least lengthscale without < 0.15 < least lengthscale penalized` "
        "and `noise penalized > 2 x noise without`.",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
