"""The contract every sampler must meet; subclass and define ``make``.

Example (in a test module)::

    from asynchpo.testing import SamplerContract

    class TestMySampler(SamplerContract):
        def make(self, seed):
            return MySampler(seed=seed)
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from asynchpo.execution import SimulatedBackend
from asynchpo.samplers import BaseSampler, History
from asynchpo.space import Categorical, Float, Int, Space
from asynchpo.study import Study
from asynchpo.trial import TrialState

MIXED = Space(
    lr=Float(1e-5, 1e-1, log=True),
    x=Float(-2.0, 3.0),
    q=Float(0.0, 1.0, step=0.25),
    depth=Int(1, 8),
    units=Int(16, 512, log=True),
    act=Categorical(["relu", "gelu", "tanh"]),
)


#: Where two suggestions coincide with probability zero, unless a sampler makes them.
CONTINUOUS = Space(a=Float(0.0, 1.0), b=Float(-2.0, 3.0), lr=Float(1e-4, 1.0, log=True))
#: Twelve points in all: few enough to run out of.
DISCRETE = Space(k=Int(0, 3), c=Categorical(["a", "b", "c"]))

_TOL = 1e-9  # two points are the same if they agree this closely in every coordinate


def _history(space: Space, n: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    X = np.array([space.encode(p) for p in space.sample(rng, n)]).reshape(n, space.dim)
    return History(space, X, rng.normal(size=n), np.empty((0, space.dim)), n)


def _recorded(space: Space, U: np.ndarray) -> np.ndarray:
    """Points as a study records them: decoded to parameters, and encoded back."""
    rows = [space.encode(p) for p in space.decode_many(np.asarray(U))]
    return np.array(rows).reshape(len(rows), space.dim)


def _repeats(space: Space, U: np.ndarray, taken: np.ndarray) -> list[dict[str, object]]:
    """The rows of ``U`` (as parameters) that repeat a ``taken`` point or an earlier row."""
    seen = _recorded(space, taken)
    out = []
    for u in _recorded(space, U):
        if len(seen) and (np.abs(seen - u).max(axis=1) <= _TOL).any():
            out.append(space.decode(u))
        seen = np.vstack([seen, u])
    return out


class SamplerContract:
    """Shared tests: shapes, bounds, valid parameters, pending points, seeds, whole studies."""

    #: Whether two instances with the same seed must give the same points.
    deterministic = True
    #: Whether the running trials change where the sampler goes next (beyond not repeating
    #: them): True for a model-based or adaptive sampler; False only for independent draws
    #: (random, quasi-random, grid), which are the same whatever runs.
    uses_running = True

    def make(self, seed: int | None) -> BaseSampler:
        raise NotImplementedError

    @pytest.mark.parametrize("n_obs", [0, 1, 12])
    @pytest.mark.parametrize("n", [1, 5])
    def test_points_are_in_the_unit_cube(self, n_obs: int, n: int) -> None:
        hist = _history(MIXED, n_obs)
        U = np.asarray(self.make(0).suggest(hist, np.empty((0, MIXED.dim)), n))
        assert U.ndim == 2 and U.shape[1] == MIXED.dim and 1 <= len(U) <= n
        assert np.isfinite(U).all() and (U >= 0).all() and (U <= 1).all()
        for params in MIXED.decode_many(U):
            assert MIXED.check(params) == params

    def test_zero_points(self) -> None:
        U = np.asarray(self.make(0).suggest(_history(MIXED, 3), np.empty((0, MIXED.dim)), 0))
        assert U.shape == (0, MIXED.dim)

    def test_pending_points_are_accepted(self) -> None:
        hist = _history(MIXED, 10)
        pending = np.asarray(self.make(1).suggest(hist, np.empty((0, MIXED.dim)), 4))
        U = np.asarray(self.make(1).suggest(hist, pending, 4))
        assert U.shape[1] == MIXED.dim and len(U) >= 1

    def test_no_suggestion_repeats_a_complete_failed_or_running_point(self) -> None:
        # the points a twin of the sampler (same seed) would suggest next: two complete,
        # one failed, the rest running, among others; in a continuous space, only a
        # sampler that hands them out again repeats one
        space, d = CONTINUOUS, CONTINUOUS.dim
        rng = np.random.default_rng(5)
        base = _history(space, 12)
        twin = _recorded(space, np.asarray(self.make(1).suggest(base, np.empty((0, d)), 6)))
        assert len(twin) >= 4, "the twin gave too few points to test with"
        failed = np.vstack([_recorded(space, rng.random((2, d))), twin[2:3]])
        pending = np.vstack([twin[3:], _recorded(space, rng.random((2, d)))])
        X = np.vstack([base.X, twin[:2]])
        y = np.concatenate([base.y, [base.y.min() - 1.0, base.y.max()]])
        hist = History(space, X, y, failed, len(X) + len(failed) + len(pending))
        U = np.asarray(self.make(1).suggest(hist, pending, 4))
        assert U.ndim == 2 and U.shape[1] == d and 1 <= len(U) <= 4
        again = _repeats(space, U, np.vstack([X, failed, pending]))
        assert not again, f"suggested again (taken, or twice in one batch): {again}"

    @pytest.mark.parametrize("one_at_a_time", [False, True])
    def test_running_points_are_avoided_while_free_ones_remain(self, one_at_a_time: bool) -> None:
        # 12 points: 5 complete, 1 failed, 2 running, 4 free
        space, d = DISCRETE, DISCRETE.dim
        every = np.array(
            [space.encode({"k": k, "c": c}) for k, c in itertools.product(range(4), "abc")]
        )
        order = np.random.default_rng(0).permutation(len(every))
        X, failed, pending = every[order[:5]], every[order[5:6]], every[order[6:8]]
        hist = History(space, X, np.arange(5.0), failed, 8)
        if not one_at_a_time:  # one batch for four free workers
            U = np.asarray(self.make(0).suggest(hist, pending, 4))
            assert U.ndim == 2 and U.shape[1] == d and 1 <= len(U) <= 4
            again = _repeats(space, U, every[order[:8]])
            assert not again, f"suggested again (taken, or twice in one batch): {again}"
            return
        sampler, running = self.make(0), pending
        for step in range(4):  # each suggestion then runs, until none is free
            hist = History(space, X, hist.y, failed, 8 + step)
            U = np.asarray(sampler.suggest(hist, running, 1))
            assert U.ndim == 2 and U.shape[1] == d and len(U) <= 1
            if step == 0:
                assert len(U) == 1
            if not len(U):  # a sampler with fewer points (a grid) may run out first
                break
            again = _repeats(space, U, np.vstack([X, failed, running]))
            assert not again, f"suggestion {step} was already taken: {again}"
            running = np.vstack([running, _recorded(space, U)])

    def test_running_trials_change_the_suggestion(self) -> None:
        # two twins (same seed) hand out the same first batch; then one is told that batch
        # is still running, the other is not: their next points must differ
        if not self.uses_running:
            pytest.skip("independent draws: the running trials do not move them")
        space, d = CONTINUOUS, CONTINUOUS.dim
        hist = _history(space, 12, seed=2)
        a, b = self.make(4), self.make(4)
        first = _recorded(space, np.asarray(a.suggest(hist, np.empty((0, d)), 3)))
        np.testing.assert_array_equal(
            _recorded(space, np.asarray(b.suggest(hist, np.empty((0, d)), 3))), first
        )
        later = History(space, hist.X, hist.y, hist.X_failed, hist.n_asked + len(first))
        with_running = np.asarray(a.suggest(later, first, 2))
        without = np.asarray(b.suggest(later, np.empty((0, d)), 2))
        assert with_running.shape[1] == d and len(with_running) >= 1
        assert len(without) != len(with_running) or not np.allclose(
            _recorded(space, with_running), _recorded(space, without), atol=1e-6
        ), "the suggestion ignores the trials still running"

    def test_same_seed_same_points(self) -> None:
        if not self.deterministic:
            pytest.skip("this sampler is not deterministic by design")
        hist = _history(MIXED, 7)
        pending = np.empty((0, MIXED.dim))
        a = np.asarray(self.make(3).suggest(hist, pending, 3))
        b = np.asarray(self.make(3).suggest(hist, pending, 3))
        np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize("direction", ["minimize", "maximize"])
    def test_runs_a_whole_study(self, direction: str) -> None:
        space = Space(x=Float(-3.0, 3.0), k=Int(0, 4), c=Categorical(["a", "b"]))
        study = Study(space, direction=direction, sampler=self.make(0))
        study.optimize(
            lambda p: p["x"] ** 2 + p["k"] + (p["c"] == "b"),
            n_trials=24,
            backend=SimulatedBackend(n_workers=4, seed=0),
            progress=False,
        )
        done = study.get_trials([TrialState.COMPLETE])
        assert 1 <= len(done) <= 24 and len(study.trials) == len(done)
        values = [t.value for t in done if t.value is not None]
        assert study.best_value == (min(values) if direction == "minimize" else max(values))
