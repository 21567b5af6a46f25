"""An ensemble of small neural networks on one shared pool of results: cost nearly flat in n."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from scipy.special import ndtri

from asynchpo._checks import positive_int
from asynchpo.samplers._base import BaseSampler, History
from asynchpo.samplers._random import Fresh, taken_points
from asynchpo.samplers._sobol import SobolSampler
from asynchpo.samplers._stack import Stack, draw_specs

_RECENT = 16  # the newest results and the best ones, in every network's batches
_N_RANDOM = 8  # fresh random starts per proposal
_N_SIBLINGS = 8  # siblings' optima used as starts (a random choice of them, for large k)
_ASCENT_STEPS, _ASCENT_LR = 12, 0.08  # projected descent on a network's prediction


class EnsembleSampler(BaseSampler):
    """``k`` small, diverse neural networks trained on one shared, growing pool of results.

    Each network differs from its siblings in width (16-64) and depth (1-3 hidden layers),
    activation, initialization, optimizer (Rprop, Adam or RMSprop) and the sparsity of its
    weight matrices (fixed masks, 0-50 % zeros). Each trains incrementally on its own
    window into the pool (a stretch of the results in the order they came, moving on with
    every batch, plus the newest and the best ones), so every network sees every result
    over time but no two see the same batches. A suggestion is made by one network in turn: gradient
    descent on its own prediction, started from its siblings' current optima and from fresh
    random points (so that the ensemble does not collapse into one basin); the end points
    are then ranked by the ensemble's mean less ``kappa`` times its spread, so disagreement
    between the networks steers exploration. Trials still running are fantasized: they join
    the batches with the ensemble's mean as their target, and are never drawn again.

    The networks fit normal scores of the results' ranks (robust to outliers and scales).
    The networks are held as one stack of tensors (padded to the widest and deepest), so
    one optimizer step trains them all and one descent moves them all. A suggestion costs
    the same at any number of results: ``steps`` optimizer steps and one descent (run, as
    every suggestion of a model-based sampler is, off the study's event loop), so a
    network trained this way has seen every result a few times over by the end.

    Args:
        k: Number of networks.
        steps: Optimizer steps (of every network) per suggestion.
        window: Results per batch (the window's length).
        kappa: Weight of the networks' disagreement in ranking candidates.
        n_initial: Points of a scrambled Sobol' design before the networks propose;
            ``max(d + 1, min(2d + 2, 20))`` by default.
        seed: Seed for the networks, their batches and the proposals.

    Example:
        >>> import asynchpo as ah
        >>> sampler = ah.EnsembleSampler(k=3, seed=0)
        >>> study = ah.Study(ah.Space(x=ah.Float(-3, 3), y=ah.Float(-3, 3)), sampler=sampler)
        >>> study.optimize(lambda p: (p["x"] - 1) ** 2 + p["y"] ** 2, n_trials=40,
        ...                backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False)
        >>> study.best_value < 0.1
        True
    """

    def __init__(
        self,
        k: int = 10,
        *,
        steps: int = 8,
        window: int = 64,
        kappa: float = 1.0,
        n_initial: int | None = None,
        seed: int | None = None,
    ):
        self.k = positive_int("k", k)
        self.steps = positive_int("steps", steps)
        self.window = positive_int("window", window, minimum=2)
        if not (isinstance(kappa, (int, float)) and not isinstance(kappa, bool) and kappa >= 0):
            raise ValueError(f"kappa must be a number >= 0, got {kappa!r}")
        self.kappa = float(kappa)
        self.n_initial = positive_int("n_initial", n_initial, allow_none=True)
        self.seed = (
            int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        )
        self._design = SobolSampler(seed=self.seed)
        self._lock = threading.Lock()  # the networks and the pool, between training and use
        self._space: object = None
        self._stack: Stack | None = None
        self._optima: np.ndarray | None = None  # each network's current optimum, k x d
        self._X = np.empty((0, 0))
        self._y = np.empty(0)
        self._best = np.empty(0, dtype=int)  # the best results: in every batch too
        # running trials and their targets
        self._fantasy: tuple[np.ndarray, np.ndarray] = (np.empty((0, 0)), np.empty(0))
        self._round = 0  # batches trained so far
        self._fresh: Fresh | None = None

    @property
    def networks(self) -> list[str]:
        """A line per network: its architecture, optimizer, initialization and sparsity."""
        return [] if self._stack is None else [str(s) for s in self._stack.specs]

    # -- suggestions -------------------------------------------------------------------

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        space, d = history.space, history.space.dim
        if space is not self._space:
            with self._lock:
                self._space = space
                self._stack = Stack(draw_specs(self.k, self.seed), d, self.seed)
                self._optima, self._round = None, 0
                self._fresh = Fresh(space)
        pending = np.reshape(np.asarray(pending, dtype=float), (-1, d))
        n_initial = self.n_initial or max(d + 1, min(2 * d + 2, 20))
        self._update(history, pending)
        if len(history.y) < n_initial or n == 0:
            return self._design.suggest(history, pending, n)
        rows: list[np.ndarray] = []
        rng = np.random.default_rng([self.seed, history.n_asked, 3])
        assert self._stack is not None
        with self._lock:  # a copy: training goes on while the proposals are made
            theta = self._stack.copy()
            X, best = self._X, self._best
        for i in range(n):
            j = (history.n_asked + i) % self.k
            rows.append(self._propose(j, rng, np.vstack([pending, *rows]), theta, X[best[:3]]))
        U = np.array(rows).reshape(n, d)
        assert self._fresh is not None
        out: np.ndarray = self._fresh(
            U, taken_points(history, pending), lambda i, m: rng.random((m, d))
        )
        return out

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The networks' mean and spread at unit-cube points ``X`` (`m x d`), in normal
        scores of the results' ranks (lower is better)."""
        assert self._stack is not None, "no suggestion made yet"
        with self._lock:
            theta = self._stack.copy()
        P = self._all(np.asarray(X, dtype=float), theta)
        return P.mean(axis=0), P.std(axis=0)

    def _all(self, X: np.ndarray, theta: Any) -> np.ndarray:
        import torch

        assert self._stack is not None
        P = self._stack.predict(torch.as_tensor(X, dtype=torch.float32), theta)
        out: np.ndarray = P.numpy().astype(float)
        return out

    def _update(self, history: History, pending: np.ndarray) -> None:
        """Take in the new results and the running trials (as fantasies), then train."""
        assert self._stack is not None
        X = np.asarray(history.X, dtype=np.float32)
        y = np.asarray(history.y, dtype=float)
        ok = np.isfinite(y)
        scores = _scores(y[ok])
        best = np.argsort(scores, kind="stable")[:_RECENT]
        fantasy = (np.empty((0, X.shape[1]), np.float32), np.empty(0))
        if len(pending) and len(scores):
            with self._lock:
                theta = self._stack.copy()
            fantasy = (pending.astype(np.float32), self._all(pending, theta).mean(axis=0))
        with self._lock:
            self._X, self._y, self._best, self._fantasy = X[ok], scores, best, fantasy
            if not len(self._y):
                return
            for _ in range(self.steps):
                self._step()

    def _step(self) -> None:
        """One optimizer step of every network, each on its own next batch."""
        import torch

        assert self._stack is not None
        self._round += 1
        idx = batch_rows(len(self._y), self.k, self._round, self.window, self.seed, self._best)
        FX, Fy = self._fantasy
        k = self.k
        X = np.concatenate([self._X[idx], np.broadcast_to(FX, (k, *FX.shape))], axis=1)
        y = np.concatenate([self._y[idx], np.broadcast_to(Fy, (k, len(Fy)))], axis=1)
        self._stack.step(
            torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        )

    def _propose(
        self, j: int, rng: np.random.Generator, pending: np.ndarray, theta: Any, best: np.ndarray
    ) -> np.ndarray:
        """Network ``j``'s point. Every network descends on its own prediction from its
        siblings' optima, the best results and random points (and keeps its best end point
        as its optimum); ``j``'s end points and all the optima are ranked by the whole
        ensemble."""
        import torch

        assert self._stack is not None
        k, d = self.k, best.shape[1]
        best = best.astype(float)
        starts = np.empty((k, 0, d))
        if self._optima is not None:
            pick = [rng.choice(k, min(_N_SIBLINGS, k), replace=False) for _ in range(k)]
            starts = self._optima[np.array(pick)]
        starts = np.concatenate(
            [starts, np.broadcast_to(best, (k, *best.shape)), rng.random((k, _N_RANDOM, d))],
            axis=1,
        )
        ends_t, own_t = self._stack.descend(
            torch.as_tensor(starts, dtype=torch.float32), _ASCENT_STEPS, _ASCENT_LR, theta
        )
        ends, own = ends_t.numpy().astype(float), own_t.numpy()
        self._optima = ends[np.arange(k), own.argmin(axis=1)]
        E = np.vstack([ends[j], self._optima])  # its own end points, and every optimum
        P = self._all(E, theta)
        score = P.mean(axis=0) - self.kappa * P.std(axis=0)
        if len(pending):  # a running trial's neighbourhood is being explored already
            near = np.abs(E[:, None, :] - pending[None]).max(axis=2).min(axis=1) < 1e-3
            score[near] = np.inf
        out: np.ndarray = E[int(np.argmin(score))]
        return out


def batch_rows(n: int, k: int, round_: int, window: int, seed: int, best: np.ndarray) -> np.ndarray:
    """Which of ``n`` results each of ``k`` networks trains on in batch ``round_``
    (`k x B`): all while they fit in a window; else each network's own stretch of
    ``window`` results, moving on by half a window per batch from a place of its own, and
    the newest and the best ``_RECENT``."""
    if n <= window:
        return np.broadcast_to(np.arange(n), (k, n))
    offsets = (np.random.default_rng([seed, 9]).random(k) * n).astype(int)  # own places
    start = (offsets + round_ * (window // 2)) % n
    stretch = (start[:, None] + np.arange(window)) % n
    extra = np.concatenate([np.arange(n - _RECENT, n), best[:_RECENT]])
    return np.hstack([stretch, np.broadcast_to(extra, (k, len(extra)))])


def _scores(y: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of ``y`` (ties share the mean rank)."""
    if not len(y):
        return np.empty(0)
    order = np.argsort(y, kind="stable")
    ranks = np.empty(len(y))
    ranks[order] = np.arange(len(y))
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    out: np.ndarray = ndtri((ranks + 0.5) / len(y))
    return out
