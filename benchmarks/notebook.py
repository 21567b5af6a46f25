"""What the live view costs, and whether the notebook stays responsive while a study runs.

    python -m benchmarks.notebook [--trials 2000] [--workers 32] [--out FILE.md]

In a real Jupyter kernel (started with jupyter_client, as a notebook would), a study of
``--trials`` Hartmann-6 trials on the simulated backend (GPSampler; ``--workers`` virtual
workers) is started with ``study.start`` and its live view displayed. Meanwhile this
process sends a trivial cell (``1 + 1``) every 0.25 s and times each round trip. At the end
the kernel reports the view's redraws and the time it spent folding events and drawing,
next to the run's wall time; the same study is then run without a view for the driver's
own time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks._emit import emit

SETUP = """
import time
import numpy as np
import asynchpo as ah
from benchmarks.functions import PROBLEMS
problem = PROBLEMS["hartmann6"]
def make():
    return ah.Study(problem.space(), sampler=ah.GPSampler())
"""

START = """
study = make()
view = study.widget()
t0 = time.perf_counter()
run = study.start(problem.objective, n_trials={trials},
                  backend=ah.SimulatedBackend(n_workers={workers}, seed=0), progress=False)
"""

REPORT = """
run.wait()
wall = time.perf_counter() - t0
view.flush()
bare = make()
t1 = time.perf_counter()
bare.optimize(problem.objective, n_trials={trials},
              backend=ah.SimulatedBackend(n_workers={workers}, seed=0), progress=False)
bare_wall = time.perf_counter() - t1
print(wall, bare_wall, view.draws, view.busy, view.state.done)
"""


def main() -> None:
    from jupyter_client.manager import start_new_kernel

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=2000)
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(Path.cwd()))
    try:

        def execute(code: str, timeout: float = 3600) -> tuple[float, str]:
            t = time.perf_counter()
            reply = kc.execute_interactive(
                code, timeout=timeout, output_hook=lambda m: out.append(m)
            )
            assert reply["content"]["status"] == "ok", reply["content"]
            return time.perf_counter() - t, ""

        out: list = []
        execute(SETUP)
        execute(START.format(trials=args.trials, workers=args.workers))
        latencies = []
        while True:
            seconds, _ = execute("1 + 1", timeout=60)
            latencies.append(seconds)
            out.clear()
            execute("print(run.done)")
            done = any("True" in m["content"].get("text", "") for m in out)
            out.clear()
            if done:
                break
            time.sleep(0.25)
        execute(REPORT.format(trials=args.trials, workers=args.workers))
        text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
        wall, bare_wall, draws, busy, done = text.split()[-5:]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    wall_s, bare_s, busy_s = float(wall), float(bare_wall), float(busy)
    lat_ms = sorted(1000 * x for x in latencies)
    p95 = lat_ms[min(len(lat_ms) - 1, int(0.95 * len(lat_ms)))]
    lines = [
        f"The live view while a {args.trials}-trial simulated study (GPSampler, Hartmann-6, "
        f"{args.workers} virtual workers) runs in a Jupyter kernel. Command: "
        f"`python -m benchmarks.notebook --trials {args.trials} --workers {args.workers}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| trials finished | {done} |",
        f"| run wall time, with the view | {wall_s:.1f} s |",
        f"| same study without a view | {bare_s:.1f} s |",
        f"| redraws | {draws} ({int(draws) / wall_s:.2f} per second) |",
        f"| time the view spent folding events and drawing | {busy_s:.2f} s "
        f"({100 * busy_s / wall_s:.2f}% of the run) |",
        f"| trivial cell (`1 + 1`) round trip while it ran: median | "
        f"{statistics.median(lat_ms):.1f} ms |",
        f"| p95 / max | {p95:.1f} / {lat_ms[-1]:.1f} ms ({len(lat_ms)} cells) |",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
