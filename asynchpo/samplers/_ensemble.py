"""An ensemble of small neural networks on one shared pool of results: cost nearly flat in n."""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from asynchpo._checks import positive_int
from asynchpo.samplers._base import BaseSampler, History
from asynchpo.samplers._random import Fresh, taken_points
from asynchpo.samplers._sobol import SobolSampler
from asynchpo.samplers._stack import Stack, draw_specs

_RECENT = 16  # the newest results and the best ones, in every network's batches
_N_RANDOM = 8  # fresh random starts per proposal
_N_SIBLINGS = 8  # siblings' optima used as starts (a random choice of them, for large k)
_ASCENT_STEPS, _ASCENT_LR = 8, 0.12  # projected descent on a network's prediction
_LOCAL_LR = _ASCENT_LR / 4  # from the best results: a local search
_TABU = 0.15  # the explorers' proposals keep this RMS distance from the best result
_KAPPA_SPREAD = (0.25, 1.0, 4.0)  # the networks' weights on disagreement, times kappa
_NEAR = 0.1  # within this RMS distance of a running trial, disagreement earns less
_BACKLOG = 4  # unseeded: training owed is kept to this many suggestions' steps
_IDLE_S = 2.0  # the training thread ends after this long with nothing to do


_TRAINERS: weakref.WeakSet[_Trainer] = weakref.WeakSet()


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread in here. The networks are small: split over two
    cores each operation waits for the other core, and a suggestion at n = 10,000 took
    ~21 ms against ~11 ms on one (k = 10, training in the background); on a busy machine
    (other processes on both cores) a seeded study's suggestions took ten times longer.
    Torch's setting is OpenMP's: set in a thread other than the interpreter's first (the
    training thread; the thread a study computes suggestions in), it holds for that thread
    alone; set in the first, it holds for the whole process until it is restored on the
    way out."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@atexit.register
def _close_trainers() -> None:
    # a thread left inside torch while the interpreter shuts down aborts the process
    for trainer in list(_TRAINERS):
        trainer.close()


class _Trainer:
    """Runs ``train_one`` (one optimizer step of every network) in a thread of its own,
    as many times as steps are owed, so that a suggestion need not wait for training; it
    holds off while a suggestion is being made (:meth:`paused`), so it trains in the time
    between suggestions and never slows one down. An error there is raised by the next
    :meth:`owe`."""

    def __init__(self, train_one: Callable[[], None]):
        self._train_one = train_one
        self._cv = threading.Condition()
        self._owed = 0
        self._paused = 0
        self._running = False
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        _TRAINERS.add(self)

    def owe(self, steps: int, cap: int | None = None) -> None:
        """Owe ``steps`` more steps (in all at most ``cap``: older debt is let go)."""
        with self._cv:
            self._raise()
            self._owed = self._owed + steps if cap is None else min(self._owed + steps, cap)
            if not self._running:
                self._running = True
                self._thread = threading.Thread(
                    target=self._run, name="asynchpo-ensemble", daemon=True
                )
                self._thread.start()
            self._cv.notify_all()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No step starts in here (one under way ends first: a few milliseconds)."""
        with self._cv:
            self._paused += 1
        try:
            yield
        finally:
            with self._cv:
                self._paused -= 1
                self._cv.notify_all()

    def clear(self) -> None:
        """Let go of the steps owed (those of another study)."""
        with self._cv:
            self._owed = 0
            self._cv.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Let go of the steps owed and let the thread end (at the interpreter's exit)."""
        self.clear()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"EnsembleSampler: training failed: {error!r}") from error

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._paused and self._owed:
                    self._cv.wait()
                if not self._owed:
                    self._cv.wait(_IDLE_S)
                if not self._owed:
                    self._running = False
                    return
                if self._paused:
                    continue
            try:
                with _one_torch_thread():
                    self._train_one()
            except BaseException as error:  # handed to the caller at the next suggestion
                with self._cv:
                    self._error, self._owed, self._running = error, 0, False
                    self._cv.notify_all()
                return
            with self._cv:
                self._owed = max(self._owed - 1, 0)
                self._cv.notify_all()


