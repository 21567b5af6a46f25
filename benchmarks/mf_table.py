"""Multi-fidelity objectives replayed on asynchpo's virtual clock: a tabulated one (the learning
curves that ``benchmarks.mf_record`` measured) and a synthetic one with a known optimum.

A :class:`Benchmark` has a search space (an ``asynchpo.Space``), a maximum resource
(epochs), ``curve(params)`` (the value after each epoch), ``epoch_seconds(params)`` (the cost
of one epoch) and ``optimum`` (the best final value there is). :meth:`Benchmark.objective`
is an asynchpo objective that reports every epoch and checkpoints, so that pausing
schedulers (``ASHA(mode="promotion")``) can resume it; :meth:`Benchmark.backend` is the
``SimulatedBackend`` whose virtual time follows the measured cost::

    bench = table_benchmark()
    study = ah.Study(bench.space, objective="value", scheduler=ah.ASHA(27))
    study.optimize(bench.objective, n_trials=300, backend=bench.backend(n_workers=8, seed=0))

- **Tabulated** (:func:`table_benchmark`): like Syne Tune's blackbox repository, a point of
  the space is answered by the nearest recorded configuration in the unit-cube encoding
  (``space.encode``, Euclidean, ``scipy.spatial.cKDTree``): its validation error after each
  epoch, and the mean of its measured epoch seconds as the virtual cost of each epoch. The
  optimum is the least final (epoch ``max_resource``) error in the table. Within a run, each
  recorded configuration is run at most once (:class:`Catalog`). Two tables are
  recorded (``benchmarks.mf_record --dataset``): ``data/mlp_digits.npz`` (scikit-learn's
  digits, 597 validation images, the mean error of three training runs of each
  configuration: ``"table"``, or the file ``ASYNCHPO_MF_TABLE`` names) and
  ``data/mlp_synthetic.npz`` (a fixed ``make_classification`` task with 3,000 validation
  rows, where configurations differ more and early epochs mislead more:
  ``"table-synthetic"``). Nothing in a table is assumed but its format; the dataset, its
  size and the number of validation samples are in its ``meta``.
- **Synthetic** (:func:`hartmann_benchmark`): Hartmann-6 on ``[0, 1]^6`` with a learning
  curve::

      y(x, r) = H6(x) + c(x) * (r**-a - R**-a) * exp(s * eps(x, r)),   r = 1..R

  with ``R = 27``, ``a = 0.7``, ``c(x) = 0.5 + 1.5 * x0`` (configurations with a large
  ``x0`` start slowly, so early ranks mislead somewhat), ``s = 0.3`` and ``eps(x, r)`` a
  standard normal draw seeded by ``x`` and ``r`` (the same point gives the same curve). The
  gap to the final value and its noise shrink as ``r`` grows and vanish at ``r = R``, where
  ``y(x, R) = H6(x)``; ``y >= H6(x)`` everywhere, so the optimum is Hartmann-6's,
  ``-3.32237`` at ``x* = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)``, and
  no report lies below it. One epoch costs ``0.5 + x5`` virtual seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import asynchpo as ah
from benchmarks.functions import hartmann6

#: the recorded table (``ASYNCHPO_MF_TABLE`` names another, e.g. a smaller one to try things)
TABLE = Path(os.environ.get("ASYNCHPO_MF_TABLE", Path(__file__).parent / "data" / "mlp_digits.npz"))
#: the harder table: an MLP on a fixed synthetic classification (``mf_record --dataset synthetic``)
SYNTHETIC_TABLE = Path(__file__).parent / "data" / "mlp_synthetic.npz"


@dataclass
class Benchmark:
    name: str
    space: ah.Space
    max_resource: int
    optimum: float
    #: params -> the value after each epoch, shape ``(max_resource,)``
    curve: Callable[[dict[str, Any]], np.ndarray]
    #: params -> virtual seconds of one epoch
    epoch_seconds: Callable[[dict[str, Any]], float]
    info: dict[str, Any] = field(default_factory=dict)

    def objective(
        self, params: dict[str, Any], on_report: Callable[[], None] | None = None
    ) -> float:
        """The asynchpo objective: report each epoch's value (``value``), checkpoint the
        epoch reached, go on from a checkpoint when resumed; the last epoch's value.
        ``on_report`` is called before each report (the harness counts epochs with it)."""
        values = self.curve(params)
        state = ah.restore() or {"epoch": 0}
        for epoch in range(state["epoch"] + 1, self.max_resource + 1):
            ah.checkpoint({"epoch": epoch})
            if on_report is not None:
                on_report()
            ah.report(epoch, value=float(values[epoch - 1]))
        return float(values[-1])

    def backend(self, n_workers: int, seed: int) -> ah.SimulatedBackend:
        """Simulated workers on which each report takes the configuration's epoch time."""
        return ah.SimulatedBackend(n_workers=n_workers, step_duration=self.epoch_seconds, seed=seed)


