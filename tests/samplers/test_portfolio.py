import numpy as np
import pytest

import asynchpo as ah
from asynchpo.samplers import BaseSampler, History, PortfolioSampler
from asynchpo.testing import SamplerContract


class TestPortfolio(SamplerContract):
    def make(self, seed):
        members = [ah.CMAESSampler(seed=seed), ah.TPESampler(seed=seed), ah.RandomSampler(seed)]
        return PortfolioSampler(members, seed=seed)


class TestDefaultPortfolio(SamplerContract):
    def make(self, seed):
        return PortfolioSampler(seed=seed)


class Near(BaseSampler):
    """Draws around a fixed point, and remembers the running points it was shown."""

    cheap = True

    def __init__(self, centre, spread, seed):
        self.centre, self.spread = np.asarray(centre), spread
        self.rng = np.random.default_rng(seed)
        self.shown: list[np.ndarray] = []

    def suggest(self, history, pending, n):
        self.shown.append(np.array(pending))
        U = self.centre + self.spread * self.rng.normal(size=(n, history.space.dim))
        return np.clip(U, 0.0, 1.0)


SPACE = ah.Space(a=ah.Float(0.0, 1.0), b=ah.Float(0.0, 1.0))


def _sphere(p):
    return (p["a"] - 0.3) ** 2 + (p["b"] - 0.6) ** 2


def test_the_member_whose_trials_rank_best_gets_most_suggestions():
    good = Near([0.3, 0.6], 0.02, 0)
    poor = Near([0.9, 0.1], 0.05, 1)
    portfolio = PortfolioSampler([poor, good], seed=0)
    study = ah.Study(SPACE, sampler=portfolio)
    study.optimize(_sphere, n_trials=120, backend=ah.SimulatedBackend(4, seed=0), progress=False)
    counts = portfolio.counts
    assert sum(counts.values()) == 120
    assert counts["Near-2"] > 2 * counts["Near-1"], counts
    assert portfolio.shares["Near-2"] > portfolio.shares["Near-1"]


def test_the_lead_keeps_its_share_when_the_bandit_would_not_give_it():
    poor = Near([0.9, 0.1], 0.05, 1)
    good = Near([0.3, 0.6], 0.02, 0)
    study = ah.Study(SPACE, sampler=PortfolioSampler([poor, good], seed=0, lead=0.5))
    portfolio = study.sampler
    study.optimize(_sphere, n_trials=200, backend=ah.SimulatedBackend(4, seed=0), progress=False)
    counts = portfolio.counts
    assert 0.4 * 200 <= counts["Near-1"] <= 0.65 * 200, counts  # half, and a few by the bandit
    assert counts["Near-2"] > 0.3 * 200, counts


def test_the_default_portfolio_leads_with_its_gp_and_a_given_list_does_not():
    assert PortfolioSampler(seed=0).lead == 0.5
    assert PortfolioSampler(seed=0).explorers == 2
    given = PortfolioSampler([ah.RandomSampler(0), ah.TPESampler(seed=0)], seed=0)
    assert given.lead == 0.0 and given.explorers is None


def test_past_its_explorers_in_flight_every_suggestion_goes_to_the_lead():
    poor = Near([0.9, 0.1], 0.05, 1)
    good = Near([0.3, 0.6], 0.02, 0)
    portfolio = PortfolioSampler([poor, good], seed=0, explorers=2)
    study = ah.Study(SPACE, sampler=portfolio)
    in_flight = []

    def objective(params):
        running = study.get_trials(["running"])
        in_flight.append(sum(abs(t.params["a"] - 0.3) < 0.2 for t in running))
        return _sphere(params)

    study.optimize(objective, n_trials=160, backend=ah.SimulatedBackend(16, seed=0), progress=False)
    counts = portfolio.counts
    assert max(in_flight) == 2, max(in_flight)  # the good member never held more than two
    assert 0.05 * 160 <= counts["Near-2"] <= 0.25 * 160, counts  # about 2 workers in 16
    # without the limit the bandit gives the good member most of the workers
    free = PortfolioSampler([Near([0.9, 0.1], 0.05, 1), Near([0.3, 0.6], 0.02, 0)], seed=0)
    ah.Study(SPACE, sampler=free).optimize(
        _sphere, n_trials=160, backend=ah.SimulatedBackend(16, seed=0), progress=False
    )
    assert free.counts["Near-2"] > 0.5 * 160, free.counts


