"""How long a stop decision takes to reach a running trial on a real dask cluster.

    python -m benchmarks.pruning_latency [--trials 60] [--workers 2] [--out FILE.md]

Each trial reports every millisecond; the scheduler stops it at its report at step 20. The
latency of one trial is the time from that report arriving at the driver (the time stamped
on its ``trial_reported`` event) to ``asynchpo.Pruned`` being raised by ``asynchpo.report``
on the worker (stamped there, on the same machine's clock). It is at most the time the
decision takes through dask's messaging (driver -> scheduler -> worker) plus one report
interval.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster

import asynchpo as ah
from asynchpo.schedulers import BaseScheduler, Decision, Progress
from benchmarks._emit import emit

STOP_AT = 20


class StopAt(BaseScheduler):
    """Stops every trial at step ``STOP_AT``."""

    def on_report(self, progress: Progress) -> Decision:
        return Decision.STOP if progress.step >= STOP_AT else Decision.CONTINUE


def make_objective(folder: str):
    def objective(params: dict) -> float:
        import asynchpo as ah

        step = 0
        try:
            while True:
                step += 1
                time.sleep(0.001)
                ah.report(step, value=params["x"])
        except ah.Pruned:
            raised = time.time()
            Path(folder, f"{_number(params)}.txt").write_text(repr(raised))
            raise

    return objective


def _number(params: dict) -> str:
    return f"{params['x']!r}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    folder = tempfile.mkdtemp()
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        study = ah.Study(
            ah.Space(x=ah.Float(0.0, 1.0)), sampler=ah.RandomSampler(seed=0), scheduler=StopAt()
        )
        t0 = time.perf_counter()
        study.optimize(make_objective(folder), n_trials=args.trials, client=client, progress=False)
        wall = time.perf_counter() - t0
    latencies = []
    for t in study.get_trials([ah.TrialState.PRUNED]):
        decided = next(r for r in t.reports if r.step >= STOP_AT)
        path = Path(folder, f"{_number(t.params)}.txt")
        if path.exists():
            latencies.append(float(path.read_text()) - decided.time)
    latencies.sort()
    ms = [1000 * x for x in latencies]
    q1, med, q3 = statistics.quantiles(ms, n=4) if len(ms) > 1 else (ms * 3 or [float("nan")] * 3)
    lines = [
        f"Pruning latency on a {args.workers}-worker LocalCluster (processes): report at the "
        "driver -> `Pruned` raised on the worker, one report per millisecond.",
        "",
        "| trials pruned by a raise | median | IQR | max |",
        "|---|---|---|---|",
        f"| {len(ms)} of {args.trials} | {med:.1f} ms | {q1:.1f}-{q3:.1f} ms | {ms[-1]:.1f} ms |",
        "",
        f"Whole run: {wall:.1f} s. Command: `python -m benchmarks.pruning_latency "
        f"--trials {args.trials} --workers {args.workers}`.",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
