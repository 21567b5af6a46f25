"""Simple regret of asynchpo's samplers and Optuna's on the same functions, same budget,
same simulated asynchronous workers (exponential durations, mean 1, seeded).

    python -m benchmarks.regret [--functions branin hartmann6 ...] [--workers 1 8 32]
        [--seeds 10] [--samplers gp optuna-gp optuna-tpe ...] [--out DIR]

Writes ``DIR/regret.md`` (median and IQR of regret at 25/50/100 % of the budget and at
equal virtual time), ``DIR/regret.html`` (median regret against evaluations, one panel per
function and worker count; hvplot/bokeh, resources inlined so it opens offline) and the
raw runs as ``DIR/regret.csv``. Each run is also kept in
``DIR/runs.jsonl``; a run already there (same function, workers, sampler, seed) is not run
again, so peers are measured once and asynchpo's samplers can be re-measured alone
(``--fresh gp`` drops the cached runs of ``gp`` first).
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

import asynchpo as ah
from benchmarks._emit import median_iqr
from benchmarks.functions import ALL, PROBLEMS, VALLEYS, Problem

Run = list[tuple[float, float]]  # (virtual finish time, value) in finishing order


def run_asynchpo(
    make: Callable[[int], ah.BaseSampler], problem: Problem, workers: int, seed: int
) -> Run:
    study = ah.Study(problem.space(), sampler=make(seed))
    study.optimize(
        problem.objective,
        n_trials=problem.budget,
        max_concurrent=workers,
        backend=ah.SimulatedBackend(n_workers=workers, seed=seed),
        progress=False,
    )
    done = sorted(study.get_trials(["complete"]), key=lambda t: (t.finished_at, t.number))
    return [(float(t.finished_at), float(t.value)) for t in done]


def run_optuna(make: Callable[[int], object], problem: Problem, workers: int, seed: int) -> Run:
    """Optuna's ask/tell on the same virtual clock as ``SimulatedBackend``: a trial is
    asked when a worker frees up and told when its drawn duration has passed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=make(seed))
    dists = {
        n: optuna.distributions.FloatDistribution(lo, hi)
        for n, (lo, hi) in zip(problem.names, problem.bounds, strict=True)
    }
    rng = np.random.default_rng(seed)
    running: list[tuple[float, int, object, float]] = []
    asked, out, now = 0, [], 0.0

    def ask() -> None:
        nonlocal asked
        trial = study.ask(dists)
        value = problem.objective(trial.params)
        heapq.heappush(running, (now + float(rng.exponential(1.0)), asked, trial, value))
        asked += 1

    while asked < min(workers, problem.budget):
        ask()
    while running:
        now, _, trial, value = heapq.heappop(running)
        study.tell(trial, value)
        out.append((now, value))
        if asked < problem.budget:
            ask()
    return out


def samplers() -> dict[str, tuple[str, Callable[[int], object]]]:
    def optuna_sampler(name: str) -> Callable[[int], object]:
        def make(seed: int) -> object:
            import optuna

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return {
                    "random": lambda: optuna.samplers.RandomSampler(seed=seed),
                    "tpe": lambda: optuna.samplers.TPESampler(
                        seed=seed, constant_liar=True, multivariate=True
                    ),
                    "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
                    "gp": lambda: optuna.samplers.GPSampler(seed=seed),
                }[name]()

        return make

    return {
        "gp": ("asynchpo", lambda s: ah.GPSampler(seed=s)),
        "gp-thompson": ("asynchpo", lambda s: ah.GPSampler(seed=s, acquisition="thompson")),
        "random": ("asynchpo", lambda s: ah.RandomSampler(seed=s)),
        "cmaes": ("asynchpo", lambda s: ah.CMAESSampler(seed=s)),
        "tpe": ("asynchpo", lambda s: ah.TPESampler(seed=s)),
        "ensemble": ("asynchpo", lambda s: ah.EnsembleSampler(seed=s)),
        "portfolio": ("asynchpo", lambda s: ah.PortfolioSampler(seed=s)),
        "cmaes-plain": ("asynchpo", lambda s: ah.CMAESSampler(seed=s, mirrored=False)),
        "cmaes-bipop": ("asynchpo", lambda s: ah.CMAESSampler(seed=s, restart="bipop")),
        "optuna-gp": ("optuna", optuna_sampler("gp")),
        "optuna-tpe": ("optuna", optuna_sampler("tpe")),
        "optuna-cmaes": ("optuna", optuna_sampler("cmaes")),
        "optuna-random": ("optuna", optuna_sampler("random")),
    }


def regret_at(run: Run, optimum: float, n: int) -> float:
    return min(v for _, v in run[:n]) - optimum


