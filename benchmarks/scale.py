"""A large study: 2,000 trials on 64 simulated workers, a mixed five-parameter space (two
floats, a log float, an int, a categorical), the default sampler, timed end to end.

    python -m benchmarks.scale [--seeds 0 1 2] [--trials 2000] [--workers 64]
        [--reference 1000] [--out FILE.md]

The objective is one of a family, drawn by the seed: a Branin term on the two floats
(rotated and shifted), a quadratic in the log of the learning rate around a drawn optimum,
a quadratic in log2 of the int around a drawn width, and a drawn cost per category; its
minimum is known (Branin's, plus the best int on the grid), so the regret is exact. The
reference is ``GPSampler`` conditioned on every complete trial (``max_points`` past the
study's size, the model before it had a cap) at ``--reference`` trials: the default
sampler must finish the whole study in under 2 minutes and end with a regret no worse than
that reference's at its size. Wall time is the whole ``Study.optimize`` call.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import asynchpo as ah
from benchmarks._emit import emit

_BRANIN_MIN = 0.397887357729738
_CATEGORIES = ["relu", "gelu", "tanh", "sigmoid"]


def space() -> ah.Space:
    return ah.Space(
        x1=ah.Float(-5.0, 10.0),
        x2=ah.Float(0.0, 15.0),
        lr=ah.Float(1e-5, 1e-1, log=True),
        units=ah.Int(1, 256),
        act=ah.Categorical(_CATEGORIES),
    )


def problem(seed: int) -> tuple[Callable[[dict[str, Any]], float], float]:
    """The objective of the family drawn by ``seed``, and its minimum."""
    rng = np.random.default_rng([7, seed])
    flip = bool(rng.integers(2))  # Branin mirrored in x1 or not
    log_lr = rng.uniform(-4.0, -2.0)
    log_units = rng.uniform(2.5, 7.0)
    width = rng.uniform(0.3, 1.0)
    costs = dict(zip(_CATEGORIES, rng.permutation([0.0, 0.2, 1.0, 2.0]), strict=True))
    a, b, c, r, s, t = 1, 5.1 / (4 * np.pi**2), 5 / np.pi, 6, 10, 1 / (8 * np.pi)

    def f(p: dict[str, Any]) -> float:
        x0 = 5.0 - p["x1"] if flip else p["x1"]
        x1 = p["x2"]
        branin = a * (x1 - b * x0**2 + c * x0 - r) ** 2 + s * (1 - t) * math.cos(x0) + s
        lr = (math.log10(p["lr"]) - log_lr) ** 2
        units = width * (math.log2(p["units"]) - log_units) ** 2
        return float(branin + lr + units + costs[p["act"]])

    best_units = min(width * (math.log2(u) - log_units) ** 2 for u in range(1, 257))
    return f, _BRANIN_MIN + best_units


def run(sampler: ah.BaseSampler, seed: int, trials: int, workers: int) -> tuple[float, list]:
    f, _ = problem(seed)
    study = ah.Study(space(), sampler=sampler)
    t0 = time.perf_counter()
    study.optimize(
        f,
        n_trials=trials,
        max_concurrent=workers,
        backend=ah.SimulatedBackend(n_workers=workers, seed=seed),
        progress=False,
    )
    wall = time.perf_counter() - t0
    done = sorted(study.get_trials(["complete"]), key=lambda t: (t.finished_at, t.number))
    return wall, [float(t.value) for t in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--reference", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    lines = [
        f"# {args.trials} trials, {args.workers} simulated workers, mixed 5-parameter space",
        "",
        "| seed | default: wall s | default: regret at end | "
        f"full GP: wall s to {args.reference} | full GP: regret at {args.reference} |",
        "|---|---|---|---|---|",
    ]
    walls, regrets, ref_walls, ref_regrets = [], [], [], []
    for seed in args.seeds:
        _, optimum = problem(seed)
        wall, values = run(ah.Study(space()).sampler, seed, args.trials, args.workers)
        full = ah.GPSampler(seed=seed, max_points=10**9)
        ref_wall, ref_values = run(full, seed, args.reference, args.workers)
        walls.append(wall)
        regrets.append(min(values) - optimum)
        ref_walls.append(ref_wall)
        ref_regrets.append(min(ref_values) - optimum)
        lines.append(
            f"| {seed} | {wall:.1f} | {regrets[-1]:.3g} | {ref_wall:.1f} | {ref_regrets[-1]:.3g} |"
        )
        print(lines[-1], flush=True)
    med = statistics.median
    lines += [
        f"| median | {med(walls):.1f} | {med(regrets):.3g} | {med(ref_walls):.1f} | "
        f"{med(ref_regrets):.3g} |",
        "",
        f"Default sampler: {type(ah.Study(space()).sampler).__name__}; wall time is the whole "
        "`Study.optimize` call on this machine (2 cores).",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
