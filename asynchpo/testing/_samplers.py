"""The contract every sampler must meet; subclass and define ``make``.

Example (in a test module)::

    from asynchpo.testing import SamplerContract

    class TestMySampler(SamplerContract):
        def make(self, seed):
            return MySampler(seed=seed)
"""

from __future__ import annotations

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


def _history(space: Space, n: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    X = np.array([space.encode(p) for p in space.sample(rng, n)]).reshape(n, space.dim)
    return History(space, X, rng.normal(size=n), np.empty((0, space.dim)), n)


class SamplerContract:
    """Shared tests: shapes, bounds, valid parameters, pending points, seeds, whole studies."""

    #: Whether two instances with the same seed must give the same points.
    deterministic = True

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