class Table:
    """The recorded learning curves, and the nearest recorded configuration to a point."""

    def __init__(self, path: Path = TABLE):
        from scipy.spatial import cKDTree

        from benchmarks.mf_record import NAMES, space

        z = np.load(path)
        self.meta = json.loads(str(z["meta"]))
        self.names = list(NAMES)
        self.space = space()
        self.error = z["error"].astype(np.float64)  # (n, epochs)
        self.seconds = z["seconds"].astype(np.float64)
        self.params = [
            {k: (int(z[k][i]) if z[k].dtype.kind == "i" else float(z[k][i])) for k in self.names}
            for i in range(len(self.error))
        ]
        self.unit = np.array([self.space.encode(p) for p in self.params])
        self.tree = cKDTree(self.unit)
        #: virtual seconds of one epoch: the mean of the wall-clock seconds measured
        self.epoch_mean = self.seconds.mean(axis=1)
        #: CPU seconds per epoch (``mf_record --retime``), if the table has them
        self.epoch_cpu = z["cpu_seconds"].astype(np.float64) if "cpu_seconds" in z else None
        #: the dataset (``digits`` in tables recorded before ``--dataset``) and the number of
        #: validation samples (one of them is ``1 / n_valid`` of error)
        self.dataset = str(self.meta.get("dataset", "digits"))
        self.n_valid = int(self.meta["n_valid"])

    def nearest(self, params: dict[str, Any]) -> int:
        return int(self.tree.query(self.space.encode(params))[1])


