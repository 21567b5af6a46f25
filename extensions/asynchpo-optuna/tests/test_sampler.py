import numpy as np
import optuna
import pytest
from asynchpo_optuna import OptunaSampler, distributions

import asynchpo as ah
from asynchpo.samplers import History
from asynchpo.testing import SamplerContract


class TestOptunaTPE(SamplerContract):
    def make(self, seed):
        return OptunaSampler(optuna.samplers.TPESampler(seed=seed, constant_liar=True))


class TestOptunaCmaEs(SamplerContract):
    def make(self, seed):
        return OptunaSampler(
            optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        )


class Spy(optuna.samplers.RandomSampler):
    """Optuna's random sampler, remembering the states of the trials it was shown."""

    def __init__(self):
        super().__init__(seed=0)
        self.states = []

    def sample_independent(self, study, trial, name, distribution):
        self.states.append(sorted(t.state.name for t in study.get_trials(deepcopy=False)))
        return super().sample_independent(study, trial, name, distribution)


SPACE = ah.Space(
    lr=ah.Float(1e-4, 1e-1, log=True),
    depth=ah.Int(1, 8),
    opt=ah.Categorical(["sgd", "adam", None]),
    momentum=ah.Float(0.0, 0.99, when={"opt": "sgd"}),
)


def test_the_running_and_failed_trials_reach_the_optuna_sampler_in_their_states():
    rng = np.random.default_rng(0)
    X = np.array([SPACE.encode(p) for p in SPACE.sample(rng, 5)])
    spy = Spy()
    h = History(SPACE, X[:3], np.arange(3.0), X[3:4], 5)
    U = OptunaSampler(spy).suggest(h, X[4:], 2)
    assert U.shape == (2, SPACE.dim)
    first, last = spy.states[0], spy.states[-1]
    assert first == ["COMPLETE"] * 3 + ["FAIL", "RUNNING", "RUNNING"]  # itself is running
    assert last.count("RUNNING") == 3  # the first point of the call runs too


def test_the_space_maps_to_optuna_distributions_and_back():
    d = distributions(SPACE)
    assert d["lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert d["depth"] == optuna.distributions.IntDistribution(1, 8)
    assert d["opt"].choices == (0, 1, 2)  # indices: any choice passes, None included
    study = ah.Study(SPACE, sampler=OptunaSampler(optuna.samplers.TPESampler(seed=1)))
    study.optimize(
        lambda p: p["lr"] * p["depth"] + (p.get("momentum", 0.5) - 0.5) ** 2,
        n_trials=30,
        backend=ah.SimulatedBackend(n_workers=4, seed=0),
        progress=False,
    )
    for t in study.trials:
        assert ("momentum" in t.params) == (t.params["opt"] == "sgd"), t.params


def test_optuna_tpe_drives_a_study_with_eight_simulated_workers():
    def sphere(p):
        return (p["x"] - 0.3) ** 2 + (p["y"] + 1.0) ** 2

    space = ah.Space(x=ah.Float(-5, 5), y=ah.Float(-5, 5))
    values = []
    for sampler in (
        OptunaSampler(optuna.samplers.TPESampler(seed=0, constant_liar=True)),
        ah.RandomSampler(seed=0),
    ):
        study = ah.Study(space, sampler=sampler)
        study.optimize(sphere, n_trials=80, backend=ah.SimulatedBackend(8, seed=0), progress=False)
        assert len(study.get_trials(["complete"])) == 80
        values.append(study.best_value)
    assert values[0] < values[1], values  # it learns: better than random on the same budget


def test_a_sampler_that_is_not_optunas_is_refused_naming_it():
    with pytest.raises(TypeError, match="sampler must be an optuna sampler, got RandomSampler"):
        OptunaSampler(ah.RandomSampler(seed=0))


def test_installed_it_registers_optunas_samplers_by_name_with_the_core():
    from asynchpo.cli import main

    space = ah.Space(x=ah.Float(-5, 5), y=ah.Float(-5, 5))
    for name, inner in (("optuna-tpe", "TPESampler"), ("optuna-cmaes", "CmaEsSampler")):
        study = ah.Study(space, sampler=name)
        assert isinstance(study.sampler, OptunaSampler)
        assert type(study.sampler.sampler).__name__ == inner
    study.optimize(lambda p: p["x"] ** 2, n_trials=16, backend=ah.SimulatedBackend(8, seed=0))
    assert len(study.get_trials(["complete"])) == 16
    assert main(["extensions"]) == 0


def test_suggestions_print_nothing_of_optunas_to_the_users_terminal():
    import logging

    said: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger, verbosity = logging.getLogger("optuna"), optuna.logging.get_verbosity()
    logger.addHandler(handler)
    optuna.logging.set_verbosity(optuna.logging.INFO)  # Optuna's default
    try:
        optuna.create_study()  # what the user would see from Optuna itself
        assert said and "A new study created" in said[0]
        said.clear()
        space = ah.Space(x=ah.Float(-5, 5))
        study = ah.Study(space, sampler=OptunaSampler(optuna.samplers.TPESampler(seed=0)))
        study.optimize(lambda p: p["x"] ** 2, n_trials=12, backend=ah.SimulatedBackend(4, seed=0))
    finally:
        logger.removeHandler(handler)
        optuna.logging.set_verbosity(verbosity)
    assert not said, said[:3]


@pytest.mark.parametrize("workers", [1, 4])
def test_optunas_cma_es_keeps_its_state_between_suggestions_and_converges(workers):
    space = ah.Space(**{f"x{i}": ah.Float(-5, 5) for i in range(4)})

    def sphere(p):
        return sum(v**2 for v in p.values())

    study = ah.Study(space, sampler=OptunaSampler(optuna.samplers.CmaEsSampler(seed=0)))
    study.optimize(sphere, n_trials=150, backend=ah.SimulatedBackend(workers, seed=0))
    values = [t.value for t in sorted(study.get_trials(["complete"]), key=lambda t: t.number)]
    # a CMA-ES that started afresh at each suggestion stays near random (median ~35 here)
    assert study.best_value < 0.5 and np.median(values[-30:]) < 3.0, study.best_value