@pytest.mark.parametrize("explorers", [0, 1.5, True, "two"])
def test_bad_explorers_are_refused_naming_them(explorers):
    with pytest.raises(ValueError, match="explorers must be an int >= 1 or None"):
        PortfolioSampler([ah.RandomSampler(0)], explorers=explorers)


@pytest.mark.parametrize("lead", [-0.1, 1.0, "half"])
def test_a_bad_lead_is_refused_naming_it(lead):
    with pytest.raises(ValueError, match="lead must be in"):
        PortfolioSampler([ah.RandomSampler(0)], lead=lead)


class Turns(Near):
    """Draws near the optimum until ``after`` results are in, then far from it."""

    def __init__(self, after, seed):
        super().__init__([0.3, 0.6], 0.01, seed)
        self.after = after

    def suggest(self, history, pending, n):
        if len(history.y) >= self.after:
            self.centre = np.array([0.95, 0.05])
        return super().suggest(history, pending, n)


def _later_share_of_a_member_that_turns(discount):
    turns = Turns(after=60, seed=0)
    steady = Near([0.3, 0.6], 0.15, 1)
    portfolio = PortfolioSampler([turns, steady], seed=1, discount=discount)
    study = ah.Study(SPACE, sampler=portfolio)
    study.optimize(_sphere, n_trials=60, backend=ah.SimulatedBackend(2, seed=0), progress=False)
    before = portfolio.counts["Turns"]
    assert before > portfolio.counts["Near"]  # the precise member leads at first
    study.optimize(_sphere, n_trials=60, backend=ah.SimulatedBackend(2, seed=0), progress=False)
    return portfolio.counts["Turns"] - before


def test_credit_fades_so_a_member_that_stops_helping_loses_its_share():
    faded, kept = _later_share_of_a_member_that_turns(0.9), _later_share_of_a_member_that_turns(1.0)
    assert faded < 30, faded  # the steady member makes most of the later suggestions
    assert kept > faded + 10, (kept, faded)  # without fading, old credit holds the lead longer


def test_every_member_is_shown_the_running_trials_and_its_siblings_choices():
    a, b = Near([0.2, 0.2], 0.01, 0), Near([0.8, 0.8], 0.01, 1)
    portfolio = PortfolioSampler([a, b], seed=3)
    d = SPACE.dim
    history = History(SPACE, np.empty((0, d)), np.empty(0), np.empty((0, d)), 1)
    running = np.array([[0.5, 0.5]])
    U = portfolio.suggest(history, running, 12)
    assert U.shape == (12, d)
    assert a.shown and b.shown
    first, second = (a, b) if len(a.shown[0]) == 1 else (b, a)
    assert len(first.shown[0]) == 1 and np.allclose(first.shown[0], running)
    # the member asked second saw the running trial and all the first one chose
    assert len(second.shown[0]) == 1 + sum(np.abs(U - first.centre).max(axis=1) < 0.2)


def test_study_auto_builds_the_default_portfolio_and_a_bad_name_is_refused():
    study = ah.Study(SPACE, sampler="auto")
    assert isinstance(study.sampler, PortfolioSampler)
    names = set(study.sampler.counts)
    assert {"GPSampler", "EnsembleSampler", "CMAESSampler", "TPESampler", "RandomSampler"} == names
    with pytest.raises(ValueError, match="sampler"):
        ah.Study(SPACE, sampler="best")


@pytest.mark.parametrize(
    ("members", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "members"),
        (["tpe"], {}, TypeError, r"members\[0\]"),
        (None, {"discount": 0.0}, ValueError, "discount"),
        (None, {"discount": 1.5}, ValueError, "discount"),
    ],
)
def test_bad_arguments_are_refused_naming_them(members, kwargs, error, match):
    with pytest.raises(error, match=match):
        PortfolioSampler(members, **kwargs)


def test_one_sampler_twice_is_refused():
    tpe = ah.TPESampler()
    with pytest.raises(ValueError, match=r"members\[1\]"):
        PortfolioSampler([tpe, tpe])