class Catalog:
    """The table's configurations, each to be run at most once in a run of a method.

    A point of the space is answered by the nearest recorded configuration, so on a table of
    ``n`` configurations in ``d`` dimensions each one answers for a cell of radius about
    ``n ** (-1 / d)`` of the unit cube (~0.28 for 2,048 in 6): a method that refines around
    its best point, as a model-based one does, would mostly run the same configuration
    again, deterministically, and learn nothing from it. As Syne Tune restricts its
    searchers to a tabulated blackbox's configurations without duplicates
    (``restrict_configurations``, ``allow_duplicates=False``), each method here is given,
    for the point it chose, the nearest configuration of the table not yet taken in this
    run, and is told that configuration (not the point) is what ran: see
    ``benchmarks.mf_compare``.
    """

    def __init__(self, table: Table):
        self.table = table
        self.taken = np.zeros(len(table.unit), dtype=bool)

    def take(self, u: np.ndarray) -> int:
        """The nearest configuration to unit-cube point ``u`` not taken yet (the nearest of
        all once every one is), now taken."""
        n = len(self.taken)
        k = min(n, 16)
        while True:
            _, idx = self.table.tree.query(np.asarray(u, dtype=float), k=k)
            free = [int(i) for i in np.atleast_1d(idx) if not self.taken[int(i)]]
            if free or k == n:
                break
            k = min(n, 4 * k)
        i = free[0] if free else int(np.atleast_1d(idx)[0])
        self.taken[i] = True
        return i

    def params(self, i: int) -> dict[str, Any]:
        """Configuration ``i``'s parameters."""
        return dict(self.table.params[i])

    def snap(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters of the configuration :meth:`take` gives for ``params``."""
        return self.params(self.take(self.table.space.encode(params)))


def table_benchmark(path: Path = TABLE, cost: str = "wall") -> Benchmark:
    """The table as a benchmark; ``cost`` is ``"wall"`` (each epoch takes its
    configuration's mean measured wall-clock epoch time) or ``"cpu"`` (its CPU seconds per
    epoch, if recorded)."""
    table = Table(path)
    n, epochs = table.error.shape
    per_epoch = table.epoch_mean if cost == "wall" else table.epoch_cpu
    if per_epoch is None:
        raise ValueError(f"the table {path} has no {cost!r} epoch times")
    return Benchmark(
        name=f"mlp-{table.dataset}",
        space=table.space,
        max_resource=epochs,
        optimum=float(table.error[:, -1].min()),
        curve=lambda p: table.error[table.nearest(p)],
        epoch_seconds=lambda p: float(per_epoch[table.nearest(p)]),
        info={"table": table, "n": n, "cost": cost},
    )


HARTMANN6_MIN = -3.32237
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)


def hartmann_curve(x: np.ndarray, R: int = 27, a: float = 0.7, s: float = 0.3) -> np.ndarray:
    """``y(x, r)`` for ``r = 1..R`` (see the module's docstring)."""
    key = int.from_bytes(hashlib.blake2b(np.asarray(x, float).tobytes(), digest_size=8).digest())
    eps = np.random.default_rng(key).standard_normal(R)
    r = np.arange(1, R + 1, dtype=float)
    gap = (0.5 + 1.5 * x[0]) * (r**-a - float(R) ** -a) * np.exp(s * eps)
    return hartmann6(x) + gap


def hartmann_benchmark(max_resource: int = 27) -> Benchmark:
    names = [f"x{i}" for i in range(6)]
    space = ah.Space({n: ah.Float(0.0, 1.0) for n in names})

    def vec(p: dict[str, Any]) -> np.ndarray:
        return np.array([float(p[n]) for n in names])

    return Benchmark(
        name="hartmann6-mf",
        space=space,
        max_resource=max_resource,
        optimum=HARTMANN6_MIN,
        curve=lambda p: hartmann_curve(vec(p), max_resource),
        epoch_seconds=lambda p: 0.5 + float(p["x5"]),
        info={},
    )


BENCHMARKS: dict[str, Callable[[], Benchmark]] = {
    "table": table_benchmark,
    "hartmann": hartmann_benchmark,
    "table-synthetic": lambda: table_benchmark(SYNTHETIC_TABLE),
}
#: the table file of each tabulated benchmark
TABLES: dict[str, Path] = {"table": TABLE, "table-synthetic": SYNTHETIC_TABLE}


if __name__ == "__main__":  # a look at the table (or at the file given as the argument)
    import sys

    from scipy.stats import spearmanr

    b = table_benchmark(Path(sys.argv[1]) if len(sys.argv) > 1 else TABLE)
    t = b.info["table"]
    final = t.error[:, -1]
    print(
        f"{b.name}: {t.error.shape[0]} configurations x {t.error.shape[1]} epochs; "
        f"{t.n_valid} validation samples (one is {1 / t.n_valid:.5f} of error)"
    )
    print(
        f"best final error {final.min():.4f}; quantiles of final error (1/10/50/90 %):",
        np.round(np.quantile(final, [0.01, 0.1, 0.5, 0.9]), 4),
        f"max {final.max():.4f}",
    )
    print(
        f"mean epoch seconds: median {np.median(t.epoch_mean) * 1e3:.1f} ms, "
        f"range {t.epoch_mean.min() * 1e3:.1f}..{t.epoch_mean.max() * 1e3:.1f} ms; "
        f"recorded {t.seconds.sum() / 60:.1f} min of epochs in all"
    )
    if t.epoch_cpu is not None:
        ratio = t.epoch_mean / t.epoch_cpu
        print(
            f"wall-clock / CPU seconds per epoch: quantiles (5/50/95 %) "
            f"{np.round(np.quantile(ratio, [0.05, 0.5, 0.95]), 2)}; Spearman "
            f"{spearmanr(t.epoch_mean, t.epoch_cpu).statistic:.3f}"
        )
    for e in [e for e in (1, 3, 9) if e < t.error.shape[1]]:
        print(
            f"Spearman rank correlation of epoch {e} with epoch {t.error.shape[1]}: "
            f"{spearmanr(t.error[:, e - 1], final).statistic:.3f}"
        )
    print(f"Hartmann-6 at x*: {hartmann6(np.array(HARTMANN6_ARGMIN)):.5f}")
