"""How much worker time goes to waiting for a suggestion, in real time.

    python -m benchmarks.idle [--workers 32] [--trials 320] [--mean 1.0] [--sampler gp]
        [--repeats 3] [--out FILE.md]

Trials sleep for an exponential time (mean ``--mean`` seconds of real time) in threads of
this process (``LocalBackend``), ``--workers`` at once, and return Hartmann-6's value at
their parameters. A worker is idle from the moment a trial finishes until the next trial
starts in its slot, both read from the worker's own clock inside the objective; since the
driver refills a slot only by asking the sampler, that gap is the sampler's latency plus
the driver's own. Idle fraction = the gaps summed over every
refill / (workers x the study's wall time).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import asynchpo as ah
from benchmarks._emit import emit
from benchmarks.functions import PROBLEMS


def measure(args: argparse.Namespace, seed: int) -> tuple[float, float, float, float, float]:
    """One study; returns (idle fraction, gap median ms, gap p95 ms, wall s, regret)."""
    problem = PROBLEMS["hartmann6"]
    durations = np.random.default_rng(seed).exponential(args.mean, args.trials + args.workers)

    spans: list[tuple[float, float]] = []  # (start, end) as the worker saw them

    def objective(params: dict) -> float:
        t0 = time.time()
        time.sleep(float(durations[len(study.trials) % len(durations)]))
        spans.append((t0, time.time()))
        return problem.objective(params)

    sampler = ah.GPSampler() if args.sampler == "gp" else ah.RandomSampler(seed=seed)
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
    p.add_argument("--sampler", choices=["gp", "random"], default="gp")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    rows = [measure(args, args.seed + r) for r in range(args.repeats)]
    lines = [
        f"Idle worker time: {args.workers} workers, {args.trials} trials of exponential "
        f"duration (mean {args.mean} s, real time), sampler {args.sampler}. Command: "
        f"`python -m benchmarks.idle --workers {args.workers} --trials {args.trials} "
        f"--mean {args.mean} --sampler {args.sampler} --repeats {args.repeats}`",
        "",
        "| repeat | idle fraction | refill gap median (ms) | p95 (ms) | wall (s) | regret |",
        "|---|---|---|---|---|---|",
    ]
    for i, (frac, med, p95, wall, regret) in enumerate(rows):
        lines.append(
            f"| {i} | {100 * frac:.2f}% | {med:.1f} | {p95:.1f} | {wall:.1f} | {regret:.3g} |"
        )
    median = statistics.median(r[0] for r in rows)
    lines += ["", f"Median idle fraction: {100 * median:.2f}%"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
