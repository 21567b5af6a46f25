import optuna
import pytest
from asynchpo_optuna import from_optuna, to_optuna

import asynchpo as ah

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = ah.Space(
    lr=ah.Float(1e-4, 1e-1, log=True),
    depth=ah.Int(1, 8),
    opt=ah.Categorical(["sgd", "adam"]),
    momentum=ah.Float(0.0, 0.99, when={"opt": "sgd"}),
)


def _objective(p):
    for step in range(3):
        ah.report(step, value=p["lr"] * (3 - step))
    if p["depth"] == 8:
        raise RuntimeError("too deep")
    return p["lr"] * p["depth"] + p.get("momentum", 0.0)


@pytest.fixture
def study(tmp_path):
    study = ah.Study(SPACE, storage=tmp_path / "a.db", name="mine", sampler=ah.RandomSampler(0))
    study.optimize(_objective, n_trials=24, backend=ah.SimulatedBackend(4, seed=0), progress=False)
    return study


def test_a_study_goes_to_an_optuna_storage_and_opens_in_optuna(study, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    to_optuna(study, url, "copy")
    loaded = optuna.load_study(study_name="copy", storage=url)
    theirs, ours = loaded.get_trials(), study.trials
    assert len(theirs) == len(ours) == 24
    failed = [t for t in ours if t.state is ah.TrialState.FAILED]
    assert failed and sum(t.state == optuna.trial.TrialState.FAIL for t in theirs) == len(failed)
    for mine, other in zip(ours, theirs, strict=True):
        assert other.params == dict(mine.params)  # momentum only where opt is "sgd"
        assert other.value == mine.value
        assert other.intermediate_values == {r.step: r.metrics["value"] for r in mine.reports}
    assert loaded.best_value == study.best_value
    assert loaded.best_params == study.best_params


def test_an_optuna_study_comes_back_as_an_asynchpo_study_that_loads(study, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    to_optuna(study, url, "copy")
    back = from_optuna(
        optuna.load_study(study_name="copy", storage=url),
        tmp_path / "b.db",
        "back",
        space=SPACE,
    )
    again = ah.Study.load("back", storage=tmp_path / "b.db")
    for mine, theirs in ((study, back), (study, again)):
        pairs = zip(mine.trials, theirs.trials, strict=True)
        for a, b in pairs:
            assert (a.params, a.state, a.value) == (b.params, b.state, b.value)
            assert [(r.step, r.metrics["value"]) for r in a.reports] == [
                (r.step, r.metrics["value"]) for r in b.reports
            ]


def test_an_optuna_native_study_converts_with_its_space_read_off_and_pruned_trials():
    def objective(trial):
        x = trial.suggest_float("x", -3, 3)
        k = trial.suggest_int("k", 1, 4)
        c = trial.suggest_categorical("c", ["a", "b", None])
        for step in range(4):
            trial.report(x**2 + step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x**2 + k + (c is None)

    source = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        direction="maximize",
    )
    source.optimize(objective, n_trials=20)
    study = from_optuna(source)
    assert study.direction == "maximize"
    assert set(study.space) == {"x", "k", "c"} and study.space["c"].choices == ["a", "b", None]
    pruned = [t for t in source.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and len(study.get_trials(["pruned"])) == len(pruned)
    assert study.best_value == source.best_value and study.best_params == source.best_params


def test_a_define_by_run_branch_without_a_space_is_refused_naming_the_trial():
    def objective(trial):
        if trial.suggest_categorical("opt", ["sgd", "adam"]) == "sgd":
            trial.suggest_float("momentum", 0, 1)
        return 0.0

    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    source.optimize(objective, n_trials=12)
    with pytest.raises(ValueError, match=r"trial \d+ has no parameter 'momentum'.*give space="):
        from_optuna(source)
    branchy = ah.Space(
        opt=ah.Categorical(["sgd", "adam"]), momentum=ah.Float(0, 1, when={"opt": "sgd"})
    )
    assert len(from_optuna(source, space=branchy).trials) == 12


def test_a_multi_objective_study_is_refused():
    source = optuna.create_study(directions=["minimize", "maximize"])
    with pytest.raises(ValueError, match="2 objectives"):
        from_optuna(source)
