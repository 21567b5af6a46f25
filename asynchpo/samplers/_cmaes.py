"""CMA-ES on the ``cmaes`` package, asynchronous: a generation is the next results to come."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from cmaes import CMA

from asynchpo.acquisition._optimize import point_keys
from asynchpo.samplers._base import BaseSampler, History
from asynchpo.samplers._random import Fresh, taken_points
from asynchpo.surrogate._features import Features

_RESTARTS = ("ipop", "bipop", None)
_TOL_X = 1e-4  # a generation this narrow (in the unit cube) in every coordinate has converged
_TOL_F = 1e-12  # ... and one whose values all agree this closely (relative) has too


@dataclass
class _Run:
    """One CMA-ES run between restarts."""

    es: CMA
    popsize: int
    regime: str  # "large" (IPOP's growing population) or "small" (BIPOP's local runs)
    batch: list[tuple[np.ndarray, float]] = field(default_factory=list)
    unpaired: list[np.ndarray] = field(default_factory=list)  # this generation's, not mirrored
    drawn_in: int = 0  # the generation they were drawn in


class CMAESSampler(BaseSampler):
    """Covariance matrix adaptation (``cmaes.CMA``), fed by results as they come.

    Workers never wait for a generation to end: every free worker gets a fresh draw from
    the current distribution, and a generation is the next ``popsize`` results to complete,
    whichever distribution they were drawn from (the trials still running are counted in
    the generations they will complete in, so no worker idles and no result is dropped).
    Once a run has converged (or ``cmaes`` says it should stop), it restarts from a random
    point: ``"ipop"`` doubles the population at each restart (more global each time);
    ``"bipop"`` alternates those with short local runs of a small population and step size
    while their budget is the smaller, as in Hansen (2009). A result a run did not draw (a
    trial of an earlier run, or one enqueued by hand) counts in the generation it comes in.

    All parameters are searched in the unit cube (discrete ones by their bins); a draw that
    repeats a complete, failed or running point is drawn again. Failed trials give no value
    and count in no generation.

    Args:
        seed: Seed for reproducible runs; None draws fresh entropy. With a seed, the
            ``k``-th trial's point depends on the seed, ``k`` and the results so far.
        sigma0: Initial step size, in units of the cube's side (CMA-ES's usual sixth of the
            range by default).
        popsize: Initial population; ``4 + 3 ln d`` by default.
        restart: ``"ipop"`` (default), ``"bipop"`` or None (one run, never restarted).
        mirrored: Whether a free worker gets the reflection through the mean of a point of
            the current generation that is still running (when it has none yet): pairs of
            opposite steps, which make the running trials count and the generation's
            mean estimate steadier.
        x0: Initial mean, as parameters; the centre of the cube by default.

    Example:
        >>> import asynchpo as ah
        >>> study = ah.Study(ah.Space(x=ah.Float(-3, 3), y=ah.Float(-3, 3)),
        ...                  sampler=ah.CMAESSampler(seed=0))
        >>> study.optimize(lambda p: (p["x"] - 1) ** 2 + p["y"] ** 2, n_trials=60,
        ...                backend=ah.SimulatedBackend(n_workers=4, seed=0), progress=False)
        >>> study.best_value < 0.05
        True
    """

    cheap = True

    def __init__(
        self,
        seed: int | None = None,
        *,
        sigma0: float = 1 / 6,
        popsize: int | None = None,
        restart: str | None = "ipop",
        mirrored: bool = True,
        x0: dict[str, object] | None = None,
    ):
        if not (isinstance(sigma0, (int, float)) and 0 < sigma0 <= 1):
            raise ValueError(f"sigma0 must be in (0, 1] (a step in the unit cube), got {sigma0!r}")
        if popsize is not None and not (isinstance(popsize, int) and popsize >= 2):
            raise ValueError(f"popsize must be an int >= 2, got {popsize!r}")
        if x0 is not None and not isinstance(x0, Mapping):
            raise TypeError(f"x0 must be a dict of parameters, got {type(x0).__name__}")
        if restart not in _RESTARTS:
            raise ValueError(f"restart must be one of {list(_RESTARTS)}, got {restart!r}")
        self.seed = (
            int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        )
        self.sigma0, self.popsize, self.restart, self.x0 = float(sigma0), popsize, restart, x0
        self.mirrored = bool(mirrored)
        self._snap: Callable[[np.ndarray], np.ndarray] | None = None
        self._space: object = None
        self._seen = 0  # history rows folded in
        self._last: np.ndarray | None = None  # the last row folded, to check the history grew
        self._run: _Run | None = None
        self._restarts = 0
        self._spent = {"large": 0, "small": 0}  # evaluations of each BIPOP regime
        self._base = 0  # the first run's population
        self._large = 0  # restarts with a larger population so far
        self._sizes: list[int] = []
        self._fresh: Fresh | None = None

    @property
    def generation(self) -> int:
        """Generations told to the current run."""
        return 0 if self._run is None else self._run.es.generation

    @property
    def restarts(self) -> int:
        """Restarts so far."""
        return self._restarts

    @property
    def population_size(self) -> int:
        """The current run's population (results per generation)."""
        return 0 if self._run is None else self._run.popsize

    @property
    def population_sizes(self) -> list[int]:
        """Each run's population so far, the current run's last."""
        return list(self._sizes)

    def suggest(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        self._fold(history)
        run, d = self._run, history.space.dim
        assert run is not None
        if run.drawn_in != run.es.generation:  # the mean moved: pairs start again
            run.unpaired, run.drawn_in = [], run.es.generation
        if self._snap is None:
            self._snap = Features(history.space).snap
        running = set(point_keys(self._snap(np.reshape(pending, (-1, d)))).tolist())
        draws: list[int] = []

        def draw(i: int, m: int) -> np.ndarray:
            """``m`` draws for row ``i``: from the run's distribution, then (after two
            blocks of repeats, where it has shrunk onto taken discrete values) uniform."""
            k = history.n_asked + i
            draws.append(i)
            if draws.count(i) > 3:
                rng = np.random.default_rng([self.seed, k, len(draws)])
                return rng.random((m, d))
            run.es.reseed_rng(_stream(self.seed, k, len(draws)))
            return np.array([run.es.ask() for _ in range(m)]).reshape(m, d)

        rows = []
        for i in range(n):
            u = self._mirror(run, running) if self.mirrored else None
            if u is None:
                u = draw(i, 1)[0]
                run.unpaired.append(u)
            rows.append(u)
            running.add(point_keys(self._snap(u[None])).tolist()[0])
        U = np.array(rows).reshape(n, d)
        if self._fresh is None:
            self._fresh = Fresh(history.space)
        out: np.ndarray = np.clip(self._fresh(U, taken_points(history, pending), draw), 0.0, 1.0)
        return out

    def _mirror(self, run: _Run, running: set[bytes]) -> np.ndarray | None:
        """The reflection, through the mean, of the latest draw of this generation that is
        still running and has none yet (mirrored sampling: Brockhoff et al., 2010),
        clipped into the cube as ``cmaes`` repairs its draws; None if there is no such
        draw."""
        assert self._snap is not None
        while run.unpaired:
            u = run.unpaired.pop()
            if point_keys(self._snap(u[None])).tolist()[0] not in running:
                continue  # finished already: its result is in, a fresh draw is better
            mean: np.ndarray = np.asarray(run.es.mean, dtype=float)
            mirror: np.ndarray = np.clip(2.0 * mean - u, 0.0, 1.0)
            return mirror
        return None

    # -- the fold of the history ---------------------------------------------------------

    def _fold(self, history: History) -> None:
        """Bring the runs up to date with the complete trials, in the order they came."""
        X, y = np.asarray(history.X, dtype=float), np.asarray(history.y, dtype=float)
        grown = (
            self._space is history.space
            and self._run is not None
            and len(X) >= self._seen
            and (
                self._seen == 0
                or (self._last is not None and (X[self._seen - 1] == self._last).all())
            )
        )
        if not grown:  # another history (or the first): start again from its beginning
            self._space, self._seen, self._last = history.space, 0, None
            self._fresh = self._snap = None
            self._restarts, self._spent, self._sizes = 0, {"large": 0, "small": 0}, []
            self._run = self._start(history, first=True)
        for x, v in zip(X[self._seen :], y[self._seen :], strict=True):
            self._tell(history, x, float(v))
        if len(X):
            self._seen, self._last = len(X), X[-1].copy()

    def _tell(self, history: History, x: np.ndarray, value: float) -> None:
        run = self._run
        assert run is not None
        run.batch.append((np.clip(x, 0.0, 1.0), value))
        self._spent[run.regime] += 1
        if len(run.batch) < run.popsize:
            return
        batch, run.batch = run.batch, []
        run.es.tell(batch)
        if self.restart is not None and (run.es.should_stop() or _converged(batch)):
            self._restarts += 1
            self._run = self._start(history, first=False)

    def _start(self, history: History, first: bool) -> _Run:
        d = history.space.dim
        if first:
            self._base = self.popsize or 4 + math.floor(3 * math.log(d))
            self._large = 0
            mean = np.full(d, 0.5)
            if self.x0 is not None:
                try:  # the space is known only now, at the first suggestion of a study
                    checked = history.space.check(self.x0)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"CMAESSampler(x0=...): {exc}") from None
                mean = np.clip(history.space.encode(checked), 0.0, 1.0)
            return self._make(mean, self.sigma0, self._base, "large")
        rng = np.random.default_rng([self.seed, self._restarts, 7])
        mean = rng.random(d)
        large = self._base * 2 ** (self._large + 1)
        if self.restart == "bipop" and self._spent["small"] < self._spent["large"]:
            u = rng.random()  # a local run: small population and step, drawn as Hansen's
            small = max(2, math.floor(self._base * (0.5 * large / self._base) ** (u**2)))
            return self._make(mean, self.sigma0 * 10 ** (-2 * rng.random()), small, "small")
        self._large += 1
        return self._make(mean, self.sigma0, large, "large")

    def _make(self, mean: np.ndarray, sigma: float, popsize: int, regime: str) -> _Run:
        bounds = np.tile([0.0, 1.0], (len(mean), 1))
        es = CMA(
            mean=np.clip(mean, 1e-6, 1 - 1e-6),
            sigma=sigma,
            bounds=bounds,
            seed=_stream(self.seed, self._restarts, 0),
            population_size=popsize,
        )
        self._sizes.append(popsize)
        return _Run(es, popsize, regime)


def _stream(seed: int, k: int, j: int) -> int:
    """A 32-bit seed for the ``j``-th redraw of trial ``k`` (or restart ``k``)."""
    return int(np.random.SeedSequence([seed, k, j]).generate_state(1)[0])


def _converged(batch: list[tuple[np.ndarray, float]]) -> bool:
    """Whether a generation's points all lie within ``_TOL_X`` of each other in every
    coordinate, or its values all agree (a plateau, or one discrete point drawn again)."""
    X = np.array([x for x, _ in batch])
    v = np.array([f for _, f in batch])
    if (X.max(axis=0) - X.min(axis=0)).max() <= _TOL_X:
        return True
    return bool(v.max() - v.min() <= _TOL_F * max(1.0, float(np.abs(v).max())))
