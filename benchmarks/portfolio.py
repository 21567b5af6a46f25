"""The default portfolio against each of its members alone and Optuna's default sampler,
on the five public functions and the steep-valley family, same budget, same simulated
asynchronous workers as ``benchmarks.regret``.

    python -m benchmarks.portfolio [--functions ...] [--workers 8 32] [--seeds 10]
        [--samplers ...] [--out FILE.md]

Each run is a whole seeded study (exponential durations, mean 1); runs are kept in
``benchmarks/.cache/portfolio-runs.jsonl`` so that a run already there is not run again
and seeds can be added later. The table gives, per function and worker count, the median
[IQR] final regret of ``PortfolioSampler(seed=s)`` (GP, neural ensemble, CMA-ES, TPE,
random, a bandit choosing), of each member alone (``GPSampler``, ``EnsembleSampler``,
``CMAESSampler``, ``TPESampler``, ``RandomSampler``) and of Optuna's default sampler
(``optuna.samplers.TPESampler(seed=s)``, Optuna's defaults), then the ratio of the
portfolio's median to its best member's. The verdict lines: whether the portfolio is
within 1.5x of its best member on every function, and on how many of the valley family it
beats ``GPSampler`` alone.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import asynchpo as ah
from benchmarks._emit import Runs, emit, median_iqr
from benchmarks.functions import ALL, PROBLEMS, VALLEYS
from benchmarks.regret import regret_at, run_asynchpo, run_optuna

_CACHE = Path("benchmarks/.cache/portfolio-runs.jsonl")
MEMBERS = ("gp", "ensemble", "cmaes", "tpe", "random")


def _optuna_default(seed: int) -> object:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(seed=seed)


def makers() -> dict[str, tuple[str, Callable[[int], object]]]:
    return {
        "portfolio": ("asynchpo", lambda s: ah.PortfolioSampler(seed=s)),
        "gp": ("asynchpo", lambda s: ah.GPSampler(seed=s)),
        "ensemble": ("asynchpo", lambda s: ah.EnsembleSampler(seed=s)),
        "cmaes": ("asynchpo", lambda s: ah.CMAESSampler(seed=s)),
        "tpe": ("asynchpo", lambda s: ah.TPESampler(seed=s)),
        "random": ("asynchpo", lambda s: ah.RandomSampler(seed=s)),
        "optuna-default": ("optuna", _optuna_default),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--functions", nargs="+", default=[*PROBLEMS, *VALLEYS], choices=list(ALL))
    p.add_argument("--workers", nargs="+", type=int, default=[8, 32])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--samplers", nargs="+", default=None, choices=list(makers()))
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    table = makers()
    if args.samplers:  # a part of the table only (to fill the cache); no verdicts
        table = {name: table[name] for name in args.samplers}
    cache = Runs(_CACHE, ("function", "workers", "sampler", "seed"))
    names = list(table)
    lines = [
        f"# The portfolio against its members and Optuna's default, median [IQR] final "
        f"regret over {args.seeds} seeds",
        "",
        "Command: `python -m benchmarks.portfolio --functions "
        f"{' '.join(args.functions)} --workers {' '.join(map(str, args.workers))} "
        f"--seeds {args.seeds}`",
        "",
        "| function | W | " + " | ".join(names) + " | portfolio / best member |",
        "|---" * (len(names) + 3) + "|",
    ]
    within, valleys_won, valleys = True, 0, 0
    for fname in args.functions:
        problem = ALL[fname]
        for w in args.workers:
            finals: dict[str, list[float]] = {}
            for name in names:
                kind, make = table[name]
                finals[name] = []
                for seed in range(args.seeds):
                    key = (fname, w, name, seed)
                    if key not in cache:
                        t0 = time.perf_counter()
                        runner = run_asynchpo if kind == "asynchpo" else run_optuna
                        run = runner(make, problem, w, seed)  # type: ignore[arg-type]
                        record = {"function": fname, "workers": w, "sampler": name, "seed": seed}
                        cache.add({**record, "run": run})
                        print(
                            f"{problem.name} W={w} {name} seed={seed}: "
                            f"{regret_at(run, problem.optimum, problem.budget):.3g} "
                            f"({time.perf_counter() - t0:.0f} s)",
                            flush=True,
                        )
                    run = cache[key]["run"]
                    finals[name].append(regret_at(run, problem.optimum, problem.budget))
            med = {name: statistics.median(v) for name, v in finals.items()}
            if not {"portfolio", *MEMBERS} <= set(med):
                lines.append(
                    f"| {problem.name} | {w} | "
                    + " | ".join(median_iqr(finals[name]) for name in names)
                    + " | |"
                )
                continue
            best = min(MEMBERS, key=lambda m: med[m])
            ratio = med["portfolio"] / med[best] if med[best] > 0 else float("inf")
            if med["portfolio"] == med[best]:
                ratio = 1.0
            within &= ratio <= 1.5
            if fname in VALLEYS:
                valleys += 1
                valleys_won += med["portfolio"] < med["gp"]
            lines.append(
                f"| {problem.name} | {w} | "
                + " | ".join(median_iqr(finals[name]) for name in names)
                + f" | {ratio:.2f} ({best}) |"
            )
    if args.samplers:
        emit(lines, args.out)
        return
    lines += [
        "",
        f"- Within 1.5x of its best member on every function and worker count: "
        f"{'yes' if within else 'no'}",
    ]
    if valleys:
        lines.append(
            f"- Better than GPSampler alone on {valleys_won} of {valleys} "
            "(valley function, worker count) pairs"
        )
    emit(lines, args.out)


if __name__ == "__main__":
    main()
