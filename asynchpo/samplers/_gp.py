"""Asynchronous Bayesian optimization: a GP surrogate that knows which trials are running."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import warnings
from concurrent.futures import Future
from typing import Any

import numpy as np
from scipy.stats import qmc

from asynchpo._checks import positive_int
from asynchpo.acquisition import (
    Namespace,
    get_namespace,
    log_ei,
    log_ei_grad,
    log_qei,
    log_qei_grad,
    optimize_acquisition,
    rff_evaluate,
    rff_evaluate_grad,
    rff_sample,
    ucb,
    ucb_grad,
)
from asynchpo.acquisition._threads import single_blas_thread
from asynchpo.samplers._base import BaseSampler, Fidelity, History
from asynchpo.samplers._producer import Producer
from asynchpo.samplers._sobol import SobolSampler
from asynchpo.space import Space
from asynchpo.surrogate import Fantasy, Features, Hyper, Posterior, Warp, fit_hyper
from asynchpo.surrogate._child import ChildLostError, child

_ACQUISITIONS = ("log_ei", "ucb", "thompson")
_PENDING = ("fantasies", "believer")
_SCREENED = 128  # candidates scored under the draws of running outcomes


def _fit(FX: np.ndarray, y: np.ndarray, start: Hyper | None) -> tuple[Warp, Hyper]:
    """The warp and the hyperparameters for ``(FX, y)``: run in the fitting process."""
    warp = Warp.fit(y)
    return warp, fit_hyper(FX, warp(y), start)


_THREADS: concurrent.futures.ThreadPoolExecutor | None = None


def _submit_fit(FX: np.ndarray, y: np.ndarray, start: Hyper | None) -> Future[tuple[Warp, Hyper]]:
    """Fit in the fitting process; in a thread where that process cannot run."""
    global _THREADS
    future = child().submit(_fit, FX, y, start)
    if not (future.done() and isinstance(future.exception(), ChildLostError)):
        return future
    if _THREADS is None:
        _THREADS = concurrent.futures.ThreadPoolExecutor(1, "asynchpo-gp-fit")
    return _THREADS.submit(_fit, FX, y, start)


class _WithFidelity:
    """GP inputs with one more column, the resource ``z`` (0 at the first rung, 1 at the
    end): points of the space alone (`n x d`, the candidates) are taken at ``z = 1``, the
    full resource; points with their ``z`` (`n x (d + 1)`: results, running trials) as they
    are. The acquisition thus scores where a trial would end, from results at every rung."""

    def __init__(self, inner: Features):
        self.inner, self.space = inner, inner.space
        self.d, self.dim = inner.space.dim, inner.dim + 1
        self.free, self.free_inputs = inner.free, inner.free_inputs  # z is not searched

    def snap(self, U: np.ndarray) -> np.ndarray:
        U = np.asarray(U, dtype=float)
        if U.shape[1] == self.d:
            return self.inner.snap(U)
        return np.hstack([self.inner.snap(U[:, : self.d]), np.clip(U[:, self.d :], 0.0, 1.0)])

    def __call__(self, U: np.ndarray) -> np.ndarray:
        U = np.asarray(U, dtype=float)
        z = np.ones((len(U), 1)) if U.shape[1] == self.d else U[:, self.d :]
        return np.hstack([self.inner(U[:, : self.d]), z])


class GPSampler(BaseSampler):
    """Bayesian optimization with a Gaussian process, for trials that finish in any order.

    The first trials come from a scrambled Sobol' design, until ``n_initial`` trials are
    complete: by default ``clip(2 d + 2, 6, 20)`` less the trials running (at least
    ``d + 1``), since with ``W`` workers the first ``W`` asks are design points anyway. After
    that, each suggestion:

    - conditions the GP (Matern-5/2, ARD, a dimension-scaled lengthscale prior under
      which short lengthscales pay extra, Yeo-Johnson warped and standardized outputs) on
      every complete trial, each new one by a rank-1 Cholesky update (O(n^2)); past
      ``max_points`` trials, on the best half of ``max_points`` and an even spread (in
      rank) of the rest, chosen anew at each refit, so that a study of thousands of trials
      costs per suggestion what one of ``max_points`` does;
    - fantasizes every *running* trial: each is conditioned in by Cholesky rows, so the
      model's uncertainty collapses where work is already under way, and log EI is
      averaged over joint quasi-random draws of their outcomes (greedy sequential q-EI;
      given a draw, the expected improvement is exact): a point must also beat what the
      running trials may turn out to give, so it is not spent next to a promising one.
      ``pending="believer"`` believes each at its posterior mean instead (the Kriging
      believer). Points already observed, failed or running are never suggested again;
    - improves on the least output as far as the model believes it: no further than two
      posterior standard deviations below the model's mean there. On a noisy objective (or
      one rippled finer than the model resolves) the least output is a lucky draw, and
      improving on it at face value would look hopeless near the best trials and send the
      search to the far corners;
    - maximizes the acquisition over a quasi-random candidate set (tens of thousands of
      points on a CPU, a million on a GPU via CuPy), points around the best trials, then a
      local refinement: random neighbourhoods, and a final climb of the acquisition's
      analytic gradient (L-BFGS-B) in the continuous coordinates, as many steps as fit in
      the time a suggestion is given.

    Hyperparameters are fitted (gpytorch, warm-started) on a geometric schedule in a
    background process and swapped in when ready, so ``suggest`` never waits for a fit (until
    the first one lands, the priors' modes serve). With a ``seed``, a fit launched at ``n``
    complete trials is swapped in at a fixed point of the history, waiting for it if it is
    late, so that runs on the simulated backend are reproducible: below 200 trials at the
    next trial; past that, late enough that the fit is normally done (``n // 4`` trials
    later from n ~ 400), so that a suggestion does not wait seconds for it. Suggestions are
    computed on one BLAS thread (with ``threadpoolctl`` installed), so that the fitting
    process or the trials busy on the other cores do not stall them.

    Under a scheduler that compares trials at rungs (``ASHA``, ``Hyperband``), the GP is
    one joint model over the configuration and the resource (log scale), fitted to every
    result a trial had at a rung: a new configuration is chosen for its expected
    improvement at the full resource, inferred from all the early results, and each running
    trial is fantasized at the rung it is heading for. The model sees each result less the
    typical gain from the first rung to its own (the median over the trials that reached
    both, fixed between fits), so that it relates early results to the end by rank rather
    than explaining the fall of every learning curve.

    Args:
        acquisition: ``"log_ei"`` (log expected improvement, default), ``"ucb"`` (lower
            confidence bound) or ``"thompson"`` (a posterior draw per suggestion: diverse
            batches for many workers).
        n_initial: Complete trials before the GP takes over.
        beta: Exploration weight of ``"ucb"``.
        n_candidates: Size of the quasi-random candidate set (default by device and data).
        device: ``"auto"`` (CuPy when a GPU is visible), ``"cpu"`` or ``"gpu"``.
        pending: How running trials are fantasized: ``"fantasies"`` (default: log EI
            averaged over draws of their outcomes) or ``"believer"`` (believed at their
            mean). ``"ucb"`` and ``"thompson"`` always use the believer.
        n_fantasies: Joint draws of the running trials' outcomes (quasi-random).
        max_points: The most complete trials the model is conditioned on at a refit (at
            least 20); those that complete until the next refit come on top.
        prefetch: Keep one suggestion computed in the background, computed anew as soon as
            it is handed out, so that a free worker gets one at once. It is then blind to
            the results that arrived meanwhile: worth it with many workers, not with one.
            None (default): when 4 or more trials are running.
        seed: Seed for the design, the candidates and the draws.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(-3, 3)), sampler=ah.GPSampler(seed=0))
        >>> study.optimize(lambda p: (p["x"] - 1) ** 2, n_trials=14, progress=False,
        ...                backend=ah.SimulatedBackend(n_workers=2, seed=0))
        >>> abs(study.best_params["x"] - 1) < 0.1
        True
    """

    multi_fidelity = True

    def __init__(
        self,
        *,
        acquisition: str = "log_ei",
        n_initial: int | None = None,
        beta: float = 4.0,
        n_candidates: int | None = None,
        device: str = "auto",
        prefetch: bool | None = None,
        pending: str = "fantasies",
        n_fantasies: int = 16,
        max_points: int = 600,
        seed: int | None = None,
    ):
        if acquisition not in _ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {_ACQUISITIONS}, got {acquisition!r}")
        if pending not in _PENDING:
            raise ValueError(f"pending must be one of {_PENDING}, got {pending!r}")
        self.pending = pending
        self.n_fantasies = positive_int("n_fantasies", n_fantasies)
        self.max_points = positive_int("max_points", max_points)
        if self.max_points < 20:
            raise ValueError(f"max_points must be at least 20, got {max_points!r}")
        if device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'gpu', got {device!r}")
        if not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"beta must be a number > 0, got {beta!r}")
        self.acquisition, self.beta, self.device, self.seed = acquisition, beta, device, seed
        self.prefetch = prefetch
        self.n_initial = positive_int("n_initial", n_initial, allow_none=True)
        self.n_candidates = positive_int("n_candidates", n_candidates, allow_none=True)
        self._design = SobolSampler(seed=seed)
        self._rng = np.random.default_rng(seed)
        self._space: Space | None = None
        self._mf = False  # modelling results at several resources (History.fidelity)
        self._model_lock = threading.Lock()  # the posterior, between updates and forecasts
        self._producer = Producer(lambda history, pending: self._compute(history, pending, 1)[0])
        self._reset()

    def _reset(self) -> None:
        self._features: Features | _WithFidelity | None = None
        self._post: Posterior | None = None
        self._warp = Warp()
        self._hyper: Hyper | None = None
        self._n_seen = 0
        # results at rungs: the typical gain from the first rung to each (see _level_shift),
        # as the model has it and as the fit under way will
        self._shift: tuple[np.ndarray, np.ndarray] | None = None
        self._job_shift: tuple[np.ndarray, np.ndarray] | None = None
        self._job: Future[tuple[Warp, Hyper]] | None = None
        self._job_data: tuple[np.ndarray, np.ndarray] = (np.empty((0, 0)), np.empty(0))
        self._job_n = 0
        self._adopt_n = 0
        self._next_refit = 0
        self._slowdown, self._target = 1.0, 0.007  # measured / modelled seconds per suggest
        self._bases: dict[int, np.ndarray] = {}
        # per number of running trials: one scrambled sequence, read on block by block
        self._normals: dict[int, qmc.MultivariateNormalQMC] = {}

    @property
    def namespace(self) -> Namespace:
        """Where acquisition runs: NumPy, or CuPy on a GPU."""
        return get_namespace(self.device)

    # -- the model ---------------------------------------------------------------------------

    def _launch(self, FX: np.ndarray, y: np.ndarray, at: int) -> None:
        """Fit on ``(FX, y)`` in the background, at ``at`` complete trials."""
        self._job_data = (FX.copy(), y.copy())
        self._job = _submit_fit(*self._job_data, self._hyper)
        m = len(y)
        self._job_n, self._next_refit = at, at + max(1, m // 8)
        self._adopt_n = at + _lag(m)

    def _rows(self, y: np.ndarray) -> np.ndarray:
        """The complete trials the model is conditioned on: all of them up to
        ``max_points``; past that, the best half of ``max_points`` and an even spread in
        rank of the rest. The model stays sharp where the search now is and keeps the
        shape of the whole space, at a cost that no longer grows with the study."""
        n, cap = len(y), self.max_points
        if n <= cap:
            return np.arange(n)
        order = np.argsort(y, kind="stable")
        best = cap // 2
        rest = order[best:]
        spread = rest[np.linspace(0, len(rest) - 1, cap - best).round().astype(int)]
        return np.sort(np.concatenate([order[:best], spread]))

    def _condition(self, warp: Warp, hyper: Hyper, X: np.ndarray, y: np.ndarray) -> None:
        """Condition the GP anew, under these hyperparameters, on the rows of the whole
        history ``(X, y)`` that :meth:`_rows` picks: O(m^3) for ``m`` rows."""
        assert self._features is not None
        rows = self._rows(y)
        self._warp, self._hyper = warp, hyper
        self._post = Posterior(hyper, self._features(X[rows]), warp(y[rows]))
        self._n_seen = len(y)

    def forecast(self, X: np.ndarray, fidelity: Fidelity | None = None) -> np.ndarray | None:
        with self._model_lock:
            post, features = self._post, self._features
            if post is None or features is None or not len(X):
                return None
            Xc = features(np.asarray(X, dtype=float))
            seen = self._n_seen
            if fidelity is None or not self._mf or len(fidelity.y) <= seen:
                return post.mean(Xc)
            # the results at rungs since the model was last brought up to date, in as well
            rows = np.hstack([fidelity.X[seen:], fidelity.z[seen:, None]])
            wy = self._warp(_shifted(self._shift, rows, fidelity.y[seen:]))
            return post.mean(Xc, features(rows), wy)

    def _sync(self, history: History) -> Posterior:
        """Bring the posterior up to date with the complete trials of ``history``."""
        with self._model_lock:
            return self._sync_locked(history)

    def _sync_locked(self, history: History) -> Posterior:
        assert self._features is not None
        X, raw = history.X, history.y
        if self._post is None or len(raw) < self._n_seen:
            # start from the priors' modes; the first fit runs in the background like the rest
            self._job = None  # a fit of other data, if any, is of no use now
            hyper = self._hyper or Hyper.default(self._features.dim)
            self._shift = self._job_shift = _level_shift(X, raw) if self._mf else None
            y = _shifted(self._shift, X, raw)
            self._condition(Warp.fit(y[self._rows(y)]), hyper, X, y)
            self._next_refit = len(y)
        elif self._job is not None and (
            # with a seed, at fixed points of the history: reproducible, whatever the timing;
            # late enough that the fit is normally done by then (see _lag)
            len(raw) >= self._adopt_n if self.seed is not None else self._job.done()
        ):
            job, self._job = self._job, None
            try:
                # conditioned on every complete trial at once: one O(n^3) factorization,
                # not one for the fit's data and a rank-1 update per trial since
                warp, hyper = job.result()
                self._shift = self._job_shift
                self._condition(warp, hyper, X, _shifted(self._shift, X, raw))
            except ChildLostError:  # the fitting process died: fit in a thread from now on
                self._launch(*self._job_data, self._job_n)
            except Exception as error:  # keep the model as it is; the next refit may succeed
                warnings.warn(
                    f"GPSampler: a hyperparameter fit failed ({error!r}); "
                    "the previous hyperparameters stay",
                    RuntimeWarning,
                    stacklevel=2,
                )
        post = self._post
        assert post is not None
        if len(raw) > self._n_seen:
            new = self._features(X[self._n_seen :])
            wy = self._warp(_shifted(self._shift, X[self._n_seen :], raw[self._n_seen :]))
            for x, v in zip(new, wy, strict=True):
                post.add(x, float(v))
            self._n_seen = len(raw)
        if self._job is None and len(raw) >= self._next_refit:
            self._job_shift = _level_shift(X, raw) if self._mf else None
            y = _shifted(self._job_shift, X, raw)
            rows = self._rows(y)
            self._launch(self._features(X[rows]), y[rows], len(raw))
        return post

    # -- suggesting ----------------------------------------------------------------------------

    def _budget(self, n_obs: int, drawn: bool) -> tuple[int, int, int, int]:
        """Sizes of the quasi-random set, the points around the best trials, and the
        refinement neighbours per start and round, and the gradient steps of the last
        refinement, so that a suggest takes ~7 ms up to n = 100, rising to ~35 ms at n = 1000,
        on one CPU core (a million candidates on a GPU). With ``drawn`` (log EI averaged over
        draws of the running trials' outcomes), the points that pass the screen and the
        neighbours cost more each: fewer neighbours, and the screen's cost off the rest."""
        # seconds per gradient step (2 points, 2 triangular solves of the n x n factor)
        step = 4e-4 + 3.5e-9 * (n_obs + 10) ** 2
        if self.namespace.gpu:
            base = self.n_candidates or 2**20
            return base, 4096, 256, 40
        # seconds per scored candidate on one core, measured: kernel ~ n, solve ~ n^2; times
        # how much slower the last suggestions ran here (a busy or slower machine)
        per = 4e-7 + 1.5e-8 * (n_obs + 10) + 4e-11 * (n_obs + 10) ** 2
        per *= self._slowdown
        # and per point scored under the draws (measured: ~0.25 us per draw)
        per_drawn = per + (2.5e-7 * self.n_fantasies * self._slowdown if drawn else 0.0)
        self._target = 0.007 + 0.028 * np.clip((n_obs - 100) / 900, 0.0, 1.0) ** 2
        # 40 % of the time to the gradient steps (none if too few fit), the rest to scoring
        n_iter = min(40, int(0.4 * self._target / (step * self._slowdown)))
        n_iter = n_iter if n_iter >= 4 else 0
        total = 0.6 * self._target / per
        local = int(np.clip(0.35 * total / 24 * per / per_drawn, 4, 48))  # 8 starts x 3 rounds
        if drawn:
            total = max(total - _SCREENED * per_drawn / per, 0.0)
        base = self.n_candidates or 2 ** int(np.clip(np.log2(max(total, 2.0) / 2), 6, 14))
        anchor = int(np.clip(0.15 * total, 32, 1024))
        return base, anchor, local, n_iter

    def _drawn(self, running: int) -> bool:
        """Whether log EI is averaged over draws of the running trials' outcomes."""
        if self.acquisition != "log_ei" or not running:
            return False
        return self.pending == "fantasies"

    def _candidates(self, d: int, size: int) -> np.ndarray:
        # one set per size: the budget moves between neighbouring sizes as the time per
        # suggestion is held to its target, and each set is the same whenever it is drawn
        if size not in self._bases:
            engine = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(self.seed))
            self._bases[size] = engine.random(size)
        return self._bases[size]

    def _scorer(self, post: Posterior, fantasy: Fantasy, P: np.ndarray) -> tuple[Any, Any, Any]:
        assert self._features is not None
        ns, F = self.namespace, self._features
        xp = ns.xp
        n_pending = fantasy.pending
        if self.acquisition == "thompson":
            FP = F(P)
            mean_p = post.predict(FP)[0] if len(P) else np.empty(0)
            h = post.hyper
            draw = rff_sample(
                np.vstack([post.X, FP]),
                np.concatenate([post.y, mean_p]),
                h.lengthscales,
                h.outputscale,
                h.noise,
                self._rng,
            )
            omega, phase, w = (xp.asarray(a) for a in draw)

            def score(U: np.ndarray) -> np.ndarray:
                out = [
                    -rff_evaluate(xp.asarray(F(c)), omega, phase, w, h.outputscale, ns)
                    for c in _chunks(U)
                ]
                return ns.to_numpy(xp.concatenate(out))

            def value_grad(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                v, g = rff_evaluate_grad(F(U), *draw, h.outputscale)
                return -v, -g

            screen = None
        else:
            # log EI's bar: the least output, as far as the model believes it (UCB has none);
            # across resources, the least the model expects at the end of a trial seen
            best = np.nan
            if self.acquisition == "log_ei" and self._mf:
                at_end = post.X.copy()
                at_end[:, -1] = 1.0
                best = float(post.predict(at_end)[0].min())
            elif self.acquisition == "log_ei":
                best = post.incumbent()
            dev = fantasy.to(ns)  # only the scores need the factor on the device

            def score(U: np.ndarray) -> np.ndarray:
                out = []
                for c in _chunks(U):
                    mean, var = dev.predict(xp.asarray(F(c)))
                    a = (
                        log_ei(mean, var, best, ns)
                        if self.acquisition == "log_ei"
                        else ucb(mean, var, self.beta, ns)
                    )
                    out.append(a)
                return ns.to_numpy(xp.concatenate(out))

            def value_grad(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                mean, var, dmean, dvar = fantasy.predict_grad(F(U))
                if self.acquisition == "log_ei":
                    return log_ei_grad(mean, var, dmean, dvar, best)
                return ucb_grad(mean, var, dmean, dvar, self.beta)

            screen = None
            if self._drawn(n_pending):
                # EI over joint draws of the pending outcomes; the believer screens for it
                screen = score
                mean_p, factor = fantasy.pending_factor()
                engine = self._normals.get(n_pending)
                if engine is None:
                    engine = qmc.MultivariateNormalQMC(np.zeros(n_pending), rng=self._rng)
                    self._normals[n_pending] = engine
                Z = engine.random(self.n_fantasies)
                bests = np.minimum(best, (mean_p + Z @ factor.T).min(axis=1))
                Zd, bd = xp.asarray(Z), xp.asarray(bests)

                def score(U: np.ndarray) -> np.ndarray:
                    out = []
                    for c in _chunks(U, 1024):
                        mean, var, C = dev.predict_joint(xp.asarray(F(c)))
                        out.append(log_qei(mean, var, C, Zd, bd, ns))
                    return ns.to_numpy(xp.concatenate(out))

                def value_grad(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                    mean, var, dmean, dvar, C, dC = fantasy.predict_grad(F(U), joint=True)
                    return log_qei_grad(mean, var, dmean, dvar, C, dC, Z, bests)

        def gradient(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Scores and their gradients in the unit cube's continuous coordinates."""
            v, g = value_grad(U)
            out = np.zeros(U.shape)
            out[:, F.free] = g[:, F.free_inputs]
            return v, out

        return score, gradient, screen

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        space, fid = history.space, history.fidelity
        mf = fid is not None and len(fid.y) > 0
        if space is not self._space or mf != self._mf:
            # a new study, or the first results at a rung: let the point under way end first
            self._producer.drain()
            self._space, self._mf = space, mf
            self._reset()
            self._features = _WithFidelity(Features(space)) if mf else Features(space)
            child().start()  # torch loads there while the design runs
        # the first W asks of W workers are design points anyway: count them in
        d = space.dim
        n_initial = self.n_initial or max(d + 1, int(np.clip(2 * d + 2, 6, 20)) - len(pending))
        seen = len(history.y) if fid is None else len(fid.y)
        if (self._post is None and seen < n_initial) or n == 0:
            return self._design.suggest(history, pending, n)
        running = len(pending) + n
        extra = int(bool(self.prefetch) or (self.prefetch is None and running >= 4))
        done = [history.X, history.X_failed, pending]
        if fid is not None and mf:
            done.append(fid.X)
            snapshot = History(
                space,
                np.hstack([fid.X, fid.z[:, None]]),
                fid.y.copy(),
                history.X_failed.copy(),
                history.n_asked,
            )
            pending = np.hstack([pending, fid.pending_z[:, None]])
        else:
            snapshot = History(
                space, history.X.copy(), history.y.copy(), history.X_failed.copy(), history.n_asked
            )
        assert self._features is not None
        taken = self._features.snap(np.vstack(done))

        def free(u: np.ndarray) -> bool:
            return not len(taken) or not (np.abs(taken - u).max(axis=1) < 1e-9).any()

        return self._producer.request(
            snapshot,
            pending.copy(),
            n,
            extra,
            settle=self.seed is not None,
            free=free,
            # a point handed out runs: towards the first rung, when results come at rungs
            as_pending=(lambda u: np.append(u, 0.0)) if mf else (lambda u: u),
            # with a seed, the model changes here only (what it is brought up to date with
            # is this history, in every run): forecasts between suggestions see one model
            prepare=(lambda: self._prepare(snapshot)) if self.seed is not None else None,
        )

    def _prepare(self, history: History) -> None:
        with single_blas_thread():
            self._sync(history)

    def _compute(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """``n`` suggestions from the GP, given the complete and the running trials."""
        with single_blas_thread():
            return self._compute_points(history, pending, n)

    def _compute_points(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        space = history.space
        assert self._features is not None
        snap = self._features.snap
        post = self._sync(history)
        # the time the budget governs (not a new fit's factorization, once per refit)
        t0 = time.perf_counter()
        drawn = self._drawn(len(pending))  # the first point's; later ones count it too
        size, n_anchor, n_local, n_iter = self._budget(len(post.y) + len(pending), drawn)
        base = self._candidates(space.dim, size)
        d = space.dim
        top = np.argsort(history.y)[: min(5, len(history.y))]
        anchors = history.X[top][:, :d]
        taken = snap(np.vstack([history.X[:, :d], history.X_failed, pending[:, :d]]))
        chosen: list[np.ndarray] = []
        heads: list[np.ndarray] = []  # the chosen, as running trials (heading for the first rung)
        for _ in range(n):
            P = snap(np.vstack([pending, *heads])) if len(pending) or heads else pending
            fantasy = post.fantasize(self._features(P))
            score, gradient, screen = self._scorer(post, fantasy, P)
            avoid = np.vstack([taken, *chosen]) if chosen else taken
            u, _ = optimize_acquisition(
                score,
                snap,
                base,
                anchors,
                avoid,
                self._rng,
                n_local=n_local,
                n_anchor=n_anchor,
                busy=P[:, :d],
                gradient=gradient if n_iter else None,
                free=self._features.free,
                n_polish=2,
                max_iter=n_iter,
                screen=screen,
                n_screen=_SCREENED,
            )
            chosen.append(u[None, :])
            heads.append(np.append(u, 0.0)[None, :] if self._mf else u[None, :])
        if self.seed is None and not self.namespace.gpu:
            # without a seed, hold the time per suggestion to its target on this machine
            ratio = (time.perf_counter() - t0) / (n * self._target) * self._slowdown
            self._slowdown = float(np.clip(0.7 * self._slowdown + 0.3 * ratio, 0.5, 10.0))
        return np.vstack(chosen)


def _level_shift(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much a trial typically gains from the first rung to each later one: at each
    resource ``z`` (the last column of ``X``), the median of ``y(z) - y(z0)`` over the
    trials with results at both (a trial's rows share its point), ``z0`` the least ``z``;
    a rung no trial has reached both ways takes the gain of the one below it.

    A stationary kernel over configuration and resource can then relate a trial's early
    results to its end by rank: without it, the drop of every learning curve from the first
    epoch to the last is a trend the kernel must explain, and a good configuration's first
    result says little of where it ends."""
    z = X[:, -1]
    levels = np.unique(z)
    shift = np.zeros(len(levels))
    if len(levels) < 2:
        return levels, shift
    first: dict[bytes, float] = {}
    for x, v in zip(X[z == levels[0], :-1], y[z == levels[0]], strict=True):
        first.setdefault(x.tobytes(), float(v))
    for k in range(1, len(levels)):
        at = z == levels[k]
        gains = [
            float(v) - first[key]
            for x, v in zip(X[at, :-1], y[at], strict=True)
            if (key := x.tobytes()) in first and np.isfinite(v) and np.isfinite(first[key])
        ]
        shift[k] = float(np.median(gains)) if gains else shift[k - 1]
    return levels, shift


def _shifted(
    shift: tuple[np.ndarray, np.ndarray] | None, X: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """``y`` less the gain ``shift`` gives for the resource of each row (none if None)."""
    if shift is None or not len(y):
        return y
    levels, gain = shift
    return np.asarray(y - np.interp(X[:, -1], levels, gain), dtype=float)


def _lag(n: int) -> int:
    """With a seed, a fit launched at ``n`` complete trials is adopted ``_lag(n)`` trials
    later, waiting for it only if it is not done by then.

    Adopting it at the very next trial makes that suggestion wait for the whole fit: ~9 s at
    n = 1000 (17-24 s on a busy machine). A fit costs ~n^3 and a suggestion ~n^2, so the
    number of suggestions one fit lasts grows with n: ~60 at n = 300 (0.5 s of fit, 9 ms per
    suggestion), ~230 at 1000 (8 s, 35 ms), each on a core of its own and with no time
    between suggestions (the simulated backend's case): about ``n^2 / 1500``, so that is the
    lag, up to ``n // 4``. Below 200 trials a fit takes ~0.2 s or less and hyperparameters
    still move fast: a fit that lands a few trials late costs more regret than the wait
    (Ackley-5 and Hartmann-6 with 8 workers, 8 seeds), so it is adopted at the next trial,
    as it always was. The price past 200: fits are launched every lag trials instead of
    every ``n // 8`` (the next one as one is adopted), and the hyperparameters in use are
    fitted on at least 64 % of the complete trials (1 / 1.25^2) rather than 89 %
    (1 / 1.125); unseeded runs, which swap a fit in when it lands, are about as late when
    suggestions come back to back.
    """
    return 1 if n < 200 else min(n // 4, n * n // 1500)


def _chunks(U: np.ndarray, size: int = 8192) -> list[np.ndarray]:
    return [U[i : i + size] for i in range(0, len(U), size)] or [U]
