"""How much worker time goes to waiting for a suggestion, in real time.

    python -m benchmarks.idle [--workers 32] [--trials 320] [--mean 1.0] [--sampler gp]

Trials sleep for an exponential time (mean ``--mean`` seconds of real time) in threads of
this process (``LocalBackend``), ``--workers`` at once, and return Hartmann-6's value at
their parameters. A worker is idle from the moment a trial finishes until the next trial
starts in its slot; since the driver refills a slot only by asking the sampler, that gap is
the sampler's latency plus the driver's own. Idle fraction = the gaps summed over every
refill / (workers x the study's wall time).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import asynchpo as ah
from benchmarks.functions import PROBLEMS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--trials", type=int, default=320)
    p.add_argument("--mean", type=float, default=1.0, help="mean trial duration, seconds")
    p.add_argument("--sampler", choices=["gp", "random"], default="gp")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    problem = PROBLEMS["hartmann6"]
    rng = np.random.default_rng(args.seed)
    durations = rng.exponential(args.mean, args.trials + args.workers)

    def objective(params: dict) -> float:
        time.sleep(float(durations[len(study.trials) % len(durations)]))
        return problem.objective(params)

    sampler = ah.GPSampler() if args.sampler == "gp" else ah.RandomSampler(seed=args.seed)
    study = ah.Study(problem.space(), sampler=sampler)
    t0 = time.time()
    study.optimize(objective, n_trials=args.trials, max_concurrent=args.workers, progress=False)
    wall = time.time() - t0
    trials = sorted(study.trials, key=lambda t: t.started_at)
    finishes = sorted(t.finished_at for t in trials)
    # the k-th refill (trial number >= workers, by start) answers the k-th finish
    refills = trials[args.workers :]
    gaps = [t.started_at - f for t, f in zip(refills, finishes, strict=False)]
    idle = sum(max(0.0, g) for g in gaps)
    print(
        f"{args.sampler}: {args.trials} trials, {args.workers} workers, mean {args.mean}s; "
        f"wall {wall:.1f}s; refill gap median {1000 * np.median(gaps):.1f} ms, "
        f"p95 {1000 * np.percentile(gaps, 95):.1f} ms; idle fraction "
        f"{100 * idle / (args.workers * wall):.2f}%; best regret "
        f"{study.best_value - problem.optimum:.3g}"
    )


if __name__ == "__main__":
    main()
