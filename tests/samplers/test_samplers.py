from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

import asynchpo as ah
from asynchpo.samplers import BaseSampler, GridSampler, History, RandomSampler, SobolSampler
from asynchpo.testing import SamplerContract


class TestRandom(SamplerContract):
    uses_running = False

    def make(self, seed):
        return RandomSampler(seed=seed)


class TestSobol(SamplerContract):
    uses_running = False

    def make(self, seed):
        return SobolSampler(seed=seed)


class TestGrid(SamplerContract):
    uses_running = False

    def make(self, seed):
        return GridSampler(n_points=3, shuffle=seed is not None, seed=seed)


class Echo(BaseSampler):
    """Hands the running points out again (random points when none run): breaks the rule."""

    def suggest(self, history, pending, n):
        if len(pending):
            return pending[:n].copy()
        return np.random.default_rng(0).random((n, history.space.dim))


class EchoContract(SamplerContract):  # not collected: run by hand below
    def make(self, seed):
        return Echo()


def test_the_contract_fails_a_sampler_that_hands_out_running_points_again():
    contract = EchoContract()
    contract.test_pending_points_are_accepted()  # the shape alone passes
    with pytest.raises(AssertionError, match="suggested again"):
        contract.test_no_suggestion_repeats_a_complete_failed_or_running_point()
    for one_at_a_time in (False, True):
        with pytest.raises(AssertionError, match="suggest"):
            contract.test_running_points_are_avoided_while_free_ones_remain(one_at_a_time)


class BlindContract(SamplerContract):  # not collected: run by hand below
    def make(self, seed):
        return RandomSampler(seed=seed)  # its draws do not depend on what runs


def test_the_contract_fails_a_sampler_whose_points_ignore_the_running_trials():
    with pytest.raises(AssertionError, match="ignores the trials still running"):
        BlindContract().test_running_trials_change_the_suggestion()


def _empty(space, n_asked=0):
    d = space.dim
    return History(space, np.empty((0, d)), np.empty(0), np.empty((0, d)), n_asked)


def test_sobol_is_scipys_scrambled_sequence_and_continues_after_a_resume():
    space = ah.Space(a=ah.Float(0, 1), b=ah.Float(0, 1))
    want = qmc.Sobol(2, scramble=True, rng=np.random.default_rng(7)).random(8)
    sampler = SobolSampler(seed=7)
    got = np.vstack(
        [
            sampler.suggest(_empty(space, 0), np.empty((0, 2)), 4),
            sampler.suggest(_empty(space, 4), np.empty((0, 2)), 4),
        ]
    )
    np.testing.assert_allclose(got, want)
    resumed = SobolSampler(seed=7).suggest(_empty(space, 4), np.empty((0, 2)), 4)
    np.testing.assert_allclose(resumed, want[4:])


def test_random_points_depend_on_seed_and_position_only():
    space = ah.Space(a=ah.Float(0, 1), b=ah.Float(0, 1))
    none = np.empty((0, 2))
    a = RandomSampler(seed=1).suggest(_empty(space, 10), none, 3)
    b = RandomSampler(seed=1).suggest(_empty(space, 10), none, 3)
    np.testing.assert_array_equal(a, b)
    # asked one at a time or in a batch, trial 11 gets the same point
    c = RandomSampler(seed=1).suggest(_empty(space, 11), none, 2)
    np.testing.assert_array_equal(c, a[1:])
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(a, RandomSampler(seed=2).suggest(_empty(space, 10), none, 3))


def test_a_seeded_random_study_is_the_same_whatever_order_trials_finish_in():
    space = ah.Space(x=ah.Float(0, 1), k=ah.Int(1, 5))

    def run():
        study = ah.Study(space, sampler=RandomSampler(seed=3))
        study.optimize(lambda p: p["x"] + p["k"], n_trials=24, max_concurrent=3, progress=False)
        return {t.number: t.params for t in study.get_trials()}

    assert run() == run()


def test_grid_visits_every_point_once_then_the_study_stops():
    space = ah.Space(x=ah.Int(0, 2), act=ah.Categorical(["a", "b"]), lr=ah.Float(0.1, 1.0))
    study = ah.Study(space, sampler=GridSampler(values={"lr": [0.1, 1.0]}))
    study.optimize(
        lambda p: p["x"] + p["lr"] + (p["act"] == "b"),
        n_trials=100,
        backend=ah.SimulatedBackend(n_workers=5, seed=0),
        progress=False,
    )
    seen = [tuple(t.params.values()) for t in study.trials]
    assert len(seen) == 12 and len(set(seen)) == 12
    assert study.best_params == {"x": 0, "act": "a", "lr": 0.1}


def test_grid_arguments_are_checked():
    with pytest.raises(ValueError, match=r"values\['x'\] must be a non-empty list"):
        GridSampler(values={"x": []})
    with pytest.raises(ValueError, match="n_points must be an integer >= 1"):
        GridSampler(n_points=0)
    study = ah.Study(ah.Space(x=ah.Int(0, 2)), sampler=GridSampler(values={"y": [1]}))
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['y'\]"):
        study.ask()
    study = ah.Study(ah.Space(x=ah.Int(0, 2)), sampler=GridSampler(values={"x": [5]}))
    with pytest.raises(ValueError, match="'x'=5 is outside"):
        study.ask()