class EnsembleSampler(BaseSampler):
    """``k`` small, diverse neural networks trained on one shared, growing pool of results.

    Each network differs from its siblings in width (16-64) and depth (1-3 hidden layers),
    activation, initialization, optimizer (Rprop, Adam or RMSprop) and the sparsity of its
    weight matrices (fixed masks, 0-50 % zeros). Each trains incrementally on its own
    window into the pool (a stretch of the results in the order they came, moving on with
    every batch, plus the newest and the best ones), so every network sees every result
    over time but no two see the same batches. A suggestion is made by one network in turn: gradient
    descent on its own prediction, started from its siblings' current optima and from fresh
    random points (so that the ensemble does not collapse into one basin), and with short
    steps from the best results (a local search around them), each path keeping its best
    point; these are then ranked by the ensemble's mean less a weight times its spread, so
    disagreement between the networks steers exploration; each network has its own weight (``kappa``
    times 1/4, 1 or 4, in turn), so that some proposals exploit and some explore (with one
    weight for all, every proposal went to the basin the ensemble agreed on: on Hartmann-6
    with 32 workers, the local minimum 0.12 above the optimum, in 2 of 3 seeds); those
    that explore keep 0.15 (root mean square, in the unit cube) off the best result. Near a
    running trial, the spread counts for less: its outcome is coming. Trials still running
    are fantasized: they join the batches with the ensemble's mean as their target, and
    are never drawn again.

    The networks fit normal scores of the results' ranks (robust to outliers and scales).
    The networks are held as one stack of tensors (padded to the widest and deepest), so
    one optimizer step trains them all and one descent moves them all. A suggestion costs
    the same at any number of results: ``steps`` optimizer steps and one descent (run, as
    every suggestion of a model-based sampler is, off the study's event loop), so a
    network trained this way has seen every result a few times over by the end. Without a
    ``seed``, training runs in a thread of its own, on what each suggestion brought, and a
    suggestion never waits for it: it uses the networks as they are (when suggestions come
    faster than the steps run, the steps owed beyond a few suggestions' worth are let go).
    With a ``seed``, each suggestion trains first, so that runs are reproducible.

    Args:
        k: Number of networks.
        steps: Optimizer steps (of every network) per suggestion.
        window: Results per batch (the window's length).
        kappa: Weight of the networks' disagreement in ranking candidates (each network
            uses it times 1/4, 1 or 4).
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
        self._reproducible = seed is not None
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
        self._trainer = _Trainer(self._train_one)

    @property
    def steps_trained(self) -> int:
        """Optimizer steps every network has taken so far (each on its own batch)."""
        return self._round

    @property
    def networks(self) -> list[str]:
        """A line per network: its architecture, optimizer, initialization and sparsity."""
        return [] if self._stack is None else [str(s) for s in self._stack.specs]

    # -- suggestions -------------------------------------------------------------------

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        with self._trainer.paused():  # training uses the time between suggestions
            return self._suggest(history, pending, n)

    def _suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        space, d = history.space, history.space.dim
        if space is not self._space:
            self._trainer.clear()
            with self._lock:
                self._space = space
                self._stack = Stack(draw_specs(self.k, self.seed), d, self.seed)
                self._optima, self._round = None, 0
                self._fresh = Fresh(space)
                self._X, self._y = np.empty((0, d)), np.empty(0)
        pending = np.reshape(np.asarray(pending, dtype=float), (-1, d))
        n_initial = self.n_initial or max(d + 1, min(2 * d + 2, 20))
        theta = self._update(history, pending)
        if len(history.y) < n_initial or n == 0:
            return self._design.suggest(history, pending, n)
        rows: list[np.ndarray] = []
        rng = np.random.default_rng([self.seed, history.n_asked, 3])
        with self._lock:
            X, best = self._X, self._best
        with _one_torch_thread():
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
        with _one_torch_thread():
            P = self._all(np.asarray(X, dtype=float), theta)
        return P.mean(axis=0), P.std(axis=0)

    def _all(self, X: np.ndarray, theta: Any) -> np.ndarray:
        import torch

        assert self._stack is not None
        P = self._stack.predict(torch.as_tensor(X, dtype=torch.float32), theta)
        out: np.ndarray = P.numpy().astype(float)
        return out

    def _update(self, history: History, pending: np.ndarray) -> Any:
        """Take in the new results and the running trials (as fantasies), and train
        ``steps`` on them: here with a seed (then the networks, trained, are returned for
        the proposals), else in the background (the networks as they were are returned)."""
        assert self._stack is not None
        X = np.asarray(history.X, dtype=np.float32)
        y = np.asarray(history.y, dtype=float)
        ok = np.isfinite(y)
        scores = _scores(y[ok])
        best = _least(scores, _RECENT)
        fantasy = (np.empty((0, X.shape[1]), np.float32), np.empty(0))
        with self._lock:  # a copy: training goes on while the proposals are made
            theta = self._stack.copy()
        if len(pending) and len(scores):
            with _one_torch_thread():
                mean = self._all(pending, theta).mean(axis=0)
            fantasy = (pending.astype(np.float32), mean)
        with self._lock:
            self._X, self._y, self._best, self._fantasy = X[ok], scores, best, fantasy
        if not len(scores):
            return theta
        if self._reproducible:
            with self._lock, _one_torch_thread():
                for _ in range(self.steps):
                    self._step()
                return self._stack.copy()
        # training that falls behind back-to-back suggestions lets old debt go
        self._trainer.owe(self.steps, _BACKLOG * self.steps)
        return theta

    def _train_one(self) -> None:
        with self._lock:
            if len(self._y):
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
        n_siblings = starts.shape[1]
        starts = np.concatenate(
            [starts, np.broadcast_to(best, (k, *best.shape)), rng.random((k, _N_RANDOM, d))],
            axis=1,
        )
        # from the best results, short steps: a local search around them (with full steps
        # the first one left the basin of a narrow minimum, and no proposal came nearer
        # to it than the step's length)
        lr = np.full(starts.shape[1], _ASCENT_LR)
        lr[n_siblings : n_siblings + len(best)] = _LOCAL_LR
        ends_t, own_t = self._stack.descend(
            torch.as_tensor(starts, dtype=torch.float32), _ASCENT_STEPS, lr, theta
        )
        ends, own = ends_t.numpy().astype(float), own_t.numpy()
        self._optima = ends[np.arange(k), own.argmin(axis=1)]
        E = np.vstack([ends[j], self._optima])  # its own end points, and every optimum
        P = self._all(E, theta)
        spread = P.std(axis=0)
        if len(pending):
            # a running trial's neighbourhood is being explored already: the networks'
            # disagreement there is about to be settled, so it earns less the nearer it is
            gap = np.sqrt(((E[:, None, :] - pending[None]) ** 2).mean(axis=2)).min(axis=1)
            spread = spread * np.minimum(gap / _NEAR, 1.0)
        # each network its own weight on disagreement: some exploit, some explore
        kappa = self.kappa * _KAPPA_SPREAD[j % len(_KAPPA_SPREAD)]
        score = P.mean(axis=0) - kappa * spread
        if len(pending):
            score[gap < 1e-3] = np.inf
        if j % len(_KAPPA_SPREAD) == len(_KAPPA_SPREAD) - 1 and len(best):
            # the explorers keep off the best result's neighbourhood, which the others
            # search already: else their proposals too end on its rim
            far = np.sqrt(((E - best[0]) ** 2).mean(axis=1)) >= _TABU
            if not far.any():  # every path ran into it (one basin): the random starts
                E = starts[j, -_N_RANDOM:]
                P = self._all(E, theta)
                score = P.mean(axis=0) - kappa * P.std(axis=0)
                far = np.sqrt(((E - best[0]) ** 2).mean(axis=1)) >= _TABU
            if far.any():
                score[~far] = np.inf
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
    ranks = rankdata(y, method="average") - 1.0  # 0-based; one sort
    out: np.ndarray = ndtri((ranks + 0.5) / len(y))
    return out


def _least(scores: np.ndarray, m: int) -> np.ndarray:
    """The indices of the ``m`` least ``scores``, least first: O(n) (of values tied at
    the cut, any)."""
    if len(scores) <= m:
        return np.argsort(scores, kind="stable")
    part = np.argpartition(scores, m - 1)[:m]
    out: np.ndarray = part[np.lexsort((part, scores[part]))]
    return out
