"""A study on a real Slurm through dask-jobqueue: how soon the first trial runs, and how much
of the workers' time goes to waiting.

    sudo bash ci/slurm/start.sh     # a single-node Slurm on this machine
    python -m benchmarks.slurm [--trials 50] [--seconds 1.0] [--workers 2] [--out FILE.md]

1. From ``optimize(..., adapt=True)`` on a ``SLURMCluster`` with no worker to the first
   trial running: job submission, scheduling, worker start-up and the first suggestion.
2. ``--trials`` trials that each sleep ``--seconds`` on ``--workers`` Slurm workers started
   beforehand: each trial notes its own start and end (the worker's clock); a worker's idle
   time is the gaps between its consecutive trials; the idle fraction is their sum over
   workers x the span from the first start to the last end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import time
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

import asynchpo as ah
from benchmarks._emit import emit


def _cluster(logs: str):
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        cores=1,
        processes=1,
        memory="1GB",
        walltime="00:30:00",
        python=sys.executable,
        log_directory=logs,
        scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
    )


def sleeper(seconds: float):
    def objective(p):
        import time

        t0 = time.time()
        time.sleep(seconds)
        return {"value": (p["x"] - 0.3) ** 2, "t0": t0, "t1": time.time()}

    return objective


def main() -> None:
    from distributed import Client

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    space = ah.Space(x=ah.Float(0, 1))
    with TemporaryDirectory() as logs:
        cluster = _cluster(logs)
        with Client(cluster) as client:
            study = ah.Study(space)
            t0 = time.time()
            study.optimize(
                sleeper(0.1),
                n_trials=4,
                client=client,
                max_concurrent=args.workers,
                adapt=True,
                progress=False,
            )
            first = min(t.values["t0"] for t in study.trials) - t0
        with contextlib.suppress(AssertionError):
            cluster.close()

        cluster = _cluster(logs)
        cluster.scale(args.workers)
        with Client(cluster) as client:
            client.wait_for_workers(args.workers, timeout=300)
            study = ah.Study(space)
            study.optimize(
                sleeper(args.seconds),
                n_trials=args.trials,
                client=client,
                max_concurrent=args.workers,
                progress=False,
            )
        with contextlib.suppress(AssertionError):
            cluster.close()
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in study.get_trials(["complete"]):
        spans[t.worker or "?"].append((t.values["t0"], t.values["t1"]))
    start = min(s for v in spans.values() for s, _ in v)
    end = max(e for v in spans.values() for _, e in v)
    gaps = []
    for v in spans.values():
        v.sort()
        gaps += [b[0] - a[1] for a, b in itertools.pairwise(v)]
    idle = sum(max(0.0, g) for g in gaps) / (len(spans) * (end - start))
    gaps_ms = sorted(1000 * g for g in gaps)
    lines = [
        f"A study on a single-node Slurm through dask-jobqueue's SLURMCluster. Command: "
        f"`python -m benchmarks.slurm --trials {args.trials} --seconds {args.seconds} "
        f"--workers {args.workers}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| `optimize(adapt=True)` with no worker to the first trial running | {first:.2f} s |",
        f"| {args.trials} trials of {args.seconds} s on {args.workers} workers: wall | "
        f"{end - start:.1f} s |",
        f"| idle fraction of worker time | {100 * idle:.2f}% |",
        f"| gap between a worker's trials: median / max | "
        f"{gaps_ms[len(gaps_ms) // 2]:.1f} / {gaps_ms[-1]:.1f} ms |",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