GRID_SPACE = ah.Space(x=ah.Int(0, 2), act=ah.Categorical(["a", "b"]))
GRID_POINTS = [(x, a) for x in range(3) for a in "ab"]


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_warm_started_grid_asks_every_other_point_once_in_order(shuffle):
    def grid():
        return GridSampler(shuffle=shuffle, seed=4)

    full = ah.Study(GRID_SPACE, sampler=grid())
    order = [tuple(full.ask().params.values()) for _ in GRID_POINTS]
    assert sorted(order) == sorted(GRID_POINTS)
    if not shuffle:
        assert order == GRID_POINTS
    for known in [order[0], order[2], order[-1]]:
        study = ah.Study(GRID_SPACE, sampler=grid())
        study.add_trial(dict(zip(GRID_SPACE.names, known, strict=True)), 1.0)
        asked = [tuple(study.ask().params.values()) for _ in range(len(GRID_POINTS) - 1)]
        assert asked == [p for p in order if p != known]  # none skipped, none repeated
        with pytest.raises(RuntimeError, match="no more points"):
            study.ask()


def test_a_grid_skips_points_taken_elsewhere_and_hands_out_the_next_free_ones():
    space, d = GRID_SPACE, GRID_SPACE.dim
    enc = [space.encode({"x": x, "act": a}) for x, a in GRID_POINTS]
    X, failed, running = np.array([enc[0], enc[3]]), np.array([enc[1]]), np.array([enc[4]])
    hist = History(space, X, np.zeros(2), failed, 9)  # n_asked counts other trials too
    got = GridSampler().suggest(hist, running, 5)
    np.testing.assert_allclose(got, [enc[2], enc[5]])  # fewer rows: the rest are taken
    # points of other samplers match within rounding, or not at all
    near = np.array([enc[2] + 1e-12, [0.5, 0.55]])
    got = GridSampler().suggest(hist, np.vstack([running, near]), 5)
    np.testing.assert_allclose(got, [enc[5]])
    assert GridSampler().suggest(hist, np.array(enc), 3).shape == (0, d)


def test_a_grid_with_a_warm_start_and_failures_runs_each_point_once_on_many_workers():
    space = ah.Space(x=ah.Int(0, 2), act=ah.Categorical(["a", "b"]), lr=ah.Float(0.1, 1.0))
    study = ah.Study(space, sampler=GridSampler(values={"lr": [0.1, 0.5, 1.0]}))
    study.add_trial({"x": 1, "act": "b", "lr": 0.5}, 3.0)
    study.add_trial({"x": 2, "act": "a", "lr": 1.0}, 3.0)

    def objective(p):
        if p["x"] == 0 and p["lr"] == 1.0:
            raise RuntimeError("diverged")
        return p["x"] + p["lr"] + (p["act"] == "b")

    study.optimize(
        objective, n_trials=100, backend=ah.SimulatedBackend(n_workers=5, seed=1), progress=False
    )
    seen = [tuple(t.params.values()) for t in study.trials]
    assert len(seen) == 18 and len(set(seen)) == 18
    assert len(study.get_trials(["failed"])) == 2


def test_a_huge_grid_is_not_walked_point_by_point():
    # 5 ** 30 points (more than an int64 holds): the taken ones are found per axis
    space = ah.Space({f"x{i}": ah.Float(0.0, 1.0) for i in range(30)})
    d, grid = space.dim, np.linspace(0.0, 1.0, 5)
    first = np.tile(grid[0], (3000, d))
    first[:, -1] = grid[np.arange(3000) % 5]
    first[:, -2] = grid[(np.arange(3000) // 5) % 5]
    first[:, -3] = grid[(np.arange(3000) // 25) % 5]  # the first 125 grid points, repeated
    rng = np.random.default_rng(0)
    elsewhere = grid[rng.integers(0, 5, (2000, d))]  # and points anywhere in it
    hist = History(space, np.vstack([first, elsewhere]), np.zeros(5000), np.empty((0, d)), 5000)
    got = GridSampler().suggest(hist, np.empty((0, d)), 2)
    want = np.tile(grid[0], (2, d))
    want[:, -4] = grid[1]
    want[1, -1] = grid[1]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_a_shuffled_grid_continues_its_order_after_a_resume():
    space = ah.Space(x=ah.Int(0, 9), y=ah.Int(0, 9))
    one = ah.Study(space, sampler=GridSampler(n_points=10, shuffle=True, seed=2))
    order = [tuple(one.ask().params.values()) for _ in range(30)]
    again = ah.Study(space, sampler=GridSampler(n_points=10, shuffle=True, seed=2))
    for x, y in order[:20]:
        again.add_trial({"x": x, "y": y}, 0.0)
    assert [tuple(again.ask().params.values()) for _ in range(10)] == order[20:]


def test_a_value_given_twice_is_a_grid_point_once():
    space = ah.Space(x=ah.Int(0, 2), act=ah.Categorical(["a", "b"]))
    study = ah.Study(space, sampler=GridSampler(values={"x": [2, 0, 2], "act": ["b", "b"]}))
    study.optimize(lambda p: p["x"], n_trials=10, progress=False)
    assert [tuple(t.params.values()) for t in study.trials] == [(2, "b"), (0, "b")]


def test_a_redraw_keeps_off_a_point_chosen_earlier_in_the_batch_without_a_redraw():
    from asynchpo.samplers._random import Fresh

    space = ah.Space(k=ah.Int(0, 3))  # bins centred at 1/8, 3/8, 5/8, 7/8
    taken = np.array([[0.125]])
    U = np.array([[0.125], [0.375], [0.125]])  # a repeat, a free point, a repeat
    offers = {0: [0.625], 2: [0.375, 0.875]}  # row 2's redraws offer row 1's point first

    def draw(i, m):
        return np.array(offers[i] + [offers[i][-1]] * (m - len(offers[i])))[:m, None]

    got = Fresh(space)(U, taken, draw)
    values = [p["k"] for p in space.decode_many(got)]
    assert values == [2, 1, 3], values
