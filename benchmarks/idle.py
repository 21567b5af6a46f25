"""How much worker time goes to waiting for a suggestion, in real time.

    python -m benchmarks.idle [--workers 32] [--trials 320] [--mean 1.0]
        [--samplers gp random] [--repeats 5] [--out FILE.md]

Trials sleep for an exponential time (mean ``--mean`` seconds of real time) in threads of
this process (``LocalBackend``), ``--workers`` at once, and return Hartmann-6's value at
their parameters. A worker is idle from the moment a trial finishes until the next trial
starts in its slot, both read from the worker's own clock inside the objective; since the
driver refills a slot only by asking the sampler, that gap is the sampler's latency plus
the driver's own. Idle fraction = the gaps summed over every
refill / (workers x the study's wall time). Random sampling, run in the same session, shows
the driver's own share.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import numpy as np

import asynchpo as ah
from benchmarks._emit import emit
from benchmarks.functions import PROBLEMS


def measure(
    args: argparse.Namespace, sampler_name: str, seed: int
) -> tuple[float, float, float, float, float]:
    """One study; returns (idle fraction, gap median ms, gap p95 ms, wall s, regret)."""
    problem = PROBLEMS["hartmann6"]
    durations = np.random.default_rng(seed).exponential(args.mean, args.trials + args.workers)

    spans: list[tuple[float, float]] = []  # (start, end) as the worker saw them
    draw = itertools.count()  # each trial its own duration, even when several start at once

    def objective(params: dict) -> float:
        t0 = time.time()
        time.sleep(float(durations[next(draw) % len(durations)]))
        spans.append((t0, time.time()))
        return problem.objective(params)

    sampler = ah.GPSampler() if sampler_name == "gp" else ah.RandomSampler(seed=seed)
    study = ah.Study(problem.space(), sampler=sampler)
    t0 = time.time()
    study.optimize(objective, n_trials=args.trials, max_concurrent=args.workers, progress=False)
    wall = time.time() - t0
    starts = sorted(s for s, _ in spans)
    finishes = sorted(e for _, e in spans)
    # the k-th refill (the starts after the first `workers`) answers the k-th finish
    gaps = [s - f for s, f in zip(starts[args.workers :], finishes, strict=False)]
    idle = sum(max(0.0, g) for g in gaps)
    return (
        idle / (args.workers * wall),
        1000 * float(np.median(gaps)),
        1000 * float(np.percentile(gaps, 95)),
        wall,
        study.best_value - problem.optimum,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--trials", type=int, default=320)
    p.add_argument("--mean", type=float, default=1.0, help="mean trial duration, seconds")
    p.add_argument("--samplers", nargs="+", choices=["gp", "random"], default=["gp", "random"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    lines = [
        f"Idle worker time: {args.workers} workers, {args.trials} trials of exponential "
        f"duration (mean {args.mean} s, real time). Command: `python -m benchmarks.idle "
        f"--workers {args.workers} --trials {args.trials} --mean {args.mean} "
        f"--samplers {' '.join(args.samplers)} --repeats {args.repeats}`",
        "",
        "| sampler | repeat | idle fraction | refill gap median (ms) | p95 (ms) | wall (s) "
        "| regret |",
        "|---|---|---|---|---|---|---|",
    ]
    medians = {}
    for name in args.samplers:
        rows = [measure(args, name, args.seed + r) for r in range(args.repeats)]
        for i, (frac, med, p95, wall, regret) in enumerate(rows):
            lines.append(
                f"| {name} | {i} | {100 * frac:.2f}% | {med:.1f} | {p95:.1f} | {wall:.1f} "
                f"| {regret:.3g} |"
            )
        medians[name] = statistics.median(r[0] for r in rows)
    lines.append("")
    lines += [f"Median idle fraction, {name}: {100 * m:.2f}%  " for name, m in medians.items()]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
