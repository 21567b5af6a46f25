"""What the study driver costs per trial, next to raw dask, on the same cluster in one run.

    python -m benchmarks.driver_overhead [--trials 2000] [--repeats 5] [--out FILE.md]

1. Raw dask: ``client.submit`` of a trivial function, ``max_concurrent`` in flight,
   refilled from ``as_completed(with_results=True)``: the ceiling of any driver.
2. asynchpo: ``study.optimize`` of the same trivial objective, random sampling, same
   cluster, same concurrency; once with the journal in memory, once in an SQLite file.
3. The simulated backend: 10,000 random-search trials on 1,000 virtual workers.

Runs alternate (raw, in-memory, SQLite, raw, ...) so drift hits all alike; the table gives
the median trials/s over the repeats and the ratio of medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster, as_completed

import asynchpo as ah
from benchmarks._emit import emit

SPACE = ah.Space(x=ah.Float(-5.0, 5.0), y=ah.Float(-5.0, 5.0), k=ah.Int(0, 10))


def trivial(params: dict) -> float:
    return params["x"] ** 2 + params["y"] ** 2


def raw(client: Client, n: int, concurrency: int) -> float:
    t0 = time.perf_counter()
    ac = as_completed(with_results=True)
    submitted = 0
    for _ in range(concurrency):
        ac.add(client.submit(trivial, {"x": 1.0, "y": 2.0}, pure=False))
        submitted += 1
    for _future, _result in ac:
        if submitted < n:
            ac.add(client.submit(trivial, {"x": 1.0, "y": 2.0}, pure=False))
            submitted += 1
    return n / (time.perf_counter() - t0)


def driver(client: Client, n: int, concurrency: int, storage: object) -> float:
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=storage)
    t0 = time.perf_counter()
    study.optimize(trivial, n_trials=n, client=client, max_concurrent=concurrency, progress=False)
    rate = n / (time.perf_counter() - t0)
    assert len(study.get_trials(["complete"])) == n
    return rate


def simulated(n: int, workers: int, storage: object) -> float:
    study = ah.Study(SPACE, sampler=ah.RandomSampler(seed=0), storage=storage)
    t0 = time.perf_counter()
    study.optimize(
        trivial, n_trials=n, backend=ah.SimulatedBackend(n_workers=workers, seed=0), progress=False
    )
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=2000, help="trials per dask measurement")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="dask worker processes")
    p.add_argument("--sim-trials", type=int, default=10_000)
    p.add_argument("--sim-workers", type=int, default=1000)
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp())
    rates: dict[str, list[float]] = {"raw": [], "memory": [], "sqlite": []}
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        concurrency = sum(client.nthreads().values())
        raw(client, 200, concurrency)  # warm up the workers
        driver(client, 200, concurrency, None)
        for i in range(args.repeats):
            rates["raw"].append(raw(client, args.trials, concurrency))
            rates["memory"].append(driver(client, args.trials, concurrency, None))
            rates["sqlite"].append(driver(client, args.trials, concurrency, tmp / f"{i}.db"))
    sim = {
        "memory": [simulated(args.sim_trials, args.sim_workers, None) for _ in range(3)],
        "sqlite": [
            simulated(args.sim_trials, args.sim_workers, tmp / f"sim{i}.db") for i in range(3)
        ],
    }

    med = {k: statistics.median(v) for k, v in rates.items()}
    lines = [
        f"Driver overhead: {args.workers}-worker LocalCluster (processes), trivial objective, "
        f"{concurrency} in flight, {args.trials} trials x {args.repeats} repeats, median.",
        "",
        "| driver | trials/s (median) | min-max | vs raw dask | driver cost |",
        "|---|---|---|---|---|",
    ]
    for key, label in [
        ("raw", "raw client.submit + as_completed"),
        ("memory", "asynchpo, journal in memory"),
        ("sqlite", "asynchpo, journal in SQLite"),
    ]:
        ratio = med[key] / med["raw"]
        lines.append(
            f"| {label} | {med[key]:.0f} | {min(rates[key]):.0f}-{max(rates[key]):.0f} "
            f"| {ratio:.2f} | {100 * (1 - ratio):.1f}% |"
        )
    lines += [
        "",
        f"Simulated backend: {args.sim_trials} random-search trials on {args.sim_workers} "
        "virtual workers, median of 3.",
        "",
        "| journal | seconds | trials/s |",
        "|---|---|---|",
    ]
    for key in ("memory", "sqlite"):
        s = statistics.median(sim[key])
        lines.append(f"| {key} | {s:.2f} | {args.sim_trials / s:.0f} |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
