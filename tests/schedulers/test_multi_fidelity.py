"""A sampler that models results at several resources: what it is given, and the GP's use."""

from __future__ import annotations

import itertools

import numpy as np

import asynchpo as ah
from asynchpo.samplers import Fidelity, History, RandomSampler

SPACE = ah.Space(x=ah.Float(0.0, 1.0), k=ah.Int(1, 4))
EPOCHS = 27


class Spy(RandomSampler):
    """Random points; keeps every history it is given."""

    multi_fidelity = True

    def __init__(self):
        super().__init__(seed=0)
        self.seen: list[tuple[History, np.ndarray]] = []

    def suggest(self, history, pending, n):
        self.seen.append((history, pending))
        return super().suggest(history, pending, n)


def curve(params):
    start = ah.restore() or 0
    loss = 1.0
    for epoch in range(start + 1, EPOCHS + 1):
        loss = params["x"] + params["k"] / epoch
        ah.checkpoint(epoch)
        ah.report(epoch, value=loss)
    return loss


def test_the_sampler_gets_each_trials_result_at_each_rung_it_reached():
    spy = Spy()
    study = ah.Study(SPACE, sampler=spy, scheduler=ah.ASHA(EPOCHS))
    study.optimize(
        curve, n_trials=40, backend=ah.SimulatedBackend(4, step_duration=1.0), progress=False
    )
    histories = [h for h, _ in spy.seen if h.fidelity is not None and len(h.fidelity.y)]
    assert histories
    last = histories[-1].fidelity
    # z on a log scale of the rungs 1, 3, 9 and the end, 27
    assert set(np.round(last.z, 9)) <= {0.0, round(1 / 3, 9), round(2 / 3, 9), 1.0}
    expected = []
    for t in study.trials:
        x = SPACE.encode(t.params)
        for level, z in ((1, 0.0), (3, 1 / 3), (9, 2 / 3), (27, 1.0)):
            r = next((r for r in t.reports if r.step >= level), None)
            if r is not None:
                expected.append((tuple(np.round(x, 9)), round(z, 9), round(r.metrics["value"], 9)))
    got = {
        (tuple(np.round(x, 9)), round(z, 9), round(y, 9))
        for x, z, y in zip(last.X, last.z, last.y, strict=True)
    }
    assert got <= set(expected) and len(got) >= len(expected) - 4 * 4  # all but the last few
    # later calls only append
    for a, b in itertools.pairwise(histories):
        n = len(a.fidelity.y)
        assert np.array_equal(b.fidelity.y[:n], a.fidelity.y) and np.array_equal(
            b.fidelity.X[:n], a.fidelity.X
        )
    # a running trial is heading for the rung after the last it reached
    for h, pending in spy.seen:
        if h.fidelity is not None:
            assert len(h.fidelity.pending_z) == len(pending)


def test_a_sampler_without_multi_fidelity_sees_no_rungs():
    seen = []

    class Plain(RandomSampler):
        def suggest(self, history, pending, n):
            seen.append(history.fidelity)
            return super().suggest(history, pending, n)

    study = ah.Study(SPACE, sampler=Plain(seed=0), scheduler=ah.ASHA(EPOCHS))
    study.optimize(
        curve, n_trials=10, backend=ah.SimulatedBackend(2, step_duration=1.0), progress=False
    )
    assert seen and all(f is None for f in seen)


def test_the_gp_sees_results_at_rungs_less_the_typical_gain_from_the_first():
    from asynchpo.samplers._gp import _level_shift, _shifted

    # trials 0-2 at the first rung; 0 and 1 at the middle one, 0 alone at the end; trial 3
    # began at the middle rung (a later bracket): no pair, no say in the gains
    X = np.array([[0.1, 0], [0.2, 0], [0.3, 0], [0.1, 0.5], [0.2, 0.5], [0.4, 0.5], [0.1, 1]])
    y = np.array([1.0, 2.0, 3.0, 0.6, 1.5, -9.0, 0.3])
    levels, gain = _level_shift(X, y)
    np.testing.assert_allclose(levels, [0, 0.5, 1])
    np.testing.assert_allclose(gain, [0, -0.45, -0.7])
    np.testing.assert_allclose(_shifted((levels, gain), X, y), y - gain[[0, 0, 0, 1, 1, 1, 2]])
    # a rung no trial reached from the first takes the gain of the one below it
    _, gain = _level_shift(X[[0, 1, 3, 5]], np.array([1.0, 2.0, 0.5, 0.0]))
    np.testing.assert_allclose(gain, [0, -0.5])
    _, gain = _level_shift(np.array([[0.1, 0], [0.5, 1.0]]), np.array([1.0, 0.2]))
    np.testing.assert_allclose(gain, [0, 0])
    np.testing.assert_allclose(_shifted(None, X, y), y)


def test_the_gp_forecasts_the_end_from_early_results():
    # ten trials stopped at the first rung say where x is good (near 0.7); three that ran to
    # the end, far from there, say how the first rung relates to the end
    space = ah.Space(x=ah.Float(0.0, 1.0))
    ends = np.array([[0.1], [0.5], [0.9]])
    X = np.vstack([np.linspace(0.05, 0.95, 10)[:, None], ends])
    z = np.r_[np.zeros(10), np.ones(3)]
    y = (X[:, 0] - 0.7) ** 2 + 0.5 * (1 - z)
    fid = Fidelity(X=X, z=z, y=y, pending_z=np.empty(0))
    history = History(space, ends, y[-3:], np.empty((0, 1)), 13, fid)
    gp = ah.GPSampler(seed=0, n_initial=4)
    u = gp.suggest(history, np.empty((0, 1)), 1)
    assert u.shape == (1, 1) and abs(u[0, 0] - 0.7) < 0.05  # where no trial ended
    # the joint model's forecast for the end of a trial (z = 1) is least there too
    grid = np.linspace(0, 1, 101)[:, None]
    mean, _ = gp._post.predict(gp._features(grid))
    assert abs(grid[np.argmin(mean), 0] - 0.7) <= 0.05
    # the forecast counts in the results the model has not seen yet: a trial near 0.2 did
    # far better at the first rung than any other, so the model expects more of 0.2 now
    two = np.array([[0.2], [0.7]])
    seen = gp.forecast(two, fid)
    np.testing.assert_allclose(gp.forecast(two), seen)  # fid holds nothing it has not seen
    newer = Fidelity(X=np.vstack([X, [[0.2]]]), z=np.r_[z, 0.0], y=np.r_[y, -3.0], pending_z=z[:0])
    assert gp.forecast(two, newer)[0] < seen[0] - 0.01
    assert len(gp._post.y) == len(y)  # the model itself is brought up to date by suggest
    # a trial running there towards the next rung counts as running: not suggested again
    busy = Fidelity(X=X, z=z, y=y, pending_z=np.array([1 / 3]))
    history = History(space, ends, y[-3:], np.empty((0, 1)), 14, busy)
    v = gp.suggest(history, u, 1)
    assert np.abs(v - u).max() > 1e-3