def regret_by_time(run: Run, optimum: float, t: float) -> float:
    seen = [v for when, v in run if when <= t]
    return (min(seen) if seen else np.inf) - optimum


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--functions",
        nargs="+",
        default=list(PROBLEMS),
        choices=[*ALL, "valleys"],
        help="the five public functions by default; 'valleys': the steep-valley family",
    )
    p.add_argument("--workers", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument(
        "--samplers", nargs="+", default=["gp", "optuna-gp", "optuna-tpe", "optuna-cmaes", "random"]
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--fresh", nargs="*", default=[], help="samplers whose cached runs to drop")
    args = p.parse_args()
    table = samplers()
    if "valleys" in args.functions:
        args.functions = [f for f in args.functions if f != "valleys"] + list(VALLEYS)
    args.out.mkdir(parents=True, exist_ok=True)
    cache_file = args.out / "runs.jsonl"
    cache = {}
    if cache_file.exists():
        for line in cache_file.read_text().splitlines():
            r = json.loads(line)
            if r["sampler"] not in args.fresh:
                cache[(r["function"], r["workers"], r["sampler"], r["seed"])] = r
    cache_file.write_text("".join(json.dumps(r) + "\n" for r in cache.values()))
    rows = []  # (function, workers, sampler, seed, seconds, run)
    for fname in args.functions:
        problem = ALL[fname]
        for w in args.workers:
            for sname in args.samplers:
                kind, make = table[sname]
                runner = run_asynchpo if kind == "asynchpo" else run_optuna
                for seed in range(args.seeds):
                    hit = cache.get((fname, w, sname, seed))
                    if hit is not None:
                        rows.append(
                            (fname, w, sname, seed, hit["seconds"], [tuple(x) for x in hit["run"]])
                        )
                        continue
                    t0 = time.perf_counter()
                    run = runner(make, problem, w, seed)  # type: ignore[arg-type]
                    rows.append((fname, w, sname, seed, time.perf_counter() - t0, run))
                    with cache_file.open("a") as fh:
                        fh.write(
                            json.dumps(
                                {
                                    "function": fname,
                                    "workers": w,
                                    "sampler": sname,
                                    "seed": seed,
                                    "seconds": rows[-1][4],
                                    "run": run,
                                }
                            )
                            + "\n"
                        )
                    print(
                        f"{problem.name:13s} W={w:<3d} {sname:14s} seed={seed} "
                        f"regret={regret_at(run, problem.optimum, len(run)):.3g} "
                        f"({rows[-1][4]:.1f}s)",
                        flush=True,
                    )
    write(rows, args)


def write(rows: list, args: argparse.Namespace) -> None:
    lines = [
        "Simple regret (best found minus optimum), median [IQR] over "
        f"{args.seeds} seeds; simulated asynchronous workers, exponential durations "
        "(mean 1). Command: `python -m benchmarks.regret "
        + " ".join(
            f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if k != "out"
        )
        + "`",
        "",
    ]
    lines += [
        "| function | W | sampler | 25% | 50% | 100% | equal time | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r[0], r[1]) for r in rows}, key=lambda k: (list(ALL).index(k[0]), k[1]))
    csv = ["function,workers,sampler,seed,evaluation,finish_time,value"]
    for fname, w in keys:
        problem = ALL[fname]
        group = [r for r in rows if r[0] == fname and r[1] == w]
        # equal virtual time: the earliest time by which every sampler's runs are all done
        t_eq = min(max(r[5][-1][0] for r in group if r[2] == s) for s in {r[2] for r in group})
        for sname in dict.fromkeys(r[2] for r in group):
            runs = [r for r in group if r[2] == sname]
            cells = []
            for frac in (0.25, 0.5, 1.0):
                n = max(1, int(frac * problem.budget))
                vals = [regret_at(r[5], problem.optimum, n) for r in runs]
                cells.append(median_iqr(vals))
            cells.append(median_iqr([regret_by_time(r[5], problem.optimum, t_eq) for r in runs]))
            secs = np.median([r[4] for r in runs])
            lines.append(
                f"| {problem.name} | {w} | {sname} | " + " | ".join(cells) + f" | {secs:.1f} |"
            )
            for r in runs:
                for i, (t, v) in enumerate(r[5]):
                    csv.append(f"{fname},{w},{sname},{r[3]},{i + 1},{t:.6g},{v:.10g}")
    (args.out / "regret.md").write_text("\n".join(lines) + "\n")
    (args.out / "regret.csv").write_text("\n".join(csv) + "\n")
    figure(args.out / "regret.csv", args.out / "regret.html")
    print("\n".join(lines))


def figure(csv: Path, html: Path) -> None:
    """Median best-so-far regret against evaluations, per function and worker count."""
    import holoviews as hv
    import hvplot.pandas  # noqa: F401 - registers .hvplot
    import pandas as pd
    from bokeh.resources import INLINE

    df = pd.read_csv(csv)
    df["optimum"] = df["function"].map({k: p.optimum for k, p in PROBLEMS.items()})
    df = df.sort_values(["function", "workers", "sampler", "seed", "evaluation"])
    keys = ["function", "workers", "sampler", "seed"]
    df["regret"] = df.groupby(keys)["value"].cummin() - df["optimum"]
    med = df.groupby(["function", "workers", "sampler", "evaluation"], as_index=False)[
        "regret"
    ].median()
    med["regret"] = med["regret"].clip(lower=1e-8)
    plot = (
        med.hvplot.line(
            x="evaluation",
            y="regret",
            by="sampler",
            groupby=["function", "workers"],
            logy=True,
            width=420,
            height=300,
            title="median simple regret",
        )
        .layout()
        .cols(2)
    )
    hv.save(plot, html, resources=INLINE)


if __name__ == "__main__":
    main()
