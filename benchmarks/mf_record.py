"""Record the learning curves of a small PyTorch MLP on a classification dataset: the tables
that ``benchmarks.mf_table`` replays (a tabulated multi-fidelity benchmark, like the
learning-curve tables of Syne Tune's blackbox repository or HPOBench/LCBench).

    python -m benchmarks.mf_record [--dataset digits|synthetic] [--n 2048] [--epochs 27]
        [--out benchmarks/data/mlp_<dataset>.npz] [--time-one] [--shard K/M] [--retime E]
        [--repeat R] [--merge-repeats]

For each of ``n`` configurations (scrambled Sobol' points, ``scipy.stats.qmc``, seed 0) of six
hyperparameters -- learning rate (log, 1e-4..1e-1), width (int, log, 16..512), depth (int,
1..4), weight decay (log, 1e-6..1e-2), batch size (int, log, 16..256), dropout (0..0.5) --
an MLP (ReLU, dropout after each hidden layer, AdamW, one output per class) is trained on a
fixed split of a dataset (``--dataset``) for ``epochs`` epochs; after each epoch the
validation error (1 - accuracy) and the wall-clock seconds of that epoch (training plus
validation, one thread) are stored. The datasets:

- ``digits`` (the default; ``benchmarks/data/mlp_digits.npz``): scikit-learn's
  ``load_digits``, 10 classes, 64 features; 1,200 training images, 597 validation images
  (one image is 0.00168 of error), standardized; split seed 0. Easy: most configurations
  end within a few images of the best. The table in the repository holds three training
  runs of each configuration (``--repeat 1``, ``--repeat 2``, ``--merge-repeats``; about
  an hour of one core a run), and its ``error`` is their mean.
- ``synthetic`` (``benchmarks/data/mlp_synthetic.npz``): a fixed
  ``make_classification(n_samples=3600, n_features=24, n_informative=12, n_redundant=4,
  n_classes=5, n_clusters_per_class=2, class_sep=1.5, flip_y=0, random_state=0)`` (see
  ``DATASETS``), standardized by the training rows; 600 training rows, 3,000 validation rows
  (one row is 0.00033 of error); split seed 0. Harder: few training rows for ten Gaussian
  clusters in 24 dimensions, so final errors spread widely and the curves of fast starters
  and slow learners cross.

Deterministic: configuration ``i`` is trained with ``torch.manual_seed(i)`` (weights, dropout
and the order of minibatches), so re-running gives the same errors (the seconds, of course,
vary). One training run's error is noisy: on digits, configurations whose neighbours in the
space end alike end up to ten images apart, so the best of a single run is mostly luck.
``--repeat R`` trains every configuration again with ``torch.manual_seed(i + R * n)`` into
``<out>.repeatR.npz``; ``--merge-repeats`` then makes the table's ``error`` the mean over
the runs (kept one by one in ``error_runs``, ``(runs, n, epochs)``), as tabulated
benchmarks average seeds (HPOBench's and Syne Tune's FCNet tables keep four), so that the
best of the table is the best in expectation rather than the luckiest draw.

Resumable: finished configurations are kept in ``<out>.partial.npz`` every 50
configurations and the run goes on from there. ``--shard K/M`` records only configurations
``i`` with ``i % M == K`` into ``<out>.shardK.partial.npz``; a run without ``--shard`` merges
the shards it finds.

The output (``np.load``) holds float32 arrays ``error`` and ``seconds`` of shape
``(n, epochs)``, the parameter table (``lr``, ``width``, ``depth``, ``weight_decay``,
``batch_size``, ``dropout``: shape ``(n,)``), ``unit`` (the Sobol' points, ``(n, 6)``) and
``meta`` (a JSON string: how it was made); with ``--retime E`` run first, also
``cpu_seconds`` ``(n,)``: CPU seconds per epoch (``time.process_time``, mean of ``E`` epochs
trained again), a measure of cost that other processes on the machine do not inflate.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

NAMES = ("lr", "width", "depth", "weight_decay", "batch_size", "dropout")
#: name -> (low, high, log, integer)
BOUNDS = {
    "lr": (1e-4, 1e-1, True, False),
    "width": (16, 512, True, True),
    "depth": (1, 4, False, True),
    "weight_decay": (1e-6, 1e-2, True, False),
    "batch_size": (16, 256, True, True),
    "dropout": (0.0, 0.5, False, False),
}
DEFAULT_OUT = Path("benchmarks/data/mlp_digits.npz")
N_TRAIN = 1200
SPLIT_SEED = 0
DESIGN_SEED = 0
#: the datasets (``--dataset``): default output, and for ``synthetic`` the arguments of
#: ``sklearn.datasets.make_classification`` and the split
DATASETS = {
    "digits": {"out": DEFAULT_OUT},
    "synthetic": {
        "out": Path("benchmarks/data/mlp_synthetic.npz"),
        "n_train": 600,
        "n_valid": 3000,
        "make_classification": {
            "n_features": 24,
            "n_informative": 12,
            "n_redundant": 4,
            "n_classes": 5,
            "n_clusters_per_class": 2,
            "class_sep": 1.5,
            "flip_y": 0.0,
            "random_state": 0,
        },
    },
}


def space():
    """The search space, as an ``asynchpo.Space`` (what ``benchmarks.mf_table`` searches)."""
    import asynchpo as ah

    def dist(lo, hi, log, integer):
        return ah.Int(lo, hi, log=log) if integer else ah.Float(lo, hi, log=log)

    return ah.Space({k: dist(*BOUNDS[k]) for k in NAMES})


def decode(u: np.ndarray) -> dict[str, np.ndarray]:
    """Points of the unit cube (``n x 6``) to parameter columns, as ``space().decode`` does:
    a log integer is rounded from log-uniform over ``[low - 0.5, high + 0.5]``, a linear
    integer takes equal bins of the cube."""
    rows = space().decode_many(u)
    return {k: np.array([r[k] for r in rows]) for k in NAMES}


def design(n: int) -> np.ndarray:
    from scipy.stats import qmc

    return qmc.Sobol(d=len(NAMES), scramble=True, seed=DESIGN_SEED).random(n)


def data(dataset: str = "digits"):
    """The standardized training and validation tensors ``(Xtr, ytr, Xva, yva)``."""
    import torch

    if dataset == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        perm = np.random.default_rng(SPLIT_SEED).permutation(len(y))
        tr, va = perm[:N_TRAIN], perm[N_TRAIN:]
    else:
        from sklearn.datasets import make_classification

        d = DATASETS[dataset]
        X, y = make_classification(
            n_samples=d["n_train"] + d["n_valid"], shuffle=True, **d["make_classification"]
        )
        perm = np.random.default_rng(SPLIT_SEED).permutation(len(y))
        tr, va = perm[: d["n_train"]], perm[d["n_train"] :]
    mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-6
    X = (X - mu) / sd
    t = lambda a, dt: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return (
        t(X[tr], torch.float32),
        t(y[tr], torch.long),
        t(X[va], torch.float32),
        t(y[va], torch.long),
    )


def train_curve(
    params: dict, epochs: int, seed: int, tensors, clock=time.perf_counter
) -> tuple[np.ndarray, np.ndarray]:
    """The validation error and the seconds (by ``clock``) of each epoch of one
    configuration."""
    import torch
    from torch import nn

    Xtr, ytr, Xva, yva = tensors
    n_classes = int(max(ytr.max(), yva.max())) + 1
    torch.manual_seed(seed)
    width, depth = int(params["width"]), int(params["depth"])
    layers: list[nn.Module] = []
    d_in = Xtr.shape[1]
    for _ in range(depth):
        layers += [nn.Linear(d_in, width), nn.ReLU(), nn.Dropout(float(params["dropout"]))]
        d_in = width
    layers.append(nn.Linear(d_in, n_classes))
    model = nn.Sequential(*layers)
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(params["lr"]), weight_decay=float(params["weight_decay"])
    )
    loss_fn = nn.CrossEntropyLoss()
    bs = int(params["batch_size"])
    n = len(ytr)
    gen = torch.Generator().manual_seed(seed)
    err = np.empty(epochs, np.float32)
    sec = np.empty(epochs, np.float32)
    for e in range(epochs):
        t0 = clock()
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(Xva)
            acc = (out.argmax(1) == yva).float().mean().item()
        if not math.isfinite(acc):
            acc = 0.0
        sec[e] = clock() - t0
        err[e] = 1.0 - acc
    return err, sec


def _save(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=27)
    p.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default="digits",
        help="digits (load_digits) or synthetic (a fixed make_classification); default digits",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/data/mlp_<dataset>.npz"
    )
    p.add_argument("--time-one", action="store_true", help="time a few configurations, save none")
    p.add_argument(
        "--retime",
        type=int,
        default=0,
        metavar="E",
        help="train every configuration E epochs again, measuring CPU seconds "
        "(time.process_time) per epoch, into <out>.cpu.npz; the final table takes them in",
    )
    p.add_argument("--shard", default=None, help="K/M: record configurations i % M == K only")
    p.add_argument(
        "--repeat",
        type=int,
        default=0,
        metavar="R",
        help="record training run R >= 1 of every configuration (seed i + R * n) into "
        "<out>.repeatR.npz, for --merge-repeats",
    )
    p.add_argument(
        "--merge-repeats",
        action="store_true",
        help="make the table's error the mean of its first run and the <out>.repeatR.npz found",
    )
    args = p.parse_args()
    if args.out is None:
        args.out = DATASETS[args.dataset]["out"]

    import torch

    torch.set_num_threads(1)
    tensors = data(args.dataset)
    U = design(args.n)
    P = decode(U)
    params = [{k: P[k][i] for k in NAMES} for i in range(args.n)]

    if args.time_one:
        for i in range(8):
            t0 = time.perf_counter()
            err, sec = train_curve(params[i], args.epochs, i, tensors)
            print(
                {
                    k: (float(v) if k in ("lr", "weight_decay", "dropout") else int(v))
                    for k, v in params[i].items()
                },
                f"final error {err[-1]:.3f}, {time.perf_counter() - t0:.2f}s "
                f"({sec.mean() * 1e3:.1f} ms/epoch)",
                flush=True,
            )
        return

    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge_repeats:
        merge_repeats(args.out)
        return
    if args.retime:
        cpu_file = args.out.with_name(args.out.stem + ".cpu.npz")
        cpu = np.full(args.n, np.nan)
        if cpu_file.exists():
            old = np.load(cpu_file)["cpu_seconds"]
            cpu[: min(len(old), args.n)] = old[: args.n]
        t_start = time.perf_counter()
        todo = [i for i in range(args.n) if np.isnan(cpu[i])]
        for count, i in enumerate(todo, 1):
            _, sec = train_curve(params[i], args.retime, i, tensors, clock=time.process_time)
            cpu[i] = float(sec.mean())
            if count % 100 == 0 or count == len(todo):
                _save(cpu_file, {"cpu_seconds": cpu, "epochs": np.array(args.retime)})
                print(
                    f"retimed {count}/{len(todo)} in {time.perf_counter() - t_start:.0f}s",
                    flush=True,
                )
        return
    shard_k, shard_m = (0, 1)
    if args.shard:
        shard_k, shard_m = map(int, args.shard.split("/"))
    stem = args.out.stem + (f".repeat{args.repeat}" if args.repeat else "")
    suffix = f".shard{shard_k}" if args.shard else ""
    partial = args.out.with_name(stem + suffix + ".partial.npz")
    error = np.full((args.n, args.epochs), np.nan, np.float32)
    seconds = np.full((args.n, args.epochs), np.nan, np.float32)
    sources = (
        [partial]
        if args.shard
        else [
            args.out.with_name(stem + ".partial.npz"),
            *sorted(args.out.parent.glob(stem + ".shard*.partial.npz")),
        ]
    )
    for src in sources:
        if src.exists():
            z = np.load(src)
            m = min(args.n, len(z["error"]))
            if z["error"].shape[1] == args.epochs:
                done = ~np.isnan(z["error"][:m, -1])
                error[:m][done], seconds[:m][done] = z["error"][:m][done], z["seconds"][:m][done]
    todo = [i for i in range(args.n) if i % shard_m == shard_k and np.isnan(error[i, -1])]
    print(
        f"{args.n - int(np.isnan(error[:, -1]).sum())} configurations recorded, {len(todo)} to do",
        flush=True,
    )
    t_start = time.perf_counter()
    for count, i in enumerate(todo, 1):
        seed = i + args.repeat * args.n
        error[i], seconds[i] = train_curve(params[i], args.epochs, seed, tensors)
        if count % 50 == 0 or count == len(todo):
            _save(partial, {"error": error, "seconds": seconds})
            el = time.perf_counter() - t_start
            print(
                f"{count}/{len(todo)} in {el:.0f}s (eta {el / count * (len(todo) - count):.0f}s)",
                flush=True,
            )
    if args.shard:
        return
    if np.isnan(error[:, -1]).any():
        raise SystemExit("some configurations are missing; run the shards first")
    if args.repeat:
        out = args.out.with_name(stem + ".npz")
        _save(out, {"error": error, "seconds": seconds, "repeat": np.array(args.repeat)})
        print(f"wrote {out}; merge with --merge-repeats")
        return
    meta = {
        "what": "MLP on sklearn load_digits, validation error (1 - accuracy) after each epoch",
        "n": args.n,
        "epochs": args.epochs,
        "n_train": N_TRAIN,
        "n_valid": int(tensors[2].shape[0]),
        "split_seed": SPLIT_SEED,
        "design": f"scipy.stats.qmc.Sobol(d=6, scramble=True, seed={DESIGN_SEED})",
        "names": list(NAMES),
        "bounds": {k: list(v) for k, v in BOUNDS.items()},
        "optimizer": "AdamW; ReLU MLP, dropout after each hidden layer; torch.manual_seed(i)",
        "seconds": "wall-clock seconds of each epoch (train + validation), 1 torch thread; "
        "they include the time other processes on the machine held the core",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "recorded": time.strftime("%Y-%m-%d"),
    }
    if args.dataset != "digits":
        d = DATASETS[args.dataset]
        meta["what"] = (
            "MLP on a fixed synthetic classification (sklearn make_classification), "
            "validation error (1 - accuracy) after each epoch"
        )
        meta = {
            "dataset": args.dataset,
            **meta,
            "n_train": d["n_train"],
            "n_classes": d["make_classification"]["n_classes"],
            "make_classification": {
                "n_samples": d["n_train"] + d["n_valid"],
                "shuffle": True,
                **d["make_classification"],
            },
            "standardized": "features standardized by the training rows' mean and std",
        }
    extra = {}
    cpu_file = args.out.with_name(args.out.stem + ".cpu.npz")
    if cpu_file.exists():
        z = np.load(cpu_file)
        if len(z["cpu_seconds"]) >= args.n and not np.isnan(z["cpu_seconds"][: args.n]).any():
            extra["cpu_seconds"] = z["cpu_seconds"][: args.n].astype(np.float32)
            meta["cpu_seconds"] = (
                f"CPU seconds (time.process_time) per epoch, mean of {int(z['epochs'])} epochs "
                "trained again (--retime): unlike the wall-clock seconds, not inflated by other "
                "processes taking the core"
            )
    _save(
        args.out,
        {
            **extra,
            "error": error,
            "seconds": seconds,
            "unit": U.astype(np.float32),
            **{k: P[k].astype(np.int32 if BOUNDS[k][3] else np.float32) for k in NAMES},
            "meta": np.array(json.dumps(meta)),
        },
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


def merge_repeats(out: Path) -> None:
    """Make the table's ``error`` the mean over its training runs: run 0 (the table's own),
    the runs merged before (``error_runs``, numbered by ``runs``) and every
    ``<out>.repeatR.npz``; ``error_runs`` keeps each run's curves, ``seconds`` stays run
    0's."""
    z = dict(np.load(out))
    meta = json.loads(str(z["meta"]))
    if "error_runs" in z:  # merged before: those runs stay, new repeat files join them
        numbers = z.get("runs", np.arange(len(z["error_runs"])))
        runs = dict(zip(numbers.tolist(), z["error_runs"], strict=True))
    else:
        runs = {0: z["error"]}
    for f in sorted(out.parent.glob(out.stem + ".repeat*.npz")):
        if f.name.endswith(".partial.npz"):
            continue
        r = np.load(f)
        if r["error"].shape != runs[0].shape:
            raise SystemExit(f"{f}: shape {r['error'].shape}, the table's is {runs[0].shape}")
        runs[int(r["repeat"])] = r["error"]
    keys = sorted(runs)
    stack = np.stack([runs[k] for k in keys]).astype(np.float32)
    z["error_runs"], z["error"] = stack, stack.mean(0).astype(np.float32)
    z["runs"] = np.array(keys)
    meta["runs"] = (
        f"error is the mean over {len(keys)} training runs of each configuration (run r with "
        f"torch.manual_seed(i + r * n), r in {keys}); error_runs (runs, n, epochs) holds each"
    )
    z["meta"] = np.array(json.dumps(meta))
    _save(out, z)
    print(f"wrote {out}: error is the mean of runs {keys}")


if __name__ == "__main__":
    main()
